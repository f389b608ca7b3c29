"""Programs run under ollama-tui: the environment that points their exporters at the receivers, their output
through a pseudo-terminal, their exit status, restarts and stopping them without losing what they flush.

The children are real: ``tests/programs/traced_app.py`` sets up the OpenTelemetry SDK from the environment
alone, as a user's app would, and its spans reach real receivers on loopback port 0.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from support.event_loop import eventually
from support.receivers import Running, running_receivers
from test_layering import imported
from test_security import TOKEN, certificate  # noqa: F401 - the module-scoped certificate fixture
from tui.programs import (
    OutputLine,
    Program,
    ProgramSet,
    ProgramStartError,
    State,
    Status,
    TextStyle,
    is_ollama_serve,
    otel_environment,
    parse_command,
    service_name_for,
)
from tui.programs.output import LineParser, OutputBuffer
from tui.receiver import ReceiverConfig, Security

APP = str(Path(__file__).parent / "programs" / "traced_app.py")
NODE_APP = str(Path(__file__).parent / "programs" / "traced_app.js")
ADDRESSES = [("grpc", "127.0.0.1:4317"), ("http", "127.0.0.1:4318")]
RED, GREEN = TextStyle(fg=1), TextStyle(fg=2)


def user_env(**extra: str) -> dict[str, str]:
    """This test run's environment without any OpenTelemetry setting of its own (nor the CA bundles that
    ``requests`` would prefer to the exporter's certificate), plus ``extra``."""
    skip = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
    return {k: v for k, v in os.environ.items() if not k.startswith("OTEL_") and k not in skip} | extra


def app(*args: str) -> list[str]:
    return [sys.executable, APP, *args]


@contextlib.asynccontextmanager
async def started(programs: ProgramSet) -> AsyncIterator[ProgramSet]:
    """The programs running; stopped however the test ends, so none is left behind."""
    await programs.start_all()
    try:
        yield programs
    finally:
        await programs.stop_all(grace=1.0)


def texts(program: Program) -> list[str]:
    return [line.text for line in program.output.lines]


async def printed(program: Program, text: str) -> None:
    await eventually(lambda: text in texts(program), timeout=30)


def test_the_engine_draws_nothing_itself() -> None:
    """Lines come out as plain data, so the Output pane and ``--print`` render them their own way."""
    assert imported(["tui.programs"], ["textual", "rich", "tui.app"]) == []


# -- the environment ---------------------------------------------------------------------------------------

def test_environment_points_every_signal_at_the_http_receiver() -> None:
    env, overridden = otel_environment(ADDRESSES, service_name="app", base_env={"PATH": "/bin"})
    assert env == {
        "PATH": "/bin",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://127.0.0.1:4318/v1/logs",
        "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://127.0.0.1:4318/v1/metrics",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_EXPORTER_OTLP_TRACES_INSECURE": "true",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_SERVICE_NAME": "app",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OTEL_BLRP_SCHEDULE_DELAY": "200",
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
    }
    assert overridden == []


