"""The incremental row index always equals a full rebuild (random adds, evictions, expands, filters)."""

from __future__ import annotations

import random

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

from tui.model import store as store_module
from tui.model import trace_list as trace_list_module
from tui.model.span import Span, StatusCode
from tui.model.store import TraceStore
from tui.model.text import tree_guides
from tui.model.trace_list import TraceListIndex, _Order, order_key
from tui.receiver.decode import ExportTraceServiceRequest, spans_from_request


def all_keys(index: TraceListIndex) -> list[tuple[str, str | None]]:
    return [index.row(i).key for i in range(len(index))]


def fresh_copy(index: TraceListIndex) -> TraceListIndex:
    copy = TraceListIndex(index.store)
    copy.set_filter(index.filter_text, index.errors_only)
    for trace_id in list(index._expanded):
        copy.expand(trace_id)
    return copy


def brute_force_rows(index: TraceListIndex) -> list[tuple[str, str | None]]:
    """The rows the list should show, worked out from the store alone: matching traces by start time,
    newest first (ties: the later arrival first), each expanded one followed by its span rows."""
    traces = sorted((t for t in index.store if index.matches(t)), key=lambda t: (t.start_ns, t.seq), reverse=True)
    rows: list[tuple[str, str | None]] = []
    for trace in traces:
        rows.append((trace.trace_id, None))
        if index.is_expanded(trace.trace_id):
            rows += [(trace.trace_id, r.span.span_id) for r in trace.rows()]
    return rows


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
def test_incremental_index_equals_rebuild(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_Order, "LOAD", 1 + seed % 5)  # small chunks: splits and merges on every step
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
        assert all_keys(index) == brute_force_rows(index), f"step {step}"
        assert len(index) == len(expected)
        for i, key in enumerate(all_keys(index)):
            assert index.position_of(*key) == i
        assert all(index.matches(store.get(key[0])) for key in all_keys(index))
    # Every span added is stored, evicted, replaced by a later copy, or was cleared by the user.
    assert store.spans_added == (store.span_count + store.evicted_spans + store.spans_replaced + store.capped_spans
                                 + cleared)


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
def test_progressive_filter_scan_ends_equal_to_a_full_filter(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Scanning in slices while spans keep arriving and traces get evicted ends where a full scan does."""
    monkeypatch.setattr(_Order, "LOAD", 4)
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
        assert shown == sorted(shown, key=lambda key: -order_key(store.get(key[0])))
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


# --- order: by start time, newest first ------------------------------------------------------------------------

def one(trace: int, start: int, span: int = 1, parent: int = 0, name: str = "op") -> Span:
    return Span(trace_id=format(trace, "032x"), span_id=format(span, "016x"), name=name, start_ns=start,
                end_ns=start + 5, parent_span_id=format(parent, "016x") if parent else "")


def ids(index: TraceListIndex) -> list[int]:
    return [int(index.row(i).trace.trace_id, 16) for i in range(len(index)) if index.row(i).span_row is None]


def test_rows_are_ordered_by_start_time_not_by_arrival() -> None:
    """Two exporters' batches interleave in arrival; the list shows when each trace happened."""
    store = TraceStore()
    index = TraceListIndex(store)
    store.add_spans([one(1, 100), one(2, 300), one(3, 200)])
    store.add_spans([one(4, 150), one(5, 250), one(6, 300)])  # 6 starts with 2: the later arrival is newer
    index.apply(store.drain_changes())
    assert ids(index) == [6, 2, 5, 3, 4, 1]
    assert [index.position_of(format(t, "032x")) for t in (6, 2, 5, 3, 4, 1)] == list(range(6))
    assert index.shown_trace_ids() == [format(t, "032x") for t in (6, 2, 5, 3, 4, 1)]


def test_a_root_arriving_late_moves_its_trace_to_its_start() -> None:
    store = TraceStore()
    index = TraceListIndex(store)
    store.add_spans([one(1, 100, span=2, parent=1), one(2, 50), one(3, 70)])  # trace 1: a child, root pending
    index.apply(store.drain_changes())
    index.expand(format(1, "032x"))
    assert ids(index) == [1, 3, 2] and len(index) == 4
    store.add_spans([one(1, 10, span=1, name="root")])  # the root: trace 1 started first after all
    index.apply(store.drain_changes())
    assert ids(index) == [3, 2, 1]
    trace_1 = format(1, "032x")
    assert index.position_of(trace_1) == 2
    assert [index.row(i).key for i in (3, 4)] == [(trace_1, format(1, "016x")), (trace_1, format(2, "016x"))]
    assert index.parent_position(4) == 3 and index.parent_position(3) == 2
    assert all_keys(index) == brute_force_rows(index)


def test_a_root_arriving_late_under_a_filter_moves_too() -> None:
    store = TraceStore()
    index = TraceListIndex(store)
    index.set_filter("op")
    store.add_spans([one(1, 100, span=2, parent=1), one(2, 50), one(3, 70)])
    index.apply(store.drain_changes())
    store.add_spans([one(1, 10, span=1)])
    index.apply(store.drain_changes())
    assert ids(index) == [3, 2, 1] == [int(t, 16) for t in index.shown_trace_ids()]


def test_eviction_stays_oldest_arrival_first() -> None:
    """The budget goes by arrival: the trace that came first goes first, even if it started last."""
    store = TraceStore(max_spans=3)
    index = TraceListIndex(store)
    store.add_spans([one(1, 900)])
    store.add_spans([one(2, 100)])
    store.add_spans([one(3, 200)])
    index.apply(store.drain_changes())
    assert ids(index) == [1, 3, 2]
    store.add_spans([one(4, 50)])
    assert store.get(format(1, "032x")) is None  # the first to arrive, though the newest to start
    index.apply(store.drain_changes())
    assert ids(index) == [3, 2, 4]


def test_position_near_goes_to_the_neighbour_in_start_order() -> None:
    """Where the selection goes when its trace leaves the list: the next newer by start, else the
    newest older — found from the trace's id, or (slower) from its arrival number alone."""
    store = TraceStore(max_spans=4)
    index = TraceListIndex(store)
    for trace, start, name in ((1, 400, "keep"), (2, 100, "drop"), (3, 300, "keep"), (4, 200, "keep")):
        store.add_spans([one(trace, start, name=name)])
    index.apply(store.drain_changes())
    assert ids(index) == [1, 3, 4, 2]
    evicted = store.get(format(1, "032x"))
    store.add_spans([one(5, 50, name="keep")])  # evicts trace 1, the first to arrive (and newest row)
    index.apply(store.drain_changes())
    assert ids(index) == [3, 4, 2, 5]
    # Nothing started after trace 1: the newest older, trace 3.
    assert index.position_near(evicted.seq, evicted.trace_id) == 0
    assert index.position_near(evicted.seq) == 0  # the last change set took it off: known by seq
    filtered_out = store.get(format(2, "032x"))  # started at 100
    index.set_filter("keep")
    index.expand(format(3, "032x"))  # a span row under trace 3 moves trace 4 down one
    assert ids(index) == [3, 4, 5] and len(index) == 4
    assert index.position_near(filtered_out.seq, filtered_out.trace_id) == 2  # trace 4, started at 200
    assert index.position_near(filtered_out.seq) == 2  # by seq alone: a walk over every key
    assert index.position_near(10**9) == 0  # unknown: the top


def test_equal_start_times_go_by_arrival() -> None:
    store = TraceStore()
    index = TraceListIndex(store)
    store.add_spans([one(t, 100) for t in (5, 3, 9, 1)])
    index.apply(store.drain_changes())
    assert ids(index) == [1, 9, 3, 5]


@pytest.mark.parametrize("seed", range(8))
def test_large_change_sets_merge_into_the_order(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Floods, eviction bursts and late batches: change sets far larger than one-by-one handles."""
    monkeypatch.setattr(_Order, "LOAD", [8, 32, 512][seed % 3])
    rng = random.Random(seed)
    store = TraceStore(max_spans=rng.choice([300, 2000]))
    index = TraceListIndex(store)
    if rng.random() < 0.5:
        index.set_filter(rng.choice(["alpha", "beta", "0000000000000000000000000000000"]))
    for step in range(25):
        trace_ids = [format(rng.randrange(1, 400), "032x") for _ in range(rng.randrange(1, 200))]
        store.add_spans([random_span(rng, trace_ids, step) for _ in range(rng.randrange(1, 400))])
        if rng.random() < 0.3 and len(index):
            index.expand(index.row(rng.randrange(len(index))).trace.trace_id)
        index.apply(store.drain_changes())
        assert all_keys(index) == brute_force_rows(index), f"step {step}"
        for i, key in enumerate(all_keys(index)):
            assert index.position_of(*key) == i


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("load", [2, 4, 16, 512])
def test_the_order_files_every_change_where_a_sort_would(seed: int, load: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks split, merge and empty as entries come and go; ranks and positions stay those of a sorted list."""
    monkeypatch.setattr(_Order, "LOAD", load)
    rng = random.Random(seed)
    order = _Order()
    expected: dict[str, int] = {}
    for _ in range(30):
        changes: dict[str, int | None] = {}
        for _ in range(rng.choice([1, 5, 9, 17, 60, 300])):
            trace_id = str(rng.randrange(400))
            changes[trace_id] = None if rng.random() < rng.choice([0.1, 0.5, 0.9]) else (
                rng.randrange(10**6) * 1000 + int(trace_id))
        if rng.random() < 0.2 and changes:  # the scan's path: older than everything, in front
            front = sorted((k, t) for t, k in changes.items() if k is not None and t not in expected)
            if front and (not expected or front[-1][0] < min(expected.values())):
                order.prepend([k for k, _ in front], [t for _, t in front])
                expected.update((t, k) for k, t in front)
                continue
        order.update(changes)
        for trace_id, key in changes.items():
            if key is None:
                expected.pop(trace_id, None)
            else:
                expected[trace_id] = key
        pairs = sorted((k, t) for t, k in expected.items())
        assert order.ids() == [t for _, t in pairs]
        assert order.key_of == expected and len(order) == len(pairs)
        assert [order.at(i) for i in range(len(pairs))] == pairs
        assert all(order.rank(k) == i for i, (k, _) in enumerate(pairs))
        assert all(len(chunk) <= 2 * load for chunk in order._keys) and all(order._keys)
        probe = rng.randrange(10**9)
        assert order.rank(probe) == sum(1 for k, _ in pairs if k < probe)


def test_a_clear_under_a_filter_rescans_what_came_after_it() -> None:
    """Spans arriving between a clear and the apply that reports it: the filter finds them all."""
    rng = random.Random(3)
    store = TraceStore()
    index = TraceListIndex(store)
    index.set_filter("alpha")
    trace_ids = [format(i, "032x") for i in range(1, 40)]
    store.add_spans([random_span(rng, trace_ids, n) for n in range(100)])
    index.apply(store.drain_changes())
    store.clear()
    store.add_spans([random_span(rng, trace_ids, n) for n in range(100)])
    index.apply(store.drain_changes())
    assert all_keys(index) == brute_force_rows(index) == all_keys(fresh_copy(index))
    index.set_filter("")
    assert len(index) == len(store) and all_keys(index) == brute_force_rows(index)


# --- huge expanded traces: rebuilt a slice per frame -------------------------------------------------

def test_a_huge_expanded_trace_is_rebuilt_in_slices_and_ends_as_a_fresh_index(monkeypatch) -> None:
    """Over LARGE_TRACE_SPANS the old rows stay until the sliced rebuild ends; then rows, positions and
    guides equal a fresh index's, for any tree shape (orphans, cycles, several roots)."""
    monkeypatch.setattr(trace_list_module, "LARGE_TRACE_SPANS", 20)
    monkeypatch.setattr(store_module, "ROW_SLICE", 3)
    monkeypatch.setattr(trace_list_module, "ROW_SLICE", 3)
    rng = random.Random(7)
    store = TraceStore(max_spans=10_000)
    trace_id = "a" * 32

    def spans(count: int, first: int) -> list[Span]:
        return [Span(trace_id, format(n, "016x"), f"s{n}", rng.randrange(1000), 2000,
                     parent_span_id=rng.choice(["", format(rng.randrange(1, first + count + 5), "016x")]))
                for n in range(first, first + count)]

    store.add_spans(spans(60, 1))
    index = TraceListIndex(store)
    index.apply(store.drain_changes())
    assert index.expand(trace_id)
    for first in (61, 81, 101):
        before = [index.row(i).key for i in range(len(index))]
        store.add_spans(spans(20, first))
        index.apply(store.drain_changes())
        assert index.rebuilding and index.is_rebuilding(trace_id)
        assert [index.row(i).key for i in range(len(index))] == before  # the old rows, until rebuilt
        slices = 0
        while not index.continue_rebuild(0.0):
            slices += 1
        assert slices > 3 and not index.rebuilding
        fresh = fresh_copy(index)
        rows = [index.row(i) for i in range(len(index))]
        assert [r.key for r in rows] == [fresh.row(i).key for i in range(len(fresh))] == brute_force_rows(index)
        assert all(index.position_of(*row.key) == i for i, row in enumerate(rows))
        spans_rows = [r for r in rows if r.span_row is not None]
        assert [r.guide for r in spans_rows] == tree_guides([r.span_row.depth for r in spans_rows])


def test_a_trace_changing_while_it_is_rebuilt_is_rebuilt_again(monkeypatch) -> None:
    monkeypatch.setattr(trace_list_module, "LARGE_TRACE_SPANS", 5)
    store = TraceStore()
    trace_id = "b" * 32
    store.add_spans([Span(trace_id, format(n, "016x"), f"s{n}", n, 100) for n in range(1, 11)])
    index = TraceListIndex(store)
    index.apply(store.drain_changes())
    index.expand(trace_id)
    store.add_spans([Span(trace_id, "f" * 16, "late", 50, 100)])
    index.apply(store.drain_changes())
    store.add_spans([Span(trace_id, "e" * 16, "later", 60, 100)])  # arrives mid-rebuild
    index.apply(store.drain_changes())
    assert index.continue_rebuild(1.0)  # the first rebuild ends with "late" only
    assert index.position_of(trace_id, "f" * 16) is not None and index.position_of(trace_id, "e" * 16) is None
    assert index.rebuilding  # and starts over for "later"
    index.continue_rebuild(1.0)
    assert index.position_of(trace_id, "e" * 16) is not None and not index.rebuilding


# --- sorting (issue 16) -------------------------------------------------------------------------------------

def _llm_span(trace: int, span: int, start: int, end: int, tokens: int | None = None, error: bool = False,
              parent: int = 0) -> Span:
    attributes = {} if tokens is None else {"gen_ai.usage.input_tokens": tokens, "gen_ai.usage.output_tokens": 1}
    return Span(format(trace, "032x"), format(span, "016x"), f"op {span}", start, end,
                parent_span_id=format(parent, "016x") if parent else "",
                status_code=StatusCode.ERROR if error else StatusCode.UNSET, attributes=attributes)


@pytest.mark.parametrize("sort, metric", [
    ("newest", lambda t: t.start_ns),
    ("oldest", lambda t: -t.start_ns),
    ("duration", lambda t: t.duration_ns),
    ("errors", lambda t: (t.has_error, t.start_ns)),
])
def test_every_sort_equals_sorting_the_store_and_stays_live(sort: str, metric) -> None:
    rng = random.Random(sort)
    store = TraceStore(max_spans=300)
    index = TraceListIndex(store)
    index.set_filter("op")
    for round_ in range(30):
        spans = [_llm_span(rng.randrange(1, 60), rng.randrange(1, 10**6), start := rng.randrange(10**6),
                           start + rng.randrange(10**6), error=rng.random() < 0.1) for _ in range(rng.randrange(1, 20))]
        store.add_spans(spans)
        index.apply(store.drain_changes())
        if round_ == 5:
            index.set_sort(sort, now=False)
            index.continue_sort(0.0)  # one slice; the rest after more changes
        if round_ == 15:
            while not index.continue_sort(0.0) and not index.sort_done:
                pass
        if round_ > 15:
            expected = [t.trace_id for t in sorted(store, key=lambda t: (metric(t), t.seq), reverse=True)]
            assert index.shown_trace_ids() == expected
            assert index.sort == sort and index.sort_done


def test_sort_by_tokens_ranks_the_innermost_llm_spans_and_keeps_the_selection() -> None:
    store = TraceStore()
    store.add_spans([
        _llm_span(1, 1, 10, 20, tokens=500),
        _llm_span(2, 2, 20, 30, tokens=90), _llm_span(2, 3, 21, 29, tokens=80, parent=2),  # wraps: 81 counts
        _llm_span(3, 4, 30, 40),  # no tokens: last
        _llm_span(4, 5, 40, 50, tokens=100),
    ])
    index = TraceListIndex(store)
    expanded = format(4, "032x")
    index.expand(expanded)
    index.set_sort("tokens")
    assert index.shown_trace_ids() == [format(n, "032x") for n in (1, 4, 2, 3)]
    assert index.is_expanded(expanded) and index.row(2).key == (expanded, format(5, "016x"))
    index.set_sort("newest")
    assert index.shown_trace_ids() == [format(n, "032x") for n in (4, 3, 2, 1)]


def test_a_sort_under_way_keeps_the_old_order_until_it_is_done() -> None:
    store = TraceStore()
    store.add_spans([_llm_span(n, n, n * 10, n * 10 + (1000 - n)) for n in range(1, 600)])
    index = TraceListIndex(store)
    before = index.shown_trace_ids()
    index.set_sort("duration", now=False)
    assert not index.continue_sort(0.0) and index.shown_trace_ids() == before and 0 < index.sort_progress < 1
    index.continue_sort(None)
    assert index.sort_done and index.shown_trace_ids() == before[::-1]


@pytest.mark.parametrize("query", ["", "dur>400000ns", "op"])
@pytest.mark.parametrize("sort", ["duration", "errors"])
def test_a_sort_merged_in_slices_files_what_changed_meanwhile(query: str, sort: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The new orders are built a chunk a slice (tiny runs and chunks here), while traces arrive, are evicted,
    and enter or leave the filter; once in place the list is what sorting the store gives."""
    rng = random.Random(sort + query)
    store = TraceStore(max_spans=400)
    index = TraceListIndex(store)
    index.SORT_RUN = 7
    monkeypatch.setattr(_Order, "LOAD", 4)
    metric = {"duration": lambda t: t.duration_ns, "errors": lambda t: (t.has_error, t.start_ns)}[sort]
    index.set_filter(query)
    for round_ in range(40):
        spans = [_llm_span(rng.randrange(1, 80), rng.randrange(1, 10**6), start := rng.randrange(10**6),
                           start + rng.randrange(10**6), error=rng.random() < 0.1) for _ in range(rng.randrange(1, 25))]
        store.add_spans(spans)
        index.apply(store.drain_changes())
        if round_ == 10:
            index.set_sort(sort, now=False)
        if 10 <= round_ < 30 and not index.sort_done:
            assert not index.continue_sort(0.0) or index.sort_done
        if round_ == 20:
            index.set_filter(query, scan=False)  # the filter again, mid-merge: its order is built anew
        if round_ == 30:
            index.continue_sort(None)
            index.continue_scan(None)
        if round_ >= 30:
            assert index.sort == sort and index.sort_done
            every = sorted(store, key=lambda t: (metric(t), t.seq), reverse=True)
            expected = [t.trace_id for t in every if index.matches(t)] if query else [t.trace_id for t in every]
            assert index.shown_trace_ids() == expected
            assert all(index.position_of(t) == i for i, t in enumerate(expected))
