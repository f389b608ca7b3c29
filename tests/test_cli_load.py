"""``--load`` as a command, in real processes: console output piped in from a real instrumented program,
the end of standard input ending ``--print``, warnings for input without spans, a stable order, and
``--save`` files damaged the way a crash leaves them."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.trace import Tracer

from support.otlp_bodies import TRACE_ID, protobuf_request
from support.processes import COMMAND, run, started
from support.sdk_spans import record
from tui.model.otlp_json import request_json
from tui.receiver.decode import spans_from_request
from tui.receiver.recorder import RequestRecorder

FIXTURES = Path(__file__).parent / "fixtures"
APP = FIXTURES / "console_app.py"
#: What --print shows for python_console_mixed.txt, recorded from the real Python SDK.
MIXED_TREE = [
    "trace 02469659b01b3ed3a6df5418a60664a7  console-demo  handle request  1.76ms  3 spans",
    "└─ handle request  1.76ms  server  http.request.method=POST  url.path=/chat  http.response.status_code=200",
    "   ├─ chat llama3.2  153µs  client  gen_ai.operation.name=chat  gen_ai.request.model=llama3.2  "
    "gen_ai.usage.input_tokens=12  gen_ai.usage.output_tokens=34",
    "   └─ save result  605µs  ERROR: could not save",
    "  Conversation · 1 LLM call · 0 tool calls · 12 → 34 tokens · LLM 153µs · tools 0ns · other 1.61ms · 1 error",
    "  ● llama3.2 · 153µs · 12 → 34 tokens · stop",
]


def test_a_program_piped_into_print_load_shows_its_spans_and_the_command_ends() -> None:
    """``OTEL_TRACES_EXPORTER=console python app.py | ollama-tui --print --load -``, both for real: the
    program's prints and logs are skipped and counted, and the command ends with its input (no port
    flag was given, so nothing listens)."""
    with started([sys.executable, str(APP), "--sdk"], stdout=subprocess.PIPE) as app:
        with started([*COMMAND, "--print", "--load", "-"], stdin=app.stdout, stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, text=True) as tui:
            assert app.stdout is not None
            app.stdout.close()  # the pipe is the viewer's now: it ends when the program does
            out, err = tui.communicate(timeout=30)
        assert app.wait(timeout=30) == 0
    assert tui.returncode == 0, err
    lines = out.splitlines()
    assert re.fullmatch(r"trace [0-9a-f]{32}  console-demo  handle request  \S+  3 spans", lines[0]), out
    assert len(lines) == 6, out  # the tree, then its conversation (one LLM call)
    starts = ("└─ handle request  ", "   ├─ chat llama3.2  ", "   └─ save result  ", "  Conversation · 1 LLM call",
              "  ● llama3.2 · ")
    for line, start in zip(lines[1:], starts, strict=True):
        assert line.startswith(start), out
    assert err.splitlines() == ["ollama-tui: Loaded 3 spans from standard input; 8 lines were not spans",
                                "ollama-tui: 3 spans accepted; 1 traces held"]


def test_the_recorded_console_output_prints_the_same_tree() -> None:
    result = run([*COMMAND, "--print", "--load", str(FIXTURES / "python_console_mixed.txt")],
                 capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.splitlines() == MIXED_TREE
    assert "Loaded 3 spans from" in result.stderr and "8 lines were not spans" in result.stderr


def test_a_program_without_an_sdk_gets_a_warning_naming_the_fix() -> None:
    """``OTEL_TRACES_EXPORTER=console python app.py`` without ``opentelemetry-instrument`` prints no span;
    saying "0 spans accepted" and nothing else left the newcomer guessing."""
    env = {**os.environ, "OTEL_TRACES_EXPORTER": "console"}
    printed = run([sys.executable, str(APP)], env=env, capture_output=True, check=True).stdout
    result = run([*COMMAND, "--print", "--load", "-"], input=printed, capture_output=True)
    err = result.stderr.decode()
    assert result.returncode == 0 and result.stdout == b""
    assert err.splitlines()[:2] == [
        "ollama-tui: Loaded 0 spans from standard input; 8 lines were not spans",
        "ollama-tui: warning: standard input: no spans among its 8 lines — a program run with "
        "OTEL_TRACES_EXPORTER=console prints spans only once an OpenTelemetry SDK is set up: run it under "
        "opentelemetry-instrument (pip install opentelemetry-distro), or point it at ollama-tui over OTLP"]


def test_node_console_output_is_named_not_half_read() -> None:
    result = run([*COMMAND, "--print", "--load", str(FIXTURES / "node_console_mixed.txt")],
                 capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout == ""
    (warning,) = [line for line in result.stderr.splitlines() if "warning" in line]
    assert "this looks like the Node SDK's console output (3 spans)" in warning
    assert "over OTLP" in warning and "@opentelemetry/exporter-trace-otlp-http" in warning


def _shuffled_traces(path: Path) -> list[str]:
    """Twelve traces written out of start order (two share a start); returns their ids in start order."""
    traces = []
    for i in range(12):
        request = protobuf_request()
        trace_id = hashlib.sha256(str(i).encode()).digest()[:16]
        start = 1_700_000_000_000_000_000 + ((i * 7) % 11) * 1_000_000_000  # 0 and 11 start together
        for span in request.resource_spans[0].scope_spans[0].spans:
            span.trace_id = trace_id
            span.start_time_unix_nano += start - 1544712660000000000
            span.end_time_unix_nano += start - 1544712660000000000
        traces.append((start, trace_id.hex(), request))
    path.write_text("".join(json.dumps(request_json(spans_from_request(request).spans)) + "\n"
                            for _, _, request in traces))
    return [trace_id for _, trace_id, _ in sorted(traces, key=lambda t: (t[0], t[1]))]


def test_print_load_prints_traces_in_the_same_order_every_run(tmp_path: Path) -> None:
    """The store reports changed traces as a set, whose order follows the string hash seed; traces are
    now printed by start time, then id, whatever the seed."""
    path = tmp_path / "traces.jsonl"
    expected = _shuffled_traces(path)
    outputs = []
    for seed in ("0", "1", "2"):
        result = run([*COMMAND, "--print", "--load", str(path)], env={**os.environ, "PYTHONHASHSEED": seed},
                     capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1] == outputs[2]
    assert [line.split()[1] for line in outputs[0].splitlines() if line.startswith("trace ")] == expected


def test_print_load_with_port_flags_keeps_receiving_after_the_files(tmp_path: Path) -> None:
    """A receivers flag on the command line asks for receivers: the files are printed, then it listens."""
    with started([*COMMAND, "--print", "--grpc-port", "0", "--http-port", "0", "--load",
                  str(FIXTURES / "python_console_mixed.txt"), "-"],
                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        proc.stdin.close()  # standard input is empty
        proc.stdin = None  # closed: communicate() must not flush it
        banner = proc.stderr.readline()
        port = re.search(r"http 127\.0\.0\.1:(\d+)", banner)
        assert port, banner
        assert proc.stderr.readline() == ("ollama-tui: Loaded 3 spans: 3 from "
                                          f"{FIXTURES / 'python_console_mixed.txt'} (8 lines were not spans), "
                                          "0 from standard input\n")
        assert "standard input: no spans" in proc.stderr.readline()
        assert [proc.stdout.readline().rstrip("\n") for _ in MIXED_TREE] == MIXED_TREE  # printed as loaded
        request = urllib.request.Request(f"http://127.0.0.1:{port.group(1)}/v1/traces",
                                         data=protobuf_request().SerializeToString(),
                                         headers={"Content-Type": "application/x-protobuf"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        assert proc.stdout.readline().startswith(f"trace {TRACE_ID}  js-app  GET /chat")  # then what arrives
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0 and "5 spans accepted; 2 traces held" in err


def test_gzipped_standard_input_and_a_file_together(tmp_path: Path) -> None:
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(request_json(spans_from_request(protobuf_request()).spans)) + "\n")
    result = run([*COMMAND, "--print", "--load", str(path), "-"], input=gzip.compress(path.read_bytes()),
                 capture_output=True)
    assert result.returncode == 0
    assert result.stdout.decode().startswith(f"trace {TRACE_ID}  js-app  GET /chat")
    assert f"Loaded 4 spans: 2 from {path}, 2 from standard input" in result.stderr.decode()


def test_missing_load_file_is_one_line() -> None:
    result = run([*COMMAND, "--print", "--load", "/nonexistent/file.jsonl"], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "ollama-tui: --load /nonexistent/file.jsonl: No such file or directory"]


def test_a_corrupt_file_is_one_line_and_status_2(tmp_path: Path) -> None:
    path = tmp_path / "spans.bin"
    path.write_bytes(b"\xff\xfe\x00\x01garbage")
    result = run([*COMMAND, "--print", "--load", str(path)], capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith(f"ollama-tui: {path}: neither OTLP JSON, OTLP protobuf nor "
                                                     "console-exporter output")


def _record(path: Path, traces: int, spans: int = 10) -> None:
    """Append ``traces`` requests of ``spans`` SDK spans each to ``path`` with --save's own recorder."""
    def build(tracer: Tracer) -> None:
        for t in range(traces):
            with tracer.start_as_current_span(f"request {t}"):
                for i in range(spans - 1):
                    with tracer.start_as_current_span(f"step {i}"):
                        pass

    sent = record(build)
    recorder = RequestRecorder(path)
    for first in range(0, len(sent), spans):  # a trace's spans end together: children, then their root
        recorder.record(encode_spans(sent[first:first + spans]).SerializeToString(), spans)
    recorder.close()


