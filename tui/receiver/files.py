"""Saved traces in and out: ``--load FILE...``, ``--save FILE`` and the save keys.

Reads what developers already have:

- OTLP/JSON, one ``ExportTraceServiceRequest`` per line (the OpenTelemetry Collector file
  exporter's format) or one JSON document;
- OTLP protobuf, one request or length-delimited requests;
- the OpenTelemetry Python SDK ``ConsoleSpanExporter`` output (``OTEL_TRACES_EXPORTER=console``:
  pretty-printed JSON objects, one per span, one after another);
- any of those gzip-compressed, from a file or standard input (``-``).

Everything becomes an ``ExportTraceServiceRequest`` and goes through the receivers' own ingest,
so loaded spans are decoded, counted and shown exactly like received ones. Writing is OTLP/JSON
lines, which this module reads back: a round trip gives identical spans. :func:`write_line` is
the one writer of that format, so ``--save`` and the save keys cannot drift apart.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import queue
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from google.protobuf.message import DecodeError
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status as PbStatus

from tui.model.otlp_json import request_json
from tui.model.store import Trace
from tui.receiver.decode import BadRequest, ExportTraceServiceRequest, parse_json, to_otlp_json
from tui.receiver.ingest import Ingest, Outcome

#: Spans per request when converting console-exporter output.
CONSOLE_BATCH = 512
_KINDS = {"SpanKind.INTERNAL": PbSpan.SPAN_KIND_INTERNAL, "SpanKind.SERVER": PbSpan.SPAN_KIND_SERVER,
          "SpanKind.CLIENT": PbSpan.SPAN_KIND_CLIENT, "SpanKind.PRODUCER": PbSpan.SPAN_KIND_PRODUCER,
          "SpanKind.CONSUMER": PbSpan.SPAN_KIND_CONSUMER}
_STATUS = {"UNSET": PbStatus.STATUS_CODE_UNSET, "OK": PbStatus.STATUS_CODE_OK, "ERROR": PbStatus.STATUS_CODE_ERROR}


class UnreadableFile(ValueError):
    """A file that is none of the formats above; the message names the file and what was wrong."""


def read_requests(name: str, data: bytes) -> Iterator[ExportTraceServiceRequest]:
    """Every trace request in one file's bytes (format detected from the content, not the name)."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    stripped = data.lstrip()
    if stripped[:1] in (b"{", b"["):
        yield from _json_requests(name, stripped.decode("utf-8", errors="replace"))
    elif stripped:
        yield from _protobuf_requests(name, data)


def _json_requests(name: str, text: str) -> Iterator[ExportTraceServiceRequest]:
    decoder = json.JSONDecoder()
    console: list[dict[str, Any]] = []
    position = 0
    while True:
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        if position >= len(text):
            break
        try:
            document, position = decoder.raw_decode(text, position)
        except ValueError as exc:
            raise UnreadableFile(f"{name}: not valid JSON at character {position}: {exc}") from None
        for item in document if isinstance(document, list) else [document]:
            if isinstance(item, dict) and "resourceSpans" in item:
                try:
                    yield parse_json(ExportTraceServiceRequest, json.dumps(item).encode())
                except BadRequest as exc:
                    raise UnreadableFile(f"{name}: {exc}") from None
            elif isinstance(item, dict) and "context" in item and "name" in item:
                console.append(item)
                if len(console) >= CONSOLE_BATCH:
                    yield _console_request(name, console)
                    console = []
            elif isinstance(item, dict) and ("resourceLogs" in item or "resourceMetrics" in item):
                continue  # a Collector file with every signal: the traces are what we show
            else:
                raise UnreadableFile(f"{name}: a JSON object that is neither an OTLP trace request nor a "
                                     "console-exporter span")
    if console:
        yield _console_request(name, console)


def _protobuf_requests(name: str, data: bytes) -> Iterator[ExportTraceServiceRequest]:
    delimited = _length_delimited(data)
    if delimited is not None:
        yield from delimited
        return
    try:
        yield ExportTraceServiceRequest.FromString(data)
    except DecodeError as exc:
        raise UnreadableFile(f"{name}: neither OTLP JSON nor an OTLP protobuf request: {exc}") from None


