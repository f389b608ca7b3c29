"""Real SDK exporters → real receivers on loopback: every field arrives exactly as sent."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export import SpanExportResult

from support.receivers import Running, export, make_exporter
from support.sdk_spans import EVERY_TYPE, nested_trace, record
from tui.model.span import SpanKind, StatusCode

TRANSPORTS = [("grpc", False), ("grpc", True), ("http", False), ("http", True)]


@pytest.mark.parametrize(("transport", "gzip"), TRANSPORTS, ids=["grpc", "grpc-gzip", "http", "http-gzip"])
async def test_sdk_export_arrives_exactly(running: Running, transport: str, gzip: bool) -> None:
    sent = record(nested_trace)
    exporter = make_exporter(running, transport, gzip)
    try:
        assert await export(exporter, sent) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    await running.wait_for_spans(len(sent))

    by_name = {s.name: s for s in sent}
    trace_id = format(by_name["root"].context.trace_id, "032x")
    trace = running.store.get(trace_id)
    assert trace is not None and trace.span_count == 4
    got = {s.name: s for s in trace.spans.values()}
    for name, original in by_name.items():
        span = got[name]
        assert span.span_id == format(original.context.span_id, "016x")
        expected_parent = format(original.parent.span_id, "016x") if original.parent else ""
        assert span.parent_span_id == expected_parent
        assert span.start_ns == original.start_time and span.end_ns == original.end_time

    root = got["root"]
    assert root.kind is SpanKind.SERVER
    assert got["child-a"].kind is SpanKind.CLIENT
    assert got["grandchild"].kind is SpanKind.INTERNAL
    # Every attribute type keeps its type: arrays become tuples, ints stay ints (64-bit too).
    expected_attrs = {k: tuple(v) if isinstance(v, list) else v for k, v in EVERY_TYPE.items()}
    assert dict(root.attributes) == expected_attrs
    assert type(root.attributes["big_int"]) is int and type(root.attributes["bool"]) is bool
    assert root.events[0].name == "started" and dict(root.events[0].attributes) == {"step": 1}
    assert root.resource.attributes["service.name"] == "test-service"
    assert root.scope.name == "tests.instrumentation" and root.scope.version == "1.2.3"

    child_b = got["child-b"]
    assert child_b.status_code is StatusCode.ERROR and child_b.status_message == "boom"
    exception = child_b.events[0]
    assert exception.name == "exception"
    assert exception.attributes["exception.type"] == "ValueError"
    assert exception.attributes["exception.message"] == "bad value"
    (link,) = child_b.links
    assert (link.trace_id, link.span_id) == (trace_id, root.span_id)
    assert dict(link.attributes) == {"link.kind": "follows"}

    rows = trace.rows()
    assert [(r.span.name, r.depth) for r in rows] == [("root", 0), ("child-a", 1), ("grandchild", 2), ("child-b", 1)]
    assert running.receivers.stats.spans_accepted == 4
    assert running.receivers.stats.requests[f"{transport} traces"] == 1
