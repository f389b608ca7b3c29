"""Tells the receivers when the app cannot take more: its event loop has been running late for a while.

The receivers, the store and the screen share one event loop. Exporters that send faster than the
app can take do not fill the span queue (each handler decodes its request before the store's turn
comes round, so the queue drains every cycle); they make the *loop* late instead, and the screen
with it. A tick scheduled every :data:`TICK_SECONDS` measures that lateness. New exports are
refused (503 / ``UNAVAILABLE`` with a retry hint) while :data:`LATE_TICKS` ticks in a row have run
more than :data:`LATE_SECONDS` late, and while, the last tick having been late, the pending one is
already that late (which caps the work of any one turn of the loop under a flood). Refusing
happens before a request is read or decoded and costs almost nothing, so the loop catches up and
the screen keeps refreshing.

A single long stall (the first frame, a 100 000-span request, a full garbage collection) is not
overload: the tick before it was on time and the one after it will be, so nothing is refused.
"""

from __future__ import annotations

import asyncio

#: How often the loop's lateness is sampled.
TICK_SECONDS = 0.05
#: A tick later than this counts as late: three frames of a 60 Hz screen.
LATE_SECONDS = 0.05
#: Late ticks in a row (so at least ``LATE_TICKS * (TICK_SECONDS + LATE_SECONDS)`` seconds) before refusing.
LATE_TICKS = 3


class LoopLag:
    """Samples the running loop's lateness; :attr:`overloaded` says whether to refuse new exports."""

    def __init__(self, tick: float = TICK_SECONDS, late: float = LATE_SECONDS, late_ticks: int = LATE_TICKS) -> None:
        self.tick = tick
        self.late = late
        self.late_ticks = late_ticks
        #: Ticks in a row that ran late; 0 once one is on time.
        self.late_in_a_row = 0
        #: The latest tick's lateness in seconds, for the curious (tests, benchmarks).
        self.last_lateness = 0.0
        #: Loop time the pending tick is due; None when not running.
        self._due: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Start ticking on the running loop. A plain timer callback, not a task: a task's wake-up
        takes an extra turn of the loop, so under load it would tick only every second or third turn."""
        if self._pending is None:
            self._loop = asyncio.get_running_loop()
            self._arm()

    def stop(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
        self._pending = self._due = None
        self.late_in_a_row = 0

    def _arm(self) -> None:
        assert self._loop is not None
        self._due = self._loop.time() + self.tick
        self._pending = self._loop.call_at(self._due, self._on_tick)

    def _on_tick(self) -> None:
        assert self._loop is not None and self._due is not None
        self.last_lateness = self._loop.time() - self._due
        self.late_in_a_row = self.late_in_a_row + 1 if self.last_lateness > self.late else 0
        self._arm()

    @property
    def overloaded(self) -> bool:
        """Whether to refuse an export now.

        Yes when the loop as a whole has not kept up (:attr:`late_ticks` late ticks in a row). Also
        when the last tick ran late and the pending one is already :attr:`late` overdue: the loop is
        still behind and this turn has done its share of work, so a request handled now would make
        the screen later still. The second test caps each turn's work under a flood; it needs the
        last tick late too, so one long turn (the first frame, a 100 000-span request) refuses nothing.
        """
        if self.late_in_a_row >= self.late_ticks:
            return True
        if not self.late_in_a_row or self._due is None or self._loop is None:
            return False
        return self._loop.time() - self._due > self.late
