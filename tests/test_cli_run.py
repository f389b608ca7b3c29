"""``ollama-tui --print -- COMMAND`` and ``--run`` as a CI step: the real command runs a real SDK program with
only the environment it is given, prints the program's output and its traces, and exits with its status."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from subprocess import CompletedProcess

from support.processes import COMMAND, run, started
from tui.app.run import _chat_host
from tui.programs import Program, ProgramSet

APP = str(Path(__file__).parent / "programs" / "traced_app.py")
PORTS = ["--grpc-port", "0", "--http-port", "0"]


def clean_env(**extra: str) -> dict[str, str]:
    """No OpenTelemetry setting of the test run's own: the program gets only what ollama-tui gives it."""
    return {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")} | extra


def ollama_tui(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> CompletedProcess[str]:
    return run([*COMMAND, *args], env=clean_env() if env is None else env, timeout=timeout, capture_output=True,
               text=True)


def test_print_runs_the_program_shows_its_output_and_traces_and_exits_with_its_status() -> None:
    # A wrong endpoint the user left set: ollama-tui overrides it, so the spans still arrive here.
    env = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT="http://collector.invalid:4318")
    result = ollama_tui("--print", *PORTS, "--", sys.executable, APP, "--spans", "3", "--exit", "3", env=env)
    assert result.returncode == 3, result.stderr
    out = result.stdout.splitlines()
    assert out[0].startswith("started pid ") and out[0].endswith("tty True")  # through a pseudo-terminal
    assert "out 1" in out and "err 2" in out and "bye" in out  # stdout and stderr both, in order
    assert out.index("out 1") < out.index("bye")
    tree = "\n".join(out[out.index("bye") + 1:])  # the trace comes once the program's SDK has flushed it
    assert "traced_app" in tree and "job" in tree and "step 1" in tree and "step 2" in tree
    assert f"{sys.executable} {APP} --spans 3 --exit 3 exited 3" in result.stderr
    assert "3 spans accepted" in result.stderr
    assert "\x1b" not in result.stdout  # a pipe gets no colour


def test_print_json_keeps_stdout_for_spans_and_sends_the_output_to_stderr() -> None:
    result = ollama_tui("--print", "--json", *PORTS, "--", sys.executable, APP, "--spans", "2")
    assert result.returncode == 0, result.stderr
    spans = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(span["name"] for span in spans) == ["job", "step 1"]
    assert "out 1" in result.stderr.splitlines() and "bye" in result.stderr.splitlines()


def test_several_programs_are_named_and_the_first_failure_is_the_status() -> None:
    result = ollama_tui("--print", *PORTS, "--run", f"{sys.executable} {APP} --spans 1",
                        "--run", f"{sys.executable} {APP} --spans 1 --exit 5")
    assert result.returncode == 5, result.stderr
    assert result.stdout.count("[python") >= 4  # each line says which program printed it
    assert "2 spans accepted" in result.stderr


def test_a_command_that_cannot_start_is_one_line_naming_it() -> None:
    result = ollama_tui("--print", *PORTS, "--", "pytset", "-x")
    assert result.returncode == 127  # what a shell says of a command not found
    assert result.stderr.splitlines() == ["ollama-tui: cannot start 'pytset': command not found"]
    assert "Traceback" not in result.stderr


def test_bad_run_commands_are_usage_errors() -> None:
    for args, message in ((["--"], "-- takes the command to run after it"),
                          (["--run", "python 'unclosed"], "--run: cannot start")):
        result = ollama_tui("--print", *PORTS, *args)
        assert result.returncode == 2 and message in result.stderr, result.stderr


def test_an_ollama_serve_run_under_us_is_the_chat_panes_ollama_unless_one_was_named() -> None:
    programs = ProgramSet([Program(["python", "app.py"]),
                           Program(["/usr/local/bin/ollama", "serve"], env={"OLLAMA_HOST": "0.0.0.0:5555"})])
    assert _chat_host("http://127.0.0.1:11434", programs, follow=True) == "http://127.0.0.1:5555"
    assert _chat_host("http://gpu-box:11434", programs, follow=False) == "http://gpu-box:11434"  # --ollama-host
    assert _chat_host(None, programs, follow=True) is None  # --no-chat
    assert _chat_host("http://127.0.0.1:11434", ProgramSet([Program(["python", "app.py"])]), follow=True) == \
        "http://127.0.0.1:11434"


def test_sigterm_stops_the_program_first_so_the_spans_it_flushes_on_the_way_out_are_printed() -> None:
    # A ten-minute batch delay (the user's own setting wins over ollama-tui's short one): the spans can only
    # arrive through the SDK's shutdown, which the program runs on SIGTERM.
    env = clean_env(OTEL_BSP_SCHEDULE_DELAY="600000")
    with started([*COMMAND, "--print", *PORTS, "--", sys.executable, APP, "--spans", "3", "--until-term", "flush"],
                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip() == "waiting for SIGTERM":
                break
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "flushed" in out and "job" in out and "step 2" in out  # the trees came after the flush
    assert "3 spans accepted" in err


def test_print_names_a_misconfigured_exporter_and_the_fix_on_stderr() -> None:
    with started([*COMMAND, "--print", *PORTS], env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                 text=True) as proc:
        assert proc.stderr is not None
        port = int(re.search(r"http 127\.0\.0\.1:(\d+)", proc.stderr.readline()).group(1))  # type: ignore[union-attr]
        request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=b"x",
                                         headers={"Content-Type": "application/x-protobuf"})
        with contextlib.suppress(urllib.error.HTTPError):
            urllib.request.urlopen(request, timeout=10)
        line = proc.stderr.readline()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert line.startswith("ollama-tui: 127.0.0.1 sent an export to /, which is not an OTLP path: "
                           "the URL lacks /v1/traces: OTEL_EXPORTER_OTLP_ENDPOINT takes the base URL"), line


def test_the_command_after_dashes_ends_the_run_and_its_status_is_ours_while_run_servers_are_stopped() -> None:
    """``--run 'ollama serve' -- pytest``: the server beside the command would never end by itself."""
    server = f"{sys.executable} {APP} --spans 1 --until-term flush"
    result = ollama_tui("--print", *PORTS, "--run", server, "--", sys.executable, APP, "--spans", "2", "--exit", "4")
    assert result.returncode == 4, result.stderr
    assert "flushed" in result.stdout  # the server got its SIGTERM and flushed its span on the way out
    assert "3 spans accepted" in result.stderr


def test_run_mode_with_load_still_listens_for_the_program() -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl") as empty:
        result = ollama_tui("--print", "--load", empty.name, "--", sys.executable, APP, "--spans", "2")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "2 spans accepted" in result.stderr


def test_a_closed_stdout_ends_the_run_quietly() -> None:
    """``ollama-tui --print -- cmd | head -1``: no traceback per line once the pipe is gone."""
    command = [*COMMAND, "--print", *PORTS, "--", sys.executable, APP, "--spans", "2", "--until-term", "flush"]
    with started(command, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # "started pid N tty True"
        proc.stdout.close()  # as head does after its line
        # The program may have printed everything already: make it print once more (and end), into the pipe
        # that is gone, rather than hope a line was still on its way.
        os.kill(int(first.split()[2]), signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert "Traceback" not in err and "Exception" not in err, err
    assert proc.returncode in (0, 141)  # 141: what a shell reports for a command whose output was closed
