"""The filter finds ids, attribute keys and ``key=value`` pairs, besides text (issue 13).

Spans are made as the receivers make them (decoded from OTLP protobuf, their attributes kept as
serialised bytes), because ``key=value`` is found in those bytes without decoding; a hypothesis
property checks that search against decoded attributes.
"""

from __future__ import annotations

import random
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

from tui.model.query import Query, Term, parse
from tui.model.span import AttrValue, Span
from tui.model.store import TraceStore
from tui.model.text import format_value
from tui.model.trace_list import MIN_ID_PREFIX, TraceListIndex
from tui.receiver.decode import ExportTraceServiceRequest, spans_from_request


def any_value(value: AttrValue) -> AnyValue:
    if value is None:
        return AnyValue()
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, tuple):
        return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))
    return AnyValue(kvlist_value=KeyValueList(values=key_values(value)))


def key_values(attributes: dict[str, AttrValue]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attributes.items()]


def received(trace: int, spans: list[dict], resource: dict[str, AttrValue] | None = None) -> list[Span]:
    """One trace's spans through the receiver's decoder. Each dict: span (int id), name, attributes,
    and optionally parent, start, event_attributes, link_attributes."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(key_values({"service.name": "svc", **(resource or {})}))
    scope = resource_spans.scope_spans.add()
    for s in spans:
        pb = PbSpan(trace_id=trace.to_bytes(16, "big"), span_id=s["span"].to_bytes(8, "big"), name=s.get("name", "op"),
                    start_time_unix_nano=s.get("start", 1), end_time_unix_nano=s.get("start", 1) + 1,
                    attributes=key_values(s.get("attributes", {})))
        if s.get("parent"):
            pb.parent_span_id = s["parent"].to_bytes(8, "big")
        if "event_attributes" in s:
            pb.events.add(name="event", time_unix_nano=1).attributes.extend(key_values(s["event_attributes"]))
        if "link_attributes" in s:
            link = pb.links.add(trace_id=(trace + 1).to_bytes(16, "big"), span_id=(7).to_bytes(8, "big"))
            link.attributes.extend(key_values(s["link_attributes"]))
        scope.spans.append(pb)
    return spans_from_request(request).spans


def tid(n: int) -> str:
    return format(n, "032x")


def sid(n: int) -> str:
    return format(n, "016x")


def found(store: TraceStore, query: str, *, errors_only: bool = False) -> set[str]:
    """Trace ids a fresh index shows for ``query``, checked against a sliced scan of the same."""
    index = TraceListIndex(store)
    index.set_filter(query, errors_only)
    shown = set(index.shown_trace_ids())
    sliced = TraceListIndex(store)
    sliced.set_filter(query, errors_only, scan=False)
    while not sliced.scan_done:
        sliced.continue_scan(0.0, until_rows=1)
    assert sliced.shown_trace_ids() == index.shown_trace_ids()
    return shown


@pytest.fixture
def store() -> TraceStore:
    """Three traces: an LLM call, an HTTP call with events and links, and one from a k8s pod."""
    store = TraceStore()
    store.add_spans(received(0xA1B2C3D4E5F60718293A4B5C6D7E8F90, [
        {"span": 0x1111222233334444, "name": "chat llama", "attributes": {
            "gen_ai.request.model": "llama3.2", "gen_ai.usage.input_tokens": 26, "stream": False,
            "temperature": 0.5, "digest": b"\x01\xab", "note": None, "tags": ("a", "b"),
            "extra": {"inner.key": "deep", "level": 3}}}]))
    store.add_spans(received(0x0F0E0D0C0B0A09080706050403020100, [
        {"span": 0xAAAABBBBCCCCDDDD, "name": "GET /forecast",
         "attributes": {"http.response.status_code": 500, "http.request.method": "GET", "userId": "Ada"}},
        {"span": 0x5555666677778888, "parent": 0xAAAABBBBCCCCDDDD, "name": "db query",
         "event_attributes": {"exception.type": "TimeoutError"}, "link_attributes": {"link.kind": "retry"}}]))
    store.add_spans(received(0x99990000000000000000000000000001, [{"span": 0x9999000000000001, "name": "work"}],
                             resource={"k8s.pod.name": "worker-7", "deployment.environment": "prod"}))
    return store


LLM, HTTP, POD = (tid(0xA1B2C3D4E5F60718293A4B5C6D7E8F90), tid(0x0F0E0D0C0B0A09080706050403020100),
                  tid(0x99990000000000000000000000000001))


# --- ids -----------------------------------------------------------------------------------------------------

def test_a_full_trace_id_is_looked_up_not_scanned(store: TraceStore) -> None:
    index = TraceListIndex(store)
    index.set_filter(HTTP, scan=False)  # what the widget does: no scan asked for
    assert index.scan_done and index.shown_trace_ids() == [HTTP]
    assert found(store, HTTP.upper()) == {HTTP}  # as some logs print it
    assert found(store, f"  {HTTP} ") == {HTTP}
    assert found(store, "f" * 32) == set()


def test_a_full_trace_id_lookup_looks_at_no_other_trace(store: TraceStore, monkeypatch: pytest.MonkeyPatch) -> None:
    index = TraceListIndex(store)
    looked_at: list[str] = []
    original = TraceListIndex.matches
    monkeypatch.setattr(TraceListIndex, "matches", lambda self, trace: looked_at.append(trace.trace_id)
                        or original(self, trace))
    index.set_filter(LLM)
    assert looked_at == [LLM] and index.shown_trace_ids() == [LLM]


def test_the_start_of_a_trace_id_finds_it_from_eight_digits(store: TraceStore) -> None:
    assert found(store, LLM[:MIN_ID_PREFIX]) == {LLM}
    assert found(store, LLM[:20]) == {LLM}
    assert found(store, LLM[:31]) == {LLM}
    assert found(store, LLM[:MIN_ID_PREFIX - 1]) == set()  # a short run of hex digits is a word
    assert found(store, LLM[4:12]) == set()  # the start, not any part


def test_a_span_id_finds_its_trace(store: TraceStore) -> None:
    assert found(store, sid(0x5555666677778888)) == {HTTP}  # a child span's id: the trace it is in
    assert found(store, sid(0x5555666677778888).upper()) == {HTTP}
    assert found(store, sid(0x1111222233334444)[:10]) == {LLM}
    assert found(store, HTTP[:16]) == {HTTP}  # 16 digits may also be the start of a trace id


def test_an_id_query_still_finds_text(store: TraceStore) -> None:
    """Eight or more hex digits short of a whole id are text too (a hash in an attribute)."""
    store.add_spans(received(77, [{"span": 77, "attributes": {"commit": "deadbeef42"}}]))
    assert found(store, "deadbeef42") == {tid(77)}
    assert found(store, "deadbeef") == {tid(77)}


# --- attribute keys -----------------------------------------------------------------------------------------

def test_an_attribute_key_finds_the_traces_that_have_it(store: TraceStore) -> None:
    assert found(store, "gen_ai.usage.input_tokens") == {LLM}
    assert found(store, "http.response.status_code") == {HTTP}
    assert found(store, "exception.type") == {HTTP}  # on an event
    assert found(store, "USERID") == {HTTP}  # any case, as text is


def test_a_resource_key_is_found_whole(store: TraceStore) -> None:
    assert found(store, "k8s.pod.name") == {POD}
    assert found(store, "K8S.POD.NAME") == {POD}
    assert found(store, "deployment.environment") == {POD}
    # Part of a resource key is not enough: "name" would match every process's service.name.
    assert found(store, "k8s.pod.nam") == set()


def test_typing_a_resource_key_ends_where_a_fresh_filter_does(store: TraceStore) -> None:
    """The next keystroke rescans only the previous matches, unless it can complete a resource key."""
    index = TraceListIndex(store)
    for n in range(1, len("k8s.pod.name") + 1):
        index.set_filter("k8s.pod.name"[:n])
        assert set(index.shown_trace_ids()) == found(store, "k8s.pod.name"[:n]), n
    assert index.shown_trace_ids() == [POD]


# --- key=value ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("query, expected", [
    ("gen_ai.request.model=llama3.2", {LLM}),
    ("gen_ai.request.model = llama3.2", {LLM}),
    ("gen_ai.request.model=llama3", set()),  # the whole value, not a prefix
    ("gen_ai.request.model=LLAMA3.2", set()),  # exact: case too
    ("Gen_ai.request.model=llama3.2", set()),
    ("gen_ai.usage.input_tokens=26", {LLM}),
    ("gen_ai.usage.input_tokens=26.0", set()),  # shown as 26
    ("gen_ai.usage.input_tokens=2", set()),
    ("stream=false", {LLM}),
    ("temperature=0.5", {LLM}),
    ("digest=0x01ab", {LLM}),
    ("note=null", {LLM}),
    ("inner.key=deep", {LLM}),  # nested in a map
    ("level=3", {LLM}),
    ("http.response.status_code=500", {HTTP}),
    ("http.request.method=GET", {HTTP}),
    ("exception.type=TimeoutError", {HTTP}),  # an event's attribute
    ("link.kind=retry", {HTTP}),  # a link's attribute
    ("service.name=svc", {LLM, HTTP, POD}),  # the resource's
    ("k8s.pod.name=worker-7", {POD}),
    ("k8s.pod.name=worker", set()),
    ("nothere=1", set()),
    ("http.response.status_code=", set()),
])
def test_key_equals_value_is_exact(store: TraceStore, query: str, expected: set[str]) -> None:
    assert found(store, query) == expected


def test_key_equals_value_is_not_text(store: TraceStore) -> None:
    store.add_spans(received(78, [{"span": 78, "attributes": {"prompt": "set retries=3 please"}}]))
    assert found(store, "retries=3") == set()
    assert found(store, "retries = 3 please") == set()
    assert found(store, '"set retries=3"') == {tid(78)}  # quoted: text
    assert found(store, "set retries=3") == set()  # the word "set" and the pair retries=3, in one span


def test_spans_built_in_code_match_pairs_as_received_ones_do() -> None:
    store = TraceStore()
    store.add_spans([Span(tid(5), sid(5), "built", 1, 2, attributes={"n": 3, "m": {"x": True}})])
    assert found(store, "n=3") == {tid(5)} and found(store, "x=true") == {tid(5)}
    assert found(store, "n=4") == set()


def test_errors_only_and_an_id_together(store: TraceStore) -> None:
    assert found(store, HTTP, errors_only=True) == set()
    assert found(store, "http.response.status_code=500", errors_only=True) == set()


@pytest.mark.parametrize("query", [
    LLM, HTTP[:12], "gen_ai.request.model=llama3.2", "k8s.pod.name", "http.response.status_code=500", "llama",
])
def test_typing_any_query_ends_where_a_fresh_filter_does(store: TraceStore, query: str) -> None:
    index = TraceListIndex(store)
    for n in range(1, len(query) + 1):
        index.set_filter(query[:n])
        assert set(index.shown_trace_ids()) == found(store, query[:n]), query[:n]


def term(typed: str) -> Term:
    query = parse(typed)
    assert isinstance(query, Query) and isinstance(query.root, Term), query
    return query.root


def test_query_parsing() -> None:
    assert term(" a.b = c ").field == "pair"
    assert (term("a.b=c=d").key, term("a.b=c=d").value) == ("a.b", "c=d")
    assert term('"a b=c"').field == "text"
    assert term("=c").field == "text"
    assert term("A" * 32).field == "trace id"
    assert term("0" * 16).field == "span id"
    assert term("0" * 8).field == "text" and term("0" * 33).field == "text"


# --- property: the wire search equals a search of decoded attributes --------------------------------------------

KEYS = ["a", "b.c", "gen_ai.request.model", "Key", "ünï", "x" * 70]
scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.sampled_from([65, 97, 100, 122, -1, 0])
           | st.floats(allow_nan=False) | st.text(alphabet="aAbB.=0 1éÉ", max_size=8) | st.text(max_size=90)
           | st.binary(max_size=4))
values = st.recursive(scalars, lambda inner: st.tuples(inner, inner) | st.dictionaries(st.sampled_from(KEYS), inner,
                                                                                        max_size=2), max_leaves=4)
attribute_maps = st.dictionaries(st.sampled_from(KEYS), values, max_size=3)


def quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def reference(trace_spans: list[Span], trace_id: str, query: str) -> bool:
    """What the filter is documented to find for one term (``key=value`` or text), decoding every span."""
    query = query.strip()
    text = query.lower()
    key, equals, value = query.partition("=")
    key, value = key.strip(), value.strip()

    def has_pair(attrs: object) -> bool:
        if isinstance(attrs, dict):
            for k, v in attrs.items():
                if k == key and not isinstance(v, (dict, tuple)) and format_value(v) == value:
                    return True
            return any(has_pair(v) for v in attrs.values())
        if isinstance(attrs, tuple):
            return any(has_pair(v) for v in attrs)
        return False

    if equals and key and not any(c.isspace() for c in key):
        return any(has_pair(dict(s.attributes)) or any(has_pair(dict(e.attributes)) for e in s.events)
                   or any(has_pair(dict(li.attributes)) for li in s.links) or has_pair(dict(s.resource.attributes))
                   for s in trace_spans)
    is_hex = bool(text) and all(c in string.hexdigits.lower() for c in text)
    if is_hex and len(text) == 32:
        return trace_id == text
    if is_hex and len(text) == 16:
        return trace_id.startswith(text) or any(s.span_id == text for s in trace_spans)
    if is_hex and MIN_ID_PREFIX <= len(text) < 32 and (
            trace_id.startswith(text) or (len(text) <= 16 and any(s.span_id.startswith(text) for s in trace_spans))):
        return True
    if any(text.encode() in s.search_bytes or text in s.service_name.lower() for s in trace_spans):
        return True
    return any(k.lower() == text for s in trace_spans for k in s.resource.attributes)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traces=st.lists(st.tuples(attribute_maps, attribute_maps, attribute_maps), min_size=1, max_size=4),
       seed=st.integers(0, 10**6))
def test_the_filter_finds_what_decoded_attributes_say(traces: list[tuple[dict, dict, dict]], seed: int) -> None:
    store = TraceStore()
    pairs: list[str] = []
    queries: list[str] = []
    for n, (span_attrs, event_attrs, resource_attrs) in enumerate(traces, start=1):
        trace = 0x5EED0000000000000000000000000000 + n
        store.add_spans(received(trace, [{"span": trace & 0xFFFFFFFF | n << 40, "attributes": span_attrs,
                                          "event_attributes": event_attrs}], resource=resource_attrs))
        for attrs in (span_attrs, event_attrs, resource_attrs):
            for k, v in attrs.items():
                shown = format_value(v)
                pairs.append(f"{k}={shown}")
                queries += [f"{k}={shown}x", f"{k}={shown[:-1]}", f"{k}={shown.upper()}", k, k.upper(), k[:-1]]
        queries += [tid(trace), tid(trace)[:9], sid(trace & 0xFFFFFFFF | n << 40), tid(trace)[:16]]
    rng = random.Random(seed)
    chosen = [rng.choice(queries) for _ in range(3)] + ["svc", "zz"]
    chosen += [rng.choice(pairs) for _ in range(2)] if pairs else []
    for query in chosen:
        expected = {t.trace_id for t in store if reference(list(t.spans.values()), t.trace_id, query)}
        key, equals, value = query.partition("=")
        typed = f"{key}={quoted(value.strip())}" if equals and key else query  # the value as one quoted word
        assert found(store, typed) == expected, typed
