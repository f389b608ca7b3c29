"""The traces screen driven by its keys, over the deterministic demo store (the SDK-recorded GenAI traces
decoded by the receiver's own decoder): no sockets, so each journey costs what the screen does."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from textual.containers import VerticalScroll

from support.app import FIXED_NOW, SIZE, cursor_text, detail_texts, screen_text, trace_list_lines, wait_until
from support.demo_store import demo_store
from support.genai_spans import ANSWER, QUESTION, SYSTEM
from tui.app.app import OllamaTuiApp
from tui.app.screens.confirm import ConfirmQuit, ConfirmScreen
from tui.app.screens.help import HelpScreen
from tui.app.screens.value import ValueScreen
from tui.app.textual_compat import notification_texts
from tui.model.span import Resource, Span
from tui.receiver import OtlpReceivers, ReceiverConfig


def demo_app() -> OllamaTuiApp:
    """The app over the six demo traces; its receivers are configured but never started."""
    return OllamaTuiApp(OtlpReceivers(ReceiverConfig()), demo_store(), clock=lambda: FIXED_NOW)


async def all_shown(pilot) -> None:
    await wait_until(pilot, lambda: pilot.app.traces.trace_list.index.trace_count == 6)


async def test_keyboard_navigation_expand_collapse_and_parent() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await all_shown(pilot)
        await pilot.press("G")  # last = oldest trace, POST /ask
        assert cursor_text(app) == "trace:POST /ask"
        await pilot.press("k", "k")
        assert cursor_text(app) == "trace:chat mistral"
        await pilot.press("j", "enter")  # agent run: expand
        lines = trace_list_lines(app)
        assert [line.strip().split("  ")[0] for line in lines[5:8]] == ["└─ agent run", "├─ chat qwen3",
                                                                         "└─ execute_tool get_weather"]
        await pilot.press("l")  # step into the expanded trace
        assert cursor_text(app) == "agent run"
        await pilot.press("j")
        assert cursor_text(app) == "chat qwen3"
        await pilot.press("h")  # ← goes to the parent span
        assert cursor_text(app) == "agent run"
        await pilot.press("h")  # … then to the trace row
        assert cursor_text(app) == "trace:agent run"
        await pilot.press("h")  # ← on an expanded trace collapses it
        assert len(trace_list_lines(app)) == 6
        await pilot.press("g")
        assert cursor_text(app) == "trace:GET /forecast"
        await pilot.press("pagedown")
        assert cursor_text(app) == "trace:POST /ask"
        await pilot.press("pageup", "down", "up")
        assert cursor_text(app) == "trace:GET /forecast"


@pytest.mark.parametrize(
    ("trace_name", "span_name", "tokens", "expect"),
    [
        ("POST /ask", "ollama.chat", "in 31 · out 18 · total 49",
         ["system", SYSTEM, "user", QUESTION, "assistant · finish stop", ANSWER, "provider Ollama", "operation chat",
          "request llama3.2", "response llama3.2:latest"]),
        ("agent run", "chat qwen3", "in 120 · out 45 · total 165",
         ["system (instructions)", SYSTEM, "[0] user", QUESTION, "→ tool call: get_weather({\"location\": \"Paris\"})",
          "[2] tool", "rainy, 14 °C", ANSWER, "provider ollama", "gen_ai.request.temperature  0.2"]),
        ("chat mistral", "chat mistral", "in 20 · out 7 · total 27", ["system", SYSTEM, "user", QUESTION, ANSWER]),
        ("ChatOllama", "ChatOllama", "in 15 · out 16 · total 31", ["[0] user", QUESTION, "[0] assistant", ANSWER,
                                                                  "request gemma3", "provider ollama"]),
        ("chat broken", "chat broken", "in – · out – · total –", ["(unparsed)", '[{"role": "user", ']),
    ],
    ids=["openllmetry", "semconv", "events", "openinference", "malformed-json"],
)
async def test_llm_tab_for_each_convention(trace_name: str, span_name: str, tokens: str,
                                           expect: list[str]) -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await all_shown(pilot)
        for _ in range(6):
            if cursor_text(app) == f"trace:{trace_name}":
                break
            await pilot.press("down")
        await pilot.press("enter")
        for _ in range(4):
            await pilot.press("down")
            if cursor_text(app) == span_name:
                break
        assert cursor_text(app) == span_name
        assert app.query_one("TabbedContent").active == "tab-llm"
        text = "\n".join(detail_texts(app, "llm"))
        assert f"Tokens  {tokens}" in text
        for fragment in expect:
            assert fragment in text, fragment


async def to_the_answer(pilot) -> None:
    """Select the oldest trace's ollama.chat span and, in its LLM tab, the completion."""
    app = pilot.app
    await all_shown(pilot)
    await pilot.press("G", "enter", "down", "down")  # POST /ask → ollama.chat span
    assert cursor_text(app) == "ollama.chat"
    await pilot.press("tab")  # into the LLM tab's list
    assert app.focused is app.traces.detail.list("llm")
    while app.traces.detail.list("llm").current.body != ANSWER:
        await pilot.press("down")


