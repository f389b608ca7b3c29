"""Snapshots of the main screens (pytest-textual-snapshot), with the clock and ids fixed.

Update after an intended visual change with: .venv/bin/python -m pytest tests/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

from textual.pilot import Pilot
from textual.widgets import Label

from support.app import wait_until
from support.demo_store import CLOCK_NOW, demo_store
from tui.app.app import OllamaTuiApp
from tui.receiver import OtlpReceivers, ReceiverConfig

SIZE = (150, 40)
#: From the newest trace (row 0): down to "agent run" (row 4), expand, step to its "chat qwen3" span.
TO_LLM_SPAN = ["j", "j", "j", "j", "enter", "l", "j"]


#: From the newest trace (the failing one): expand, step to its root span, open the Events tab.
TO_EXCEPTION = ["enter", "l", "t"]
#: Nothing listens on the discard port: the chat pane says Ollama is unreachable, at once.
NO_OLLAMA = "http://127.0.0.1:9"


def make_app(empty: bool = False, chat_host: str | None = None) -> OllamaTuiApp:
    # Receivers are configured but never started: the header shows the default ports, no socket opens.
    store = demo_store()
    if empty:
        store.clear()
        store.drain_changes()
    return OllamaTuiApp(OtlpReceivers(ReceiverConfig()), store, chat_host=chat_host, clock=lambda: CLOCK_NOW)


def test_main_screen_with_llm_span_selected(snap_compare) -> None:
    assert snap_compare(make_app(), press=TO_LLM_SPAN, terminal_size=SIZE)


def test_timeline(snap_compare) -> None:
    assert snap_compare(make_app(), press=[*TO_LLM_SPAN, "t", "t", "t"], terminal_size=SIZE)


def test_help_screen(snap_compare) -> None:
    assert snap_compare(make_app(), press=["question_mark"], terminal_size=SIZE)


def test_empty_state(snap_compare) -> None:
    assert snap_compare(make_app(empty=True), terminal_size=SIZE)


def test_attributes_tab(snap_compare) -> None:
    assert snap_compare(make_app(), press=[*TO_LLM_SPAN, "t"], terminal_size=SIZE)


def test_events_tab_with_an_exception(snap_compare) -> None:
    assert snap_compare(make_app(), press=TO_EXCEPTION, terminal_size=SIZE)


def test_paused_and_overloaded_header(snap_compare) -> None:
    app = make_app()

    async def overload(pilot: Pilot[int]) -> None:
        await pilot.pause()  # the screen is mounted
        app.services.receivers.stats.retries_asked = 3  # as if exporters had just been told to back off
        app.traces.sample()
        await pilot.pause()

    assert snap_compare(app, press=["p"], run_before=overload, terminal_size=SIZE)


def test_chat_pane_when_ollama_is_down(snap_compare) -> None:
    app = make_app(chat_host=NO_OLLAMA)

    async def until_it_says_so(pilot: Pilot[int]) -> None:
        await pilot.pause()  # the screen is mounted
        await wait_until(pilot, lambda: "not" in str(app.query_one("#chat-connection", Label).content))

    assert snap_compare(app, press=["a"], run_before=until_it_says_so, terminal_size=(200, 40))


def test_a_second_theme_reaches_the_header_list_and_detail(snap_compare) -> None:
    app = make_app()

    async def light(pilot: Pilot[int]) -> None:
        app.theme = "textual-light"
        await pilot.pause()

    assert snap_compare(app, press=TO_LLM_SPAN, run_before=light, terminal_size=SIZE)


SMALL = (80, 24)
MEDIUM = (120, 40)


def test_llm_span_at_80x24(snap_compare) -> None:
    assert snap_compare(make_app(), press=TO_LLM_SPAN, terminal_size=SMALL)


def test_llm_span_at_120x40(snap_compare) -> None:
    assert snap_compare(make_app(), press=TO_LLM_SPAN, terminal_size=MEDIUM)


def test_empty_state_at_80x24(snap_compare) -> None:
    assert snap_compare(make_app(empty=True), terminal_size=SMALL)


def test_detail_zoomed_at_80x24(snap_compare) -> None:
    assert snap_compare(make_app(), press=[*TO_LLM_SPAN, "tab", "z"], terminal_size=SMALL)


def test_chat_open_at_80x24(snap_compare) -> None:
    app = make_app(chat_host=NO_OLLAMA)

    async def until_it_says_so(pilot: Pilot[int]) -> None:
        await pilot.pause()  # the screen is mounted
        await wait_until(pilot, lambda: "not" in str(app.query_one("#chat-connection", Label).content))

    assert snap_compare(app, press=["a"], run_before=until_it_says_so, terminal_size=SMALL)