def _load(path: Path, *flags: str) -> tuple[int, int, list[str]]:
    """(exit status, spans printed, stderr lines) of ``--print --load path``; spans counted from the tree's
    trace lines, or the lines of ``--json``."""
    result = run([*COMMAND, "--print", *flags, "--load", str(path)], capture_output=True, text=True)
    if "--json" in flags:
        printed = len(result.stdout.splitlines())
    else:
        printed = sum(int(m.group(1)) for m in re.finditer(r"^trace .*  (\d+) spans?$", result.stdout, re.M))
    return result.returncode, printed, [line.replace(str(path), "FILE") for line in result.stderr.splitlines()]


def _cut_middle_line(lines: list[bytes]) -> bytes:
    lines[100] = lines[100][: len(lines[100]) // 2] + b"\n"
    return b"".join(lines)


def _nuls_for_a_middle_line(lines: list[bytes]) -> bytes:
    lines[100] = b"\0" * (len(lines[100]) - 1) + b"\n"
    return b"".join(lines)


def _json_not_a_request(lines: list[bytes]) -> bytes:
    lines[100] = b'{"resourceSpans": {"cut": true}}\n'
    return b"".join(lines)


CRASH = "as after a crash"
DAMAGE = {  # how a crash leaves a 190-line, 1,900-span --save file; the damaged line and why
    "last line cut short": (lambda lines: b"".join(lines)[:-700], 190,
                            f"cut short (the file ends mid-line, {CRASH})"),
    "4096 NULs at the end": (lambda lines: b"".join(lines) + b"\0" * 4096, 191,
                             f"4,096 NUL bytes (where the data never reached the disk, {CRASH})"),
    "a middle line cut short": (_cut_middle_line, 101, f"cut short (the line ends before its JSON does, {CRASH})"),
    "NULs for a middle line": (_nuls_for_a_middle_line, 101, None),
    "JSON but not a request in the middle": (_json_not_a_request, 101,
                                             "JSON does not match ExportTraceServiceRequest: Failed to parse"),
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    path = tmp_path_factory.mktemp("saved") / "app.jsonl"
    _record(path, 190)
    return path.read_bytes().splitlines(keepends=True)


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_save_file_damaged_by_a_crash_loads_every_whole_line(tmp_path: Path, saved: list[bytes],
                                                               damage: str) -> None:
    """Before, the JSON line in the middle stopped the load at 1,000 of 1,900 spans with status 2, and cut
    lines and NULs were silently counted as "not a span"; now every whole line is loaded and the damage named."""
    spoil, line, why = DAMAGE[damage]
    path = tmp_path / "app.jsonl"
    path.write_bytes(spoil(list(saved)))
    for flags in ((), ("--json",)):
        status, printed, err = _load(path, *flags)
        assert (status, printed) == (0, 1890 if line < 191 else 1900), (flags, err)
        assert err[0] == f"ollama-tui: Loaded {printed:,} spans from FILE; 1 damaged line skipped", err
        assert err[1].startswith(f"ollama-tui: warning: FILE: 1 line could not be read and was skipped — line {line}: "
                                 + (why or f"{len(saved[100]) - 1:,} NUL bytes")), err
    status, _, err = _load(path, "--strict")
    assert status == 2 and "Traceback" not in "\n".join(err)
    assert err[-1].startswith(f"ollama-tui: FILE line {line}: " + (why or "")), err


def test_a_restarted_recorder_writing_onto_a_cut_line_loses_only_that_line(tmp_path: Path) -> None:
    """--save killed mid-line, then started again: its first new line is appended to the cut one."""
    path = tmp_path / "app.jsonl"
    _record(path, 100)
    data = path.read_bytes()
    path.write_bytes(data[: data.rindex(b"\n", 0, len(data) - 1) + 200])  # the crash: the 100th line cut
    _record(path, 90)  # the restart
    status, printed, err = _load(path, "--json")
    assert (status, printed) == (0, 1890), err
    assert err[1] == ("ollama-tui: warning: FILE: 1 line could not be read and was skipped — line 100: cut short, "
                      f"the next request written onto its end ({CRASH} and a restart)")


def test_a_gzip_save_file_cut_short_loads_what_came_before(tmp_path: Path, saved: list[bytes]) -> None:
    whole = gzip.compress(b"".join(saved))
    path = tmp_path / "app.jsonl.gz"
    path.write_bytes(whole[: len(whole) // 2])
    status, printed, err = _load(path)
    cut = re.search(r"— line (\d+): cut short \(the file ends mid-line", err[1])
    assert cut, err
    assert status == 0 and printed == 10 * (int(cut.group(1)) - 1) and 0 < printed < 1900, err
    assert err[1].endswith(f"; the compressed file is cut short here ({CRASH})"), err
    assert _load(path, "--strict")[0] == 2
