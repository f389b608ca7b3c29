"""The incremental row index always equals a full rebuild (random adds, evictions, expands, filters)."""

from __future__ import annotations

import random

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

from tui.model.span import Span, StatusCode
from tui.model.store import TraceStore
from tui.model.trace_list import TraceListIndex
from tui.receiver.decode import ExportTraceServiceRequest, spans_from_request


def all_keys(index: TraceListIndex) -> list[tuple[str, str | None]]:
    return [index.row(i).key for i in range(len(index))]


def fresh_copy(index: TraceListIndex) -> TraceListIndex:
    copy = TraceListIndex(index.store)
    copy.set_filter(index.filter_text, index.errors_only)
    for trace_id in list(index._expanded):
        copy.expand(trace_id)
    return copy


def random_span(rng: random.Random, trace_ids: list[str], n: int) -> Span:
    trace_id = rng.choice(trace_ids)
    span_id = format(rng.randrange(1, 40), "016x")
    parent = rng.choice(["", format(rng.randrange(1, 40), "016x")])
    return Span(trace_id=trace_id, span_id=span_id, parent_span_id=parent, name=rng.choice(["alpha", "beta", "gamma"]),
                start_ns=rng.randrange(1000), end_ns=rng.randrange(1000, 2000),
                status_code=StatusCode.ERROR if rng.random() < 0.1 else StatusCode.UNSET,
                attributes={"gen_ai.request.model": rng.choice(["llama", "qwen"]), "n": n})


def test_every_row_draws_between_an_eviction_and_its_apply() -> None:
    """Under a flood the list applies changes five times a second and may draw in between; rows of
    traces evicted meanwhile (where a held selection drifts) must still draw, not fail."""
    rng = random.Random(7)
    store = TraceStore(max_spans=200)
    index = TraceListIndex(store)
    ids = [format(i, "032x") for i in range(1, 60)]
    store.add_spans([random_span(rng, ids, n) for n in range(400)])
    index.apply(store.drain_changes())
    index.expand(index.row(len(index) - 1).trace.trace_id)  # the oldest trace, expanded
    before = all_keys(index)
    store.add_spans([random_span(rng, [format(i, "032x") for i in range(100, 160)], n) for n in range(400)])
    assert store.evicted_traces > 0
    assert all_keys(index) == before  # drawn as they were, evicted or not
    index.apply(store.drain_changes())
    assert all(store.get(trace_id) is not None for trace_id, _ in all_keys(index))


@pytest.mark.parametrize("seed", range(12))
def test_incremental_index_equals_rebuild(seed: int) -> None:
    rng = random.Random(seed)
    store = TraceStore(max_spans=rng.choice([30, 80, 10_000]))
    index = TraceListIndex(store)
    trace_ids = [format(i, "032x") for i in range(1, 25)]
    cleared = 0
    for step in range(300):
        op = rng.random()
        if op < 0.6:
            store.add_spans([random_span(rng, trace_ids, step) for _ in range(rng.randrange(1, 6))])
            index.apply(store.drain_changes())
        elif op < 0.75 and len(index):
            row = index.row(rng.randrange(len(index)))
            (index.collapse if index.is_expanded(row.trace.trace_id) else index.expand)(row.trace.trace_id)
        elif op < 0.85:
            index.set_filter(rng.choice(["", "alpha", "qwen", "zzz", "gamma"]), rng.random() < 0.3)
        elif op < 0.88:
            cleared += store.span_count
            store.clear()
            index.apply(store.drain_changes())
        else:
            trace_ids = [format(rng.randrange(1, 10_000), "032x") for _ in range(24)]  # new traces from now on
        expected = fresh_copy(index)
        assert all_keys(index) == all_keys(expected), f"step {step}"
        assert len(index) == len(expected)
        for i, key in enumerate(all_keys(index)):
            assert index.position_of(*key) == i
        assert all(index.matches(store.get(key[0])) for key in all_keys(index))
    # Every span added is stored, evicted, replaced by a later copy, or was cleared by the user.
    assert store.spans_added == store.span_count + store.evicted_spans + store.spans_replaced + cleared