async def test_y_copies_the_selected_value() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await to_the_answer(pilot)
        await pilot.press("y")
        assert app.clipboard == ANSWER


async def test_o_opens_the_selected_value_full_screen_and_escape_closes_it() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await to_the_answer(pilot)
        await pilot.press("o")
        assert isinstance(app.screen, ValueScreen)
        assert ANSWER in screen_text(app)
        await pilot.press("escape")
        assert app.screen is app.traces


async def test_help_lists_every_key_from_the_bindings() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        scroll, pages = app.screen.query_one(VerticalScroll), [screen_text(app)]
        while scroll.scroll_y < scroll.max_scroll_y:  # the help is longer than the screen: read it all
            scroll.scroll_page_down(animate=False)
            await pilot.pause()
            pages.append(screen_text(app))
        help_text = "\n".join(pages)
        for key, what in [("/", "Filter"), ("e", "Errors only"), ("f", "Follow"), ("p", "Pause"), ("c", "Clear"),
                          ("q", "Quit"), ("PgUp", "Page up"), ("→ l", "Expand"), ("← h", "Collapse/parent")]:
            assert key in help_text and what in help_text, what


async def test_clear_asks_first_and_n_keeps_everything() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await all_shown(pilot)
        await pilot.press("c")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert app.traces.trace_list.index.trace_count == 6


async def test_clear_confirmed_forgets_every_trace() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await all_shown(pilot)
        await pilot.press("c", "y")
        assert app.traces.trace_list.index.trace_count == 0 and len(app.services.store) == 0
        assert "No spans yet" in screen_text(app)


async def test_command_palette_runs_the_screens_actions() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p", *"errors", "enter")
        await wait_until(pilot, lambda: app.screen is app.traces)
        assert app.traces.errors_only
        assert "errors only" in screen_text(app).splitlines()[0]
        (only,) = trace_list_lines(app)
        assert "GET /forecast" in only  # the one failing trace


async def test_filter_with_no_match_says_so_not_the_empty_state() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await all_shown(pilot)
        await pilot.press("slash", *"nothing-like-this", "enter")
        text = screen_text(app)
        assert "No traces matching 'nothing-like-this' among 6 held." in text
        assert "No spans yet" not in text
        await pilot.press("slash", "escape")
        assert len(trace_list_lines(app)) == 6


def arrive(app: OllamaTuiApp, number: int, name: str) -> None:
    """A one-span trace started after every demo trace, reaching the store as the ingest pump would put it."""
    start = int((FIXED_NOW + 60 + number) * 1e9)
    app.services.store.add_spans([Span(trace_id=format(1000 + number, "032x"), span_id=format(number, "016x"),
                                       parent_span_id="", name=name, start_ns=start, end_ns=start + 1_000)])


async def test_the_filter_narrows_the_list_and_the_header_at_once() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await all_shown(pilot)
        await pilot.press("slash", *"mistral")
        assert [line.split()[1] for line in trace_list_lines(app)] == ["chatbot"]
        assert "1/6 traces" in screen_text(app).splitlines()[0]


