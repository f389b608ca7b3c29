"""When the garbage collector runs: young generations often, the full heap only when it is cheap.

The store holds hundreds of thousands of long-lived, acyclic span objects. CPython's default
policy traverses all of them in a full collection every time a quarter of the old generation has
been replaced — under a sustained flood with eviction, every few seconds, a pause of hundreds of
milliseconds at a million spans. So young collections stay automatic (they find the short-lived
cycles asyncio, gRPC and Textual make), and the full collection is run by :class:`FullCollector`:
when ingest is idle, or at the latest every two minutes. After an idle collection the C heap's
free pages go back to the operating system, so memory taken by a flood is returned once it ends.
"""

from __future__ import annotations

import ctypes
import gc
import time
from collections.abc import Callable

#: A young collection every 10 000 net allocations (CPython: 700), a middle one every 10 of those:
#: big enough that a flood is not spent collecting, small enough that a middle collection (at most
#: ~100 000 objects, ~15 ms) never stalls a frame. 50 000 × 20 made one every few seconds take 160 ms.
YOUNG_THRESHOLD = 10_000
YOUNG_COLLECTIONS_PER_MIDDLE = 10
#: Effectively "never automatically": the old generation is collected by FullCollector instead.
OLD_THRESHOLD = 1_000_000_000
IDLE_SECONDS = 3.0
MAX_INTERVAL_SECONDS = 120.0


def _find_malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc; musl and macOS have none
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _find_malloc_trim()


def release_free_memory() -> bool:
    """Hand the C heap's free pages back to the operating system (glibc's ``malloc_trim``).

    Span payloads are large ``bytes`` objects, which CPython frees to the C allocator, and glibc
    keeps those pages: without this, RSS after a flood stays near its peak for good. Measured
    after the 64-exporter overload run: 486 MB → 248 MB, in 27 ms. False where there is no
    ``malloc_trim`` (not glibc), where the pages are reused rather than returned.
    """
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True


def tune_gc() -> None:
    """Measured with bench/run.py: gRPC ingest with the UI running went from 45-60 k to ~75 k
    spans/s, and no key press at 200 k spans takes more than ~12 ms."""
    gc.set_threshold(YOUNG_THRESHOLD, YOUNG_COLLECTIONS_PER_MIDDLE, OLD_THRESHOLD)


class FullCollector:
    """Runs ``gc.collect()`` once spans stop arriving for a moment, or after a long busy stretch."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._last_full = clock()
        self._last_count = -1
        self._quiet_since = clock()

    def poll(self, spans_added: int) -> bool:
        """Call periodically with the store's running span count; True when it collected."""
        now = self.clock()
        if spans_added != self._last_count:
            self._last_count = spans_added
            self._quiet_since = now
        idle = now - self._quiet_since >= IDLE_SECONDS
        overdue = now - self._last_full >= MAX_INTERVAL_SECONDS
        if (idle and self._last_full < self._quiet_since) or overdue:
            gc.collect()
            if idle:  # a flood may be over: give its memory back (under a flood it would be taken again)
                release_free_memory()
            self._last_full = self.clock()
            return True
        return False
