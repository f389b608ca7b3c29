"""Snapshots of the main screens (pytest-textual-snapshot), with the clock and ids fixed.

Update after an intended visual change with: .venv/bin/python -m pytest tests/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

from demo_store import CLOCK_NOW, demo_store
from tui.app.app import OllamaTuiApp
from tui.receiver import OtlpReceivers, ReceiverConfig

SIZE = (150, 40)
#: From the newest trace (row 0): down to "agent run" (row 4), expand, step to its "chat qwen3" span.
TO_LLM_SPAN = ["j", "j", "j", "j", "enter", "l", "j"]


def make_app(empty: bool = False) -> OllamaTuiApp:
    # Receivers are configured but never started: the header shows the default ports, no socket opens.
    store = demo_store()
    if empty:
        store.clear()
        store.drain_changes()
    return OllamaTuiApp(OtlpReceivers(ReceiverConfig()), store, clock=lambda: CLOCK_NOW)


def test_main_screen_with_llm_span_selected(snap_compare) -> None:
    assert snap_compare(make_app(), press=TO_LLM_SPAN, terminal_size=SIZE)


def test_timeline(snap_compare) -> None:
    assert snap_compare(make_app(), press=[*TO_LLM_SPAN, "t", "t", "t"], terminal_size=SIZE)


def test_help_screen(snap_compare) -> None:
    assert snap_compare(make_app(), press=["question_mark"], terminal_size=SIZE)


def test_empty_state(snap_compare) -> None:
    assert snap_compare(make_app(empty=True), terminal_size=SIZE)
