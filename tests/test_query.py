"""The filter bar's query language (issue 16): every operator on real SDK-recorded spans, and properties —
any text parses or is an error with a position (never an exception), and a query matches the same traces
whether the list scans the store whole or in slices."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

from support.demo_store import demo_store
from tui.model.query import Query, QueryError, parse, span_tokens, span_ttft
from tui.model.span import Span, SpanKind, StatusCode
from tui.model.store import TraceStore
from tui.model.trace_list import TraceListIndex
from tui.receiver.decode import spans_from_request

# The demo store's traces (tests/support/demo_store.py), one per convention of genai_spans.py.
OPENLLMETRY, SEMCONV, EVENTS, OPENINFERENCE, MALFORMED, FAILING = (format(n, "032x") for n in range(1, 7))


def tid(n: int) -> str:
    return format(n, "032x")


def found(store: TraceStore, query: str) -> set[str]:
    """Trace ids shown for ``query``, checked against a sliced scan of the same."""
    index = TraceListIndex(store)
    assert index.set_filter(query) is None, query
    whole = index.shown_trace_ids()
    sliced = TraceListIndex(store)
    sliced.set_filter(query, scan=False)
    while not sliced.scan_done:
        sliced.continue_scan(0.0, until_rows=1)
    assert sliced.shown_trace_ids() == whole, query
    return set(whole)


@pytest.fixture(scope="module")
def demo() -> TraceStore:
    return demo_store()


# --- each operator on the recorded spans -------------------------------------------------------------

@pytest.mark.parametrize("query, expected", [
    ("rainy", {OPENLLMETRY, SEMCONV, EVENTS, OPENINFERENCE}),  # prompt and completion text
    ('"weather in paris"', {OPENLLMETRY, SEMCONV, EVENTS, OPENINFERENCE}),  # a quoted phrase, any case
    ("weather paris", {OPENLLMETRY, SEMCONV, EVENTS, OPENINFERENCE}),
    ("service:weather-api", {OPENLLMETRY, FAILING}),
    ("service:WEATHER-API", {OPENLLMETRY, FAILING}),
    ("service:weather", set()),  # whole, not a part
    ("service:*api", {OPENLLMETRY, FAILING}),
    ("service:checkout model:llama3.2", set()),  # the Stats screen's Enter
    ("service:weather-api model:llama3.2", {OPENLLMETRY}),
    ("name:chat", {OPENLLMETRY, SEMCONV, EVENTS, OPENINFERENCE, MALFORMED}),  # ollama.chat, ChatOllama, …
    ("name:forecast", {FAILING}),
    ("model:llama3.2", {OPENLLMETRY, MALFORMED}),
    ("model:llama3.2:latest", {OPENLLMETRY}),  # the response model
    ("model:qwen3", {SEMCONV}),  # also its tag qwen3:8b
    ("model:gemma*", {OPENINFERENCE}),  # OpenInference's llm.model_name
    ("model:llama", set()),
    ("status:error", {FAILING}),
    ("status:unset", {OPENLLMETRY, SEMCONV, EVENTS, OPENINFERENCE, MALFORMED}),  # both failing spans are errors
    ("kind:server", {OPENLLMETRY, FAILING}),
    ("kind:client", {OPENLLMETRY, SEMCONV, EVENTS, OPENINFERENCE, MALFORMED}),
    ("dur>1s", {SEMCONV}),  # agent run: 1.05 s
    ("dur>=1050ms", {SEMCONV}),
    ("dur<350ms", set()),
    ("dur<=350ms kind:client", {OPENLLMETRY, EVENTS, OPENINFERENCE, MALFORMED}),
    ("tokens>100", {SEMCONV}),  # 120 + 45
    ("tokens>=49", {OPENLLMETRY, SEMCONV}),  # 31 + 18 (openllmetry's prompt / completion tokens)
    ("tokens<30", {EVENTS}),  # 20 + 7; spans without tokens never match
    ("in_tokens>100", {SEMCONV}),
    ("in_tokens=15", {OPENINFERENCE}),
    ("out_tokens>=18", {OPENLLMETRY, SEMCONV}),
    ("gen_ai.request.model=llama3.2", {OPENLLMETRY, MALFORMED}),
    ("gen_ai.usage.input_tokens=120", {SEMCONV}),
    ("service.name=chatbot", {EVENTS, MALFORMED}),  # a resource attribute
    ("gen_ai.request.model~LLAMA", {OPENLLMETRY, MALFORMED}),
    ("exception.message~upstream", {FAILING}),  # an event's attribute
    ("has:gen_ai.tool.name", {SEMCONV}),
    ("has:telemetry.sdk.language", {OPENLLMETRY, SEMCONV, EVENTS, OPENINFERENCE, MALFORMED, FAILING}),
    ("has:nothing.here", set()),
    ("-kind:client", {OPENLLMETRY, SEMCONV, FAILING}),  # traces with a span that is not a client span
    ("model:mistral OR model:gemma3", {EVENTS, OPENINFERENCE}),
    ("service:chatbot name:broken OR status:error", {MALFORMED, FAILING}),
    ("kind:client -model:llama3.2", {SEMCONV, EVENTS, OPENINFERENCE}),
    (OPENLLMETRY, {OPENLLMETRY}),  # a trace id
    (format(101, "016x"), {OPENLLMETRY}),  # a span id
])
def test_each_operator_on_recorded_spans(demo: TraceStore, query: str, expected: set[str]) -> None:
    assert found(demo, query) == expected


def test_matching_spans_are_the_ones_marked(demo: TraceStore) -> None:
    index = TraceListIndex(demo)
    index.set_filter("kind:client")
    trace = demo.get(OPENLLMETRY)
    assert trace is not None
    marked = {span.name for span in trace.spans.values() if index.span_matches(span)}
    assert marked == {"ollama.chat"}
    index.set_filter("")
    assert not any(index.span_matches(span) for span in trace.spans.values())  # no query: nothing marked


def test_a_bad_query_leaves_the_filter_as_it_was(demo: TraceStore) -> None:
    index = TraceListIndex(demo)
    index.set_filter("status:error")
    error = index.set_filter("dur>5")
    assert isinstance(error, QueryError) and index.query_error == error
    assert index.filter_text == "status:error" and index.shown_trace_ids() == [FAILING]


# --- numbers read from the bytes equal numbers read from decoded attributes ----------------------------

def received(attributes: dict[str, object], events: tuple[tuple[str, int], ...] = ()) -> Span:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    pb = PbSpan(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="chat", start_time_unix_nano=1_000,
                end_time_unix_nano=5_000_000_000)
    for key, value in attributes.items():
        any_value = AnyValue(double_value=value) if isinstance(value, float) else \
            AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=str(value))
        pb.attributes.append(KeyValue(key=key, value=any_value))
    for name, at in events:
        pb.events.add(name=name, time_unix_nano=at)
    scope.spans.append(pb)
    return spans_from_request(request).spans[0]


def test_tokens_and_ttft_read_from_bytes() -> None:
    span = received({"gen_ai.usage.input_tokens": 1200, "gen_ai.usage.output_tokens": 34,
                     "gen_ai.response.time_to_first_chunk": 1.5, "note": "gen_ai.usage.input_tokens"})
    assert span_tokens(span) == (1200, 34, 1234) and span_ttft(span) == 1.5
    assert span._attributes is None  # read without decoding the span
    assert span_tokens(received({"llm.token_count.total": 99, "llm.token_count.prompt": 90})) == (90, None, 99)
    assert span_ttft(received({}, (("first_token", 2_000_001_000),))) == 2.0  # an event, 2 s after the start
    assert span_tokens(received({"x": 1})) == (None, None, None) and span_ttft(received({"x": 1})) is None
    built = Span("0" * 31 + "1", "0" * 15 + "1", "chat", 0, 1, attributes={"gen_ai.usage.input_tokens": 5})
    assert span_tokens(built) == (5, None, 5)


def test_ttft_and_tokens_terms() -> None:
    store = TraceStore()
    store.add_spans([received({"gen_ai.response.time_to_first_chunk": 1.5, "gen_ai.usage.output_tokens": 2000})])
    assert found(store, "ttft>1s") == {tid(0x01010101010101010101010101010101)}
    assert found(store, "ttft>2s") == set()
    assert found(store, "out_tokens>1.5k") == found(store, "ttft<1600ms") == {tid(0x01010101010101010101010101010101)}


# --- parsing ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("typed, position, words", [
    ('"unclosed', 0, "not closed"),
    ("a OR", 2, "after"),
    ("OR a", 0, "before"),
    ("a OR OR b", 5, "before"),
    ("x - y", 2, "excludes"),
    ("dur>5", 0, "unit"),
    ("dur>fast", 0, "duration"),
    ("tokens>many", 0, "number"),
    ("status:maybe", 0, "error, ok or unset"),
    ("kind:sideways", 0, "server"),
    ("service:", 0, "needs a value"),
    ("x>3", 0, "cannot be compared"),
    ("ok ttft<", 3, "needs a number"),
])
def test_malformed_queries_say_where_and_why(typed: str, position: int, words: str) -> None:
    error = parse(typed)
    assert isinstance(error, QueryError), error
    assert error.position == position and words in error.message
    assert str(error).startswith(f"column {position + 1}: ")


def test_spaces_around_operators_and_quotes() -> None:
    def root(text: str) -> object:
        query = parse(text)
        assert isinstance(query, Query)
        return query.root

    assert root("dur > 2s") == root("dur>2s")
    assert root("service: checkout") == root("service:checkout")
    key_value = parse("gen_ai.request.model = llama3.2")
    assert isinstance(key_value, Query) and key_value.span_test() is not None
    assert root('service:"my shop"') == root('service: "my shop"')
    quoted = parse(r'"say \"hi\"" OR "OR"')
    assert isinstance(quoted, Query) and "say" in repr(quoted.root) and "'OR'" in repr(quoted.root)
    assert parse("") == parse("   ") == Query.empty()


def test_narrowing_only_when_sure() -> None:
    def q(text: str) -> Query:
        query = parse(text)
        assert isinstance(query, Query)
        return query

    assert q("llama").narrows(q("lla"), set())
    assert q("service:a llama").narrows(q("service:a"), set())
    assert not q("service:a").narrows(q("service:a llama"), set())
    assert not q("k8s.pod").narrows(q("k8s.po"), {"k8s.pod"})  # a whole resource key: rescan
    assert not q("a OR b").narrows(q("a"), set())
    assert not q("-llama").narrows(q("-lla"), set())


# --- properties -----------------------------------------------------------------------------------------

ALPHABET = st.sampled_from([*'ab: =~<>-"\\OR()*.', "OR", "dur", "tokens", "service:", "status:", "ms", "1",
                            "model:", "has:", "name:", "kind:", "é", "\t", "ttft"])


@settings(max_examples=400, deadline=None)
@given(st.lists(ALPHABET, max_size=12).map("".join) | st.text(max_size=30))
def test_any_text_parses_or_is_an_error(typed: str) -> None:
    result = parse(typed)
    assert isinstance(result, (Query, QueryError))
    if isinstance(result, QueryError):
        assert 0 <= result.position <= len(typed) and result.message
    else:
        test = result.span_test()
        span = Span("0" * 31 + "1", "0" * 15 + "1", "n", 0, 10, kind=SpanKind.CLIENT, status_code=StatusCode.ERROR,
                    attributes={"a": "b", "gen_ai.usage.input_tokens": 3})
        assert test is None or test(span) in (True, False)


_DEMO = demo_store()
TERMS = st.sampled_from(["rainy", "service:weather-api", "service:chatbot", "model:llama3.2", "status:error",
                         "kind:client", "kind:server", "dur>500ms", "tokens>40", "in_tokens<100",
                         "gen_ai.request.model=llama3.2", "service.name=agent", "has:gen_ai.tool.name",
                         "name:chat", "paris", "gen_ai.system~oll", '"what\'s the weather"', "upstream"])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(terms=st.lists(st.tuples(st.booleans(), TERMS, st.booleans()), min_size=1, max_size=4),
       budget=st.sampled_from([0.0, None]), rows=st.integers(1, 4))
def test_whole_and_sliced_scans_agree_with_the_span_test(terms: list[tuple[bool, str, bool]], budget: float | None,
                                                         rows: int) -> None:
    typed = ""
    for i, (negated, term, or_before) in enumerate(terms):
        typed += (" OR " if or_before and i else " ") + ("-" if negated else "") + term
    query = parse(typed)
    assert isinstance(query, Query), typed
    test = query.span_test()
    assert test is not None
    expected = [t.trace_id for t in _DEMO if any(test(s) for s in t.spans.values())]
    whole = TraceListIndex(_DEMO)
    whole.set_filter(typed)
    sliced = TraceListIndex(_DEMO)
    sliced.set_filter(typed, scan=False)
    while not sliced.scan_done:
        sliced.continue_scan(budget, until_rows=rows)
    assert set(whole.shown_trace_ids()) == set(expected)
    assert sliced.shown_trace_ids() == whole.shown_trace_ids()
    # Typing it character by character (each keystroke may rescan only the last matches) ends the same.
    typing = TraceListIndex(_DEMO)
    for n in range(1, len(typed) + 1):
        typing.set_filter(typed[:n])
    assert typing.shown_trace_ids() == whole.shown_trace_ids()


def test_each_token_count_alone_is_the_one_span_tokens_reads(demo: TraceStore) -> None:
    from tui.model.query import _input_tokens, _output_tokens, _total_tokens
    spans = [span for trace in demo for span in trace.spans.values()]
    spans += [Span("a" * 32, "b" * 16, "x", 0, 1, attributes=attributes) for attributes in (
        {"gen_ai.usage.input_tokens": 3}, {"gen_ai.usage.output_tokens": 4.5}, {"llm.usage.total_tokens": 9},
        {"gen_ai.usage.input_tokens": 2, "gen_ai.usage.output_tokens": 3}, {})]
    assert any(span_tokens(span)[2] is not None for span in spans)
    for span in spans:
        assert (_input_tokens(span), _output_tokens(span), _total_tokens(span)) == span_tokens(span)


def test_a_lone_text_or_pair_term_tests_a_trace_as_its_spans_do(demo: TraceStore) -> None:
    """The inlined trace tests of the two commonest filters (one loop, nothing called a span) say what the
    span test says: text, an id's start, a service, a resource key, other letters, a pair."""
    trace = next(iter(demo))
    span = next(iter(trace.spans.values()))
    resource_key = next(iter(span.resource.attributes), "service.name")
    for typed in ("rainy", "RAINY", trace.trace_id[:8], span.span_id[:10], span.resource.service_name, resource_key,
                  "é", "zqzqzq", "gen_ai.request.model=llama3.2", "service.name=agent", "gen_ai.usage.input_tokens=3"):
        query = parse(typed)
        assert isinstance(query, Query)
        span_test, trace_test = query.span_test(), query.trace_test()
        assert span_test is not None and trace_test is not None
        for t in demo:
            assert trace_test(t) == any(map(span_test, t.spans.values())), (typed, t.trace_id)
