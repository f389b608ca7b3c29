"""The detail pane: LLM, Attributes, Events and Timeline tabs for the selected row."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import OptionList, TabbedContent, TabPane
from textual.widgets.option_list import Option

from tui.app.detail_content import Item, attribute_items, event_items, llm_items, timeline_lines
from tui.model.trace_list import ListRow, LogEvents, no_logs

TABS = ("llm", "attributes", "events", "timeline")


class DetailList(OptionList):
    """A tab's items; the highlighted one is what the full-screen and copy keys act on."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False, id="detail.down"),
        Binding("k", "cursor_up", "Up", show=False, id="detail.up"),
        Binding("g", "first", "First", show=False, id="detail.first"),
        Binding("G", "last", "Last", show=False, id="detail.last"),
    ]

    DEFAULT_CSS = """
    DetailList { height: 1fr; border: none; padding: 0 1; }
    DetailList > .option-list--option { padding: 0; }
    """

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id)
        self.items: list[Item] = []

    def show_items(self, items: list[Item], prompts: list[Text] | None = None, highlight: int | None = None) -> None:
        """Replace the content; keeps the highlighted position when the same row is refreshed."""
        keep = self.highlighted if highlight is None else highlight
        self.items = items
        self.clear_options()
        rendered = prompts if prompts is not None else [item.render() for item in items]
        self.add_options(Option(prompt, disabled=item.heading) for prompt, item in zip(rendered, items))
        selectable = [i for i, item in enumerate(items) if not item.heading]
        if keep is not None and keep in selectable:
            self.highlighted = keep
        elif selectable:
            self.highlighted = selectable[0]

    @property
    def current(self) -> Item | None:
        index = self.highlighted
        return self.items[index] if index is not None and 0 <= index < len(self.items) else None


class DetailPane(Vertical):
    """Shows the selected trace or span; the LLM tab comes first whenever there is LLM data."""

    DEFAULT_CSS = """
    DetailPane { height: 1fr; }
    DetailPane TabbedContent { height: 1fr; }
    DetailPane TabPane { padding: 0; height: 1fr; }
    DetailPane ContentSwitcher { height: 1fr; }
    """

    def __init__(self, *, logs: LogEvents = no_logs, id: str | None = None) -> None:
        super().__init__(id=id)
        self.row: ListRow | None = None
        #: Log records naming a span, as events (from the OTLP logs receiver).
        self.logs = logs

    def compose(self) -> ComposeResult:
        with TabbedContent(id="detail-tabs", initial="tab-attributes"):
            with TabPane("LLM", id="tab-llm"):
                yield DetailList(id="detail-llm")
            with TabPane("Attributes", id="tab-attributes"):
                yield DetailList(id="detail-attributes")
            with TabPane("Events", id="tab-events"):
                yield DetailList(id="detail-events")
            with TabPane("Timeline", id="tab-timeline"):
                yield DetailList(id="detail-timeline")

    def list(self, tab: str) -> DetailList:
        return self.query_one(f"#detail-{tab}", DetailList)

    @property
    def active_list(self) -> DetailList:
        active = self.query_one(TabbedContent).active or "tab-attributes"
        return self.list(active.removeprefix("tab-"))

    def show(self, row: ListRow | None) -> None:
        """Fill every tab for ``row``. A new selection jumps to the LLM tab when it has LLM data."""
        found = self.query(TabbedContent)
        if not found:
            return  # a selection message that arrived while the app is shutting down
        tabs = found.first()
        same = row is not None and self.row is not None and row.key == self.row.key
        self.row = row
        if row is None:
            for tab in TABS:
                self.list(tab).show_items([Item("Nothing selected", style="italic")])
            return
        llm = llm_items(row, self.logs)
        self.list("llm").show_items(llm, highlight=None if same else 0)
        self.list("attributes").show_items(attribute_items(row), highlight=None if same else 0)
        self.list("events").show_items(event_items(row, self.logs), highlight=None if same else 0)
        self._show_timeline(row)
        if llm:
            tabs.show_tab("tab-llm")
            if not same:
                tabs.active = "tab-llm"
        else:
            if tabs.active == "tab-llm":
                tabs.active = "tab-attributes"
            tabs.hide_tab("tab-llm")

    def _show_timeline(self, row: ListRow) -> None:
        lines = timeline_lines(row.trace, max(40, self.size.width - 4))
        items = [Item(text.plain.strip(), text.plain) for _, text in lines]
        selected = row.span_id
        highlight = next((i for i, (span_id, _) in enumerate(lines) if span_id == selected), 0)
        self.list("timeline").show_items(items, [text for _, text in lines], highlight=highlight)

    def cycle_tab(self) -> None:
        tabs = self.query_one(TabbedContent)
        visible = [f"tab-{t}" for t in TABS if t != "llm" or self.list("llm").items]
        current = tabs.active if tabs.active in visible else visible[0]
        tabs.active = visible[(visible.index(current) + 1) % len(visible)]
