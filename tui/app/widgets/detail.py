"""The detail pane: LLM, Attributes, Events and Timeline tabs for the selected row."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import OptionList, TabbedContent, TabPane
from textual.widgets.option_list import Option

from tui.app.present import detail as present
from tui.app.present.detail import Item
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

    COMPONENT_CLASSES = {f"detail-list--{tone}" for tone in present.TONES}
    DEFAULT_CSS = """
    DetailList { height: 1fr; border: none; padding: 0 1; }
    DetailList > .option-list--option { padding: 0; }
    DetailList > .detail-list--title { text-style: bold; }
    DetailList > .detail-list--heading { text-style: bold reverse; }
    DetailList > .detail-list--note { text-style: italic; }
    DetailList > .detail-list--error { color: $text-error; text-style: bold; }
    DetailList > .detail-list--system { color: $text-secondary; text-style: bold; }
    DetailList > .detail-list--user { color: $text-primary; text-style: bold; }
    DetailList > .detail-list--assistant { color: $text-success; text-style: bold; }
    DetailList > .detail-list--tool { color: $text-warning; text-style: bold; }
    DetailList > .detail-list--bar { color: $text-accent; }
    DetailList > .detail-list--muted { color: $text-muted; }
    """

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id)
        self.items: list[Item] = []

    def palette(self, tone: str) -> Style:
        """A tone's style from the current theme."""
        return self.get_component_rich_style(f"detail-list--{tone}", partial=True)

    def show_items(self, items: list[Item], prompts: list[Text] | None = None, highlight: int | None = None) -> None:
        """Replace the content; keeps the highlighted position when the same row is refreshed."""
        keep = self.highlighted if highlight is None else highlight
        self.items = items
        self.clear_options()
        rendered = prompts if prompts is not None else [item.render(self.palette) for item in items]
        self.add_options(Option(prompt, disabled=item.heading) for prompt, item in zip(rendered, items, strict=True))
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
    """Shows the selected trace or span; the LLM tab comes first whenever there is LLM data.

    Only the tab on screen is built; another is built when it is opened.
    """

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
        #: Bumped by every :meth:`show`; a tab built at an older version is stale.
        self._version = 0
        #: Tab → (version, key of the row) it was last built for; the key is None for "nothing selected".
        self._built: dict[str, tuple[int, tuple[str, str | None] | None]] = {}

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
    def active_tab(self) -> str:
        return (self.query_one(TabbedContent).active or "tab-attributes").removeprefix("tab-")

    @property
    def active_list(self) -> DetailList:
        return self.list(self.active_tab)

    def show(self, row: ListRow | None) -> None:
        """Show ``row``. A new selection jumps to the LLM tab when it has LLM data."""
        tabs = self.query_one(TabbedContent)
        new = row is None or self.row is None or row.key != self.row.key
        self.row = row
        self._version += 1
        if row is not None and present.has_llm_data(row, self.logs):
            tabs.show_tab("tab-llm")
            if new and tabs.active != "tab-llm":
                tabs.active = "tab-llm"  # built by the activation handler
                return
        else:
            if tabs.active == "tab-llm":
                tabs.active = "tab-attributes"
                tabs.hide_tab("tab-llm")
                return
            tabs.hide_tab("tab-llm")
        self._build(self.active_tab)

    @on(TabbedContent.TabActivated)
    def _tab_opened(self, event: TabbedContent.TabActivated) -> None:
        tab = (event.pane.id or "").removeprefix("tab-")
        built = self._built.get(tab)
        if tab in TABS and (built is None or built[0] != self._version):
            self._build(tab)

    def _build(self, tab: str) -> None:
        row = self.row
        detail_list = self.list(tab)
        key = row.key if row is not None else None
        before = self._built.get(tab)
        same = before is not None and before[1] == key
        self._built[tab] = (self._version, key)
        if row is None:
            detail_list.show_items([Item("Nothing selected", tone="note")])
        elif tab == "timeline":
            lines = present.timeline_lines(row.trace, max(40, self.size.width - 4), detail_list.palette, row.span_id)
            items = [Item(text.plain.strip(), text.plain) for _, text in lines]
            highlight = next((i for i, (span_id, _) in enumerate(lines) if span_id == row.span_id), 0)
            detail_list.show_items(items, [text for _, text in lines], highlight=highlight)
        else:
            build = {"llm": present.llm_items, "events": present.event_items}.get(tab)
            items = build(row, self.logs) if build else present.attribute_items(row)
            detail_list.show_items(items, highlight=None if same else 0)

    def cycle_tab(self) -> None:
        tabs = self.query_one(TabbedContent)
        shown = [f"tab-{t}" for t in TABS if t != "llm" or (self.row and present.has_llm_data(self.row, self.logs))]
        current = tabs.active if tabs.active in shown else shown[0]
        tabs.active = shown[(shown.index(current) + 1) % len(shown)]
