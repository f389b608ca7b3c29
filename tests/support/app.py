"""Helpers for driving the real app under ``App.run_test()``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from textual.pilot import Pilot

from support.receivers import Running
from tui.app.app import OllamaTuiApp
from tui.app.textual_compat import screen_lines

FIXED_NOW = 1_800_000_000.0
#: The terminal the app tests run in.
SIZE = (160, 45)


def make_app(running: Running) -> OllamaTuiApp:
    """The app on ``running``'s receivers (which it pumps itself), its clock pinned to ``FIXED_NOW``."""
    return OllamaTuiApp(running.receivers, running.store, clock=lambda: FIXED_NOW)


def screen_text(app: OllamaTuiApp) -> str:
    """The whole screen as the terminal would receive it (every composited line, as text)."""
    return "\n".join(screen_lines(app.screen))


def trace_list_lines(app: OllamaTuiApp) -> list[str]:
    """The trace list's visible rows, as rendered, trailing blanks stripped."""
    trace_list = app.traces.trace_list
    lines = [trace_list.render_line(y).text.rstrip() for y in range(trace_list.size.height)]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def detail_texts(app: OllamaTuiApp, tab: str) -> list[str]:
    """The plain text of every item in a detail tab."""
    option_list = app.traces.detail.list(tab)
    return [option_list.get_option_at_index(i).prompt.plain for i in range(option_list.option_count)]


async def wait_until(pilot: Pilot, condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await pilot.pause(0.02)
    await pilot.pause()


def cursor_text(app: OllamaTuiApp) -> str:
    row = app.traces.trace_list.current
    assert row is not None
    return row.span_row.span.name if row.span_row else f"trace:{row.trace.name}"
