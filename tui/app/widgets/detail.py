"""The detail pane: LLM, Conversation, Attributes, Events and Timeline tabs for the selected row."""

from __future__ import annotations

from collections.abc import Callable

from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.widgets import OptionList, TabbedContent, TabPane
from textual.widgets.option_list import Option

from tui.app.present import detail as present
from tui.app.present.conversation import conversation_items, has_conversation
from tui.app.present.detail import Item
from tui.app.textual_compat import forget_option_heights
from tui.model.conversation import LLM, TOOL, step_kind
from tui.model.replays import NO_LINKS, ReplayLinks
from tui.model.span import Span
from tui.model.trace_list import ListRow, LogEvents, no_logs, trace_call

TABS = ("llm", "conversation", "attributes", "events", "timeline")
#: Tabs offered only when the row has what they show.
OPTIONAL_TABS = ("llm", "conversation")


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
        #: The content width the options were last measured at (see :meth:`render_lines`).
        self._wrapped_at = -1

    def render_lines(self, crop: Region) -> list[Strip]:
        """Items wrapped to the width they are drawn at. OptionList measures each option's height when it
        is added and keeps it until a Resize; the content width can change after that without one (the
        pane settling, the scrollbar appearing), and an item measured wider is then drawn cut short: a
        long completion lost its last lines and its "… more" line. (Private OptionList API: re-measure.)"""
        width = self.scrollable_content_region.width
        if width != self._wrapped_at:
            self._wrapped_at = width
            forget_option_heights(self)
        return super().render_lines(crop)

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
    """Shows the selected trace or span; a new selection opens on its Conversation tab (a trace, or an
    agent span, with LLM calls) or its LLM tab (an LLM or tool span) when it has one.

    Only the tab on screen is built; another is built when it is opened.
    """

    class ShowSpan(Message):
        """Enter on a Conversation step: select its span in the trace list."""

        def __init__(self, trace_id: str, span_id: str) -> None:
            super().__init__()
            self.trace_id = trace_id
            self.span_id = span_id

    DEFAULT_CSS = """
    DetailPane { height: 1fr; }
    DetailPane TabbedContent { height: 1fr; }
    DetailPane TabPane { padding: 0; height: 1fr; }
    DetailPane ContentSwitcher { height: 1fr; }
    """

    def __init__(self, *, logs: LogEvents = no_logs, links: Callable[[Span], ReplayLinks] = lambda _: NO_LINKS,
                 id: str | None = None) -> None:
        super().__init__(id=id)
        self.row: ListRow | None = None
        #: Log records naming a span, as events (from the OTLP logs receiver).
        self.logs = logs
        #: A span's replay links (what it replays, its replays), shown atop its LLM tab.
        self.links = links
        #: Bumped by every :meth:`show`; a tab built at an older version is stale.
        self._version = 0
        #: Tab → (version, key of the row) it was last built for; the key is None for "nothing selected".
        self._built: dict[str, tuple[int, tuple[str, str | None] | None]] = {}

    def compose(self) -> ComposeResult:
        with TabbedContent(id="detail-tabs", initial="tab-attributes"):
            with TabPane("LLM", id="tab-llm"):
                yield DetailList(id="detail-llm")
            with TabPane("Conversation", id="tab-conversation"):
                yield DetailList(id="detail-conversation")
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

    def offered(self, row: ListRow | None) -> dict[str, bool]:
        """Which optional tabs ``row`` has content for."""
        if row is None:
            return dict.fromkeys(OPTIONAL_TABS, False)
        return {"llm": present.has_llm_data(row, self.logs), "conversation": has_conversation(row)}

    def show(self, row: ListRow | None) -> None:
        """Show ``row``. A new selection jumps to its Conversation tab (a trace or an agent, with LLM
        calls) or its LLM tab; a refresh of the same row keeps the tab open."""
        tabs = self.query_one(TabbedContent)
        new = row is None or self.row is None or row.key != self.row.key
        self.row = row
        self._version += 1
        offered = self.offered(row)
        for tab in OPTIONAL_TABS:
            if offered[tab]:
                tabs.show_tab(f"tab-{tab}")
        preferred = ""
        if row is not None and offered["conversation"] and (
                row.span_row is None or step_kind(row.span_row.span) not in (LLM, TOOL)):
            preferred = "conversation"
        elif offered["llm"]:
            preferred = "llm"
        active = self.active_tab
        target = active
        if active in OPTIONAL_TABS and not offered[active]:
            target = preferred or "attributes"
        elif new and preferred:
            target = preferred
        if target != active:
            tabs.active = f"tab-{target}"  # built by the activation handler
        for tab in OPTIONAL_TABS:
            if not offered[tab]:
                tabs.hide_tab(f"tab-{tab}")
        if target == active:
            self._build(target)

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
        elif tab == "conversation":
            items, prompts = conversation_items(row, self.logs, detail_list.palette)
            detail_list.show_items(items, prompts, highlight=None if same else 0)
        else:
            build = {"llm": present.llm_items, "events": present.event_items}.get(tab)
            items = build(row, self.logs) if build else present.attribute_items(row)
            if tab == "llm":
                call = row.span_row.span if row.span_row is not None else trace_call(row.trace, self.logs)[0]
                if call is not None:
                    items = [*present.replay_items(self.links(call)), *items]
            detail_list.show_items(items, highlight=None if same else 0)

    def cycle_tab(self) -> None:
        tabs = self.query_one(TabbedContent)
        offered = self.offered(self.row)
        shown = [f"tab-{t}" for t in TABS if t not in OPTIONAL_TABS or offered[t]]
        current = tabs.active if tabs.active in shown else shown[0]
        tabs.active = shown[(shown.index(current) + 1) % len(shown)]

    @on(OptionList.OptionSelected, "#detail-conversation")
    def _step_chosen(self, event: OptionList.OptionSelected) -> None:
        """Enter on a step: ask the screen to select its span in the list."""
        event.stop()
        items = self.list("conversation").items
        item = items[event.option_index] if 0 <= event.option_index < len(items) else None
        if item is not None and item.span_id and self.row is not None:
            self.post_message(self.ShowSpan(self.row.trace.trace_id, item.span_id))
