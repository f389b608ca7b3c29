"""The real command in a subprocess: --print output, --json, a busy port, a public host warning, Ctrl+C.

Every child starts through ``support.processes``: SIGINT at its default even when the test run itself
inherited it ignored, and killed at the end of its test whatever happened.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from support.otlp_bodies import CHILD_ID, ROOT_ID, TRACE_ID, protobuf_request
from support.processes import COMMAND, run, sigint_ignored, started


@contextmanager
def printing(*flags: str, **popen) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """Start ``ollama-tui --print`` on free ports; yield the process and its HTTP port.

    The gRPC port is in ``proc.grpc_port`` (read from the same banner line).
    """
    with started([*COMMAND, "--print", "--grpc-port", "0", "--http-port", "0", *flags],
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen) as proc:
        banner = proc.stderr.readline()
        match = re.search(r"grpc 127\.0\.0\.1:(\d+) · http 127\.0\.0\.1:(\d+)", banner)
        assert match, banner
        proc.grpc_port = int(match.group(1))  # type: ignore[attr-defined]
        yield proc, int(match.group(2))


def post(port: int, body: bytes) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/traces", data=body,
                                     headers={"Content-Type": "application/x-protobuf"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    return out, err


def test_print_shows_a_known_trace_as_a_tree() -> None:
    with printing() as (proc, port):
        assert post(port, protobuf_request().SerializeToString()) == 200
        out, err = stop(proc)
    assert out.splitlines() == [
        f"trace {TRACE_ID}  js-app  GET /chat  1s  2 spans",
        "└─ GET /chat  1s  server  ERROR: upstream failed  http.response.status_code=200",
        "   └─ chat llama3.2  800ms  client",
    ]
    assert "2 spans accepted" in err and "1 traces held" in err


def test_print_escapes_terminal_control_sequences() -> None:
    request = protobuf_request()
    root = request.resource_spans[0].scope_spans[0].spans[0]
    root.name = "evil\x1b[2J\x1b]0;pwned\x07\rname"
    root.attributes.append(KeyValue(key="url.path", value=AnyValue(string_value="/x\x1b[31m")))
    with printing() as (proc, port):
        post(port, request.SerializeToString())
        out, _ = stop(proc)
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out
    assert "evil\\e[2J\\e]0;pwned\\x07\\rname" in out
    assert "url.path=/x\\e[31m" in out


def test_print_json_lines_use_otlp_names() -> None:
    with printing("--json") as (proc, port):
        post(port, protobuf_request().SerializeToString())
        out, _ = stop(proc)
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(d["spanId"], d.get("parentSpanId")) for d in lines] == [(ROOT_ID, None), (CHILD_ID, ROOT_ID)]
    root = lines[0]
    assert root["traceId"] == TRACE_ID and root["kind"] == 2
    assert root["startTimeUnixNano"] == "1544712660000000000"
    assert {"key": "http.response.status_code", "value": {"intValue": "200"}} in root["attributes"]
    assert root["status"] == {"code": 2, "message": "upstream failed"}
    assert root["resource"]["attributes"] == [{"key": "service.name", "value": {"stringValue": "js-app"}}]


def test_busy_port_is_one_line_naming_the_flag() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for flag in ("--http-port", "--grpc-port"):
            other = "--grpc-port" if flag == "--http-port" else "--http-port"
            result = run([*COMMAND, "--print", flag, str(port), other, "0"], capture_output=True, text=True)
            assert result.returncode == 2
            assert result.stdout == ""
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1, result.stderr
            assert f"127.0.0.1:{port}" in lines[0] and "already in use" in lines[0] and flag in lines[0]


def test_bad_flags_are_usage_errors() -> None:
    result = run([*COMMAND, "--json"], capture_output=True, text=True)
    assert result.returncode == 2 and "--json only applies with --print" in result.stderr
    result = run([*COMMAND, "--grpc-port", "70000"], capture_output=True, text=True)
    assert result.returncode == 2 and "not a port number" in result.stderr


def test_public_host_prints_a_warning() -> None:
    with started([*COMMAND, "--print", "--host", "0.0.0.0", "--grpc-port", "0", "--http-port", "0"],
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        warning = proc.stderr.readline()
        proc.send_signal(signal.SIGINT)  # during start-up's imports, or once listening: either way a quiet end
        _, rest = proc.communicate(timeout=15)
    assert "warning: listening on 0.0.0.0" in warning and "anyone" in warning
    assert proc.returncode in INTERRUPTED and "Traceback" not in rest and "Exception ignored" not in rest, rest


#: ``main`` returns 130; CPython instead ends the process by SIGINT (-2) when a ``KeyboardInterrupt``
#: escaped code it ran through its C API during start-up, even though ours then caught it. A shell
#: reports both as 130.
INTERRUPTED = (130, -signal.SIGINT)

SWALLOWED_INTERRUPT = """
import signal, sys, weakref
import tui.cli

real_config = tui.cli.receiver_config

