"""Saved traces in and out: ``--load FILE...``, ``--save FILE`` and the save keys.

Reads what developers already have:

- OTLP/JSON, one ``ExportTraceServiceRequest`` per line (the OpenTelemetry Collector file
  exporter's format) or one JSON document;
- OTLP protobuf, one request or length-delimited requests;
- the OpenTelemetry Python SDK ``ConsoleSpanExporter`` output (``OTEL_TRACES_EXPORTER=console``:
  pretty-printed JSON objects, one per span), mixed with whatever else the program printed;
- any of those gzip-compressed, from a file or standard input (``-``).

Text is read object by object and what is not a span is skipped and counted, since console output is
always interleaved with a program's own prints and logs; a :class:`LoadResult` says how many spans
each source gave and how many lines were not spans, and warns, naming the likely fix, when a source
gave none. Everything becomes an ``ExportTraceServiceRequest`` and goes through the receivers' own
ingest, so loaded spans are decoded, counted and shown exactly like received ones. Writing is
OTLP/JSON lines, which this module reads back: a round trip gives identical spans.
:func:`write_line` is the one writer of that format, so ``--save`` (:mod:`tui.receiver.recorder`) and the save keys cannot drift
apart.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import sys
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from google.protobuf.message import DecodeError

from tui.model.otlp_json import request_json
from tui.model.store import Trace
from tui.receiver.console_format import ConsoleBatch, is_console_span, node_span_count
from tui.receiver.decode import BadRequest, ExportTraceServiceRequest, parse_json
from tui.receiver.ingest import Ingest, Outcome

#: Spans per request when converting console-exporter output.
CONSOLE_BATCH = 512
#: C0 control bytes that text does not hold (tab, line breaks, form feed and ESC aside) and an OTLP
#: protobuf request always does: 0x12 is the tag of every resource's scope spans.
_BINARY = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")
#: What may stand between JSON documents on a line: blanks, and the commas of a pasted list.
_BETWEEN = re.compile(r"[ \t\r\f\v,]*")
_NON_BLANK_LINE = re.compile(r"^[ \t\r\f\v]*[^\s]", re.MULTILINE)
_SPAN_FIX = ("a program run with OTEL_TRACES_EXPORTER=console prints spans only once an OpenTelemetry SDK is set "
             "up: run it under opentelemetry-instrument (pip install opentelemetry-distro), or point it at "
             "ollama-tui over OTLP")
_NODE_FIX = ("which cuts long strings and nested values, so it is not read (only the Python SDK's console "
             "format is): send the spans to ollama-tui over OTLP instead, with @opentelemetry/exporter-trace-otlp-http "
             "(see the README's Node recipe)")


class UnreadableFile(ValueError):
    """A source that cannot be read or is corrupt (see :func:`read_requests`); the message names the file,
    the line when there is one, and what was wrong."""


@dataclass
class SourceReport:
    """What one ``--load`` source held; :func:`read_requests` fills it in as it reads."""

    name: str
    spans: int = 0
    #: Non-blank lines that belonged to no span and no OTLP document: the program's own prints and logs.
    other_lines: int = 0
    #: Spans printed by the Node SDK's console exporter, recognised but not read (see ``console_format``).
    node_spans: int = 0

    def warning(self) -> str | None:
        """One sentence naming the likely fix when this source gave no span or held spans that cannot be
        read; None when all is well."""
        if self.node_spans:
            return (f"{self.name}: this looks like the Node SDK's console output "
                    f"({_count(self.node_spans, 'span')}), {_NODE_FIX}")
        if not self.spans:
            among = f" among its {_count(self.other_lines, 'line')}" if self.other_lines else ""
            return f"{self.name}: no spans{among} — {_SPAN_FIX}"
        return None


@dataclass
class LoadResult:
    """What ``--load`` read: one line for the user, and a warning for each source that needs one."""

    sources: list[SourceReport] = field(default_factory=list)

    @property
    def spans(self) -> int:
        """Spans read and handed to the ingest, over every source."""
        return sum(source.spans for source in self.sources)

    def summary(self) -> str:
        """``Loaded 412 spans from app.log; 37 lines were not spans`` (each source's counts when several)."""
        if len(self.sources) == 1:
            (source,) = self.sources
            other = f"; {_not_spans(source.other_lines)}" if source.other_lines else ""
            return f"Loaded {_count(source.spans, 'span')} from {source.name}{other}"
        parts = [f"{source.spans:,} from {source.name}"
                 + (f" ({_not_spans(source.other_lines)})" if source.other_lines else "") for source in self.sources]
        return f"Loaded {_count(self.spans, 'span')}: " + ", ".join(parts)

    def warnings(self) -> list[str]:
        return [warning for source in self.sources if (warning := source.warning()) is not None]


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _not_spans(lines: int) -> str:
    return "1 line was not a span" if lines == 1 else f"{lines:,} lines were not spans"


def read_requests(name: str, data: bytes, report: SourceReport | None = None) -> Iterator[ExportTraceServiceRequest]:
    """Every trace request in one file's bytes (format detected from the content, not the name).

    ``report``, when given, is filled in as the requests are read. Raises :class:`UnreadableFile` for a
    file that is corrupt (a broken gzip stream, binary that is no OTLP protobuf, a span or request that
    parses as JSON but not as a span), never for lines that are simply not spans.
    """
    report = report if report is not None else SourceReport(name)
    data = _decompressed(name, data)
    if not _BINARY.search(data):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            yield from _counted(_text_requests(name, text, report), report)
            return
    try:
        requests = _protobuf_requests(data)
    except DecodeError as exc:  # or a log with a stray control byte or a legacy encoding: read it as text
        yield from _counted(_text_requests(name, data.decode("utf-8", errors="replace"), report), report)
        if not report.spans and not report.node_spans:
            raise UnreadableFile(f"{name}: neither OTLP JSON, OTLP protobuf nor console-exporter output "
                                 f"(as protobuf: {exc})") from None
        return
    yield from _counted(requests, report)


def _decompressed(name: str, data: bytes) -> bytes:
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise UnreadableFile(f"{name}: gzip-compressed, but cannot be decompressed: {exc}") from None


def _counted(requests: Iterable[ExportTraceServiceRequest],
             report: SourceReport) -> Iterator[ExportTraceServiceRequest]:
    for request in requests:
        report.spans += sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
        yield request


def _text_requests(name: str, text: str, report: SourceReport) -> Iterator[ExportTraceServiceRequest]:
    """Every OTLP/JSON request and console span in ``text``, whatever lines stand around them.

    Each line that starts with ``{`` or ``[`` is tried as the start of a JSON document; a document that
    is (or lists) trace requests or console spans is taken, and every other non-blank line is counted in
    ``report.other_lines``. A span torn apart by a line printed into the middle of it is not JSON, so its
    lines are counted there too.
    """
    decoder = json.JSONDecoder()
    batch = ConsoleBatch()
    line, line_at = 1, 0  # the line number at offset line_at, advanced as the scan moves on
    taken_lines, last_taken = 0, 0  # lines held by spans and requests; the last such line
    position = 0
    while position < len(text):
        gap = _BETWEEN.match(text, position)  # it always matches, if only the empty string
        start = gap.end() if gap else position
        if start < len(text) and text[start] in "{[":
            try:
                document, end = decoder.raw_decode(text, start)
            except ValueError:
                pass
            else:
                line, line_at = line + text.count("\n", line_at, start), start
                held = False
                for item in document if isinstance(document, list) else [document]:
                    if isinstance(item, dict) and "resourceSpans" in item:
                        yield _otlp_request(name, line, item)
                    elif is_console_span(item):
                        _add(name, line, batch, item)
                        if batch.size >= CONSOLE_BATCH:
                            yield batch.request
                            batch = ConsoleBatch()
                    elif not (isinstance(item, dict) and ("resourceLogs" in item or "resourceMetrics" in item)):
                        continue  # not telemetry; a Collector file's logs and metrics are, and are not shown
                    held = True
                if held:
                    last = line + text.count("\n", start, end)
                    taken_lines += last - max(line, last_taken + 1) + 1
                    last_taken = last
                position = end
                continue
        newline = text.find("\n", start)
        position = len(text) if newline < 0 else newline + 1
    if batch.size:
        yield batch.request
    non_blank = sum(1 for _ in _NON_BLANK_LINE.finditer(text))
    report.other_lines += non_blank - taken_lines
    report.node_spans += node_span_count(text)


def _otlp_request(name: str, line: int, item: dict[str, Any]) -> ExportTraceServiceRequest:
    try:
        return parse_json(ExportTraceServiceRequest, json.dumps(item).encode())
    except BadRequest as exc:
        raise UnreadableFile(f"{name} line {line}: {exc}") from None


def _add(name: str, line: int, batch: ConsoleBatch, item: dict[str, Any]) -> None:
    try:
        batch.add(item)
    except (KeyError, ValueError, TypeError, AttributeError, OverflowError) as exc:
        raise UnreadableFile(f"{name} line {line}: a console-exporter span that cannot be read: {exc!r}") from None


def _protobuf_requests(data: bytes) -> list[ExportTraceServiceRequest]:
    """One request, or length-delimited requests; raises ``DecodeError`` for bytes that hold no spans."""
    delimited = _length_delimited(data)
    if delimited is not None:
        return delimited
    request = ExportTraceServiceRequest.FromString(data)
    if not request.resource_spans:  # unknown fields only: text or noise that happened to parse
        raise DecodeError("no resource spans")
    return [request]


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


# --- loading into the app -----------------------------------------------------------------------------

def read_source(path: str) -> tuple[str, bytes]:
    """(display name, bytes) of a file, or of standard input for ``-``."""
    if path == "-":
        return "standard input", sys.stdin.buffer.read()
    try:
        return path, Path(path).read_bytes()
    except OSError as exc:
        raise UnreadableFile(f"{path}: {exc.strerror or exc}") from None


async def load_into(ingest: Ingest, sources: list[tuple[str, bytes]]) -> LoadResult:
    """Feed every file's traces through the ingest, waiting out back-pressure; says what each source held.

    Raises :class:`UnreadableFile` for a corrupt source (see :func:`read_requests`).
    """
    result = LoadResult()
    for name, data in sources:
        report = SourceReport(name)
        result.sources.append(report)
        for request in read_requests(name, data, report):
            while ingest.traces("file", request).outcome is Outcome.OVERLOADED:
                await asyncio.sleep(0.05)  # the store is catching up; the file can wait, unlike an exporter
            await asyncio.sleep(0)
    return result


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