@pytest.mark.parametrize(("addresses", "user", "expected"), [
    # gRPC only: the gRPC protocol, and per-signal endpoints without an HTTP path
    ([("grpc", "127.0.0.1:4317")], {}, {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                                        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4317",
                                        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}),
    # receivers on every interface are reached on loopback
    ([("http", "0.0.0.0:4318")], {}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}),
    ([("http", "[::]:4318")], {}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://[::1]:4318"}),
    ([("http", "[::1]:9999")], {}, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://[::1]:9999/v1/traces"}),
    # the user's own service name and batch delays win
    (ADDRESSES, {"OTEL_SERVICE_NAME": "mine", "OTEL_BSP_SCHEDULE_DELAY": "5000"},
     {"OTEL_SERVICE_NAME": "mine", "OTEL_BSP_SCHEDULE_DELAY": "5000"}),
    # a service.name among the resource attributes is the user's name too: OTEL_SERVICE_NAME would beat it
    (ADDRESSES, {"OTEL_RESOURCE_ATTRIBUTES": "team=a, service.name = billing"},
     {"OTEL_SERVICE_NAME": None, "OTEL_RESOURCE_ATTRIBUTES": "team=a, service.name = billing"}),
    (ADDRESSES, {"OTEL_RESOURCE_ATTRIBUTES": "service.name="}, {"OTEL_SERVICE_NAME": "app"}),
])
def test_environment_cases(addresses: list[tuple[str, str]], user: dict[str, str],
                           expected: dict[str, str | None]) -> None:
    env, _ = otel_environment(addresses, service_name="app", base_env=user)
    assert {name: env.get(name) for name in expected} == expected


def test_environment_overrides_the_users_exporter_settings_and_names_them() -> None:
    user = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector:4318",  # replaced
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "https://collector:4318/v1/logs",  # replaced
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-api-key=abc",  # removed: it would win over ours
        "OTEL_EXPORTER_OTLP_CLIENT_KEY": "/etc/key.pem",  # removed
        "OTEL_TRACES_EXPORTER": "console",  # replaced
        "OTEL_METRICS_EXPORTER": "otlp",  # already what we set: not an override
        "OTEL_SERVICE_NAME": "mine",  # not an export setting: kept
    }
    env, overridden = otel_environment(ADDRESSES, service_name="app", base_env=user)
    assert overridden == ["OTEL_EXPORTER_OTLP_CLIENT_KEY", "OTEL_EXPORTER_OTLP_ENDPOINT",
                          "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                          "OTEL_TRACES_EXPORTER"]
    assert "OTEL_EXPORTER_OTLP_TRACES_HEADERS" not in env and "OTEL_EXPORTER_OTLP_CLIENT_KEY" not in env
    assert env["OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"] == "http://127.0.0.1:4318/v1/logs"
    assert env["OTEL_SERVICE_NAME"] == "mine"


def test_environment_with_tls_and_a_token() -> None:
    env, _ = otel_environment([("http", "localhost:4318")], service_name="app", token="a b,c=d%/é",
                              ca_file=Path("/certs/cert.pem"), base_env={})
    assert env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] == "https://localhost:4318/v1/traces"
    assert env["OTEL_EXPORTER_OTLP_CERTIFICATE"] == env["OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"] == "/certs/cert.pem"
    assert env["OTEL_EXPORTER_OTLP_INSECURE"] == env["OTEL_EXPORTER_OTLP_TRACES_INSECURE"] == "false"
    # the value is URL-encoded, as the spec asks: the separators in the token cannot split the header list
    assert env["OTEL_EXPORTER_OTLP_HEADERS"] == "authorization=Bearer%20a%20b%2Cc%3Dd%25%2F%C3%A9"


def test_environment_needs_a_receiver() -> None:
    with pytest.raises(ValueError, match="no receiver"):
        otel_environment([], service_name="app", base_env={})


@pytest.mark.parametrize(("argv", "name"), [
    (["ollama", "serve"], "ollama"),
    (["/usr/local/bin/pytest", "-x"], "pytest"),
    (["python3", "-u", "app.py", "--flag"], "app"),
    (["python", "-X", "dev", "-W", "ignore", "src/server.py"], "server"),
    (["python", "-m", "pkg.main"], "pkg.main"),
    (["python", "-c", "print(1)"], "python"),
    (["python"], "python"),
    (["node", "--require", "./tracing.js", "index.mjs"], "index"),
    (["deno", "run", "app.ts"], "app"),
])
def test_service_name_is_the_commands(argv: list[str], name: str) -> None:
    assert service_name_for(argv) == name


# -- output: sanitised lines of styled text ----------------------------------------------------------------

def parse(*chunks: bytes) -> list[OutputLine]:
    parser = LineParser(max_line_chars=100)
    lines = [line for chunk in chunks for line in parser.feed(chunk, run=1)]
    return lines + parser.flush(run=1)


def test_colour_is_kept_as_data_and_carries_over_lines() -> None:
    lines = parse(b"plain \x1b[1;31mbold red\x1b[22m red\r\nstill red\x1b[0m plain\r\n")
    assert [line.segments for line in lines] == [
        (("plain ", TextStyle()), ("bold red", TextStyle(bold=True, fg=1)), (" red", RED)),
        (("still red", RED), (" plain", TextStyle())),
    ]
    assert lines[0].ansi() == "plain \x1b[1;31mbold red\x1b[0m\x1b[31m red\x1b[0m"


