"""Hand-built OTLP requests: a JSON body written per the spec, and its protobuf twin."""

from __future__ import annotations

import json

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

TRACE_ID = "5b8efff798038103d269b633813fc60c"
ROOT_ID = "eee19b7ec3c1b174"
CHILD_ID = "eee19b7ec3c1b173"


def json_request() -> dict:
    """OTLP/JSON as a JavaScript exporter sends it: hex ids (mixed case), int64 as strings and numbers."""
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "js-app"}}]},
                "someFutureField": {"ignored": True},
                "scopeSpans": [
                    {
                        "scope": {"name": "my.library", "version": "1.0.0"},
                        "spans": [
                            {
                                "traceId": TRACE_ID.upper(),
                                "spanId": ROOT_ID,
                                "parentSpanId": "",
                                "name": "GET /chat",
                                "kind": 2,
                                "startTimeUnixNano": "1544712660000000000",
                                "endTimeUnixNano": 1544712661000000000,
                                "attributes": [
                                    {"key": "http.response.status_code", "value": {"intValue": "200"}},
                                    {"key": "retries", "value": {"intValue": 3}},
                                    {"key": "ratio", "value": {"doubleValue": 0.5}},
                                    {"key": "ok", "value": {"boolValue": True}},
                                    {"key": "blob", "value": {"bytesValue": "AAEC"}},
                                    {"key": "tags", "value": {"arrayValue": {"values": [
                                        {"stringValue": "a"}, {"intValue": "9007199254740993"}]}}},
                                    {"key": "meta", "value": {"kvlistValue": {"values": [
                                        {"key": "inner", "value": {"stringValue": "x"}}]}}},
                                ],
                                "status": {"code": 2, "message": "upstream failed"},
                                "unknownSpanField": 1,
                            },
                            {
                                "traceId": TRACE_ID,
                                "spanId": CHILD_ID,
                                "parentSpanId": ROOT_ID,
                                "name": "chat llama3.2",
                                "kind": 3,
                                "startTimeUnixNano": "1544712660100000000",
                                "endTimeUnixNano": "1544712660900000000",
                                "events": [{"timeUnixNano": "1544712660200000000", "name": "first token",
                                            "attributes": [{"key": "n", "value": {"intValue": "1"}}]}],
                                "links": [{"traceId": TRACE_ID, "spanId": ROOT_ID}],
                            },
                        ],
                    }
                ],
            }
        ]
    }


def _kv(key: str, value: AnyValue) -> KeyValue:
    return KeyValue(key=key, value=value)


def protobuf_request() -> ExportTraceServiceRequest:
    """The same data as :func:`json_request`, built with the generated protobuf classes."""
    trace_id = bytes.fromhex(TRACE_ID)
    root = Span(
        trace_id=trace_id,
        span_id=bytes.fromhex(ROOT_ID),
        name="GET /chat",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=1544712660000000000,
        end_time_unix_nano=1544712661000000000,
        attributes=[
            _kv("http.response.status_code", AnyValue(int_value=200)),
            _kv("retries", AnyValue(int_value=3)),
            _kv("ratio", AnyValue(double_value=0.5)),
            _kv("ok", AnyValue(bool_value=True)),
            _kv("blob", AnyValue(bytes_value=b"\x00\x01\x02")),
            _kv("tags", AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="a"),
                                                                  AnyValue(int_value=9007199254740993)]))),
            _kv("meta", AnyValue(kvlist_value=KeyValueList(values=[_kv("inner", AnyValue(string_value="x"))]))),
        ],
        status=Status(code=Status.STATUS_CODE_ERROR, message="upstream failed"),
    )
    child = Span(
        trace_id=trace_id,
        span_id=bytes.fromhex(CHILD_ID),
        parent_span_id=bytes.fromhex(ROOT_ID),
        name="chat llama3.2",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=1544712660100000000,
        end_time_unix_nano=1544712660900000000,
        events=[Span.Event(time_unix_nano=1544712660200000000, name="first token",
                           attributes=[_kv("n", AnyValue(int_value=1))])],
        links=[Span.Link(trace_id=trace_id, span_id=bytes.fromhex(ROOT_ID))],
    )
    request = ExportTraceServiceRequest()
    rs: ResourceSpans = request.resource_spans.add()
    rs.resource.attributes.append(_kv("service.name", AnyValue(string_value="js-app")))
    ss: ScopeSpans = rs.scope_spans.add()
    ss.scope.name, ss.scope.version = "my.library", "1.0.0"
    ss.spans.extend([root, child])
    return request


def json_body() -> bytes:
    return json.dumps(json_request()).encode()


def span_fields(span: object) -> tuple:
    """Every field of a model span, for comparing spans that arrived by different routes."""
    from tui.model.span import SPAN_FIELDS

    return tuple(getattr(span, name) for name in SPAN_FIELDS)


def many_models(models: int) -> ExportMetricsServiceRequest:
    """One export of ``gen_ai.client.operation.duration`` with a data point for each of ``models`` models, as a
    client of many fine-tuned models would send over time."""
    request = ExportMetricsServiceRequest()
    metric = request.resource_metrics.add().scope_metrics.add().metrics.add()
    metric.name = "gen_ai.client.operation.duration"
    for i in range(models):
        point = metric.histogram.data_points.add(count=1, sum=0.5)
        point.attributes.add(key="gen_ai.request.model").value.string_value = f"model-{i:05d}"
    return request