class Lock:
    pass

def receiver_config(args):
    # What the import system does as it drops a module lock: a weakref callback, where Python
    # cannot raise; a Ctrl+C landing in one is reported as "Exception ignored" and lost.
    lock = Lock()
    ref = weakref.ref(lock, lambda _: signal.raise_signal(signal.SIGINT))  # held, so its callback runs
    del lock
    return real_config(args)

tui.cli.receiver_config = receiver_config
sys.exit(tui.cli.main(["--print", "--grpc-port", "0", "--http-port", "0"]))
"""


def test_ctrl_c_that_python_swallows_during_start_up_still_ends_the_command() -> None:
    # Before the fix, this run printed "Exception ignored ... KeyboardInterrupt", started listening and
    # waited for a second Ctrl+C.
    result = run([sys.executable, "-c", SWALLOWED_INTERRUPT], capture_output=True, text=True)
    assert result.returncode in INTERRUPTED, result.stderr
    assert "receiving OTLP" not in result.stderr
    assert "Exception ignored" not in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_ctrl_c_while_reading_standard_input_ends_the_command() -> None:
    with started([*COMMAND, "--print", "--host", "0.0.0.0", "--grpc-port", "0", "--http-port", "0", "--load", "-"],
                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        proc.stderr.readline()  # the public-host warning: next it reads standard input, which never ends
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=15)
    assert proc.returncode in INTERRUPTED and "Traceback" not in rest, rest


def test_sigint_ignored_at_start_stays_ignored_and_sigterm_ends_it() -> None:
    """Started as a shell script's background job (SIGINT ignored), the program keeps ignoring SIGINT, as
    Python does, rather than obeying it once running; SIGTERM ends it the clean way."""
    with printing(preexec_fn=sigint_ignored) as (proc, port):
        assert post(port, protobuf_request().SerializeToString()) == 200
        proc.send_signal(signal.SIGINT)
        time.sleep(1.0)
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0 and "2 spans accepted" in err and "Traceback" not in err, err
    assert out.startswith(f"trace {TRACE_ID}  js-app  GET /chat")


APP = """
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.exporter.otlp.proto.{module}.trace_exporter import OTLPSpanExporter

provider = TracerProvider(resource=Resource.create())  # service name from OTEL_SERVICE_NAME
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # endpoint from the environment
with provider.get_tracer("app").start_as_current_span("handle request"):
    with provider.get_tracer("app").start_as_current_span("query"):
        pass
