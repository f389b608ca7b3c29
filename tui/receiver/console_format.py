"""What the OpenTelemetry SDKs' console span exporters print (``OTEL_TRACES_EXPORTER=console``).

The Python SDK's ``ConsoleSpanExporter`` prints each span as a pretty-printed JSON object: that is read
back span by span, whatever the program printed around it. The Node SDK's prints each span with
``console.dir(span, {depth: 3})``, Node's display format, which cuts long strings ("... 50 more
characters") and nested values (``[Array]``, ``[Object]``) and keeps no types for what it shows: it is
only recognised, so the user is told to export over OTLP instead of being handed spans with values
silently missing.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status as PbStatus

from tui.receiver.decode import ExportTraceServiceRequest

_KINDS = {"SpanKind.INTERNAL": PbSpan.SPAN_KIND_INTERNAL, "SpanKind.SERVER": PbSpan.SPAN_KIND_SERVER,
          "SpanKind.CLIENT": PbSpan.SPAN_KIND_CLIENT, "SpanKind.PRODUCER": PbSpan.SPAN_KIND_PRODUCER,
          "SpanKind.CONSUMER": PbSpan.SPAN_KIND_CONSUMER}
_STATUS = {"UNSET": PbStatus.STATUS_CODE_UNSET, "OK": PbStatus.STATUS_CODE_OK, "ERROR": PbStatus.STATUS_CODE_ERROR}

#: The line that opens a span's own trace id in the Node SDK's output: two spaces in, so the ids of
#: ``parentSpanContext`` and links (deeper) are not counted as spans.
_NODE_SPAN = re.compile(r"^  traceId: '[0-9a-f]{32}',\r?$", re.MULTILINE)


def is_console_span(item: object) -> bool:
    """A JSON object shaped like one of the Python SDK's console spans, not merely a log line that has a
    ``name`` or a trace id."""
    if not isinstance(item, dict) or not {"name", "start_time", "end_time"} <= item.keys():
        return False
    context = item.get("context")
    return isinstance(context, dict) and "trace_id" in context and "span_id" in context


def node_span_count(text: str) -> int:
    """How many spans in ``text`` are in the Node SDK's console format."""
    return len(_NODE_SPAN.findall(text))


class ConsoleBatch:
    """Console spans gathered into one OTLP request, grouped by their resource."""

    def __init__(self) -> None:
        self.request = ExportTraceServiceRequest()
        self.size = 0
        self._by_resource: dict[str, Any] = {}

    def add(self, item: dict[str, Any]) -> None:
        """Add one console span object (see :func:`is_console_span`).

        Raises ``KeyError``, ``ValueError``, ``TypeError``, ``AttributeError`` or ``OverflowError`` when a
        field is missing or its ids, times or events are malformed; nothing is added then.
        """
        span = console_span(item)
        resource = item.get("resource") or {}
        key = json.dumps(resource.get("attributes") or {}, sort_keys=True, default=str)
        scope_spans = self._by_resource.get(key)
        if scope_spans is None:
            resource_spans = self.request.resource_spans.add()
            resource_spans.resource.attributes.extend(_key_values(resource.get("attributes") or {}))
            scope_spans = self._by_resource[key] = resource_spans.scope_spans.add()
        scope_spans.spans.append(span)
        self.size += 1


def console_span(item: dict[str, Any]) -> PbSpan:
    """One console span object as an OTLP span (raises as :meth:`ConsoleBatch.add` says)."""
    context = item["context"]
    span = PbSpan(
        trace_id=_console_id(context["trace_id"], 16),
        span_id=_console_id(context["span_id"], 8),
        name=str(item["name"]),
        kind=_KINDS.get(str(item.get("kind")), PbSpan.SPAN_KIND_UNSPECIFIED),
        start_time_unix_nano=_iso_ns(item["start_time"]),
        end_time_unix_nano=_iso_ns(item["end_time"]),
    )
    if item.get("parent_id"):
        span.parent_span_id = _console_id(item["parent_id"], 8)
    status = item.get("status") or {}
    span.status.code = _STATUS.get(str(status.get("status_code", "UNSET")), PbStatus.STATUS_CODE_UNSET)
    if status.get("description"):
        span.status.message = str(status["description"])
    span.attributes.extend(_key_values(item.get("attributes") or {}))
    for event in item.get("events") or []:
        span.events.add(name=str(event.get("name", "")), time_unix_nano=_iso_ns(event["timestamp"]),
                        attributes=_key_values(event.get("attributes") or {}))
    for link in item.get("links") or []:
        link_context = link.get("context") or {}
        span.links.add(trace_id=_console_id(link_context["trace_id"], 16),
                       span_id=_console_id(link_context["span_id"], 8),
                       attributes=_key_values(link.get("attributes") or {}))
    return span


def _console_id(value: str, size: int) -> bytes:
    return int(str(value), 16).to_bytes(size, "big")


def _iso_ns(value: str) -> int:
    """The console exporter's ISO-8601 UTC times (microsecond precision) as Unix nanoseconds."""
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def _key_values(attributes: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=str(key), value=_any_value(value)) for key, value in attributes.items()]


def _any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, (list, tuple)):
        result = AnyValue()
        result.array_value.values.extend(_any_value(v) for v in value)
        return result
    if isinstance(value, dict):
        result = AnyValue()
        result.kvlist_value.values.extend(_key_values(value))
        return result
    return AnyValue(string_value=str(value))
