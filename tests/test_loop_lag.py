"""The overload signal: a loop that stays late is overloaded; one long turn is not.

The tick (100 ms) is longer than the lateness that counts (50 ms), so a test's own process being held up
by a busy machine for less than a tick cannot turn an on-time tick late or run one out of turn; where a
test needs a tick on time, it waits for one rather than assuming the next is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from tui.receiver.loop_lag import LoopLag

TICK = 0.1
LATE = 0.05
LONG_TURN = TICK + 2 * LATE  # a turn that makes the tick due in it late, however it falls


@pytest.fixture
async def lag() -> AsyncIterator[LoopLag]:
    """Overloaded after three late ticks in a row."""
    monitor = LoopLag(tick=TICK, late=LATE, late_ticks=3)
    monitor.start()
    try:
        yield monitor
    finally:
        monitor.stop()


async def an_on_time_tick(lag: LoopLag) -> None:
    """Let the loop run until a tick comes on time (the first one, unless the machine is busy)."""
    for _ in range(100):
        await asyncio.sleep(TICK)
        if lag.late_in_a_row == 0:
            return
    pytest.fail(f"no tick on time in {100 * TICK:.0f} s; the last was {lag.last_lateness:.3f} s late")


async def test_one_long_turn_is_not_overload(lag: LoopLag) -> None:
    await an_on_time_tick(lag)
    time.sleep(LONG_TURN)  # one turn holding the loop: the first frame, a 100 000-span request
    assert not lag.overloaded  # a request handled later in this turn is still taken
    await asyncio.sleep(0.01)  # the late tick runs
    assert lag.late_in_a_row == 1 and lag.last_lateness > LATE
    assert not lag.overloaded
    await an_on_time_tick(lag)
    assert not lag.overloaded


async def test_a_loop_that_stays_late_is_overloaded_until_a_tick_is_on_time(lag: LoopLag) -> None:
    turns = 0
    while lag.late_in_a_row < 3 and turns < 20:
        time.sleep(LONG_TURN)  # every turn of the loop runs long, as under a flood of exports
        await asyncio.sleep(0)
        turns += 1
    assert lag.late_in_a_row >= 3, f"ticks never late three times in a row in {turns} long turns"
    assert lag.overloaded  # and it stands until a tick comes on time
    await an_on_time_tick(lag)
    assert not lag.overloaded
    assert lag.last_lateness <= LATE


async def test_a_long_turn_while_the_loop_is_behind_is_cut_short(lag: LoopLag) -> None:
    await an_on_time_tick(lag)
    time.sleep(LONG_TURN)
    await asyncio.sleep(0.01)  # the late tick runs: one late tick, no streak yet
    assert lag.late_in_a_row == 1 and not lag.overloaded
    time.sleep(LONG_TURN)  # and this turn runs long too: requests still to come in it are refused
    assert lag.overloaded
    await an_on_time_tick(lag)
    assert not lag.overloaded


async def test_stopped_monitor_never_refuses() -> None:
    lag = LoopLag()
    assert not lag.overloaded
    lag.start()
    lag.stop()
    time.sleep(0.2)
    assert not lag.overloaded