@pytest.mark.parametrize(("sgr", "style", "name", "codes"), [
    ("38;5;208", TextStyle(fg=208), "color(208)", "38;5;208"),
    ("38:5:208", TextStyle(fg=208), "color(208)", "38;5;208"),
    ("48;2;10;20;30", TextStyle(bg=(10, 20, 30)), "on #0a141e", "48;2;10;20;30"),
    ("38:2::10:20:30", TextStyle(fg=(10, 20, 30)), "#0a141e", "38;2;10;20;30"),
    ("92;104", TextStyle(fg=10, bg=12), "bright_green on bright_blue", "92;104"),
    ("3;4;7;9;2", TextStyle(italic=True, underline=True, reverse=True, strike=True, dim=True),
     "dim italic underline reverse strike", "2;3;4;7;9"),
    ("4:3", TextStyle(underline=True), "underline", "4"),
    ("38;5;999", TextStyle(), "", ""),  # out of range: ignored
    ("38;2;1", TextStyle(), "", ""),  # truncated: ignored
    ("", TextStyle(), "", ""),
])
def test_sgr_forms(sgr: str, style: TextStyle, name: str, codes: str) -> None:
    parsed = TextStyle().apply(sgr)
    assert (parsed, parsed.name, parsed.sgr) == (style, name, codes)


def test_terminal_escapes_are_removed_and_stray_controls_shown() -> None:
    [line] = parse(b"a\x1b]52;c;c2VjcmV0\x07b\x1b[2J\x1b[H\x1b[10;20Hc\x1b]0;title\x1b\\d\x1bPq#0\x1b\\e"
                   b"\x1b(B\x1b7f\xc2\x9b2Jg\x07h\x08\x1b]8;;http://x")
    assert line.text == "abcdefg\\x07h\\x08"  # 8-bit CSI too; a bell and a backspace shown, not obeyed


def test_carriage_returns_tabs_and_split_reads() -> None:
    # a progress bar shows its last state; a tab goes to the next stop; a character and an escape sequence
    # split across two reads arrive whole; an unfinished last line is kept at the end
    lines = parse(b"10%\r50%\r\x1b[32m100%\x1b[0m\r\n", b"ab\tc\x1b[3", b"1md\xc3", b"\xa9\ntail")
    assert [line.text for line in lines] == ["100%", "ab      cdé", "tail"]
    assert lines[0].segments == (("100%", GREEN),)
    assert lines[1].segments == (("ab      c", TextStyle()), ("dé", RED))


def test_a_long_line_without_newline_is_cut_not_lost() -> None:
    lines = parse(b"x" * 250)
    assert [len(line.text) for line in lines] == [100, 100, 50]


def test_output_buffer_drops_the_oldest_lines_and_counts_them() -> None:
    buffer = OutputBuffer(max_bytes=100)
    for i in range(30):
        buffer.append(OutputLine(((f"line {i:03}", TextStyle()),)))  # 8 bytes and a newline each
    assert [line.text for line in buffer.lines] == [f"line {i:03}" for i in range(19, 30)]
    assert (buffer.total_lines, buffer.dropped_lines, buffer.dropped_bytes, buffer.size) == (30, 19, 171, 99)


# -- commands ----------------------------------------------------------------------------------------------

def test_commands_are_split_like_a_shell_and_bad_ones_are_one_line() -> None:
    assert parse_command("python 'my app.py' --name \"x y\"") == ["python", "my app.py", "--name", "x y"]
    with pytest.raises(ProgramStartError, match=r"^cannot start 'python \"app': no closing quotation$"):
        parse_command('python "app')
    with pytest.raises(ProgramStartError, match=r"^cannot start ' ': empty command$"):
        parse_command(" ")


def test_which_program_is_ollama_serve_and_where_it_listens() -> None:
    assert is_ollama_serve(["/usr/bin/ollama", "serve"]) and not is_ollama_serve(["ollama", "run", "llama3.2"])
    programs = ProgramSet.for_receivers([["python", "app.py"], ["ollama", "serve"]], ADDRESSES, base_env={})
    found = programs.ollama_serve()
    assert found is not None and found[0] is programs.programs[1] and found[1] == "http://127.0.0.1:11434"
    programs = ProgramSet.for_receivers([["ollama", "serve"]], ADDRESSES, base_env={"OLLAMA_HOST": "0.0.0.0:8080"})
    assert programs.ollama_serve() == (programs.programs[0], "http://127.0.0.1:8080")
    assert ProgramSet.for_receivers([["python", "app.py"]], ADDRESSES, base_env={}).ollama_serve() is None


# -- real children -----------------------------------------------------------------------------------------

