"""TraceStore: parent linking in any order, duplicates, cycles, several roots, eviction, changes."""

from __future__ import annotations

import random

from opentelemetry import trace as otel

from support.event_loop import eventually
from support.receivers import running_receivers, send
from support.sdk_spans import record
from tui.model.span import Span, StatusCode
from tui.model.store import TraceStore

T1 = "1" * 32
T2 = "2" * 32
T3 = "3" * 32


def span(span_id: str, parent: str = "", trace: str = T1, start: int = 0, name: str | None = None,
         error: bool = False) -> Span:
    sid = span_id.rjust(16, "0")
    return Span(trace_id=trace, span_id=sid, parent_span_id=parent.rjust(16, "0") if parent else "",
                name=name or span_id, start_ns=start, end_ns=start + 10,
                status_code=StatusCode.ERROR if error else StatusCode.UNSET)


def shape(store: TraceStore, trace_id: str = T1) -> list[tuple[str, int, bool, bool]]:
    return [(r.span.name, r.depth, r.orphan, r.cycle) for r in store.get(trace_id).rows()]


def test_child_before_parent_is_attached_when_parent_arrives() -> None:
    store = TraceStore()
    store.add_spans([span("b", parent="a", start=2), span("c", parent="b", start=3)])
    assert shape(store) == [("b", 0, True, False), ("c", 1, False, False)]
    assert not store.get(T1).has_root
    store.add_spans([span("a", start=1)])
    assert shape(store) == [("a", 0, False, False), ("b", 1, False, False), ("c", 2, False, False)]
    assert store.get(T1).name == "a"


def test_arrival_order_does_not_matter() -> None:
    spans = [span("a", start=1), span("b", "a", start=2), span("c", "a", start=3), span("d", "c", start=4),
             span("e", "d", start=5), span("f", "a", start=6)]
    expected = None
    for seed in range(20):
        shuffled = spans[:]
        random.Random(seed).shuffle(shuffled)
        store = TraceStore()
        for s in shuffled:
            store.add_spans([s])
        got = shape(store)
        expected = expected or got
        assert got == expected
    assert expected == [("a", 0, False, False), ("b", 1, False, False), ("c", 1, False, False),
                        ("d", 2, False, False), ("e", 3, False, False), ("f", 1, False, False)]


def test_duplicate_span_id_keeps_one_span_with_later_data() -> None:
    store = TraceStore()
    store.add_spans([span("a", start=1, name="first", error=True)])
    store.add_spans([span("a", start=1, name="second")])
    trace = store.get(T1)
    assert trace.span_count == 1 and store.span_count == 1
    assert trace.spans["000000000000000a"].name == "second"
    assert not trace.has_error
    assert store.spans_added == 2 and store.spans_replaced == 1


def test_self_parent_and_cycles_are_shown_as_roots_without_looping() -> None:
    store = TraceStore()
    store.add_spans([span("a", parent="a", start=1),  # names itself
                     span("b", parent="c", start=2), span("c", parent="b", start=3),  # a 2-cycle
                     span("d", parent="c", start=4)])
    rows = shape(store)
    assert sorted(name for name, *_ in rows) == ["a", "b", "c", "d"]
    assert rows[0] == ("a", 0, False, False)
    assert rows[1] == ("b", 0, False, True)
    assert ("c", 1, False, False) in rows and ("d", 2, False, False) in rows


def test_several_roots_are_all_shown() -> None:
    store = TraceStore()
    store.add_spans([span("a", start=5), span("b", start=1), span("c", "b", start=2)])
    assert shape(store) == [("b", 0, False, False), ("c", 1, False, False), ("a", 0, False, False)]
    assert store.get(T1).name == "b"


def test_deep_parent_chain_needs_no_recursion() -> None:
    store = TraceStore()
    chain = [span("1", start=0)] + [span(format(i + 1, "x"), parent=format(i, "x"), start=i) for i in range(1, 10_000)]
    store.add_spans(reversed(chain))
    rows = store.get(T1).rows()
    assert len(rows) == 10_000 and rows[-1].depth == 9_999


def test_summary_and_change_tracking() -> None:
    store = TraceStore()
    store.add_spans([span("a", start=100), span("b", "a", start=50, error=True), span("x", trace=T2)])
    trace = store.get(T1)
    assert (trace.start_ns, trace.end_ns, trace.duration_ns) == (50, 110, 60)
    assert trace.has_error and trace.span_count == 2
    changes = store.drain_changes()
    assert changes.updated == {T1, T2} and not changes.evicted
    assert not store.drain_changes()
    store.add_spans([span("c", "a", trace=T1)])
    assert store.drain_changes().updated == {T1}


