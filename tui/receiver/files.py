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
gave none. A file damaged the way a crash leaves one (a last line cut short, NUL bytes where the data
never reached the disk, a request cut short and the next written onto it) gives every part that is
whole: the damaged ones are named (line and why) in a warning, or, with ``--strict``, end the load.
Everything becomes an ``ExportTraceServiceRequest`` and goes through the receivers' own ingest, so
loaded spans are decoded, counted and shown exactly like received ones. Writing is OTLP/JSON lines,
which this module reads back: a round trip gives identical spans. :func:`write_line` writes it for the
save keys; ``--save`` (:mod:`tui.receiver.recorder`) writes the same lines faster from the protobuf
message (:mod:`tui.receiver.otlp_lines`), and a test holds the two to the same output.
"""

from __future__ import annotations

import asyncio
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
#: Damaged parts a warning names before "and N more".
NAMED_DAMAGE = 3
#: C0 control bytes that text does not hold (tab, line breaks, form feed and ESC aside) and an OTLP
#: protobuf request always does: 0x12 is the tag of every resource's scope spans. NUL is left out: a
#: crash leaves runs of it in text files, which are damage to name, not a sign of protobuf.
_BINARY = re.compile(rb"[\x01-\x08\x0e-\x1a\x1c-\x1f]")
_GZIP = b"\x1f\x8b"
#: What may stand between JSON documents on a line: blanks, and the commas of a pasted list.
_BETWEEN = re.compile(r"[ \t\r\f\v,]*")
_NON_BLANK_LINE = re.compile(r"^[ \t\r\f\v]*[^\s]", re.MULTILINE)
_NULS = re.compile(r"\x00+")
#: The end of a line, or of what a crash left of it.
_LINE_END = re.compile(r"[\n\x00]")
#: How an OTLP/JSON document opens: one that does not parse is damage, where other broken JSON (a printed
#: dict, a brace in a log line) is one of the program's own lines.
_OTLP_START = re.compile(r'\[?\s*\{\s*"resource(?:Spans|Logs|Metrics)"')
#: Zero bytes a protobuf request may itself end with (a double 0.0 as its last value), kept when trailing
#: NULs are cut off it.
_MAX_ZERO_TAIL = 8
_SPAN_FIX = ("a program run with OTEL_TRACES_EXPORTER=console prints spans only once an OpenTelemetry SDK is set "
             "up: run it under opentelemetry-instrument (pip install opentelemetry-distro), or point it at "
             "ollama-tui over OTLP")
_NODE_FIX = ("which cuts long strings and nested values, so it is not read (only the Python SDK's console "
             "format is): send the spans to ollama-tui over OTLP instead, with @opentelemetry/exporter-trace-otlp-http "
             "(see the README's Node recipe)")
_CRASH = "as after a crash"


class UnreadableFile(ValueError):
    """A source that cannot be read or is corrupt (see :func:`read_requests`); the message names the file,
    the line when there is one, and what was wrong."""


@dataclass(frozen=True)
class Damage:
    """One part of a source that could not be read: a line of text, or a request of a protobuf file."""

    unit: str
    number: int
    why: str

    def __str__(self) -> str:
        return f"{self.unit} {self.number:,}: {self.why}"


@dataclass
class SourceReport:
    """What one ``--load`` source held; :func:`read_requests` fills it in as it reads."""

    name: str
    spans: int = 0
    #: Non-blank lines that belonged to no span and no OTLP document: the program's own prints and logs.
    other_lines: int = 0
    #: Spans printed by the Node SDK's console exporter, recognised but not read (see ``console_format``).
    node_spans: int = 0
    #: Parts skipped as damaged, in file order.
    damaged: list[Damage] = field(default_factory=list)
    #: ``--strict``: the first damaged part ends the load (:class:`UnreadableFile`) instead of being skipped.
    strict: bool = False

    def skip(self, number: int, why: str, unit: str = "line") -> None:
        """Note a damaged part, or raise with ``strict``. Damage found twice at one place (a line cut short,
        then the NULs after it) is one damaged part with both reasons."""
        if self.strict:
            raise UnreadableFile(f"{self.name} {unit} {number:,}: {why}")
        last = self.damaged[-1] if self.damaged else None
        if last is not None and (last.unit, last.number) == (unit, number):
            self.damaged[-1] = Damage(unit, number, f"{last.why}; {why}")
        else:
            self.damaged.append(Damage(unit, number, why))

    def warning(self) -> str | None:
        """One sentence naming the damaged parts, or the likely fix when this source gave no span or held
        spans that cannot be read; None when all is well."""
        if self.damaged:
            count = len(self.damaged)
            named = "; ".join(str(damage) for damage in self.damaged[:NAMED_DAMAGE])
            more = f"; and {count - NAMED_DAMAGE:,} more" if count > NAMED_DAMAGE else ""
            return (f"{self.name}: {_count(count, self.damaged[0].unit)} could not be read and "
                    f"{'was' if count == 1 else 'were'} skipped — {named}{more}")
        if self.node_spans:
            return (f"{self.name}: this looks like the Node SDK's console output "
                    f"({_count(self.node_spans, 'span')}), {_NODE_FIX}")
        if not self.spans:
            among = f" among its {_count(self.other_lines, 'line')}" if self.other_lines else ""
            return f"{self.name}: no spans{among} — {_SPAN_FIX}"
        return None

    def notes(self) -> list[str]:
        """What besides spans the source held, for the summary."""
        notes = [_not_spans(self.other_lines)] if self.other_lines else []
        if self.damaged:
            count = len(self.damaged)
            notes.append(f"{_count(count, 'damaged ' + self.damaged[0].unit)} skipped")
        return notes


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
            return "; ".join([f"Loaded {_count(source.spans, 'span')} from {source.name}", *source.notes()])
        parts = [f"{source.spans:,} from {source.name}"
                 + (f" ({', '.join(notes)})" if (notes := source.notes()) else "") for source in self.sources]
        return f"Loaded {_count(self.spans, 'span')}: " + ", ".join(parts)

    def warnings(self) -> list[str]:
        return [warning for source in self.sources if (warning := source.warning()) is not None]


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _not_spans(lines: int) -> str:
    return "1 line was not a span" if lines == 1 else f"{lines:,} lines were not spans"


def _nuls(count: int) -> str:
    return f"{_count(count, 'NUL byte')} (where the data never reached the disk, {_CRASH})"


def read_requests(name: str, data: bytes, report: SourceReport | None = None) -> Iterator[ExportTraceServiceRequest]:
    """Every trace request in one file's bytes (format detected from the content, not the name).

    ``report``, when given, is filled in as the requests are read, damaged parts included (see
    :meth:`SourceReport.skip`). Raises :class:`UnreadableFile` for a file that is corrupt as a whole (a
    broken gzip stream, binary that is no OTLP protobuf), never for lines that are simply not spans.
    """
    report = report if report is not None else SourceReport(name)
    data, ending = _decompressed(name, data)
    if not _BINARY.search(data):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            yield from _counted(_text_requests(text, report, ending), report)
            return
    try:
        requests = _protobuf_requests(data, report, ending)
    except DecodeError as exc:  # or a log with a stray control byte or a legacy encoding: read it as text
        yield from _counted(_text_requests(data.decode("utf-8", errors="replace"), report, ending), report)
        if not report.spans and not report.node_spans:
            raise UnreadableFile(f"{name}: neither OTLP JSON, OTLP protobuf nor console-exporter output "
                                 f"(as protobuf: {exc})") from None
        return
    yield from _counted(requests, report)


def _decompressed(name: str, data: bytes) -> tuple[bytes, str | None]:
    """The content of a gzip file (every member), and what is wrong with its end when it is cut short or
    followed by something else; other bytes as they are."""
    if data[:2] != _GZIP:
        return data, None
    members, rest = [], data
    while rest[:2] == _GZIP:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            members.append(inflater.decompress(rest))
        except zlib.error as exc:
            raise UnreadableFile(f"{name}: gzip-compressed, but cannot be decompressed: {exc}") from None
        if not inflater.eof:
            return b"".join(members), f"the compressed file is cut short here ({_CRASH})"
        rest = inflater.unused_data
    if not rest:
        return b"".join(members), None
    if not rest.strip(b"\0"):
        return b"".join(members), f"after the compressed data, {_nuls(len(rest))}"
    return b"".join(members), f"{_count(len(rest), 'byte')} after the compressed data that are not gzip"


def _counted(requests: Iterable[ExportTraceServiceRequest],
             report: SourceReport) -> Iterator[ExportTraceServiceRequest]:
    for request in requests:
        report.spans += sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
        yield request


class _Lines:
    """Line numbers of offsets met in increasing order, and how many lines spans, requests and damaged
    parts took (the rest of the non-blank lines are the program's own)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.taken = 0
        self._line, self._at, self._last_taken = 1, 0, 0

    def at(self, offset: int) -> int:
        self._line += self.text.count("\n", self._at, offset)
        self._at = offset
        return self._line

    def take(self, start: int, end: int) -> None:
        first = self.at(start)
        last = first + self.text.count("\n", start, end)
        self.taken += max(0, last - max(first, self._last_taken + 1) + 1)
        self._last_taken = max(last, self._last_taken)


def _text_requests(text: str, report: SourceReport, ending: str | None) -> Iterator[ExportTraceServiceRequest]:
    """Every OTLP/JSON request and console span in ``text``, whatever lines stand around them.

    Each line that starts with ``{`` or ``[`` is tried as the start of a JSON document; a document that
    is (or lists) trace requests or console spans is taken, and every other non-blank line is counted in
    ``report.other_lines``. A span torn apart by a line printed into the middle of it is not JSON, so its
    lines are counted there too. Damage is skipped and noted, and the reading goes on after it: a run of
    NULs, an OTLP document that does not parse or is not a valid request, a console span that cannot be
    read, and ``ending`` (what the gzip reader found wrong with the end), noted at the last line.
    """
    decoder = json.JSONDecoder()
    batch = ConsoleBatch()
    lines = _Lines(text)
    position = 0
    while position < len(text):
        gap = _BETWEEN.match(text, position)  # it always matches, if only the empty string
        start = gap.end() if gap else position
        nuls = _NULS.match(text, start)
        if nuls:
            lines.take(start, nuls.end())
            report.skip(lines.at(start), _nuls(nuls.end() - start))
            position = nuls.end()
            continue
        if start < len(text) and text[start] in "{[":
            try:
                document, end = decoder.raw_decode(text, start)
            except json.JSONDecodeError as exc:
                if _OTLP_START.match(text, start):
                    end, why = _damaged_end(text, start, exc)
                    lines.take(start, end)
                    report.skip(lines.at(start), why)
                    position = end + (text.startswith("\n", end))
                    continue
            else:
                line = lines.at(start)
                held = False
                for item in document if isinstance(document, list) else [document]:
                    if isinstance(item, dict) and "resourceSpans" in item:
                        if (request := _otlp_request(line, item, report)) is not None:
                            yield request
                    elif is_console_span(item):
                        _add(line, batch, item, report)
                        if batch.size >= CONSOLE_BATCH:
                            yield batch.request
                            batch = ConsoleBatch()
                    elif not (isinstance(item, dict) and ("resourceLogs" in item or "resourceMetrics" in item)):
                        continue  # not telemetry; a Collector file's logs and metrics are, and are not shown
                    held = True
                if held:
                    lines.take(start, end)
                position = end
                continue
        newline = text.find("\n", start)
        position = len(text) if newline < 0 else newline + 1
    if batch.size:
        yield batch.request
    if ending:
        report.skip(lines.at(len(text)), ending)
    non_blank = sum(1 for _ in _NON_BLANK_LINE.finditer(text))
    report.other_lines += non_blank - lines.taken
    report.node_spans += node_span_count(text)


def _damaged_end(text: str, start: int, exc: json.JSONDecodeError) -> tuple[int, str]:
    """Where an OTLP document that does not parse ends — at its line's end, at the NULs a crash left, or
    where the next request was written onto it — and why it does not parse."""
    line_end = _LINE_END.search(text, start)
    stop = line_end.start() if line_end else len(text)
    restart = _OTLP_START.search(text, start + 1, stop)
    if restart:
        return restart.start(), f"cut short, the next request written onto its end ({_CRASH} and a restart)"
    if exc.pos < stop and not exc.msg.startswith("Unterminated string"):  # a string runs to the file's end
        return stop, f"starts like an OTLP request but is not JSON: {exc.msg} at column {exc.colno:,}"
    if stop == len(text):
        return stop, f"cut short (the file ends mid-line, {_CRASH})"
    return stop, f"cut short (the line ends before its JSON does, {_CRASH})"


def _otlp_request(line: int, item: dict[str, Any], report: SourceReport) -> ExportTraceServiceRequest | None:
    try:
        return parse_json(ExportTraceServiceRequest, json.dumps(item).encode())
    except BadRequest as exc:
        report.skip(line, str(exc))
        return None


def _add(line: int, batch: ConsoleBatch, item: dict[str, Any], report: SourceReport) -> None:
    try:
        batch.add(item)
    except (KeyError, ValueError, TypeError, AttributeError, OverflowError) as exc:
        report.skip(line, f"a console-exporter span that cannot be read: {exc!r}")


def _protobuf_requests(data: bytes, report: SourceReport, ending: str | None) -> list[ExportTraceServiceRequest]:
    """One request, or length-delimited requests; raises ``DecodeError`` for bytes that hold no spans.

    Length-delimited requests cut short give the whole ones before the cut; NULs at the end are cut off.
    Either is noted as damage at the request that follows, as is ``ending`` (what the gzip reader found
    wrong with the end).
    """
    requests, end = _length_delimited(data)
    if end < len(data):
        try:
            single, end = _single_request(data)
            requests = [single]
        except DecodeError:
            if not requests or not all(request.resource_spans for request in requests):
                raise
    if end < len(data):
        tail = len(data) - end
        report.skip(len(requests) + 1, _nuls(tail) if not data[end:].strip(b"\0") else
                    f"cut short: the last {_count(tail, 'byte')} hold no whole request ({_CRASH})", "request")
    if ending:
        report.skip(len(requests) + 1, ending, "request")
    return requests


def _single_request(data: bytes) -> tuple[ExportTraceServiceRequest, int]:
    """One request, and how many of the bytes it took: NULs a crash left after it are not part of it,
    though a request may itself end with a few zero bytes."""
    body = len(data.rstrip(b"\0"))
    errors = []
    for size in (len(data), *range(body, min(len(data), body + _MAX_ZERO_TAIL + 1))):
        try:
            request = ExportTraceServiceRequest.FromString(data[:size])
        except DecodeError as exc:
            errors.append(exc)
            continue
        if request.resource_spans:  # not unknown fields only: text or noise that happened to parse
            return request, size
    raise errors[0] if errors else DecodeError("no resource spans")


def _length_delimited(data: bytes) -> tuple[list[ExportTraceServiceRequest], int]:
    """Requests each preceded by its varint length, read while the bytes are laid out so, and the offset
    where that stopped (the end of ``data`` when they all are)."""
    requests: list[ExportTraceServiceRequest] = []
    start = 0
    while start < len(data):
        length, shift, position = 0, 0, start
        while True:
            if position >= len(data) or shift > 35:
                return requests, start
            byte = data[position]
            position += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        if length == 0 or position + length > len(data):
            return requests, start
        try:
            requests.append(ExportTraceServiceRequest.FromString(data[position:position + length]))
        except DecodeError:
            return requests, start
        start = position + length
    return requests, start


# --- loading into the app -----------------------------------------------------------------------------

def read_source(path: str) -> tuple[str, bytes]:
    """(display name, bytes) of a file, or of standard input for ``-``."""
    if path == "-":
        return "standard input", sys.stdin.buffer.read()
    try:
        return path, Path(path).read_bytes()
    except OSError as exc:
        raise UnreadableFile(f"{path}: {exc.strerror or exc}") from None


async def load_into(ingest: Ingest, sources: list[tuple[str, bytes]], *, strict: bool = False) -> LoadResult:
    """Feed every file's traces through the ingest, waiting out back-pressure; says what each source held.

    Raises :class:`UnreadableFile` for a corrupt source (see :func:`read_requests`), and with ``strict``
    for the first damaged part of one.
    """
    result = LoadResult()
    for name, data in sources:
        report = SourceReport(name, strict=strict)
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
