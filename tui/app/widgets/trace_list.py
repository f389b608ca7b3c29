"""The live trace list: a line-API ``ScrollView`` over :class:`TraceListIndex`.

Textual's ``Tree`` rebuilds every line on each change (hundreds of ms at 50 k traces), so the
list draws only the rows on screen from a flat index: a frame costs what is visible. Selection
is kept by identity (trace id, span id), so rows arriving above it never move it to another row.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable
from itertools import islice

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.app.textual_compat import resize_scroll_area_in_place
from tui.model.store import StoreChanges, Trace, TraceStore
from tui.model.text import bar_extent, format_age, format_duration, format_tokens, safe_text
from tui.model.trace_list import ListRow, TraceListIndex

BAR_WIDTH = 12
#: Below this width a trace row leaves out its token counts.
NARROW_LIST = 60
#: A new filter may block this long to decide the rows on screen; the rest is scanned in slices.
FIRST_SCREEN_BUDGET_S = 0.2
#: A new sort's first slice: enough to sort a list of some 50 k traces at once; a longer one keeps its old
#: order on screen while the rest is worked out a slice a tick (nothing new is drawn until it is in place).
SORT_FIRST_SLICE_S = 0.05
SCAN_SLICE_S = 0.01
#: A changed huge expanded trace is rebuilt this long a tick (its old rows shown meanwhile).
REBUILD_SLICE_S = 0.008
Key = tuple[str, str | None]
_BOLD = Style(bold=True)
_PLAIN = Style()


def shown(text: str, cells: int) -> str:
    """Untrusted ``text`` made safe, cut first to what ``cells`` can show: a 100 KB span name must cost
    what one row shows, not its length."""
    return safe_text(text[: cells + 1])


class TraceList(ScrollView, can_focus=True):
    """Traces newest first; Enter or → expands a trace into its span hierarchy."""

    BINDINGS = [
        Binding("up,k", "cursor_up", "Up", show=False, id="list.up"),
        Binding("down,j", "cursor_down", "Down", show=False, id="list.down"),
        Binding("pageup", "page_up", "Page up", show=False, id="list.page_up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="list.page_down"),
        Binding("home,g", "first", "First", show=False, id="list.first"),
        Binding("end,G", "last", "Last", show=False, id="list.last"),
        Binding("right,l", "expand", "Expand", show=False, id="list.expand"),
        Binding("left,h", "collapse", "Collapse/parent", show=False, id="list.collapse"),
        Binding("enter", "toggle_expanded", "Toggle", tooltip="Expand / collapse", show=False, id="list.toggle"),
    ]

    COMPONENT_CLASSES = {
        "trace-list--cursor",
        "trace-list--dim",
        "trace-list--error",
        "trace-list--service",
        "trace-list--model",
        "trace-list--bar",
        "trace-list--warning",
        "trace-list--empty",
        "trace-list--match",
    }

    DEFAULT_CSS = """
    TraceList { background: $surface; }
    TraceList > .trace-list--cursor { background: $accent 40%; text-style: bold; }
    TraceList:focus > .trace-list--cursor { background: $accent 70%; }
    TraceList > .trace-list--dim { color: $text-muted; }
    TraceList > .trace-list--error { color: $error; text-style: bold; }
    TraceList > .trace-list--service { color: $text-secondary; }
    TraceList > .trace-list--model { color: $text-success; }
    TraceList > .trace-list--bar { color: $primary; }
    TraceList > .trace-list--warning { color: $warning; }
    TraceList > .trace-list--empty { color: $text-muted; }
    TraceList > .trace-list--match { color: $text-accent; text-style: bold; }
    """

    class SelectionChanged(Message):
        """The highlighted row now shows another trace or span (``span_id`` None: a trace row)."""

        def __init__(self, trace_list: TraceList, trace_id: str | None, span_id: str | None, live: bool) -> None:
            super().__init__()
            self.trace_list = trace_list
            self.trace_id = trace_id
            self.span_id = span_id
            #: Moved by arriving data (following), not by the user: the detail may lag a little.
            self.live = live

        @property
        def control(self) -> TraceList:
            return self.trace_list

    #: When following, the cursor stays on the newest trace as traces arrive.
    following = reactive(True, repaint=False)
    #: What the list says while it has no rows (how to send spans, or why a filter matches nothing).
    empty_lines: reactive[tuple[str, ...]] = reactive(tuple)

    def __init__(self, store: TraceStore, *, clock: Callable[[], float] = time.time, id: str | None = None) -> None:
        super().__init__(id=id)
        self.store = store
        self.index = TraceListIndex(store)
        self.cursor = 0
        self.selected: Key | None = None
        #: Arrival order of the selected trace, to find its neighbour if it is evicted.
        self._selected_seq = 0
        self.clock = clock
        self._styles: dict[tuple[str, str, bool], Style] = {}
        self._wrapped: tuple[tuple[tuple[str, ...], int] | None, list[str]] = (None, [])
        #: Trace id → (spans looked at, the first span's service, whether another service was seen).
        self._multi_service: dict[str, tuple[int, str, bool]] = {}
        #: Span ids marked to compare (``m``): their rows carry a flag.
        self.marked: frozenset[str] = frozenset()

    # --- data ----------------------------------------------------------------------------------

    def apply_changes(self, changes: StoreChanges) -> None:
        """Apply one coalesced change set and keep the selection on the same trace or span."""
        top_key = self._key_at(self.scroll_offset.y) if self.scroll_offset.y else None
        self.index.apply(changes)
        if changes.cleared:
            self._multi_service.clear()
        for trace_id in changes.evicted:
            self._multi_service.pop(trace_id, None)
        self._after_index_change(top_key, live=True)

    def refilter(self, text: str | None = None, errors_only: bool | None = None) -> None:
        """Apply a new filter: the visible rows are decided now, the rest of the list in later ticks."""
        self.index.set_filter(text, errors_only, scan=False)
        self.index.continue_scan(FIRST_SCREEN_BUDGET_S, until_rows=self.size.height + 1)
        self._after_index_change(None)

    def continue_rebuild(self) -> None:
        """One slice of rebuilding the changed huge expanded traces; the selection stays on its row."""
        if self.index.rebuilding:
            top_key = self._key_at(self.scroll_offset.y) if self.scroll_offset.y else None
            if self.index.continue_rebuild(REBUILD_SLICE_S):
                self._after_index_change(top_key, live=True)

    def continue_filter(self) -> None:
        """One slice of a filter still scanning older traces, or of a new sort's keys (called every tick
        until both are done)."""
        if not self.index.sort_done:
            if self.index.continue_sort(SCAN_SLICE_S):
                self._after_index_change(None)
            return
        if not self.index.scan_done:
            top_key = self._key_at(self.scroll_offset.y) if self.scroll_offset.y else None
            self.index.continue_scan(SCAN_SLICE_S)
            self._after_index_change(top_key, live=True)

    def set_sort(self, sort: str) -> None:
        """Sort the list (a key of :data:`~tui.model.trace_list.SORTS`), keeping the selection: at once
        when the keys take less than a frame's budget, else in slices (:meth:`continue_filter`) while the
        old order stays on screen."""
        self.index.set_sort(sort, now=False)
        if self.index.continue_sort(SORT_FIRST_SLICE_S):
            self._after_index_change(None)
        self.refresh()

    def _set_row_count(self, count: int) -> None:
        """Resize the scrollable area without re-laying out the whole screen.

        ``virtual_size`` is a layout reactive: assigning it re-renders every widget on screen, which
        under a span flood (a new size every tick) cost more than the list itself. Once the scrollbar
        is showing, growing the list cannot change the layout, so only the scrollbar is updated.
        """
        size = Size(0, count)  # as wide as the view: the list never scrolls sideways
        if size == self.virtual_size:
            return
        scrollbar_before = self.virtual_size.height > self.size.height
        if scrollbar_before and count > self.size.height:
            resize_scroll_area_in_place(self, size)
        else:
            self.virtual_size = size

    def _after_index_change(self, top_key: Key | None, *, live: bool = False) -> None:
        count = len(self.index)
        self._set_row_count(count)
        if self.following and count:
            self._move_to(0, live=live)
        elif self.selected is not None:
            position = self.index.position_of(*self.selected)
            if position is None and self.selected[1] is not None:
                position = self.index.position_of(self.selected[0])  # span gone: its trace
            if position is None:
                nearest = self.index.position_near(self._selected_seq, self.selected[0])
                self._move_to(nearest if nearest is not None else 0, force_message=True, live=live)
            else:
                # Keep the view still: shift by the rows that appeared above the selection.
                shift = position - self.cursor
                self.cursor = position
                if shift and top_key is not None:
                    self.scroll_to(y=self.scroll_offset.y + shift, animate=False, immediate=True)
                self._ensure_visible()
        elif count:
            self._move_to(0, live=live)
        self.refresh()

    def _key_at(self, index: int) -> Key | None:
        return self.index.row(index).key if 0 <= index < len(self.index) else None

    @property
    def current(self) -> ListRow | None:
        return self.index.row(self.cursor) if 0 <= self.cursor < len(self.index) else None

    # --- cursor ----------------------------------------------------------------------------------

    def _move_to(self, index: int, *, force_message: bool = False, live: bool = False) -> None:
        count = len(self.index)
        index = max(0, min(index, count - 1)) if count else 0
        old_key = self.selected
        self.cursor = index
        self.selected = self._key_at(index)
        if self.selected is not None:
            self._selected_seq = self.index.row(index).trace.seq
        self._ensure_visible()
        self.refresh()
        if self.selected != old_key or force_message:
            trace_id, span_id = self.selected or (None, None)
            self.post_message(self.SelectionChanged(self, trace_id, span_id, live))

    def _ensure_visible(self) -> None:
        self.scroll_to_region(Region(0, self.cursor, 1, 1), animate=False, immediate=True, force=True)

    def _user_move(self, index: int) -> None:
        """A move by the user stops following unless it lands on the newest trace."""
        self._move_to(index)
        self.following = self.cursor == 0 and self.following

    def action_cursor_up(self) -> None:
        self._user_move(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self.following = False
        self._move_to(self.cursor + 1)

    def action_page_up(self) -> None:
        self._user_move(self.cursor - max(1, self.size.height - 1))

    def action_page_down(self) -> None:
        self.following = False
        self._move_to(self.cursor + max(1, self.size.height - 1))

    def action_first(self) -> None:
        self._move_to(0)

    def action_last(self) -> None:
        self.following = False
        self._move_to(len(self.index) - 1)

    def action_expand(self) -> None:
        row = self.current
        if row is None:
            return
        if row.span_row is None and not self.index.is_expanded(row.trace.trace_id):
            self.index.expand(row.trace.trace_id)
            self._after_index_change(None)
        elif row.span_row is None or self.cursor + 1 < len(self.index):
            self.following = False
            self._move_to(self.cursor + 1)  # already open: step into it

    def action_collapse(self) -> None:
        row = self.current
        if row is None:
            return
        if row.span_row is None:
            if self.index.collapse(row.trace.trace_id):
                self._after_index_change(None)
            return
        parent = self.index.parent_position(self.cursor)
        if parent is not None:
            self.following = False
            self._move_to(parent)

    def action_toggle_expanded(self) -> None:
        row = self.current
        if row is None:
            return
        if self.index.is_expanded(row.trace.trace_id):
            self.index.collapse(row.trace.trace_id)
            self.selected = (row.trace.trace_id, None)
            self._after_index_change(None)
            self._move_to(self.index.position_of(row.trace.trace_id) or 0, force_message=True)
        else:
            self.index.expand(row.trace.trace_id)
            self._after_index_change(None)

    def follow(self, on: bool) -> None:
        self.following = on
        if on and len(self.index):
            self._move_to(0)

    def select(self, trace_id: str, span_id: str | None = None) -> bool:
        """Put the cursor on a trace (expanding it to reach a span); False if it is not shown."""
        if span_id is not None:
            self.index.expand(trace_id)
            self._after_index_change(None)
        position = self.index.position_of(trace_id, span_id)
        if position is None:
            return False
        self.following = False
        self._move_to(position)
        return True

    def on_click(self, event: events.Click) -> None:
        index = self.scroll_offset.y + event.y
        if 0 <= index < len(self.index):
            self.following = False
            self._move_to(index)

    def on_resize(self) -> None:
        self.virtual_size = Size(0, len(self.index))  # a real layout change

    # --- rendering -------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_size.width  # not under the scrollbar
        base = self.rich_style
        index = self.scroll_offset.y + y
        if not len(self.index):
            return self._empty_line(y, width, base)
        if index >= len(self.index):
            return Strip.blank(width, base)
        row = self.index.row(index)
        segments = self._trace_segments(row, width) if row.span_row is None else self._span_segments(row, width)
        if index == self.cursor:
            segments = list(Segment.apply_style(segments, post_style=self._style("cursor")))
        return Strip(segments).crop_extend(0, width, base).apply_style(base)

    def _empty_line(self, y: int, width: int, base: Style) -> Strip:
        lines = self._wrapped_empty_lines(width)
        if y >= len(lines):
            return Strip.blank(width, base)
        text = set_cell_size(" " + lines[y], width)
        return Strip([Segment(text, self._style("empty"))], width).apply_style(base)

    def _wrapped_empty_lines(self, width: int) -> list[str]:
        """The empty-state lines wrapped to the width, so a command is continued, never cut."""
        key = (self.empty_lines, width)
        if self._wrapped[0] != key:
            room = max(20, width - 2)
            wrapped: list[str] = []
            for line in self.empty_lines:
                lead = line[:min(len(line) - len(line.lstrip()), room // 2)]
                wrapped += textwrap.wrap(line.strip(), room, initial_indent=lead, subsequent_indent=lead + "    ",
                                         break_on_hyphens=False) or [""]
            self._wrapped = (key, wrapped)
        return self._wrapped[1]

    def _style(self, name: str) -> Style:
        """Only what the component rule sets (partial), so segments layer over the widget's background.

        Cached per theme and focus state: resolving a component style costs tens of microseconds,
        and a frame asks for hundreds of them.
        """
        key = (name, self.app.theme, self.has_focus)
        style = self._styles.get(key)
        if style is None:
            style = self._styles[key] = self.get_component_rich_style(f"trace-list--{name}", partial=True)
        return style

    def _trace_segments(self, row: ListRow, width: int) -> list[Segment]:
        trace = row.trace
        summary = self.index.summary(trace)
        expanded = self.index.is_expanded(trace.trace_id)
        dim = self._style("dim")
        tokens = ""
        if summary.tokens_in is not None or summary.tokens_out is not None:
            tokens = f"{format_tokens(summary.tokens_in)}→{format_tokens(summary.tokens_out)}"
        age = format_age(self.clock() - trace.end_ns / 1e9) if trace.end_ns else ""
        # Narrow lists give up columns, least telling first (tokens, model, service), before the name is cut.
        tokens_column = f" {tokens:>11}" if width >= NARROW_LIST else ""
        right = f"{tokens_column} {format_duration(trace.duration_ns):>7} {age:>4} "
        fixed = 4 + cell_len(right)
        flexible = max(0, width - fixed)
        service_width = min(16, flexible // 3) if flexible >= 30 else 0
        model_width = min(20, flexible // 3) if summary.model and flexible >= 40 else 0
        name_width = max(0, flexible - service_width - model_width - 2)
        name = shown(trace.name, width) if trace.has_root else f"{shown(trace.name, width)} (no root yet)"
        note = f"+{trace.dropped_spans:,} spans over the cap " if trace.dropped_spans else ""
        if self.marked and any(span_id in trace.spans for span_id in self.marked):
            note = "⚑ " + note  # holds a call marked to compare
        updating = "updating… " if self.index.is_rebuilding(trace.trace_id) else ""
        name_width = max(0, name_width - cell_len(note) - len(updating))
        service = set_cell_size(shown(trace.service_name, service_width), service_width) + " " if service_width else ""
        segments = [
            Segment("▾ " if expanded else "▸ ", dim),
            Segment("✖ " if trace.has_error else "  ", self._style("error")),
            Segment(service, self._style("service")),
            Segment(set_cell_size(name, name_width) + " ", _BOLD if trace.has_root else self._style("warning")),
            Segment(note, self._style("warning")),
            Segment(updating, dim),
        ]
        if model_width:
            model = set_cell_size(shown(summary.model, model_width), model_width)
            segments.append(Segment(model, self._style("model")))
        segments.append(Segment(right, dim))
        return segments

    def _span_segments(self, row: ListRow, width: int) -> list[Segment]:
        assert row.span_row is not None
        span = row.span_row.span
        trace = row.trace
        dim = self._style("dim")
        marker = ""
        if row.span_row.orphan:
            marker = "⚠ parent missing · "
        elif row.span_row.cycle:
            marker = "⚠ parent cycle · "
        duration = f" {format_duration(span.duration_ns):>7} "
        left, length = bar_extent(span.start_ns, span.end_ns, trace.start_ns, trace.end_ns, BAR_WIDTH)
        bar = "·" * left + "█" * length + "·" * (BAR_WIDTH - left - length)
        error = "✖ " if span.is_error else ""
        guide = "  " + row.guide
        service = f"{shown(span.resource.service_name, 20)}: " if self._several_services(trace) else ""
        match = self.index.span_matches(span)
        if match:
            marker += "◆ "  # a span that passes the filter on its own
        if span.span_id in self.marked:
            marker += "⚑ "
        fixed = cell_len(guide) + cell_len(marker) + cell_len(error) + len(duration) + BAR_WIDTH + 1
        name_width = max(0, width - fixed - min(cell_len(service), 20))
        return [
            Segment(guide, dim),
            Segment(marker, self._style("match" if match and not row.span_row.orphan and not row.span_row.cycle
                                        else "warning")),
            Segment(error, self._style("error")),
            Segment(set_cell_size(service, min(cell_len(service), 20)), self._style("service")),
            Segment(set_cell_size(shown(span.name, name_width) or "(unnamed)", name_width),
                    self._style("match") if match else _PLAIN),
            Segment(duration, dim),
            Segment(bar + " ", self._style("error") if span.is_error else self._style("bar")),
        ]

    def _several_services(self, trace: Trace) -> bool:
        """Whether the trace's spans come from more than one service (then each span row names its own).
        A trace only gains spans, so only those added since the last look are looked at."""
        checked, first, several = self._multi_service.get(trace.trace_id, (0, "", False))
        if not several and checked < trace.span_count:
            for span in islice(trace.spans.values(), checked, None):
                first = first or span.resource.service_name
                if span.resource.service_name != first:
                    several = True
                    break
            self._multi_service[trace.trace_id] = (trace.span_count, first, several)
        return several
