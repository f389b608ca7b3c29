"""Each widget mounted alone in a small host app, fed directly (no receivers, no sockets)."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input, TabbedContent

from support.demo_store import CLOCK_NOW, demo_store
from tui.app.present.header import Counts
from tui.app.widgets.detail import DetailPane
from tui.app.widgets.filter_bar import FilterBar
from tui.app.widgets.status_line import StatusLine
from tui.app.widgets.trace_list import TraceList, shown
from tui.model.span import Span
from tui.model.store import TraceStore
from tui.model.trace_list import ListRow


class Host(App[None]):
    """Mounts one widget and records every message it posts."""

    def __init__(self, widget: Widget) -> None:
        super().__init__()
        self.widget = widget
        self.messages: list[Message] = []

    def compose(self) -> ComposeResult:
        yield self.widget

    def on_mount(self) -> None:
        self.widget.focus()


def posted(host: Host, kind: type[Message]) -> list[Message]:
    """Each message once (the hook sees a bubbling message at every node it reaches)."""
    unique = {id(m): m for m in host.messages if isinstance(m, kind)}
    return list(unique.values())


async def run(host: Host, size: tuple[int, int] = (100, 20)):
    return host.run_test(size=size, message_hook=host.messages.append)


def lines(trace_list: TraceList) -> list[str]:
    return [trace_list.render_line(y).text.rstrip() for y in range(trace_list.size.height)]


# --- filter bar ----------------------------------------------------------------------------------------

async def test_filter_bar_reports_typing_and_enter_keeps_the_text() -> None:
    bar = FilterBar()
    host = Host(bar)
    async with await run(host) as pilot:
        bar.open()
        await pilot.press(*"gpu", "enter")
        assert [m.value for m in posted(host, Input.Changed)][-1] == "gpu"
        assert [m.cleared for m in posted(host, FilterBar.Closed)] == [False]
        assert bar.value == "gpu" and bar.display  # a kept filter stays on screen


async def test_filter_bar_hides_when_kept_empty() -> None:
    bar = FilterBar()
    host = Host(bar)
    async with await run(host) as pilot:
        bar.open()
        await pilot.press("enter")
        assert not bar.display


async def test_filter_bar_escape_clears_and_hides() -> None:
    bar = FilterBar()
    host = Host(bar)
    async with await run(host) as pilot:
        bar.open()
        await pilot.press(*"gpu", "escape")
        assert bar.value == "" and not bar.display
        assert [m.cleared for m in posted(host, FilterBar.Closed)] == [True]
        assert posted(host, Input.Changed)[-1].value == ""


# --- trace list ----------------------------------------------------------------------------------------

async def test_trace_list_shows_its_empty_lines_until_rows_arrive() -> None:
    store = TraceStore()
    trace_list = TraceList(store, clock=lambda: CLOCK_NOW)
    async with await run(Host(trace_list)) as pilot:
        trace_list.empty_lines = ("No spans yet.", "", "export THIS")
        await pilot.pause()
        assert lines(trace_list)[:3] == [" No spans yet.", "", " export THIS"]
        for trace in demo_store():
            store.add_spans(trace.spans.values())
        trace_list.apply_changes(store.drain_changes())
        assert "GET /forecast" in lines(trace_list)[0]


async def test_trace_list_posts_selection_changes_and_stops_following_when_moved() -> None:
    store = demo_store()
    store.drain_changes()
    trace_list = TraceList(store, clock=lambda: CLOCK_NOW)
    host = Host(trace_list)
    async with await run(host) as pilot:
        trace_list.refilter(text="")
        assert trace_list.following
        await pilot.press("j")
        assert not trace_list.following
        selected = posted(host, TraceList.SelectionChanged)[-1]
        assert (selected.trace_id, selected.span_id, selected.live) == (format(5, "032x"), None, False)


def big_trace(trace_id: str, steps: int, per_step: int) -> list[Span]:
    """A root over ``steps`` step spans of ``per_step`` spans each (the step and its children)."""
    root = Span(trace_id, "f" * 16, "batch", 0, 10**9)
    spans = [root]
    for step in range(steps):
        step_id = format(step * per_step + 1, "016x")
        spans.append(Span(trace_id, step_id, f"step {step}", step * 1000, step * 1000 + 999,
                          parent_span_id=root.span_id))
        spans += [Span(trace_id, format(step * per_step + k, "016x"), f"tool {step}.{k}", step * 1000 + k,
                       step * 1000 + k + 1, parent_span_id=step_id) for k in range(2, per_step + 1)]
    return spans


async def test_an_expanded_huge_trace_keeps_the_selection_while_spans_arrive_and_keys_are_pressed() -> None:
    """20 000 spans expanded, spans arriving above and below the cursor between key presses: the list
    is rebuilt in slices (marked "updating…") and the selection stays on its span throughout."""
    trace_id = "c" * 32
    store = TraceStore()
    store.add_spans(big_trace(trace_id, 200, 100))
    trace_list = TraceList(store, clock=lambda: CLOCK_NOW)
    async with await run(Host(trace_list), size=(100, 30)) as pilot:
        trace_list.apply_changes(store.drain_changes())
        selected = (trace_id, format(105, "016x"))  # past the batch, step 0, its 99 tools, step 1, tools 1.2 to 1.4
        await pilot.press("enter", "l", "pagedown", "pagedown", "pagedown")  # most of the way a page at a time
        target = trace_list.index.position_of(*selected)
        assert target is not None and target > trace_list.cursor
        await pilot.press(*"j" * (target - trace_list.cursor))  # and the rest a row at a time
        assert trace_list.selected == selected and trace_list.current.span_row.span.name == "tool 1.5"
        seen_updating = False
        late = 0
        for _ in range(10):
            for step in (0, 150):  # a new tool under step 0 (above the cursor) and under step 150 (below)
                late += 1
                store.add_spans([Span(trace_id, format(10**6 + late, "016x"), f"late {late}", step * 1000 + 500,
                                      step * 1000 + 501, parent_span_id=format(step * 100 + 1, "016x"))])
            trace_list.apply_changes(store.drain_changes())
            seen_updating |= trace_list.index.is_rebuilding(trace_id)
            await pilot.press("j", "k")
            assert trace_list.selected == selected
        while trace_list.index.rebuilding:  # the screen's tick gives it a slice each
            trace_list.continue_rebuild()
            await pilot.pause()
        assert seen_updating
        assert trace_list.selected == selected
        index = trace_list.index
        assert index.row(trace_list.cursor).key == trace_list.selected
        assert index.position_of(trace_id, format(10**6 + 19, "016x")) == index.position_of(trace_id) + 2 + 99 + 10
        shown = [index.row(i).key for i in range(len(index))]
        assert shown == [(trace_id, None)] + [(trace_id, r.span.span_id) for r in store.get(trace_id).rows()]
        await pilot.press("j")
        assert trace_list.current is not None and trace_list.current.span_row is not None
        assert trace_list.current.span_row.span.name == "tool 1.6"


async def test_a_trace_over_its_cap_says_how_many_spans_it_left_out() -> None:
    store = TraceStore(max_spans=1_000, max_trace_spans=50)
    store.add_spans(big_trace("d" * 32, 3, 100)[::-1])  # root last, as an SDK sends it
    trace_list = TraceList(store, clock=lambda: CLOCK_NOW)
    async with await run(Host(trace_list)) as pilot:
        trace_list.apply_changes(store.drain_changes())
        await pilot.pause()
        assert "batch" in lines(trace_list)[0] and "+251 spans over the cap" in lines(trace_list)[0]


# --- detail pane ---------------------------------------------------------------------------------------

def texts(pane: DetailPane, tab: str) -> list[str]:
    detail_list = pane.list(tab)
    return [detail_list.get_option_at_index(i).prompt.plain for i in range(detail_list.option_count)]


def row_of(name: str) -> ListRow:
    store = demo_store()
    for trace in store:
        for row in trace.rows():
            if row.span.name == name:
                return ListRow(trace, row)
    raise LookupError(name)


async def test_only_the_tab_on_screen_is_built() -> None:
    pane = DetailPane()
    async with await run(Host(pane), size=(100, 40)) as pilot:
        pane.show(row_of("chat qwen3"))
        await pilot.pause()
        assert pane.query_one(TabbedContent).active == "tab-llm"
        assert pane.list("llm").option_count > 0
        assert "name  chat qwen3" not in texts(pane, "attributes") and pane.list("timeline").option_count == 0
        pane.cycle_tab()
        await pilot.pause()
        assert "name  chat qwen3" in texts(pane, "attributes")  # built when opened


async def test_a_span_without_llm_data_hides_the_llm_tab() -> None:
    pane = DetailPane()
    async with await run(Host(pane), size=(100, 40)) as pilot:
        pane.show(row_of("chat qwen3"))
        await pilot.pause()
        pane.show(row_of("GET /forecast"))
        await pilot.pause()
        tabs = pane.query_one(TabbedContent)
        assert tabs.active == "tab-attributes"
        assert not tabs.get_tab("tab-llm").display
        assert "name  GET /forecast" in texts(pane, "attributes")


# --- header --------------------------------------------------------------------------------------------

async def test_header_repaints_from_its_reactives() -> None:
    header = StatusLine([("http", "127.0.0.1:4318")])
    async with await run(Host(header)) as pilot:
        header.counts = Counts(traces=3, spans=7)
        header.paused = True
        await pilot.pause()
        assert "3 traces · 7 spans" in header.text and "PAUSED · 0 spans waiting" in header.text
        assert "PAUSED" in header.render().plain


async def test_header_colours_come_from_the_theme() -> None:
    header = StatusLine([("http", "127.0.0.1:4318")])
    host = Host(header)
    async with await run(host) as pilot:
        header.counts = Counts(rejected=5)
        await pilot.pause()

        def rejected_style() -> object:
            text = header.render()
            start = text.plain.index("rejected 5")
            return next(span.style for span in text.spans if span.start == start)

        before = rejected_style()
        host.theme = "textual-light"
        await pilot.pause()
        assert rejected_style() != before


def test_untrusted_text_is_cut_to_what_a_row_shows_before_it_is_escaped() -> None:
    assert shown("\x1b" * 100_000, 10) == "\\e" * 11  # the escape of what fits, not of 100 000 characters


async def test_a_100_kb_span_name_draws_one_row() -> None:
    store = TraceStore()
    store.add_spans([Span(trace_id=format(1, "032x"), span_id=format(1, "016x"), parent_span_id="",
                          name="n" * 100_000, start_ns=1, end_ns=2)])
    trace_list = TraceList(store, clock=lambda: CLOCK_NOW)
    async with await run(Host(trace_list)) as pilot:
        trace_list.apply_changes(store.drain_changes())
        await pilot.pause()
        (row,) = [line for line in lines(trace_list) if line]
        assert "nnnn" in row and len(row) <= trace_list.size.width