async def test_escape_in_the_filter_shows_every_trace_again() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await all_shown(pilot)
        await pilot.press("slash", *"mistral", "escape")
        assert len(trace_list_lines(app)) == 6
        assert app.focused is app.traces.trace_list


async def test_the_filter_searches_prompt_and_completion_text() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await all_shown(pilot)
        await pilot.press("slash", *"rainy", "enter")
        assert {line.split()[1] for line in trace_list_lines(app)} == {"weather-api", "agent", "chatbot", "rag-app"}
        assert "filter 'rainy'" in screen_text(app).splitlines()[0]  # Enter keeps it


async def test_e_lists_only_traces_with_errors() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await all_shown(pilot)
        await pilot.press("e")
        (line,) = trace_list_lines(app)
        assert "GET /forecast" in line
        await pilot.press("e")
        assert len(trace_list_lines(app)) == 6


async def test_a_trace_arriving_above_does_not_move_a_held_selection() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await all_shown(pilot)
        await pilot.press("down", "down")
        selected = cursor_text(app)
        arrive(app, 1, "late arrival")
        await wait_until(pilot, lambda: app.traces.trace_list.index.trace_count == 7)
        assert cursor_text(app) == selected
        assert "late arrival" in trace_list_lines(app)[0]
        assert "holding selection" in screen_text(app).splitlines()[0]


async def test_f_follows_the_newest_trace_as_traces_arrive() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await all_shown(pilot)
        await pilot.press("down", "f")
        assert cursor_text(app) == "trace:GET /forecast"
        arrive(app, 1, "newest")
        await wait_until(pilot, lambda: app.traces.trace_list.index.trace_count == 7)
        assert cursor_text(app) == "trace:newest"
        assert "following" in screen_text(app).splitlines()[0]


# --- small terminals ------------------------------------------------------------------------------------

SMALL = (80, 24)


async def test_at_80x24_the_panes_stack_and_the_list_keeps_every_column() -> None:
    app = demo_app()
    async with app.run_test(size=SMALL) as pilot:
        await all_shown(pilot)
        assert app.traces.has_class("-stacked")
        first = trace_list_lines(app)[0]
        assert "weather-api" in first and "GET /forecast" in first and "700ms" in first
        header = screen_text(app).splitlines()[0]
        assert "6 traces · 10 spans" in header and header.rstrip().endswith("following")


async def test_the_footer_keeps_help_and_quit_at_80_columns() -> None:
    app = demo_app()
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        footer = screen_text(app).splitlines()[-1]
        assert "? Help" in footer and "q Quit" in footer


async def test_the_paused_state_survives_a_narrow_header() -> None:
    app = demo_app()
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("p")
        assert screen_text(app).splitlines()[0].rstrip().endswith("PAUSED · 0 spans waiting")


async def test_the_empty_state_wraps_its_commands_instead_of_cutting_them() -> None:
    app = OllamaTuiApp(OtlpReceivers(ReceiverConfig()), demo_store(max_spans=1), clock=lambda: FIXED_NOW)
    app.services.store.clear()
    async with app.run_test(size=(60, 30)) as pilot:
        await pilot.pause()
        lines = trace_list_lines(app)
        assert all(len(line) < app.traces.trace_list.scrollable_size.width for line in lines)  # none is cut

        def squeezed(text: str) -> str:
            return "".join(text.split())

        command = "export OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://127.0.0.1:4318/v1/traces"
        assert squeezed(command) in squeezed("".join(lines))  # continued on the next line


async def test_z_zooms_the_focused_pane_and_z_again_gives_the_others_back() -> None:
    app = demo_app()
    async with app.run_test(size=SMALL) as pilot:
        await all_shown(pilot)
        await pilot.press("z")
        assert not app.traces.detail.display and app.traces.trace_list.display
        await pilot.press("z", "tab", "z")  # the detail pane, zoomed
        assert app.traces.detail.display and not app.traces.trace_list.display
        await pilot.press("z")
        assert app.traces.detail.display and app.traces.trace_list.display


