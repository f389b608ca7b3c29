"""The overload signal: a loop that stays late is overloaded; one long turn is not."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from tui.receiver.loop_lag import LoopLag


@pytest.fixture
async def lag() -> AsyncIterator[LoopLag]:
    """Ticking every 10 ms, late past 50 ms, overloaded after three late ticks in a row."""
    monitor = LoopLag(tick=0.01, late=0.05, late_ticks=3)
    monitor.start()
    try:
        yield monitor
    finally:
        monitor.stop()


async def test_one_long_turn_is_not_overload(lag: LoopLag) -> None:
    await asyncio.sleep(0.05)
    assert not lag.overloaded
    time.sleep(0.3)  # one turn holding the loop: the first frame, a 100 000-span request
    assert not lag.overloaded  # a request handled later in this turn is still taken
    await asyncio.sleep(0.05)  # the late tick runs, then an on-time one
    assert lag.late_in_a_row == 0
    assert not lag.overloaded


async def test_a_loop_that_stays_late_is_overloaded_until_a_tick_is_on_time(lag: LoopLag) -> None:
    turns = 0
    while lag.late_in_a_row < 3 and turns < 20:
        time.sleep(0.1)  # every turn of the loop runs long, as under a flood of exports
        await asyncio.sleep(0)
        turns += 1
    assert lag.late_in_a_row >= 3, f"ticks never late three times in a row in {turns} long turns"
    await asyncio.sleep(0)  # the streak stands until a tick comes on time
    assert lag.overloaded
    await asyncio.sleep(0.05)
    assert not lag.overloaded
    assert lag.last_lateness < 0.05


async def test_a_long_turn_while_the_loop_is_behind_is_cut_short(lag: LoopLag) -> None:
    time.sleep(0.1)
    await asyncio.sleep(0.005)  # the late tick runs: one late tick, no streak yet
    assert lag.late_in_a_row == 1 and not lag.overloaded
    time.sleep(0.1)  # and this turn runs long too: requests still to come in it are refused
    assert lag.overloaded
    await asyncio.sleep(0.05)
    assert not lag.overloaded


async def test_stopped_monitor_never_refuses() -> None:
    lag = LoopLag()
    assert not lag.overloaded
    lag.start()
    lag.stop()
    time.sleep(0.2)
    assert not lag.overloaded
