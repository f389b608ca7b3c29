"""Spans back to OTLP/JSON field names (hex ids, 64-bit integers as strings, integer enums).

Used by ``--print --json`` so the output feeds ``jq`` with the names developers know from the
OTLP specification and the Collector's file exporter.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

from tui.model.span import Attributes, AttrValue, Resource, Scope, Span


def any_value(value: AttrValue) -> dict[str, Any]:
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode("ascii")}
    if isinstance(value, tuple):
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": key_values(value)}}
    return {}


def key_values(attributes: Attributes) -> list[dict[str, Any]]:
    return [{"key": key, "value": any_value(value)} for key, value in attributes.items()]


def span_to_json(span: Span) -> dict[str, Any]:
    """One span as an OTLP/JSON ``Span`` object, plus its ``resource`` and ``scope`` for context."""
    out = _span_fields(span)
    out["resource"] = {"attributes": key_values(span.resource.attributes)}
    out["scope"] = {"name": span.scope.name, "version": span.scope.version}
    return out


def request_json(spans: Iterable[Span]) -> dict[str, Any]:
    """Spans as one OTLP/JSON ``ExportTraceServiceRequest``, grouped by resource and scope — one line
    of the Collector file exporter's format, which ``--load`` reads back."""
    groups: dict[int, tuple[Resource, dict[int, tuple[Scope, list[dict[str, Any]]]]]] = {}
    for span in spans:
        _resource, scopes = groups.setdefault(id(span.resource), (span.resource, {}))
        scopes.setdefault(id(span.scope), (span.scope, []))[1].append(_span_fields(span))
    return {"resourceSpans": [
        {
            "resource": {"attributes": key_values(resource.attributes),
                         "droppedAttributesCount": resource.dropped_attributes_count},
            "scopeSpans": [
                {"scope": {"name": scope.name, "version": scope.version, "attributes": key_values(scope.attributes)},
                 "spans": spans_json}
                for scope, spans_json in scopes.values()
            ],
        }
        for resource, scopes in groups.values()
    ]}


def _span_fields(span: Span) -> dict[str, Any]:
    out: dict[str, Any] = {
        "traceId": span.trace_id,
        "spanId": span.span_id,
    }
    if span.parent_span_id:
        out["parentSpanId"] = span.parent_span_id
    out.update(
        name=span.name,
        kind=int(span.kind),
        startTimeUnixNano=str(span.start_ns),
        endTimeUnixNano=str(span.end_ns),
        attributes=key_values(span.attributes),
    )
    if span.events:
        out["events"] = [
            {"timeUnixNano": str(e.time_ns), "name": e.name, "attributes": key_values(e.attributes),
             "droppedAttributesCount": e.dropped_attributes_count}
            for e in span.events
        ]
    if span.links:
        out["links"] = [
            {"traceId": link.trace_id, "spanId": link.span_id, "traceState": link.trace_state,
             "attributes": key_values(link.attributes), "droppedAttributesCount": link.dropped_attributes_count}
            for link in span.links
        ]
    status: dict[str, Any] = {}
    if span.status_code:
        status["code"] = int(span.status_code)
    if span.status_message:
        status["message"] = span.status_message
    out["status"] = status
    for key, value in (("traceState", span.trace_state), ("flags", span.flags),
                       ("droppedAttributesCount", span.dropped_attributes_count),
                       ("droppedEventsCount", span.dropped_events_count),
                       ("droppedLinksCount", span.dropped_links_count)):
        if value:
            out[key] = value
    return out
