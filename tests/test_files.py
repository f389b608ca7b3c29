"""--load reads every format developers have; --save and the save keys write what --load reads back."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from support.otlp_bodies import protobuf_request, span_fields
from support.receivers import export, make_exporter, running_receivers
from support.sdk_spans import nested_trace, record
from tui.model.otlp_json import request_json
from tui.model.span import Span, SpanKind, StatusCode
from tui.receiver import ReceiverConfig
from tui.receiver.decode import spans_from_request
from tui.receiver.files import LoadResult, SourceReport, UnreadableFile, load_into, read_requests


def _spans(name: str, data: bytes) -> list:
    return [s for request in read_requests(name, data) for s in spans_from_request(request).spans]


def test_every_format_reads_the_same_spans(tmp_path: Path) -> None:
    request = protobuf_request()
    expected = [span_fields(s) for s in spans_from_request(request).spans]
    line = json.dumps(request_json(spans_from_request(request).spans))
    body = request.SerializeToString()
    formats = {
        "jsonl": (line + "\n" + line + "\n").encode(),
        "pretty": json.dumps(json.loads(line), indent=2).encode(),
        "jsonl.gz": gzip.compress((line + "\n").encode()),
        "pb": body,
        "pb.gz": gzip.compress(body),
    }
    for name, data in formats.items():
        spans = [span_fields(s) for s in _spans(name, data)]
        assert spans[: len(expected)] == expected, name


def test_length_delimited_protobuf(tmp_path: Path) -> None:
    from google.protobuf.internal.encoder import _VarintBytes

    bodies = [protobuf_request().SerializeToString() for _ in range(3)]
    data = b"".join(_VarintBytes(len(b)) + b for b in bodies)
    assert len(_spans("x.pb", data)) == 6


def test_console_span_exporter_output_loads() -> None:
    """What OTEL_TRACES_EXPORTER=console printed, pasted back in."""
    sent = record(nested_trace)
    out = io.StringIO()
    ConsoleSpanExporter(out=out).export(sent)
    printed = out.getvalue()
    spans = {s.name: s for s in _spans("console.txt", printed.encode())}
    assert set(spans) == {"root", "child-a", "grandchild", "child-b"}
    root = next(s for s in sent if s.name == "root")
    assert spans["root"].trace_id == format(root.context.trace_id, "032x")
    assert spans["child-a"].parent_span_id == format(root.context.span_id, "016x")
    assert spans["child-b"].status_message == "boom" and spans["child-b"].events[0].name == "exception"
    assert spans["root"].attributes["int_array"] == (1, 2, 3)
    assert spans["root"].resource.service_name == "test-service"
    assert abs(spans["root"].start_ns - root.start_time) < 1000  # the console prints microseconds


FIXTURES = Path(__file__).parent / "fixtures"
MIXED = (FIXTURES / "python_console_mixed.txt").read_bytes()


def _read(name: str, data: bytes) -> tuple[dict[str, Span], SourceReport]:
    report = SourceReport(name)
    spans = {s.name: s for request in read_requests(name, data, report) for s in spans_from_request(request).spans}
    return spans, report


def test_recorded_console_output_mixed_with_prints_gives_every_span_whole() -> None:
    """python_console_mixed.txt: the real Python SDK's output between a program's prints, log lines, a JSON
    log line, a printed dict and a line opening a brace (see tests/fixtures/record_python_console.py)."""
    spans, report = _read("app.log", MIXED)
    assert (report.spans, report.other_lines, report.node_spans, report.damaged) == (3, 8, 0, [])
    root, chat, save = spans["handle request"], spans["chat llama3.2"], spans["save result"]
    assert {s.trace_id for s in spans.values()} == {"02469659b01b3ed3a6df5418a60664a7"}
    assert (root.span_id, root.parent_span_id, root.kind) == ("175331a92587ab0c", "", SpanKind.SERVER)
    assert chat.parent_span_id == save.parent_span_id == root.span_id and chat.kind is SpanKind.CLIENT
    assert root.start_ns == 1796174662767454000 and root.end_ns == 1796174662769216000
    assert dict(chat.attributes) == {
        "gen_ai.operation.name": "chat", "gen_ai.request.model": "llama3.2", "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 34, "gen_ai.request.temperature": 0.7,
        "gen_ai.response.finish_reasons": ("stop",), "app.stream": True,
        "app.prompt": 'He said "hi"\nand left {braces} [brackets] \\ back\tslash'}
    assert [(e.name, dict(e.attributes)) for e in chat.events] == [
        ("gen_ai.content.prompt", {"gen_ai.prompt": "Why is the sky blue?"})]
    assert (save.status_code, save.status_message) == (StatusCode.ERROR, "could not save")
    assert save.events[0].name == "exception" and save.events[0].attributes["exception.type"] == "OSError"
    assert [(link.span_id, dict(link.attributes)) for link in save.links] == [
        (chat.span_id, {"link.reason": "follows"})]
    assert root.resource.service_name == "console-demo"
    assert root.resource.attributes["deployment.environment"] == "dev"


def test_recorded_opentelemetry_instrument_output_reads_the_same() -> None:
    spans, report = _read("app.log", (FIXTURES / "python_console_instrumented.txt").read_bytes())
    assert set(spans) == {"handle request", "chat llama3.2", "save result"}
    assert (report.spans, report.other_lines) == (3, 8)


def test_a_span_torn_by_a_line_printed_into_it_is_counted_not_fatal() -> None:
    """A print from another thread landing inside a span's JSON (the recorded output, cut open here)."""
    text = MIXED.decode()
    start = text.rindex("\n{\n", 0, text.index('"name": "save result"')) + 1
    end = text.index("\n}\n", start) + 3
    torn = text[:start] + text[start:end].replace('"attributes": {},', '"attributes": {},\nworker 2 done') + text[end:]
    spans, report = _read("app.log", torn.encode())
    assert set(spans) == {"handle request", "chat llama3.2"}
    assert report.other_lines == 8 + text.count("\n", start, end) + 1  # its lines, and the intruder