def _length_delimited(data: bytes) -> list[ExportTraceServiceRequest] | None:
    """Requests each preceded by its varint length, or None when the bytes are not laid out so."""
    requests, position = [], 0
    while position < len(data):
        length, shift = 0, 0
        while True:
            if position >= len(data) or shift > 35:
                return None
            byte = data[position]
            position += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        if length == 0 or position + length > len(data):
            return None
        try:
            requests.append(ExportTraceServiceRequest.FromString(data[position:position + length]))
        except DecodeError:
            return None
        position += length
    return requests or None


# --- ConsoleSpanExporter output ---------------------------------------------------------------------

def _console_request(name: str, spans: list[dict[str, Any]]) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    by_resource: dict[str, Any] = {}
    for item in spans:
        resource = item.get("resource") or {}
        key = json.dumps(resource.get("attributes") or {}, sort_keys=True, default=str)
        scope_spans = by_resource.get(key)
        if scope_spans is None:
            resource_spans = request.resource_spans.add()
            resource_spans.resource.attributes.extend(_key_values(resource.get("attributes") or {}))
            scope_spans = by_resource[key] = resource_spans.scope_spans.add()
        try:
            scope_spans.spans.append(_console_span(item))
        except (KeyError, ValueError, TypeError) as exc:
            raise UnreadableFile(f"{name}: a console-exporter span that cannot be read: {exc!r}") from None
    return request


def _console_span(item: dict[str, Any]) -> PbSpan:
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


# --- loading into the app -----------------------------------------------------------------------------

def read_source(path: str) -> tuple[str, bytes]:
    """(display name, bytes) of a file, or of standard input for ``-``."""
    if path == "-":
        return "<stdin>", sys.stdin.buffer.read()
    try:
        return path, Path(path).read_bytes()
    except OSError as exc:
        raise UnreadableFile(f"{path}: {exc.strerror or exc}") from None


async def load_into(ingest: Ingest, sources: list[tuple[str, bytes]]) -> int:
    """Feed every file's traces through the ingest, waiting out back-pressure; returns spans offered."""
    total = 0
    for name, data in sources:
        for request in read_requests(name, data):
            while ingest.traces("file", request).outcome is Outcome.OVERLOADED:
                await asyncio.sleep(0.05)  # the store is catching up; the file can wait, unlike an exporter
            total += sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
            await asyncio.sleep(0)
    return total


# --- --save and the save keys ------------------------------------------------------------------------

def write_line(out: TextIO, document: Mapping[str, Any]) -> None:
    """One OTLP/JSON ``ExportTraceServiceRequest`` as one compact line: the Collector file exporter's
    layout, which :func:`read_requests` reads back."""
    out.write(json.dumps(document, separators=(",", ":")) + "\n")


def save_traces(path: Path, traces: Iterable[Trace]) -> tuple[int, int]:
    """Write ``traces`` to ``path`` (replacing it), one request per trace; returns (traces, spans) written.

    Raises :class:`OSError` when the file cannot be written.
    """
    trace_count = span_count = 0
    with path.open("w", encoding="utf-8") as out:
        for trace in traces:
            write_line(out, request_json(trace.spans.values()))
            trace_count += 1
            span_count += trace.span_count
    return trace_count, span_count


class RequestRecorder:
    """``--save FILE``: every accepted trace request appended as one OTLP/JSON line, as it arrives.

    Converting to JSON and writing happen on a thread of their own, so the receivers never wait for
    the disk; each line is flushed as written, and :meth:`close` drains what is queued, so nothing
    accepted is lost by quitting.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._file: TextIO = path.open("a", encoding="utf-8")
        except OSError as exc:
            raise UnreadableFile(f"--save {path}: {exc.strerror or exc}") from None
        self._queue: queue.Queue[bytes | None] = queue.Queue()
        self._thread = threading.Thread(target=self._write, name="ollama-tui --save", daemon=True)
        self._thread.start()
        self.requests_written = 0

    def record(self, body: bytes, _spans: int) -> None:
        """An ingest listener: ``body`` is the serialised request."""
        self._queue.put(body)

    def _write(self) -> None:
        while (body := self._queue.get()) is not None:
            write_line(self._file, to_otlp_json(ExportTraceServiceRequest.FromString(body)))
            self._file.flush()
            self.requests_written += 1

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._file.close()
