"""Property-based tests (hypothesis): the store and both decoders hold their invariants on any input."""

from __future__ import annotations

import json
from itertools import pairwise

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui.model.span import Span, StatusCode
from tui.model.store import TraceStore
from tui.model.trace_list import TraceListIndex, _Order
from tui.receiver.decode import BadRequest, ExportTraceServiceRequest, parse_json, parse_protobuf, spans_from_request

TRACES = [format(i, "032x") for i in range(1, 6)]
SPAN_IDS = [format(i, "016x") for i in range(1, 25)]

spans = st.builds(
    lambda trace, span, parent, start, length, error: Span(
        trace, span, f"s{span[-2:]}", start, start + length, parent_span_id=parent,
        status_code=StatusCode.ERROR if error else StatusCode.UNSET),
    st.sampled_from(TRACES), st.sampled_from(SPAN_IDS), st.sampled_from(["", *SPAN_IDS]),
    st.integers(0, 2**63 - 1), st.integers(-1000, 10**9), st.booleans(),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(st.lists(spans, min_size=1, max_size=20), min_size=1, max_size=15),
       max_spans=st.integers(1, 60), expand=st.booleans(),
       query=st.sampled_from(["", "s0", "s1", TRACES[2], TRACES[3][:10], SPAN_IDS[4]]), errors_only=st.booleans())
def test_store_invariants(batches: list[list[Span]], max_spans: int, expand: bool, query: str,
                          errors_only: bool) -> None:
    """Any spans in any order — duplicates, missing parents, self-parents, cycles, evictions."""
    store = TraceStore(max_spans)
    load, _Order.LOAD = _Order.LOAD, 2  # tiny chunks: every change splits or merges some
    try:
        check_store_and_index(store, batches, max_spans, expand, query, errors_only)
    finally:
        _Order.LOAD = load


def check_store_and_index(store: TraceStore, batches: list[list[Span]], max_spans: int, expand: bool, query: str,
                          errors_only: bool) -> None:
    index = TraceListIndex(store)
    index.set_filter(query, errors_only)
    for batch in batches:
        store.add_spans(batch)
        index.apply(store.drain_changes())
        if expand and len(index):
            index.expand(index.row(len(index) // 2).trace.trace_id)
        # The rows are the matching traces by start time, newest first (ties: later arrival first),
        # however the change sets moved their starts — worked out from the store alone.
        expected: list[tuple[str, str | None]] = []
        for trace in sorted(store, key=lambda t: (t.start_ns, t.seq), reverse=True):
            if index.matches(trace):
                expected.append((trace.trace_id, None))
                if index.is_expanded(trace.trace_id):
                    expected += [(trace.trace_id, r.span.span_id) for r in trace.rows()]
        assert [index.row(i).key for i in range(len(index))] == expected
        assert all(index.position_of(*key) == i for i, key in enumerate(expected))
    # Counts add up: every span added is stored, evicted, was a re-sent copy, or was over its trace's cap.
    assert store.spans_added == store.span_count + store.evicted_spans + store.spans_replaced + store.capped_spans
    assert store.span_count == sum(t.span_count for t in store)
    assert store.span_count <= max_spans  # one trace too: it holds at most max_spans
    for trace in store:
        rows = trace.rows()
        # Every span reachable from a row, exactly once: no loss, no duplicate, no infinite loop.
        assert sorted(r.span.span_id for r in rows) == sorted(trace.spans)
        # The rows form a tree: a row's depth is at most one more than the row before it.
        depths = [r.depth for r in rows]
        assert depths[0] == 0 and all(b <= a + 1 for a, b in pairwise(depths))
    # The incremental list index equals a fresh one.
    fresh = TraceListIndex(store)
    fresh.set_filter(query, errors_only)
    for trace_id in list(index._expanded):
        fresh.expand(trace_id)
    assert [index.row(i).key for i in range(len(index))] == [fresh.row(i).key for i in range(len(fresh))]


@settings(max_examples=500, deadline=None)
@given(body=st.binary(max_size=2048))
def test_protobuf_decoder_never_fails_but_with_bad_request(body: bytes) -> None:
    try:
        request = parse_protobuf(ExportTraceServiceRequest, body)
    except BadRequest:
        return
    decoded = spans_from_request(request)
    for span in decoded.spans:  # decoding the lazy payload must work too
        span.attributes, span.events, span.links  # noqa: B018


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=30,
)


@settings(max_examples=500, deadline=None)
@given(document=st.dictionaries(st.sampled_from(["resourceSpans", "scopeSpans", "spans", "traceId", "x"]),
                                json_values, max_size=4))
def test_json_decoder_never_fails_but_with_bad_request(document: dict) -> None:
    try:
        request = parse_json(ExportTraceServiceRequest, json.dumps(document).encode())
    except BadRequest:
        return
    spans_from_request(request)