def test_text_with_a_control_byte_or_a_legacy_encoding_is_still_text() -> None:
    for noise in (b"progress \x08\x08 done\n", b"caf\xe9 ouvert\n"):
        spans, report = _read("app.log", noise + MIXED)
        assert len(spans) == 3 and report.other_lines == 9, noise


def test_a_console_span_that_parses_but_is_wrong_is_skipped_and_named() -> None:
    broken = MIXED.replace(b'"span_id": "0x54343e1d7f83ac8d"', b'"span_id": "0xnothex"')
    line = MIXED[:MIXED.index(b'"name": "save result"')].count(b"\n")  # the span's opening brace
    spans, report = _read("app.log", broken)
    assert set(spans) == {"handle request", "chat llama3.2"} and report.other_lines == 8
    (damage,) = report.damaged
    assert damage.number == line and damage.why.startswith("a console-exporter span that cannot be read: ")
    with pytest.raises(UnreadableFile, match=rf"^app\.log line {line}: a console-exporter span that cannot be "):
        list(read_requests("app.log", broken, SourceReport("app.log", strict=True)))


def _lines(count: int) -> list[bytes]:
    """``count`` OTLP/JSON lines as --save writes them, each a request of two spans."""
    line = json.dumps(request_json(spans_from_request(protobuf_request()).spans), separators=(",", ":"))
    return [(line + "\n").encode()] * count


