"""Driving the test's own event loop: waiting for a condition to hold, and holding the loop late."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from tui.receiver.loop_lag import LoopLag


async def eventually(condition: Callable[[], object], timeout: float = 10.0, poll: float = 0.01) -> None:
    """Let this loop run until ``condition()`` holds; ``TimeoutError`` after ``timeout`` seconds.

    ``poll`` 0 checks on every turn of the loop, for a condition that may hold only briefly."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(poll)


@contextlib.asynccontextmanager
async def loop_kept_late(lag: LoopLag, turn: float = 0.15) -> AsyncIterator[None]:
    """Keep this event loop late, as a flood of exports would: every turn of it takes ``turn`` seconds.

    Yields once ``lag`` has seen enough late ticks in a row to call it overload; clients must then
    run in threads (the loop they would share is the one being held).
    """
    holding = True

    async def hold() -> None:
        while holding:
            time.sleep(turn)
            await asyncio.sleep(0)

    task = asyncio.create_task(hold())
    try:
        await eventually(lambda: lag.late_in_a_row >= lag.late_ticks, poll=0)
        yield
    finally:
        holding = False
        await task
