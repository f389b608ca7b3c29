"""The refresh policy of the live view, without a UI: what each tick applies, and the header's rates.

Store changes reach the screen as one coalesced update per tick, never one per span. Deciding
*what* a tick applies (flood throttling, the pause buffer, when the selected detail is rebuilt) and
*what the header says* about ingest (spans/s, overload) is pure arithmetic on counters and clocks,
kept here so it is unit-tested in microseconds rather than through a running app.
"""

from __future__ import annotations

from dataclasses import dataclass

from tui.model.store import StoreChanges, TraceStore

#: While traces stream in, the detail of the (moving) selection is rebuilt at most this often:
#: rebuilding it on every tick cost more than everything else under load.
LIVE_DETAIL_SECONDS = 0.5
#: Under a flood (more than BUSY_SPANS_PER_TICK new spans a tick) the list is redrawn at most
#: every BUSY_REDRAW_SECONDS instead of every tick, leaving the CPU to the receivers.
#: Counted in time, not ticks: under a flood the ticks themselves come late.
BUSY_SPANS_PER_TICK = 2_000
BUSY_REDRAW_SECONDS = 0.2
#: The header says "overloaded" for this long after the last back-pressure answer.
OVERLOAD_SECONDS = 3.0
#: The spans/s figure is re-measured over at least this long, so it does not jitter.
RATE_WINDOW_SECONDS = 0.25


def _merge_updates(into: StoreChanges, updated: set[str], evicted: set[str]) -> None:
    """Add ``updated`` to ``into``'s updated traces, less those evicted since (they are gone)."""
    into.updated |= updated
    into.updated -= evicted


class RefreshPolicy:
    """Decides, tick by tick, which store changes the list applies and when the detail is rebuilt."""

    def __init__(self, store: TraceStore, *, detail_seconds: float = LIVE_DETAIL_SECONDS) -> None:
        self.store = store
        self.detail_seconds = detail_seconds
        self.paused = False
        #: Changes held back while paused (updated traces only: evictions are applied at once).
        self._held = StoreChanges()
        self._added_at_pause = 0
        self._applied_at = float("-inf")
        self._applied_spans = store.spans_added
        self._detail_stale = False
        self._detail_shown_at = float("-inf")

    # --- pause -----------------------------------------------------------------------------------

    def pause(self) -> None:
        self.paused = True
        self._added_at_pause = self.store.spans_added

    def resume(self) -> None:
        self.paused = False

    @property
    def waiting(self) -> int:
        """Spans received since the pause (0 when not paused)."""
        return self.store.spans_added - self._added_at_pause if self.paused else 0

    def discard_held(self) -> None:
        """Forget held changes (after the store was cleared: nothing they name exists any more)."""
        self._held = StoreChanges()

    # --- ticks -----------------------------------------------------------------------------------

    def take(self, now: float) -> StoreChanges:
        """The changes this tick should apply (empty when there are none, or when a flood defers them).

        While paused only evictions come through: rows of evicted traces must go even from a
        frozen list, since their traces no longer exist.
        """
        arrived = self.store.spans_added - self._applied_spans
        if arrived > BUSY_SPANS_PER_TICK and now - self._applied_at < BUSY_REDRAW_SECONDS:
            return StoreChanges()  # a flood: the changes keep accumulating in the store meanwhile
        self._applied_spans = self.store.spans_added
        self._applied_at = now
        changes = self.store.drain_changes()
        if self.paused:
            _merge_updates(self._held, changes.updated, changes.evicted)
            return StoreChanges(evicted=changes.evicted, cleared=changes.cleared)
        if self._held:
            _merge_updates(changes, self._held.updated, changes.evicted)
            self._held = StoreChanges()
        return changes

    # --- the selected row's detail ---------------------------------------------------------------

    def detail_changed(self) -> None:
        """The selected trace changed under the cursor: rebuild its detail when next due."""
        self._detail_stale = True

    def detail_due(self, now: float) -> bool:
        return self._detail_stale and now - self._detail_shown_at >= self.detail_seconds

    def detail_shown(self, now: float) -> None:
        self._detail_stale = False
        self._detail_shown_at = now


@dataclass(slots=True)
class IngestRates:
    """spans/s over a short window, and whether exporters were told to back off recently."""

    spans_per_second: float = 0.0
    _sampled_at: float | None = None
    _sampled_spans: int = 0
    _retries_seen: int = 0
    _retried_at: float = float("-inf")

    def sample(self, accepted: int, retries_asked: int, now: float) -> None:
        """Feed the receivers' counters; call at least every few hundred milliseconds."""
        if self._sampled_at is None:
            self._sampled_at, self._sampled_spans = now, accepted
        elif now - self._sampled_at >= RATE_WINDOW_SECONDS:
            self.spans_per_second = (accepted - self._sampled_spans) / (now - self._sampled_at)
            self._sampled_at, self._sampled_spans = now, accepted
        if retries_asked != self._retries_seen:
            self._retries_seen, self._retried_at = retries_asked, now

    def overloaded(self, now: float) -> bool:
        return now - self._retried_at < OVERLOAD_SECONDS