def test_damaged_lines_are_skipped_and_named_and_every_whole_line_is_read() -> None:
    """Every kind of damage in one file: each is named with its line, and no line after it is lost."""
    lines = _lines(9)
    cut = lines[0][: len(lines[0]) // 2]
    lines[1] = b'{"resourceSpans": "not a list"}\n'  # JSON, but not a request
    lines[3] = cut + b"\n"  # cut short, and the file went on on the next line
    lines[4] = b"{'a python': 'dict', 'printed': True}\n"  # a program's own line: not damage
    lines[5] = cut + lines[5]  # cut short, the next request written onto its end (a restart after a crash)
    lines[6] = b'{"resourceSpans": [}\n'  # starts like OTLP/JSON, does not parse
    data = b"".join(lines) + b"\0" * 4096 + cut  # NULs where the data never reached the disk, then a cut line
    _, report = _read("app.jsonl", data)
    assert report.spans == 2 * 5 and report.other_lines == 1
    assert [(d.unit, d.number) for d in report.damaged] == [("line", n) for n in (2, 4, 6, 7, 10)]
    assert report.damaged[0].why.startswith("JSON does not match ExportTraceServiceRequest: ")
    assert report.damaged[1].why == "cut short (the line ends before its JSON does, as after a crash)"
    assert report.damaged[2].why == "cut short, the next request written onto its end (as after a crash and a restart)"
    assert report.damaged[3].why.startswith("starts like an OTLP request but is not JSON: Expecting value at column 20")
    assert report.damaged[4].why == ("4,096 NUL bytes (where the data never reached the disk, as after a crash); "
                                     "cut short (the file ends mid-line, as after a crash)")
    assert report.warning() == (
        f"app.jsonl: 5 lines could not be read and were skipped — line 2: {report.damaged[0].why}; line 4: "
        f"{report.damaged[1].why}; line 6: {report.damaged[2].why}; and 2 more")
    assert LoadResult([report]).summary() == (
        "Loaded 10 spans from app.jsonl; 1 line was not a span; 5 damaged lines skipped")


def test_strict_ends_at_the_first_damaged_line() -> None:
    lines = _lines(3)
    lines[1] = lines[1][:40] + b"\n"
    report = SourceReport("app.jsonl", strict=True)
    with pytest.raises(UnreadableFile, match=r"^app\.jsonl line 2: cut short \(the line ends before its JSON does"):
        list(read_requests("app.jsonl", b"".join(lines), report))
    assert report.spans == 2 and report.damaged == []


def test_a_gzip_file_cut_short_gives_what_came_before_the_cut() -> None:
    whole = gzip.compress(b"".join(_lines(200)))
    _, report = _read("app.jsonl.gz", whole[: len(whole) // 2])
    (damage,) = report.damaged
    assert 0 < report.spans < 400 and report.spans == 2 * (damage.number - 1)
    assert damage.why == ("cut short (the file ends mid-line, as after a crash); "
                          "the compressed file is cut short here (as after a crash)")
    _, report = _read("app.jsonl.gz", whole + b"\0" * 512)
    assert report.spans == 400 and [str(d) for d in report.damaged] == [
        "line 201: after the compressed data, 512 NUL bytes (where the data never reached the disk, as after a crash)"]


def test_protobuf_cut_short_or_followed_by_nuls_gives_its_whole_requests() -> None:
    from google.protobuf.internal.encoder import _VarintBytes

    request = protobuf_request()
    request.resource_spans[-1].scope_spans[-1].spans[-1].flags = 0x100  # the request's last bytes are zeros
    body = request.SerializeToString()
    assert body.endswith(b"\0\0")
    one = _VarintBytes(len(body)) + body
    delimited = one * 3
    nuls = "4,096 NUL bytes (where the data never reached the disk, as after a crash)"
    cases = {
        "cut": (delimited[:-10], 4,
                f"request 3: cut short: the last {len(one) - 10:,} bytes hold no whole request (as after a crash)"),
        "delimited, then NULs": (delimited + b"\0" * 4096, 6, f"request 4: {nuls}"),
        "one request, then NULs": (body + b"\0" * 4096, 2, f"request 2: {nuls}"),
    }
    for case, (data, count, damage) in cases.items():
        report = SourceReport("spans.pb")
        spans = [s for r in read_requests("spans.pb", data, report) for s in spans_from_request(r).spans]
        assert len(spans) == count and [str(d) for d in report.damaged] == [damage], case
        assert spans[-1].name == "chat llama3.2", case  # whole: its zero bytes were not taken for NULs


def test_no_spans_is_a_warning_naming_the_fix() -> None:
    _, report = _read("app.log", (FIXTURES / "python_console_no_sdk.txt").read_bytes())
    assert (report.spans, report.other_lines) == (0, 8)
    assert report.warning() == (
        "app.log: no spans among its 8 lines — a program run with OTEL_TRACES_EXPORTER=console prints spans only "
        "once an OpenTelemetry SDK is set up: run it under opentelemetry-instrument (pip install "
        "opentelemetry-distro), or point it at ollama-tui over OTLP")
    assert SourceReport("empty.txt").warning() == (
        "empty.txt: no spans — a program run with OTEL_TRACES_EXPORTER=console prints spans only once an "
        "OpenTelemetry SDK is set up: run it under opentelemetry-instrument (pip install opentelemetry-distro), "
        "or point it at ollama-tui over OTLP")
    _, report = _read("x.json", b'{"hello": 1}\n[1, 2]\n')
    assert (report.spans, report.other_lines) == (0, 2)


def test_node_console_output_is_recognised_and_not_half_read() -> None:
    """node_console_mixed.txt, recorded from the real Node SDK (tests/fixtures/record_node_console.js),
    holds "[Array]" and "... 50 more characters" where values were: reading it would lose them silently."""
    data = (FIXTURES / "node_console_mixed.txt").read_bytes()
    assert b"[Array]" in data and b"... 50 more characters" in data
    spans, report = _read("node.log", data)
    assert spans == {} and report.node_spans == 3
    assert report.warning() == (
        "node.log: this looks like the Node SDK's console output (3 spans), which cuts long strings and nested "
        "values, so it is not read (only the Python SDK's console format is): send the spans to ollama-tui over "
        "OTLP instead, with @opentelemetry/exporter-trace-otlp-http (see the README's Node recipe)")


def test_load_result_says_what_each_source_held() -> None:
    one = SourceReport("app.log", spans=412, other_lines=37)
    assert LoadResult([one]).summary() == "Loaded 412 spans from app.log; 37 lines were not spans"
    assert LoadResult([SourceReport("a", spans=1, other_lines=1)]).summary() == (
        "Loaded 1 span from a; 1 line was not a span")
    assert LoadResult([SourceReport("t.jsonl", spans=2)]).summary() == "Loaded 2 spans from t.jsonl"
    both = LoadResult([one, SourceReport("more.pb.gz", spans=4000)])
    assert both.spans == 4412 and both.warnings() == []
    assert both.summary() == "Loaded 4,412 spans: 412 from app.log (37 lines were not spans), 4,000 from more.pb.gz"
    assert LoadResult([one, SourceReport("none.txt", other_lines=3)]).warnings() == [
        SourceReport("none.txt", other_lines=3).warning()]


def test_corrupt_files_say_why_in_one_line() -> None:
    with pytest.raises(UnreadableFile, match=r"^x\.bin: neither OTLP JSON, OTLP protobuf nor console-exporter "
                                             r"output \(as protobuf: .*Wire format was corrupt\)$"):
        list(read_requests("x.bin", b"\xff\xff\xff\xff"))
    corrupt = gzip.compress(b'{"resourceSpans": []}')
    corrupt = corrupt[:10] + b"\xff" + corrupt[11:]  # the first deflate block's header: an invalid block type
    with pytest.raises(UnreadableFile, match=r"^x\.gz: gzip-compressed, but cannot be decompressed: "):
        list(read_requests("x.gz", corrupt))


async def test_save_then_load_round_trip_gives_identical_spans(tmp_path: Path) -> None:
    """--save records what arrives over the wire; loading the file gives the very same spans."""
    path = tmp_path / "saved.jsonl"
    async with running_receivers(ReceiverConfig(grpc_port=0, http_port=0, save=path)) as running:
        recorder = running.receivers.recorder
        assert recorder is not None
        for transport in ("grpc", "http"):
            exporter = make_exporter(running, transport)
            try:
                await export(exporter, record(nested_trace))
            finally:
                exporter.shutdown()
        await running.wait_for_spans(8)
        received = sorted(span_fields(s) for t in running.store for s in t.spans.values())
    assert recorder.requests_written == 2 and len(path.read_text().splitlines()) == 2

    async with running_receivers(pumping=True) as again:
        assert (await load_into(again.receivers.ingest, [(str(path), path.read_bytes())])).spans == 8
        await again.wait_for_spans(8)
        loaded = sorted(span_fields(s) for t in again.store for s in t.spans.values())
    assert loaded == received