async def test_d_hides_the_detail_pane_and_gives_the_list_its_room() -> None:
    app = demo_app()
    async with app.run_test(size=(160, 40)) as pilot:
        await all_shown(pilot)
        width = app.traces.trace_list.size.width
        await pilot.press("d")
        assert not app.traces.detail.display and app.traces.trace_list.size.width > width
        await pilot.press("d")
        assert app.traces.detail.display


async def test_the_chat_pane_follows_the_width_until_the_user_chooses() -> None:
    app = OllamaTuiApp(OtlpReceivers(ReceiverConfig()), demo_store(), chat_host="http://127.0.0.1:9",
                       clock=lambda: FIXED_NOW)
    async with app.run_test(size=(200, 50)) as pilot:
        pane = app.query_one("#chat")
        await pilot.pause()
        assert pane.display
        for size, shown in (((80, 24), False), ((200, 50), True), ((120, 40), False), ((220, 60), True)):
            await pilot.resize_terminal(*size)
            await pilot.pause()
            assert pane.display is shown, size
        await pilot.press("f2")  # the user's choice now holds at any width
        await pilot.resize_terminal(200, 50)
        await pilot.pause()
        assert not pane.display


async def test_the_age_column_is_not_under_the_scrollbar() -> None:
    store = demo_store()
    for n in range(60):
        store.add_spans([Span(trace_id=format(5000 + n, "032x"), span_id=format(n + 1, "016x"), parent_span_id="",
                              name=f"GET /items/{n}", start_ns=int(FIXED_NOW * 1e9) - 10**9,
                              end_ns=int(FIXED_NOW * 1e9) - 10**9 + 10**7)])
    app = OllamaTuiApp(OtlpReceivers(ReceiverConfig()), store, clock=lambda: FIXED_NOW)
    async with app.run_test(size=SMALL) as pilot:
        await wait_until(pilot, lambda: app.traces.trace_list.index.trace_count == 66)
        assert app.traces.trace_list.show_vertical_scrollbar
        scrollbar = app.traces.trace_list.scrollbar_size_vertical
        rows = [line[:-scrollbar] for line in screen_text(app).splitlines()[1:8]]
        assert all(re.search(r" \d+[smhd] *$", row) for row in rows), rows  # the unit left of the scrollbar


async def test_span_rows_name_their_service_when_a_trace_has_several() -> None:
    trace_id = format(7777, "032x")
    store = demo_store()
    store.add_spans([
        Span(trace_id=trace_id, span_id=format(1, "016x"), parent_span_id="", name="GET /checkout", start_ns=1,
             end_ns=10, resource=Resource({"service.name": "frontend"})),
        Span(trace_id=trace_id, span_id=format(2, "016x"), parent_span_id=format(1, "016x"), name="charge",
             start_ns=2, end_ns=9, resource=Resource({"service.name": "payments"})),
    ])
    app = OllamaTuiApp(OtlpReceivers(ReceiverConfig()), store, clock=lambda: FIXED_NOW)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.traces.trace_list.index.trace_count == 7)
        assert app.traces.trace_list.select(trace_id, format(2, "016x"))
        await pilot.pause()
        lines = trace_list_lines(app)
        assert any("frontend: GET /checkout" in line for line in lines)
        assert any("payments: charge" in line for line in lines)


# --- quitting -------------------------------------------------------------------------------------------

async def test_q_asks_before_dropping_held_traces_and_n_stays() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await all_shown(pilot)
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmQuit)
        assert "drop the 6 traces held in memory" in screen_text(app)
        await pilot.press("n")
        assert app.screen is app.traces and app.is_running


async def test_a_second_q_confirms_the_quit() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await all_shown(pilot)
        await pilot.press("q", "q")
        assert app.return_code == 0  # exit() was called (None until then)


async def test_q_quits_at_once_with_nothing_held_or_when_told_not_to_ask() -> None:
    empty = OllamaTuiApp(OtlpReceivers(ReceiverConfig()), demo_store(max_spans=1), clock=lambda: FIXED_NOW)
    empty.services.store.clear()
    unasked = OllamaTuiApp(OtlpReceivers(ReceiverConfig()), demo_store(), clock=lambda: FIXED_NOW,
                           confirm_quit=False)
    for app in (empty, unasked):
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("q")
            assert app.return_code == 0