async def test_an_sdk_program_sends_its_spans_and_its_output_is_followed(running: Running) -> None:
    programs = ProgramSet.for_receivers([app("--spans", "3", "--exit", "3", "--escapes")],
                                        running.receivers.addresses, base_env=user_env())
    events: list[tuple[Program, OutputLine | Status]] = []
    programs.add_listener(lambda program, event: events.append((program, event)))
    async with started(programs):
        [program] = programs.programs
        status = await program.wait()
        assert texts(program)[-1] == "bye"  # its end is reported once its output is in
        await running.wait_for_spans(3)
    assert (status.state, status.exit_code, status.returncode, status.describe()) == (State.EXITED, 3, 3, "exited 3")
    assert programs.returncode == 3
    [trace] = running.store
    assert trace.service_name == "traced_app" and trace.name == "job" and trace.span_count == 3
    assert texts(program) == [
        f"started pid {status.pid} tty True",  # a terminal: the program's output stays line-buffered and coloured
        "out 1", "err 1", "out 2", "err 2",  # stdout and stderr in the order they were written
        "beforeafter \\x07bell",  # clipboard, clear screen, cursor moves and title removed; the bell shown
        "100% done       end",  # the tab to column 16
        "bye",
    ]
    lines = list(program.output.lines)
    assert lines[0].segments[0] == ("started", GREEN)
    assert lines[2].segments == (("err 1", TextStyle(bold=True, fg=1)),)
    assert lines[6].segments[1] == ("done", TextStyle(fg=208))
    states = [event.state for _, event in events if isinstance(event, Status)]
    assert states == [State.STARTING, State.RUNNING, State.EXITED]
    assert events[-1][1] == status  # the last event: after every line
    assert [event.text for _, event in events if isinstance(event, OutputLine)] == texts(program)


async def test_a_program_killed_by_a_signal(running: Running) -> None:
    programs = ProgramSet.for_receivers([app("--kill-self")], running.receivers.addresses, base_env=user_env())
    async with started(programs):
        status = await programs.programs[0].wait()
        await running.wait_for_spans(3)  # it shut its provider down before the signal
    assert (status.state, status.signal, status.returncode) == (State.KILLED, signal.SIGKILL, 137)
    assert status.describe() == "killed by SIGKILL"
    assert programs.returncode == 137


async def test_restart_gives_a_new_process_and_the_output_goes_on(running: Running) -> None:
    programs = ProgramSet.for_receivers([app("--until-term", "flush")], running.receivers.addresses,
                                        base_env=user_env())
    async with started(programs):
        [program] = programs.programs
        await printed(program, "waiting for SIGTERM")
        first = program.status
        await program.restart(grace=30)
        second = program.status
        await eventually(lambda: texts(program).count("waiting for SIGTERM") == 2, timeout=30)
        await running.wait_for_spans(6)  # both runs' spans: the first flushed them on SIGTERM
        stopped = await program.stop(grace=30)
    assert (first.run, second.run, second.state) == (1, 2, State.RUNNING)
    assert second.pid != first.pid
    lines = list(program.output.lines)
    assert [line.run for line in lines if line.text.startswith("started")] == [1, 2]
    assert [line.text for line in lines if line.run == 1][-1] == "flushed"
    assert (stopped.state, stopped.exit_code) == (State.EXITED, 0)
    assert len(running.store) == 2


async def test_stop_all_kills_what_ignores_sigterm_and_loses_no_span_flushed_on_it(running: Running) -> None:
    # With a ten-minute batch delay the spans leave the program only through the shutdown its SIGTERM handler
    # runs, so every span that arrives was flushed on the way out.
    commands = [app("--until-term", "flush", "--spans", "5"), app("--until-term", "ignore")]
    programs = ProgramSet.for_receivers(commands, running.receivers.addresses,
                                        base_env=user_env(OTEL_BSP_SCHEDULE_DELAY="600000"))
    async with started(programs):
        flushing, ignoring = programs.programs
        await printed(flushing, "waiting for SIGTERM")
        await printed(ignoring, "waiting for SIGTERM")
        assert running.store.span_count == 0
        statuses = await programs.stop_all(grace=1.0)
        await running.wait_for_spans(5)
    assert [status.describe() for status in statuses] == ["exited 0", "killed by SIGKILL"]
    assert texts(flushing)[-1] == "flushed"
    assert running.store.span_count == 5 and running.receivers.stats.spans_accepted == 5