def test_eviction_removes_whole_oldest_traces_and_counts_them() -> None:
    store = TraceStore(max_spans=5)
    store.add_spans([span("a", trace=T1), span("b", "a", trace=T1), span("c", "a", trace=T1)])
    store.add_spans([span("d", trace=T2), span("e", "d", trace=T2)])
    store.drain_changes()
    store.add_spans([span("f", trace=T3)])
    assert T1 not in store and T2 in store and T3 in store
    assert store.span_count == 3
    assert (store.evicted_spans, store.evicted_traces) == (3, 1)
    changes = store.drain_changes()
    assert changes.evicted == {T1} and changes.updated == {T3}
    assert store.spans_added == store.span_count + store.evicted_spans + store.spans_replaced
    assert store.trace_ids() == [T2, T3]  # oldest first


def test_an_evicted_trace_stays_drawable_until_its_eviction_is_applied() -> None:
    """A view applies evictions only when it drains the changes, and may draw before then."""
    store = TraceStore(max_spans=2)
    store.add_spans([span("a", trace=T1), span("b", "a", trace=T1)])
    store.drain_changes()
    store.add_spans([span("c", trace=T2)])
    assert store.get(T1) is None  # gone from the store and its counts at once
    evicted = store.shown(T1)
    assert evicted is not None and evicted.span_count == 2
    assert store.shown(T2) is store.get(T2)
    assert store.drain_changes().evicted == {T1}
    assert store.shown(T1) is evicted  # while the view applies the change set that reports it
    store.drain_changes()
    assert store.shown(T1) is None  # and not a moment longer


def test_clear_is_not_eviction() -> None:
    store = TraceStore()
    store.add_spans([span("a")])
    store.clear()
    assert len(store) == 0 and store.span_count == 0 and store.evicted_spans == 0
    assert store.drain_changes().cleared


# --- the per-trace cap -------------------------------------------------------------------------------

def test_a_trace_holds_at_most_its_cap_keeping_a_place_for_its_root() -> None:
    """Children first and the root last, as an SDK exports them: the last place waits for the root."""
    store = TraceStore(max_spans=100, max_trace_spans=5)
    store.add_spans([span(format(i, "x"), parent="1", start=i) for i in range(2, 12)])
    trace = store.get(T1)
    assert trace.span_count == 4 and trace.dropped_spans == 6 and not trace.has_root
    store.add_spans([span("1", start=0), span("c", parent="1")])  # the root takes the last place
    assert trace.span_count == 5 and trace.has_root and trace.dropped_spans == 7
    store.add_spans([span("2", parent="1", start=2, name="again")])  # a re-sent copy of a held span is taken
    assert trace.spans["0000000000000002"].name == "again" and trace.dropped_spans == 7
    store.add_spans([span("a", trace=T2)])  # other traces are not affected
    assert store.get(T2).span_count == 1
    assert store.capped_spans == 7
    assert store.spans_added == store.span_count + store.evicted_spans + store.spans_replaced + store.capped_spans
    assert T1 in store.drain_changes().updated


def test_the_cap_is_never_above_the_whole_budget() -> None:
    store = TraceStore(max_spans=3)
    store.add_spans([span("1")] + [span(format(i, "x"), parent="1", start=i) for i in range(2, 10)])
    assert (store.max_trace_spans, store.span_count, store.capped_spans, store.evicted_spans) == (3, 3, 6, 0)


async def test_one_oversized_trace_over_a_real_receiver_stays_within_the_budget() -> None:
    """A real 3 000-span trace from the SDK's own exporter into a store with a 500-span budget."""
    def big(tracer: otel.Tracer) -> None:
        with tracer.start_as_current_span("batch job"):
            for i in range(2_999):
                with tracer.start_as_current_span(f"item {i}"):
                    pass

    spans = record(big)
    async with running_receivers(max_spans=500) as running:
        for at in range(0, len(spans), 512):  # in export batches, as a BatchSpanProcessor sends them
            await send(running, spans[at:at + 512])
        store = running.store
        await eventually(lambda: store.spans_added == 3_000, 10.0)
        (trace,) = list(store)
        assert store.span_count == trace.span_count == 500
        assert trace.has_root and trace.name == "batch job"  # sent last, it still found its place
        assert trace.dropped_spans == store.capped_spans == 2_500
        assert store.spans_added == 3_000 == store.span_count + store.capped_spans