provider.shutdown()
"""


def test_an_app_configured_only_by_otel_env_vars_shows_up() -> None:
    with printing() as (proc, http_port):
        for module, endpoint in (("http", f"http://127.0.0.1:{http_port}"),
                                 ("grpc", f"http://127.0.0.1:{proc.grpc_port}")):  # type: ignore[attr-defined]
            env = {**os.environ, "OTEL_SERVICE_NAME": f"env-app-{module}", "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
            run([sys.executable, "-c", APP.format(module=module)], env=env, check=True, timeout=60)
        out, _ = stop(proc)
    lines = out.splitlines()
    assert len(lines) == 6, out
    for module, block in zip(("http", "grpc"), (lines[:3], lines[3:]), strict=True):
        assert re.fullmatch(rf"trace [0-9a-f]{{32}}  env-app-{module}  handle request  \S+  2 spans", block[0]), block
        assert block[1].startswith("└─ handle request") and block[2].startswith("   └─ query")


NO_TERMINAL = "ollama-tui: the viewer needs a terminal ({} is not one); use --print to print traces as text\n"
NO_KEYS = ("ollama-tui: standard input is not a terminal, so keys cannot be read: run it without a pipe into it, "
           "or use --print\n")


def test_without_a_terminal_the_viewer_says_so_and_exits_at_once() -> None:
    # Before, it ran on, drawing escape sequences into its standard error (~2.4 KB/s while idle).
    result = run([*COMMAND, "--grpc-port", "0", "--http-port", "0"], stdin=subprocess.DEVNULL,
                 capture_output=True, text=True)
    assert result.returncode == 2
    assert (result.stdout, result.stderr) == ("", NO_TERMINAL.format("stdout"))


def _viewer_on_a_terminal(*streams: str) -> tuple[int, str, str]:
    """Start the viewer with a pseudo-terminal for the named streams ("stdin", "stdout", "stderr") and a pipe
    for the others; its exit status, what it wrote to the terminal, and what it wrote to a stderr pipe."""
    import pty
    import select

    master, slave = pty.openpty()
    pipes = {name: slave if name in streams else subprocess.PIPE for name in ("stdin", "stdout", "stderr")}
    with started([*COMMAND, "--grpc-port", "0", "--http-port", "0"], **pipes) as proc:
        os.close(slave)
        written = b""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            try:
                chunk = os.read(master, 65536) if ready else b""
            except OSError:  # every writer has gone: the terminal is closed
                break
            written += chunk
            if proc.poll() is not None and not chunk:
                break
        os.close(master)
        status = proc.wait(timeout=10)
        stderr = proc.stderr.read().decode() if proc.stderr else ""
    return status, written.decode().replace("\r\n", "\n"), stderr


def test_with_standard_input_from_a_pipe_the_viewer_says_keys_cannot_be_read() -> None:
    # `some-command | ollama-tui`: before, the screen was drawn and every key typed was ignored.
    assert _viewer_on_a_terminal("stdout", "stderr") == (2, NO_KEYS, "")


def test_with_standard_error_redirected_the_viewer_says_so() -> None:
    # Textual draws on stderr: redirected, the screen would have gone into the file.
    assert _viewer_on_a_terminal("stdin", "stdout") == (2, "", NO_TERMINAL.format("stderr"))


def _agent_run_file(tmp_path) -> str:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    from support.genai_spans import agent_with_tools
    from support.sdk_spans import record
    from tui.model.otlp_json import request_json
    from tui.receiver.decode import spans_from_request

    path = tmp_path / "agent.jsonl"
    spans = spans_from_request(encode_spans(record(agent_with_tools, "agent"))).spans
    path.write_text(json.dumps(request_json(spans)) + "\n")
    return str(path)


def test_print_shows_an_agent_runs_conversation_under_its_tree(tmp_path) -> None:
    result = run([*COMMAND, "--print", "--load", _agent_run_file(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    tree_end = next(i for i, line in enumerate(lines) if line.startswith("  Conversation · "))
    assert len(lines[:tree_end]) == 5  # the trace line and its four spans, as before
    assert lines[tree_end].startswith("  Conversation · 2 LLM calls · 1 tool call · 260 → 63 tokens · LLM ")
    shape = [line.split(" · ")[0].rstrip() for line in lines[tree_end + 1:]]
    assert shape == [
        "  ▸ weather-agent  (invoke_agent",
        "    instructions: You are a concise assistant for a weather app.",
        "    input: What's the weather in Paris today?",
        "    output: It is rainy in Paris today, around 14 °C, with wind from the west.",
        "    ● qwen3:8b",
        "      system: You are a concise assistant for a weather app.",
        "      user: What's the weather in Paris today?",
        '      → tool call: get_weather({"location": "Paris"}) [call_1]',
        "    ⚙ tool get_weather",
        "      call id call_1",
        '      arguments: {"location": "Paris"}',
        "      result: rainy, 14 °C",
        "    ● qwen3:8b",
        "      ⋯ 3 earlier messages of the history folded",
        "      tool: (result of tool call call_1)",
        "        rainy, 14 °C",
        "      assistant (completion): It is rainy in Paris today, around 14 °C, with wind from the west.",
    ]


def test_print_json_is_unchanged_by_the_conversation(tmp_path) -> None:
    result = run([*COMMAND, "--print", "--json", "--load", _agent_run_file(tmp_path)], capture_output=True,
                 text=True)
    assert result.returncode == 0, result.stderr
    spans = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(span["name"] for span in spans) == ["chat qwen3", "chat qwen3", "execute_tool get_weather",
                                                      "invoke_agent weather-agent"]


def _demo_file(tmp_path) -> str:
    """The six SDK-recorded demo traces as an OTLP JSON lines file."""
    from support.demo_store import demo_store
    from tui.model.otlp_json import request_json

    path = tmp_path / "demo.jsonl"
    spans = [span for trace in demo_store() for span in trace.spans.values()]
    path.write_text(json.dumps(request_json(spans)) + "\n")
    return str(path)


def test_print_filter_prints_only_matching_traces_and_marks_their_spans(tmp_path) -> None:
    result = run([*COMMAND, "--print", "--filter", "service:weather-api kind:client", "--load", _demo_file(tmp_path)],
                 capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    headers = [line for line in result.stdout.splitlines() if line.startswith("trace ")]
    assert len(headers) == 1 and "POST /ask" in headers[0]
    assert "◆ ollama.chat" in result.stdout and "◆ POST /ask" not in result.stdout  # the whole tree, one marked


def test_print_json_filter_prints_only_matching_spans(tmp_path) -> None:
    result = run([*COMMAND, "--print", "--json", "--filter", "status:error OR model:gemma3", "--load",
                  _demo_file(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert sorted(json.loads(line)["name"] for line in result.stdout.splitlines()) == [
        "ChatOllama", "GET /forecast", "fetch upstream"]


def test_a_bad_filter_is_a_usage_error_naming_the_column() -> None:
    result = run([*COMMAND, "--print", "--filter", "service:x dur>5", "--load", "/dev/null"], capture_output=True,
                 text=True)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "ollama-tui: --filter 'service:x dur>5': column 11: '5' needs a unit: ns, us, ms, s, m or h (e.g. 5ms)"]
    result = run([*COMMAND, "--filter", "x"], capture_output=True, text=True)
    assert result.returncode == 2 and "--filter applies with --print" in result.stderr