def test_trace_tokens_count_each_call_once() -> None:
    """A chat turn span wrapping the instrumentation's span of the same call: tokens counted once."""
    store = TraceStore()
    tokens = {"gen_ai.usage.input_tokens": 26, "gen_ai.usage.output_tokens": 5}
    store.add_spans([
        Span("a" * 32, "1" * 16, "agent", 0, 10, attributes={"gen_ai.operation.name": "invoke_agent"}),
        Span("a" * 32, "2" * 16, "chat llama", 1, 9, parent_span_id="1" * 16,
             attributes={"gen_ai.request.model": "llama", **tokens}),
        Span("a" * 32, "3" * 16, "ollama.chat", 2, 8, parent_span_id="2" * 16,
             attributes={"gen_ai.request.model": "llama", **tokens}),
        Span("a" * 32, "4" * 16, "second call", 9, 10, parent_span_id="1" * 16,
             attributes={"gen_ai.request.model": "qwen", "gen_ai.usage.input_tokens": 4,
                         "gen_ai.usage.output_tokens": 1}),
    ])
    index = TraceListIndex(store)
    summary = index.summary(store.get("a" * 32))
    assert (summary.model, summary.tokens_in, summary.tokens_out) == ("llama", 30, 6)


@pytest.mark.parametrize("seed", range(6))
def test_progressive_filter_scan_ends_equal_to_a_full_filter(seed: int) -> None:
    """Scanning in slices while spans keep arriving and traces get evicted ends where a full scan does."""
    rng = random.Random(seed)
    store = TraceStore(max_spans=400)
    index = TraceListIndex(store)
    trace_ids = [format(i, "032x") for i in range(1, 200)]
    for step in range(150):
        store.add_spans([random_span(rng, trace_ids, step) for _ in range(4)])
    index.apply(store.drain_changes())
    index.set_filter(rng.choice(["alpha", "qwen", "gamma", "zzz"]), rng.random() < 0.3, scan=False)
    steps = 0
    while not index.scan_done:
        index.continue_scan(0.0, until_rows=rng.randrange(1, 20))
        if rng.random() < 0.5:
            store.add_spans([random_span(rng, trace_ids, steps) for _ in range(3)])
            index.apply(store.drain_changes())
        steps += 1
        # Rows already shown are final: the newest matches, in order, never moved by the scan.
        shown = all_keys(index)
        assert shown == sorted(shown, key=lambda key: -store.get(key[0]).seq)
    assert all_keys(index) == all_keys(fresh_copy(index))
    narrower = index.filter_text + "a" if index.filter_text != "zzz" else "zzz"
    index.set_filter(narrower, scan=False)
    while not index.scan_done:
        index.continue_scan(0.0, until_rows=5)
    assert all_keys(index) == all_keys(fresh_copy(index))


def _received(name: str, prompt: str, service: str, trace: int) -> list[Span]:
    """A span as the receivers make it: decoded from OTLP protobuf, its strings kept as payload bytes."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value=service)))
    resource_spans.scope_spans.add().spans.append(PbSpan(
        trace_id=trace.to_bytes(16, "big"), span_id=(trace + 1).to_bytes(8, "big"), name=name,
        start_time_unix_nano=1, end_time_unix_nano=2,
        attributes=[KeyValue(key="gen_ai.prompt.0.content", value=AnyValue(string_value=prompt))]))
    return spans_from_request(request).spans


@pytest.mark.parametrize("query, found", [
    ("café", {"received", "built"}), ("CAFÉ", {"received", "built"}), ("Café", {"received", "built"}),
    ("überdienst", {"received"}), ("ÜBER", {"received"}), ("straße", {"built"}),
    ("un café", {"received", "built"}), ("cafe", set()), ("sil vous", set()),
])
def test_filters_fold_unicode_case_in_received_and_built_spans(query: str, found: set[str]) -> None:
    store = TraceStore()
    store.add_spans(_received("received", "Un CAFÉ, s'il vous plaît", "Überdienst", 1))
    store.add_spans([Span(trace_id=format(9, "032x"), span_id=format(1, "016x"), parent_span_id="", name="built",
                          start_ns=1, end_ns=2, attributes={"text": "un café à la Straße"})])
    index = TraceListIndex(store)
    index.set_filter(query)
    assert {index.row(i).trace.name for i in range(len(index))} == found
