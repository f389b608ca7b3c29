"""OTLP wire formats to :mod:`tui.model` spans: the only place the protobuf types are read.

Both transports and every content type end in :func:`spans_from_request`, so a span looks the
same whichever way it arrived. JSON is first mapped onto the protobuf message with protobuf's own
``json_format`` (after the one OTLP deviation it cannot know: ids are hex, not base64).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

from tui.model.span import AttrValue, Event, Link, Resource, Scope, Span, span_kind, status_code
from tui.model.telemetry import LogRecord, MetricsSummary

_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId"})
_ID_LENGTHS = {"traceId": 16, "spanId": 8, "parentSpanId": 8}
_ZERO_TRACE_ID = "0" * 32
_ZERO_SPAN_ID = "0" * 16

M = TypeVar("M", bound=Message)


class BadRequest(ValueError):
    """The body cannot be decoded; the message is shown to the sender (HTTP 400 / INVALID_ARGUMENT)."""


@dataclass(slots=True)
class DecodedSpans:
    """Spans decoded from one request, and how many were refused (with why) for a partial success."""

    spans: list[Span]
    rejected: int = 0
    rejection: str = ""


def parse_protobuf(message_type: type[M], body: bytes) -> M:
    """Parse a binary OTLP request, turning every protobuf failure into :class:`BadRequest`."""
    try:
        return message_type.FromString(body)
    except (DecodeError, RecursionError, ValueError) as exc:
        raise BadRequest(f"request body is not a valid {message_type.__name__} protobuf: {exc}") from None


def parse_json(message_type: type[M], body: bytes) -> M:
    """Parse an OTLP/JSON request: hex ids, integer enums, 64-bit ints as strings, unknown keys ignored."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise BadRequest("request body must be a JSON object")
    _hex_ids_to_base64(document)
    try:
        return json_format.ParseDict(document, message_type(), ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError, ValueError, TypeError) as exc:
        raise BadRequest(f"JSON does not match {message_type.__name__}: {exc}") from None


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    """Rewrite OTLP's hex ``traceId``/``spanId``/``parentSpanId`` into the base64 protobuf JSON expects."""
    _rewrite_ids(document, _hex_to_base64)


def _rewrite_ids(document: dict[str, Any], convert: Any) -> None:
    stack: list[Any] = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _ID_KEYS and isinstance(value, str):
                    node[key] = convert(key, value)
                elif isinstance(value, (dict, list)):
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(item for item in node if isinstance(item, (dict, list)))


def to_otlp_json(message: Message) -> dict[str, Any]:
    """The OTLP/JSON form of a request: lowerCamelCase keys, integer enums, hex ids."""
    document = json_format.MessageToDict(message, use_integers_for_enums=True)
    _rewrite_ids(document, lambda _key, value: base64.b64decode(value).hex())
    return document


def _hex_to_base64(key: str, value: str) -> str:
    if not value:
        return ""
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise BadRequest(f"{key} {value[:40]!r} is not hex") from None
    if len(raw) != _ID_LENGTHS[key]:
        raise BadRequest(f"{key} must be {_ID_LENGTHS[key]} bytes ({2 * _ID_LENGTHS[key]} hex digits), got {len(raw)}")
    return base64.b64encode(raw).decode("ascii")


