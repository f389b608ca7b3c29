"""--load reads every format developers have; --save and the save keys write what --load reads back."""

from __future__ import annotations

import gzip
import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from support.otlp_bodies import protobuf_request, span_fields
from support.receivers import export, make_exporter, running_receivers
from support.sdk_spans import nested_trace, record
from tui.model.otlp_json import request_json
from tui.receiver import ReceiverConfig
from tui.receiver.decode import spans_from_request
from tui.receiver.files import UnreadableFile, load_into, read_requests


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


def test_unreadable_files_say_why() -> None:
    with pytest.raises(UnreadableFile, match=r"x\.json: a JSON object that is neither"):
        list(read_requests("x.json", b'{"hello": 1}'))
    with pytest.raises(UnreadableFile, match=r"x\.bin: neither OTLP JSON nor an OTLP protobuf"):
        list(read_requests("x.bin", b"\xff\xff\xff\xff"))


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
        assert await load_into(again.receivers.ingest, [(str(path), path.read_bytes())]) == 8
        await again.wait_for_spans(8)
        loaded = sorted(span_fields(s) for t in again.store for s in t.spans.values())
    assert loaded == received


def test_print_mode_loads_files_and_stdin(tmp_path: Path) -> None:
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(request_json(spans_from_request(protobuf_request()).spans)) + "\n")
    proc = subprocess.Popen([sys.executable, "-m", "tui", "--print", "--grpc-port", "0", "--http-port", "0",
                             "--load", str(path), "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stderr is not None
    proc.stdin.write(gzip.compress(path.read_bytes()))  # the same trace again, gzipped, on stdin
    proc.stdin.close()
    proc.stderr.readline()  # the banner: receivers are up and the files are being loaded
    time.sleep(1.5)  # printed once the trace has been quiet for half a second
    proc.send_signal(signal.SIGINT)
    proc.stdin = None  # already closed: communicate() must not flush it
    out, err = proc.communicate(timeout=15)
    assert out.decode().startswith("trace 5b8efff798038103d269b633813fc60c  js-app  GET /chat")
    assert "4 spans accepted" in err.decode()


def test_missing_load_file_is_one_line() -> None:
    result = subprocess.run([sys.executable, "-m", "tui", "--print", "--load", "/nonexistent/file.jsonl"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "ollama-tui: --load /nonexistent/file.jsonl: No such file or directory"]
