"""The live view's refresh policy and ingest rates, without a UI: counters and clocks only."""

from __future__ import annotations

from tui.model.live import (
    BUSY_REDRAW_SECONDS,
    BUSY_SPANS_PER_TICK,
    LIVE_DETAIL_SECONDS,
    OVERLOAD_SECONDS,
    IngestRates,
    RefreshPolicy,
)
from tui.model.span import Span
from tui.model.store import TraceStore


def trace(n: int, spans: int = 1) -> list[Span]:
    trace_id = format(n, "032x")
    return [Span(trace_id=trace_id, span_id=format(n * 10_000 + i + 1, "016x"), parent_span_id="", name=f"t{n}",
                 start_ns=1, end_ns=2) for i in range(spans)]


def test_a_tick_applies_what_arrived_since_the_last() -> None:
    store = TraceStore()
    policy = RefreshPolicy(store)
    store.add_spans(trace(1))
    assert policy.take(now=0.0).updated == {format(1, "032x")}
    assert not policy.take(now=0.05)


def test_a_flood_is_applied_at_most_every_busy_interval() -> None:
    store = TraceStore()
    policy = RefreshPolicy(store)
    store.add_spans(trace(1))
    policy.take(now=10.0)
    store.add_spans(trace(2, spans=BUSY_SPANS_PER_TICK + 1))
    assert not policy.take(now=10.0 + BUSY_REDRAW_SECONDS / 2)  # deferred: still in the store
    assert policy.take(now=10.0 + BUSY_REDRAW_SECONDS * 1.01).updated == {format(2, "032x")}


def test_a_trickle_is_applied_on_every_tick() -> None:
    store = TraceStore()
    policy = RefreshPolicy(store)
    policy.take(now=10.0)
    store.add_spans(trace(1, spans=BUSY_SPANS_PER_TICK))
    assert policy.take(now=10.01)


def test_pause_holds_updates_and_counts_what_waits() -> None:
    store = TraceStore()
    policy = RefreshPolicy(store)
    policy.pause()
    store.add_spans(trace(1, spans=3))
    assert policy.waiting == 3
    assert not policy.take(now=0.0)
    policy.resume()
    assert policy.waiting == 0
    assert policy.take(now=0.05).updated == {format(1, "032x")}  # the held update comes through


def test_evictions_come_through_a_pause_and_the_evicted_trace_is_not_updated_later() -> None:
    store = TraceStore(max_spans=2)
    policy = RefreshPolicy(store)
    store.add_spans(trace(1))
    policy.take(now=0.0)
    policy.pause()
    store.add_spans(trace(2))
    assert not policy.take(now=0.05).evicted
    store.add_spans(trace(3))  # evicts trace 1 (the oldest)
    paused = policy.take(now=0.1)
    assert paused.evicted == {format(1, "032x")} and not paused.updated
    store.add_spans(trace(4))  # evicts trace 2, which was held as updated
    assert policy.take(now=0.15).evicted == {format(2, "032x")}
    policy.resume()
    assert policy.take(now=0.2).updated == {format(3, "032x"), format(4, "032x")}


def test_discarding_held_changes_forgets_them() -> None:
    store = TraceStore()
    policy = RefreshPolicy(store)
    policy.pause()
    store.add_spans(trace(1))
    policy.take(now=0.0)
    policy.discard_held()
    policy.resume()
    assert not policy.take(now=0.05).updated


def test_a_changed_detail_is_rebuilt_at_most_every_live_interval() -> None:
    policy = RefreshPolicy(TraceStore())
    assert not policy.detail_due(now=0.0)
    policy.detail_changed()
    assert policy.detail_due(now=0.0)
    policy.detail_shown(now=0.0)
    policy.detail_changed()
    assert not policy.detail_due(now=LIVE_DETAIL_SECONDS / 2)
    assert policy.detail_due(now=LIVE_DETAIL_SECONDS)


def test_spans_per_second_over_the_window() -> None:
    rates = IngestRates()
    rates.sample(accepted=0, retries_asked=0, now=100.0)
    rates.sample(accepted=500, retries_asked=0, now=100.1)  # too soon: the figure is kept
    assert rates.spans_per_second == 0.0
    rates.sample(accepted=1_000, retries_asked=0, now=100.5)
    assert rates.spans_per_second == 2_000.0


def test_overloaded_for_a_while_after_each_new_back_pressure_answer() -> None:
    rates = IngestRates()
    rates.sample(accepted=0, retries_asked=0, now=0.0)
    assert not rates.overloaded(now=0.0)
    rates.sample(accepted=0, retries_asked=2, now=1.0)
    assert rates.overloaded(now=1.0 + OVERLOAD_SECONDS / 2)
    rates.sample(accepted=0, retries_asked=2, now=2.0)  # no new answer
    assert not rates.overloaded(now=1.0 + OVERLOAD_SECONDS)