async def test_stop_ends_the_whole_process_group() -> None:
    program = Program(["sh", "-c", "sleep 300 & echo $!; wait"])
    await program.start()
    try:
        await eventually(lambda: any(text.isdigit() for text in texts(program)), timeout=30)
        sleeper = int(texts(program)[0])
        status = await program.stop(grace=30)
    finally:
        await program.stop(grace=1.0)
    assert status.describe() == "killed by SIGTERM"

    def gone() -> bool:
        try:
            os.kill(sleeper, 0)
        except ProcessLookupError:
            return True
        return False  # (until its new parent reaps it)

    await eventually(gone, timeout=30)


async def test_a_command_that_cannot_start_is_one_line_naming_it(tmp_path: Path) -> None:
    program = Program(["pytset", "-x"])
    with pytest.raises(ProgramStartError) as raised:
        await program.start()
    assert str(raised.value) == "cannot start 'pytset': command not found"
    assert (program.status.state, program.status.returncode) == (State.FAILED, 127)
    assert await program.wait() == program.status

    script = tmp_path / "app.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    with pytest.raises(ProgramStartError, match=r"^cannot start '.*app\.sh': permission denied \("):
        await Program([str(script)]).start()


async def test_start_all_stops_the_started_ones_when_one_cannot_start() -> None:
    programs = ProgramSet([Program([sys.executable, "-c", "import time; print('up', flush=True); time.sleep(300)"]),
                           Program(["no-such-command-here"])])
    with pytest.raises(ProgramStartError, match=r"^cannot start 'no-such-command-here': command not found$"):
        await programs.start_all()
    first = programs.programs[0].status
    assert first.state is State.KILLED and first.signal == signal.SIGTERM


async def test_output_is_bounded_and_the_last_line_is_kept_without_a_newline() -> None:
    code = "for i in range(10000): print(f'{i:05} ' + 'x' * 94)\nprint('tail', end='')"
    program = Program([sys.executable, "-c", code], max_output_bytes=64 * 1024)
    await program.start()
    try:
        status = await program.wait()
        ended_with = texts(program)[-2:]
    finally:
        await program.stop(grace=1.0)
    output = program.output
    assert status.exit_code == 0
    assert ended_with == ["09999 " + "x" * 94, "tail"]  # all of it read by the time its end is reported
    assert output.total_lines == 10_001
    assert output.dropped_lines == output.total_lines - len(output.lines) > 9_000
    assert output.size <= 64 * 1024


async def test_tls_and_token_reach_the_program_through_its_environment(
        certificate: tuple[Path, Path]) -> None:  # noqa: F811 - the fixture imported above
    cert, key = certificate
    config = ReceiverConfig(grpc_port=None, http_port=0, security=Security(cert, key, TOKEN + " +/="))
    async with running_receivers(config) as running:
        programs = ProgramSet.for_receivers([app()], running.receivers.addresses, token=TOKEN + " +/=",
                                            ca_file=cert, base_env=user_env())
        async with started(programs):
            assert (await programs.programs[0].wait()).exit_code == 0
            await running.wait_for_spans(3)
        assert running.receivers.scheme == "https"
        assert not running.receivers.stats.requests_rejected


NODE_SDK = Path(NODE_APP).parent / "node_modules" / "@opentelemetry" / "sdk-node"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH (the OpenTelemetry JS SDK it needs is "
                                                          "installed by `make test`: npm ci --prefix tests/programs)")
async def test_a_node_sdk_program_sends_its_spans(running: Running) -> None:
    """The SDK is the one ``tests/programs/package-lock.json`` pins; node finds it beside the script, in
    ``tests/programs/node_modules``, whatever the working directory or ``NODE_PATH``."""
    assert NODE_SDK.is_dir(), "no OpenTelemetry JS SDK: `make test` installs it (npm ci --prefix tests/programs)"
    programs = ProgramSet.for_receivers([["node", NODE_APP]], running.receivers.addresses, base_env=user_env())
    async with started(programs):
        [program] = programs.programs
        status = await program.wait()
        await running.wait_for_spans(2)
    assert status.exit_code == 0, texts(program)
    [trace] = running.store
    assert (trace.service_name, trace.name, trace.span_count) == ("traced_app", "node job", 2)
    assert texts(program)[-1] == "node done"
