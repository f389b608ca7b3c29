"""A trace request as one OTLP/JSON line, written straight from the protobuf message.

``--save`` converts every accepted request on its writer thread, under the same lock as the receivers
(the GIL), so the conversion's cost is what decides how far the writer can follow a flood. protobuf's
``json_format`` walks every field by reflection and builds dicts that ``json.dumps`` walks again; here
the fields of spans and attributes, the bulk of a request, are named once and written as text. The
small envelopes (resource, scope) still go through :func:`to_otlp_json`, and a protobuf schema with a
span or attribute field this module does not know makes :func:`request_line` use :func:`to_otlp_json`
whole, so an upgrade can slow the writer down but never drop a field.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Iterable
from json.encoder import encode_basestring_ascii as _quoted
from typing import TypeVar

from google.protobuf.message import Message
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from tui.receiver.decode import ExportTraceServiceRequest, to_otlp_json

M = TypeVar("M", bound=Message)
#: The fields written by hand, per message; a schema with any other field takes the generic path.
_KNOWN_FIELDS: dict[type[Message], set[str]] = {
    Span: {"trace_id", "span_id", "trace_state", "parent_span_id", "flags", "name", "kind", "start_time_unix_nano",
           "end_time_unix_nano", "attributes", "dropped_attributes_count", "events", "dropped_events_count",
           "links", "dropped_links_count", "status"},
    Span.Event: {"time_unix_nano", "name", "attributes", "dropped_attributes_count"},
    Span.Link: {"trace_id", "span_id", "trace_state", "attributes", "dropped_attributes_count", "flags"},
    Status: {"message", "code"},
    KeyValue: {"key", "value", "key_strindex"},
    AnyValue: {"string_value", "bool_value", "int_value", "double_value", "array_value", "kvlist_value",
               "bytes_value", "string_value_strindex"},
    ScopeSpans: {"scope", "spans", "schema_url"},
    ResourceSpans: {"resource", "scope_spans", "schema_url"},
}
#: Whether the installed schema is the one written by hand.
FAST = all(set(message.DESCRIPTOR.fields_by_name) <= known for message, known in _KNOWN_FIELDS.items())


def request_line(request: ExportTraceServiceRequest) -> str:
    """``request`` as the compact OTLP/JSON line :func:`tui.receiver.files.write_line` writes, with no newline."""
    if not FAST:
        return json.dumps(to_otlp_json(request), separators=(",", ":"))
    return '{"resourceSpans":[' + ",".join(_resource_spans(rs) for rs in request.resource_spans) + "]}"


def _resource_spans(rs: ResourceSpans) -> str:
    parts = []
    if rs.HasField("resource"):
        parts.append('"resource":' + _envelope(rs.resource))
    if rs.scope_spans:
        parts.append('"scopeSpans":[' + ",".join(_scope_spans(ss) for ss in rs.scope_spans) + "]")
    if rs.schema_url:
        parts.append('"schemaUrl":' + _quoted(rs.schema_url))
    return "{" + ",".join(parts) + "}"


def _scope_spans(ss: ScopeSpans) -> str:
    parts = []
    if ss.HasField("scope"):
        parts.append('"scope":' + _envelope(ss.scope))
    if ss.spans:
        parts.append('"spans":[' + ",".join(_span(span) for span in ss.spans) + "]")
    if ss.schema_url:
        parts.append('"schemaUrl":' + _quoted(ss.schema_url))
    return "{" + ",".join(parts) + "}"


def _envelope(message: Message) -> str:
    """A resource or scope: one per request or so, so the generic converter costs nothing here."""
    return json.dumps(to_otlp_json(message), separators=(",", ":"))


def _span(span: Span) -> str:
    parts = []
    if span.trace_id:
        parts.append(f'"traceId":"{span.trace_id.hex()}"')
    if span.span_id:
        parts.append(f'"spanId":"{span.span_id.hex()}"')
    if span.trace_state:
        parts.append('"traceState":' + _quoted(span.trace_state))
    if span.parent_span_id:
        parts.append(f'"parentSpanId":"{span.parent_span_id.hex()}"')
    if span.flags:
        parts.append(f'"flags":{span.flags}')
    if span.name:
        parts.append('"name":' + _quoted(span.name))
    if span.kind:
        parts.append(f'"kind":{span.kind}')
    if span.start_time_unix_nano:
        parts.append(f'"startTimeUnixNano":"{span.start_time_unix_nano}"')
    if span.end_time_unix_nano:
        parts.append(f'"endTimeUnixNano":"{span.end_time_unix_nano}"')
    if span.attributes:
        parts.append('"attributes":' + _key_values(span.attributes))
    if span.dropped_attributes_count:
        parts.append(f'"droppedAttributesCount":{span.dropped_attributes_count}')
    if span.events:
        parts.append('"events":[' + ",".join(_event(event) for event in span.events) + "]")
    if span.dropped_events_count:
        parts.append(f'"droppedEventsCount":{span.dropped_events_count}')
    if span.links:
        parts.append('"links":[' + ",".join(_link(link) for link in span.links) + "]")
    if span.dropped_links_count:
        parts.append(f'"droppedLinksCount":{span.dropped_links_count}')
    if span.HasField("status"):
        status = span.status
        inner = ([f'"message":{_quoted(status.message)}'] if status.message else []) + (
            [f'"code":{status.code}'] if status.code else [])
        parts.append('"status":{' + ",".join(inner) + "}")
    return "{" + ",".join(parts) + "}"


def _event(event: Span.Event) -> str:
    parts = []
    if event.time_unix_nano:
        parts.append(f'"timeUnixNano":"{event.time_unix_nano}"')
    if event.name:
        parts.append('"name":' + _quoted(event.name))
    if event.attributes:
        parts.append('"attributes":' + _key_values(event.attributes))
    if event.dropped_attributes_count:
        parts.append(f'"droppedAttributesCount":{event.dropped_attributes_count}')
    return "{" + ",".join(parts) + "}"


def _link(link: Span.Link) -> str:
    parts = []
    if link.trace_id:
        parts.append(f'"traceId":"{link.trace_id.hex()}"')
    if link.span_id:
        parts.append(f'"spanId":"{link.span_id.hex()}"')
    if link.trace_state:
        parts.append('"traceState":' + _quoted(link.trace_state))
    if link.attributes:
        parts.append('"attributes":' + _key_values(link.attributes))
    if link.dropped_attributes_count:
        parts.append(f'"droppedAttributesCount":{link.dropped_attributes_count}')
    if link.flags:
        parts.append(f'"flags":{link.flags}')
    return "{" + ",".join(parts) + "}"


def _key_values(pairs: Iterable[KeyValue]) -> str:
    return "[" + ",".join(_key_value(kv) for kv in pairs) + "]"


def _key_value(kv: KeyValue) -> str:
    value = kv.value
    kind = value.WhichOneof("value")
    key = '{"key":' + _quoted(kv.key) if kv.key else "{"
    if kv.key_strindex or not kv.key or kind is None:  # rare shapes: written field by field
        parts = [key[1:]] if kv.key else []
        if kind is not None or kv.HasField("value"):
            parts.append('"value":' + _any_value(value))
        if kv.key_strindex:
            parts.append(f'"keyStrindex":{kv.key_strindex}')
        return "{" + ",".join(parts) + "}"
    if kind == "string_value":  # most attributes: written in one go
        return key + ',"value":{"stringValue":' + _quoted(value.string_value) + "}}"
    return key + ',"value":' + _any_value(value) + "}"


def _any_value(value: AnyValue) -> str:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return '{"stringValue":' + _quoted(value.string_value) + "}"
    if kind == "int_value":
        return f'{{"intValue":"{value.int_value}"}}'
    if kind == "bool_value":
        return '{"boolValue":true}' if value.bool_value else '{"boolValue":false}'
    if kind == "double_value":
        return '{"doubleValue":' + _double(value.double_value) + "}"
    if kind == "array_value":
        return '{"arrayValue":' + _values(value.array_value.values, _any_value) + "}"
    if kind == "kvlist_value":
        return '{"kvlistValue":' + _values(value.kvlist_value.values, _key_value) + "}"
    if kind == "bytes_value":
        return '{"bytesValue":"' + base64.b64encode(value.bytes_value).decode("ascii") + '"}'
    if kind == "string_value_strindex":
        return f'{{"stringValueStrindex":{value.string_value_strindex}}}'
    return "{}"


def _values(items: Iterable[M], write: Callable[[M], str]) -> str:
    """An ``ArrayValue`` or ``KeyValueList``: ``{}`` when empty, as protobuf's JSON writes it."""
    written = [write(item) for item in items]
    return '{"values":[' + ",".join(written) + "]}" if written else "{}"


def _double(value: float) -> str:
    if math.isnan(value):
        return '"NaN"'
    if math.isinf(value):
        return '"Infinity"' if value > 0 else '"-Infinity"'
    return repr(value)