# --- --load ---------------------------------------------------------------------------------------------

FIXTURES = Path(__file__).parent / "fixtures"


async def test_loaded_console_output_reports_what_was_not_a_span() -> None:
    name = "python_console_mixed.txt"
    app = OllamaTuiApp(OtlpReceivers(ReceiverConfig()), demo_store(max_spans=1_000), clock=lambda: FIXED_NOW,
                       load=[(name, (FIXTURES / name).read_bytes())])
    app.services.store.clear()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: notification_texts(app))
        (loaded,) = notification_texts(app)
        assert loaded.startswith("Loaded ") and "from python_console_mixed.txt; " in loaded and "not span" in loaded


async def test_a_load_with_no_span_says_why_on_screen() -> None:
    app = OllamaTuiApp(OtlpReceivers(ReceiverConfig()), demo_store(max_spans=1_000), clock=lambda: FIXED_NOW,
                       load=[("app.log", b"starting\napp done\n")])
    app.services.store.clear()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: len(notification_texts(app)) == 2)
        warning = notification_texts(app)[1]
        assert warning.startswith("Nothing to show: app.log: no spans") and "opentelemetry-instrument" in warning


async def test_a_query_that_does_not_parse_is_shown_under_the_bar_and_keeps_the_filter() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await all_shown(pilot)
        await pilot.press("slash", *"status:error")
        assert app.traces.trace_list.index.trace_count == 1
        await pilot.press("space", *"dur>5")  # no unit yet: an error, and the filter stays the last that parsed
        bar = app.traces.query_one("FilterBar")
        assert bar.has_class("-invalid") and "column 14" in str(bar.border_subtitle)
        assert "needs a unit" in str(bar.border_subtitle)
        assert "needs a unit" in screen_text(app)  # on screen: the footer does not cover the bar's lower border
        assert app.traces.filter_text == "status:error dur"
        await pilot.press(*"00ms")  # dur>500ms: parses again
        assert not bar.has_class("-invalid") and not bar.border_subtitle
        assert app.traces.filter_text == "status:error dur>500ms"
        assert [line.split()[1:3] for line in trace_list_lines(app)] == [["✖", "weather-api"]]


async def test_an_expanded_trace_marks_its_matching_spans() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await all_shown(pilot)
        await pilot.press("slash", *"kind:client", "enter", "G", "enter")  # the oldest match, POST /ask, expanded
        spans = [line for line in trace_list_lines(app) if "─" in line]
        assert [("◆" in line, "ollama.chat" in line) for line in spans] == [(False, False), (True, True)]


async def test_the_sort_key_cycles_keeps_the_selection_and_shows_in_the_header() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await all_shown(pilot)
        await pilot.press("G", "k", "k")  # chat mistral, third oldest
        assert cursor_text(app) == "trace:chat mistral"
        await pilot.press("greater_than_sign")  # oldest first
        assert "oldest first" in screen_text(app).splitlines()[0]
        assert cursor_text(app) == "trace:chat mistral"
        assert trace_list_lines(app)[0].split()[2:4] == ["POST", "/ask"]
        await pilot.press("greater_than_sign")  # longest first: agent run (1.05 s) on top
        assert "longest first" in screen_text(app).splitlines()[0]
        assert cursor_text(app) == "trace:chat mistral"
        assert "agent run" in trace_list_lines(app)[0]
        await pilot.press("greater_than_sign")  # most tokens: agent run (120 + 45)
        assert "most tokens first" in screen_text(app).splitlines()[0]
        assert "agent run" in trace_list_lines(app)[0]
        await pilot.press("greater_than_sign", "greater_than_sign")  # ttft, then errors first
        assert "errors first" in screen_text(app).splitlines()[0]
        assert "GET /forecast" in trace_list_lines(app)[0]
        await pilot.press("greater_than_sign")  # back to newest first: the header says nothing of it
        assert "first" not in screen_text(app).splitlines()[0]
        assert cursor_text(app) == "trace:chat mistral"