def attribute_value(value: AnyValue) -> AttrValue:
    """Decode an ``AnyValue``; protobuf's own nesting limit bounds the recursion."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "bytes_value":
        return value.bytes_value
    if kind == "array_value":
        return tuple(attribute_value(item) for item in value.array_value.values)
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return None


def attributes(pairs: Any) -> dict[str, AttrValue]:
    """Decode repeated ``KeyValue``; a repeated key keeps its last value, as the SDKs do."""
    return {kv.key: attribute_value(kv.value) for kv in pairs}


def decode_payload(payload: bytes) -> tuple[dict[str, AttrValue], tuple[Event, ...], tuple[Link, ...]]:
    """Attributes, events and links of one serialised ``Span``: decoded only when first read."""
    p = PbSpan.FromString(payload)
    events = tuple(Event(e.name, e.time_unix_nano, attributes(e.attributes), e.dropped_attributes_count)
                   for e in p.events)
    links = tuple(Link(link.trace_id.hex(), link.span_id.hex(), attributes(link.attributes), link.trace_state,
                       link.dropped_attributes_count) for link in p.links)
    return attributes(p.attributes), events, links


def spans_from_request(request: ExportTraceServiceRequest) -> DecodedSpans:
    """Turn a trace export into model spans; spans with invalid ids are refused and counted.

    Only what the index needs is read here (about 3 µs a span, the receivers' hot path: locals,
    positional arguments); attributes, events and links travel as each span's serialised bytes and
    are decoded on first use (:func:`decode_payload`).
    """
    spans: list[Span] = []
    append = spans.append
    make = Span
    kind_of, status_of, decode = span_kind, status_code, decode_payload
    zero_trace, zero_span = _ZERO_TRACE_ID, _ZERO_SPAN_ID
    rejected = 0
    for resource_spans in request.resource_spans:
        resource = Resource(
            attributes(resource_spans.resource.attributes), resource_spans.resource.dropped_attributes_count
        )
        for scope_spans in resource_spans.scope_spans:
            s = scope_spans.scope
            scope = Scope(s.name, s.version, attributes(s.attributes))
            for p in scope_spans.spans:
                trace_id = p.trace_id.hex()
                span_id = p.span_id.hex()
                if len(trace_id) != 32 or len(span_id) != 16 or trace_id == zero_trace or span_id == zero_span:
                    rejected += 1
                    continue
                status = p.status
                append(make(trace_id, span_id, p.name, p.start_time_unix_nano, p.end_time_unix_nano,
                            p.parent_span_id.hex(), kind_of(p.kind), status_of(status.code), status.message,
                            None, (), (), resource, scope, p.trace_state, p.flags, p.dropped_attributes_count,
                            p.dropped_events_count, p.dropped_links_count, p.SerializeToString(), decode))
    rejection = f"{rejected} span(s) had a trace or span id of the wrong length or all zeros" if rejected else ""
    return DecodedSpans(spans, rejected, rejection)


def logs_from_request(request: ExportLogsServiceRequest) -> list[LogRecord]:
    """Log records with their trace/span ids (hex, "" when absent) and their service.

    Of the resource only ``service.name`` is kept, all that is shown of a record's: the rest would be
    held by every record and count against the log store's byte budget for nothing.
    """
    records = []
    for resource_logs in request.resource_logs:
        resource = Resource({"service.name": Resource(attributes(resource_logs.resource.attributes)).service_name})
        for scope_logs in resource_logs.scope_logs:
            for r in scope_logs.log_records:
                trace_id, span_id = r.trace_id.hex(), r.span_id.hex()
                if trace_id == _ZERO_TRACE_ID or span_id == _ZERO_SPAN_ID:
                    trace_id = span_id = ""
                records.append(LogRecord(
                    r.time_unix_nano or r.observed_time_unix_nano, r.severity_text, r.severity_number,
                    attribute_value(r.body), attributes(r.attributes), trace_id, span_id,
                    getattr(r, "event_name", ""), resource))
    return records


_TOKEN_USAGE = "gen_ai.client.token.usage"
_DURATION = "gen_ai.client.operation.duration"
_FIRST_TOKEN = ("gen_ai.server.time_to_first_token", "gen_ai.client.time_to_first_token",
                "gen_ai.client.operation.time_to_first_chunk")


def summarize_metrics(request: ExportMetricsServiceRequest, summary: MetricsSummary) -> int:
    """Add the GenAI client metrics to ``summary`` per model, count every other metric's points, and
    return how many data points the request carried (every metric type)."""
    total = 0
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                if kind is None:
                    continue
                points = getattr(metric, kind).data_points
                total += len(points)
                if metric.name not in (_TOKEN_USAGE, _DURATION, *_FIRST_TOKEN) or kind != "histogram":
                    summary.count_other(metric.name, len(points))
                    continue
                for point in points:
                    a = attributes(point.attributes)
                    model = str(a.get("gen_ai.response.model") or a.get("gen_ai.request.model") or "")
                    usage = summary.usage(model)
                    if metric.name == _TOKEN_USAGE:
                        if a.get("gen_ai.token.type") == "output":
                            usage.output_tokens += point.sum
                        else:
                            usage.input_tokens += point.sum
                    elif metric.name == _DURATION:
                        usage.operations += point.count
                        usage.duration_sum_s += point.sum
                    else:
                        usage.first_token_count += point.count
                        usage.first_token_sum_s += point.sum
    return total


__all__ = [
    "BadRequest",
    "DecodedSpans",
    "ExportLogsServiceRequest",
    "ExportMetricsServiceRequest",
    "ExportTraceServiceRequest",
    "attribute_value",
    "attributes",
    "decode_payload",
    "logs_from_request",
    "summarize_metrics",
    "parse_json",
    "parse_protobuf",
    "spans_from_request",
    "to_otlp_json",
]
