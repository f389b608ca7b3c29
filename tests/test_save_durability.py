"""``--save`` keeps every acknowledged span, however the session ends: SIGTERM, SIGHUP, Ctrl+C twice, ``q``
then Ctrl+C, ``kill -9`` (what was written), and says so in one line when the disk fills.

Real processes, real signals, a real file-size limit (``RLIMIT_FSIZE`` in the child) and ``/dev/full``,
real sockets; every wait polls for its condition with a generous deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import json
import math
import os
import re
import resource
import signal
import struct
import subprocess
import termios
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

import aiohttp
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList

from support.event_loop import eventually
from support.otlp_bodies import protobuf_request
from support.processes import COMMAND, sigint_default, started
from support.receivers import running_receivers
from tui.receiver import ReceiverConfig
from tui.receiver.decode import to_otlp_json
from tui.receiver.files import read_requests
from tui.receiver.ingest import BACK_PRESSURE
from tui.receiver.otlp_lines import FAST, request_line
from tui.receiver.recorder import RequestRecorder

SpanIds = set[tuple[bytes, bytes]]
DEADLINE = 60.0
_BANNER = re.compile(r"grpc 127\.0\.0\.1:(\d+) · http 127\.0\.0\.1:(\d+)")
_TEXT = "the model answered with a long and careful explanation of why the sky looks blue"


def make_request(spans: int) -> tuple[bytes, SpanIds]:
    """A request of new spans (fresh random ids) shaped like an LLM app's, and the ids it holds."""
    request = ExportTraceServiceRequest()
    request.CopyFrom(_shaped(spans))
    trace_id, ids = os.urandom(16), set()
    for span in request.resource_spans[0].scope_spans[0].spans:
        span.trace_id, span.span_id = trace_id, os.urandom(8)
        ids.add((span.trace_id, span.span_id))
    return request.SerializeToString(), ids


@functools.cache
def _shaped(spans: int) -> ExportTraceServiceRequest:
    """Ten attributes a span, prompt and completion text among them, as GenAI instrumentations send."""
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="durability")))
    scope = rs.scope_spans.add()
    for i in range(spans):
        span = scope.spans.add(name=f"chat {i}", kind=3, start_time_unix_nano=1_700_000_000_000_000_000 + i,
                               end_time_unix_nano=1_700_000_001_000_000_000 + i)
        for n in range(8):
            span.attributes.append(KeyValue(key=f"gen_ai.prompt.{n}.content", value=AnyValue(string_value=_TEXT)))
        span.attributes.append(KeyValue(key="gen_ai.usage.input_tokens", value=AnyValue(int_value=i)))
        span.attributes.append(KeyValue(key="gen_ai.request.model", value=AnyValue(string_value="llama3.2")))
    return request


def post(port: int, body: bytes) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/traces", data=body,
                                     headers={"Content-Type": "application/x-protobuf"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


class Flood:
    """Threads posting new 512-span requests as fast as they are answered; what was acknowledged (200)."""

    def __init__(self, port: int, senders: int = 4) -> None:
        self.port = port
        self.acknowledged: SpanIds = set()
        self.requests = 0
        self._lock = threading.Lock()
        self._running = True
        self._threads = [threading.Thread(target=self._send, daemon=True) for _ in range(senders)]
        for thread in self._threads:
            thread.start()

    def _send(self) -> None:
        while self._running:
            body, ids = make_request(512)
            try:
                status = post(self.port, body)
            except OSError:  # the receiver stopped listening: this one was never acknowledged
                return
            if status == 200:
                with self._lock:
                    self.acknowledged |= ids
                    self.requests += 1

    def wait_for(self, requests: int) -> None:
        until(lambda: self.requests >= requests, f"{requests} requests acknowledged")

    def wait_for_backlog(self, path: Path, at_most: int, behind: int = 3) -> None:
        """Until the writer is at work and ``behind`` requests behind: it has written a line (one a request)
        to ``path`` and that many more are acknowledged, so a stop now has a backlog to drain. It falls that
        far behind within the first dozen requests; should it keep up, until ``at_most`` are acknowledged."""
        written = Written(path)

        def behind_or_enough() -> bool:
            acknowledged = self.requests  # before the file is read: the backlog seen is never more than real
            lines = written.lines()
            return (lines > 0 and acknowledged - lines >= behind) or acknowledged >= at_most

        until(behind_or_enough, f"the writer {behind} requests behind, or {at_most} requests acknowledged")

    def stop(self) -> SpanIds:
        self._running = False
        for thread in self._threads:
            thread.join(DEADLINE)
        with self._lock:
            return set(self.acknowledged)


def until(condition: Callable[[], object], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


class Written:
    """The whole lines in a file as it grows, each look reading only what was added since the last."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._read = self._lines = 0

    def lines(self) -> int:
        with contextlib.suppress(FileNotFoundError), self.path.open("rb") as file:
            file.seek(self._read)
            added = file.read()
            self._read += len(added)
            self._lines += added.count(b"\n")
        return self._lines


def saved(path: Path) -> SpanIds:
    """Every span in the file, read back the way ``--load`` reads it (a torn line would fail here)."""
    return {(span.trace_id, span.span_id) for request in read_requests(path.name, path.read_bytes())
            for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans}


class Lines:
    """A child's stderr, read as it comes, so a test can wait for a line without blocking on it."""

    def __init__(self, stream: TextIO) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=lambda: self.lines.extend(iter(stream.readline, "")), daemon=True)
        self._thread.start()

    def wait_for(self, pattern: str) -> str:
        until(lambda: any(pattern in line for line in self.lines), repr(pattern))
        return next(line for line in self.lines if pattern in line)

    def text(self) -> str:
        self._thread.join(DEADLINE)
        return "".join(self.lines)


@contextlib.contextmanager
def printing(save: Path, preexec_fn: Callable[[], None] = sigint_default) -> Iterator[tuple[subprocess.Popen[str],
                                                                                            int, Lines]]:
    """``ollama-tui --print --save FILE`` on free ports: the process, its HTTP port and its stderr."""
    with started([*COMMAND, "--print", "--grpc-port", "0", "--http-port", "0", "--save", str(save)],
                 preexec_fn=preexec_fn, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stderr is not None
        banner = proc.stderr.readline()
        match = _BANNER.search(banner)
        assert match, banner
        yield proc, int(match.group(2)), Lines(proc.stderr)


# --- the writer's fast OTLP/JSON ---------------------------------------------------------------------------

def test_the_writers_json_is_protobufs_own_for_every_field() -> None:
    """The hand-written conversion (what makes the writer keep up) against protobuf's ``json_format``, on a
    request with every value type, events, links, flags, an empty status, odd doubles and odd strings."""
    request = protobuf_request()
    span = request.resource_spans[0].scope_spans[0].spans[0]
    for value in (AnyValue(double_value=3.0), AnyValue(double_value=float("nan")), AnyValue(double_value=-math.inf),
                  AnyValue(), AnyValue(string_value=""), AnyValue(double_value=1e-7), AnyValue(int_value=-5),
                  AnyValue(array_value=ArrayValue()), AnyValue(kvlist_value=KeyValueList())):
        span.attributes.append(KeyValue(key="k", value=value))
    odd = AnyValue(string_value="\ud7ff")
    span.attributes.extend([KeyValue(key=""), KeyValue(key='é\u2028\x00 "q" \x1b', value=odd)])
    span.flags, span.trace_state, span.dropped_events_count = 257, "a=b", 2
    request.resource_spans[0].scope_spans[0].spans.add().status.SetInParent()
    request.resource_spans[0].schema_url = "https://opentelemetry.io/schemas/1.30.0"
    request.resource_spans.add()
    body, _ = make_request(3)
    assert FAST
    for message in (request, ExportTraceServiceRequest.FromString(body)):
        assert json.loads(request_line(message)) == to_otlp_json(message)


# --- --print: every way it is stopped drains what was acknowledged --------------------------------------

@pytest.mark.parametrize("signals", [(signal.SIGTERM,), (signal.SIGHUP,), (signal.SIGINT, signal.SIGINT)],
                         ids=["SIGTERM", "SIGHUP", "Ctrl+C twice"])
def test_print_stopped_mid_flood_saves_every_acknowledged_span(tmp_path: Path,
                                                                signals: tuple[signal.Signals, ...]) -> None:
    path = tmp_path / "session.jsonl"
    with printing(path) as (proc, port, stderr):
        flood = Flood(port)
        flood.wait_for_backlog(path, at_most=40)  # the writer is behind: a backlog is waiting
        for sig in signals:  # while the flood goes on
            proc.send_signal(sig)
        proc.wait(DEADLINE)
        acknowledged = flood.stop()
    err, in_file = stderr.text(), saved(path)
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert acknowledged and acknowledged <= in_file
    summary = err.strip().splitlines()[-1]  # however it was stopped
    assert "spans accepted" in summary and f"saved {len(in_file):,} spans" in summary, summary


def test_kill_9_loses_nothing_the_writer_had_written(tmp_path: Path) -> None:
    """Lines reach the operating system as they are written (no buffer in the process), so ``kill -9``
    leaves every acknowledged span in the file once the writer has caught up, and no torn line."""
    path = tmp_path / "session.jsonl"
    with printing(path) as (proc, port, _):
        flood = Flood(port)
        flood.wait_for_backlog(path, at_most=20)
        acknowledged, written = flood.stop(), Written(path)
        until(lambda: written.lines() >= flood.requests, "the writer to catch up")  # a line a request
        proc.kill()
        proc.wait(DEADLINE)
    assert acknowledged == saved(path)


# --- a disk that fills -----------------------------------------------------------------------------------

def small_file_size_limit() -> None:
    """``preexec_fn``: ``ulimit -f`` of 1 MiB in the child, and SIGINT at its default."""
    sigint_default()
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))


@pytest.mark.parametrize(("target", "preexec_fn", "what"), [
    ("limited.jsonl", small_file_size_limit, "the file reached the largest size this process may write"),
    ("/dev/full", sigint_default, "the disk is full"),
], ids=["RLIMIT_FSIZE", "/dev/full"])
def test_a_full_disk_is_one_line_counted_and_the_receivers_go_on(tmp_path: Path, target: str,
                                                                  preexec_fn: Callable[[], None], what: str) -> None:
    path = tmp_path / target if not target.startswith("/") else Path(target)
    with printing(path, preexec_fn) as (proc, port, stderr):
        flood = Flood(port, senders=2)
        line = stderr.wait_for("not saved")
        flood.wait_for(flood.requests + 5)  # still answering, and what comes now is counted lost
        acknowledged = flood.stop()
        body, _ = make_request(4)
        assert post(port, body) == 200
        proc.send_signal(signal.SIGTERM)
        proc.wait(DEADLINE)
    err = stderr.text()
    assert proc.returncode == 0 and "Traceback" not in err and "Exception" not in err, err
    assert line.startswith(f"ollama-tui: --save {path}: {what} (") and " spans not saved — " in line, line
    assert err.count(line) == 1  # said once when it happened (the summary says it again, with the final count)
    summary = err.strip().splitlines()[-1]
    lost = int(re.search(r"([\d,]+) spans not saved", summary).group(1).replace(",", ""))  # type: ignore[union-attr]
    written = int(re.search(r"saved ([\d,]+) spans", summary).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert lost > 0 and written + lost == len(acknowledged) + 4, summary
    if path.is_file():  # what was written before the limit is whole lines, every span of them acknowledged
        assert path.stat().st_size <= 1 << 20 and len(saved(path)) == written and saved(path) <= acknowledged


def test_after_a_write_error_memory_stays_bounded(tmp_path: Path) -> None:
    recorder = RequestRecorder(Path("/dev/full"))
    body, _ = make_request(8)
    try:
        recorder.record(body, 8)
        until(lambda: recorder.error, "the write error")
        for _ in range(100):
            assert recorder.has_room(len(body))  # exporters are not held back by a file that cannot be written
            recorder.record(body, 8)
        assert recorder.backlog_bytes == 0 and recorder.spans_lost == 808 and recorder.requests_lost == 101
        assert recorder.error.startswith("--save /dev/full: the disk is full (No space left on device); 808 spans")
    finally:
        recorder.close()


# --- back-pressure when the writer is behind ---------------------------------------------------------------

async def test_a_writer_behind_refuses_exports_with_retry_and_counts_them(tmp_path: Path) -> None:
    """A FIFO nobody reads blocks the writer once the pipe is full; past the backlog's budget, exports
    are answered 503 with Retry-After and counted, and once the reader catches up they are taken again
    and every acknowledged span reaches the file."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # there, so --save can open it, but not reading yet
    try:
        async with running_receivers(ReceiverConfig(grpc_port=0, http_port=0, save=fifo)) as running:
            recorder, stats = running.receivers.recorder, running.receivers.stats
            assert recorder is not None
            body, ids = make_request(16)
            recorder.max_backlog_bytes = 4 * len(body)
            acknowledged: SpanIds = set()
            async with aiohttp.ClientSession() as session:
                async def export() -> aiohttp.ClientResponse:
                    body, new = make_request(16)
                    async with session.post(f"{running.http_url}/v1/traces", data=body,
                                            headers={"Content-Type": "application/x-protobuf"}) as response:
                        await response.read()
                        if response.status == 200:
                            acknowledged.update(new)
                        return response

                refused = None
                for _ in range(1000):  # the pipe holds ~64 KiB; the budget a few requests more
                    response = await export()
                    if response.status != 200:
                        refused = response
                        break
                assert refused is not None and refused.status == 503 and refused.headers["Retry-After"] == "1"
                assert stats.retries_asked == 1 and stats.spans_rejected[BACK_PRESSURE] == 16
                assert recorder.backlog_bytes <= recorder.max_backlog_bytes

                read = bytearray()
                draining = threading.Event()

                def drain() -> None:
                    os.set_blocking(reader, True)
                    while chunk := os.read(reader, 1 << 16):
                        read.extend(chunk)
                    draining.set()

                threading.Thread(target=drain, daemon=True).start()
                await eventually(lambda: recorder.has_room(len(body)), timeout=DEADLINE)
                assert (await export()).status == 200
        await eventually(draining.is_set, timeout=DEADLINE)  # the receivers stopped: the file was closed
    finally:
        os.close(reader)
    found = {(span.trace_id, span.span_id) for request in read_requests("fifo", bytes(read))
             for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans}
    assert acknowledged and found == acknowledged
    assert not ids & found  # the request the budget was measured with was never sent


# --- the app: signals give the terminal back, and the file gets everything --------------------------------

class Terminal:
    """The real app in a pseudo-terminal of its own (its controlling terminal), with what it drew."""

    def __init__(self, save: Path) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "200", "LINES": "40"}
        self.proc = subprocess.Popen(
            [*COMMAND, "--grpc-port", "0", "--http-port", "0", "--no-chat", "--no-confirm", "--save", str(save)],
            stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True, preexec_fn=_take_terminal)
        os.close(slave)
        self.output = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        with contextlib.suppress(OSError):  # EIO once the child has closed its side
            while chunk := os.read(self.master, 1 << 16):
                self.output.extend(chunk)

    def text(self) -> str:
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", self.output.decode("utf-8", "replace"))

    def http_port(self) -> int:
        until(lambda: _BANNER.search(self.text()), "the header's addresses")
        match = _BANNER.search(self.text())
        assert match
        return int(match.group(2))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(DEADLINE)
        self._reader.join(DEADLINE)
        os.close(self.master)


def _take_terminal() -> None:
    """``preexec_fn``, after ``setsid``: the pty on standard input becomes the controlling terminal, so
    Ctrl+C typed into it is a SIGINT, as in a real terminal."""
    sigint_default()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


LEFT_ALTERNATE_SCREEN = b"\x1b[?1049l"
CURSOR_SHOWN = b"\x1b[?25h"


@pytest.mark.parametrize("ending", ["SIGTERM", "SIGHUP", "q then Ctrl+C twice"])
def test_the_app_ended_by_a_signal_restores_the_terminal_and_saves_everything(tmp_path: Path, ending: str) -> None:
    path = tmp_path / "session.jsonl"
    terminal = Terminal(path)
    try:
        flood = Flood(terminal.http_port())
        flood.wait_for_backlog(path, at_most=30)
        drawn = len(terminal.output)
        if ending == "q then Ctrl+C twice":  # quit mid-flood, so the writer has a backlog when Ctrl+C comes
            os.write(terminal.master, b"q")
            # The whole screen given back, cursor included, before Ctrl+C: an interrupt makes the kernel discard
            # terminal output not yet read (NOFLSH is off), in this pty as in a real terminal.
            until(lambda: LEFT_ALTERNATE_SCREEN in terminal.output[drawn:] and CURSOR_SHOWN in terminal.output[drawn:],
                  "the app to leave the screen")
            for _ in range(2):  # an impatient user; the terminal is back in cooked mode, so each is a SIGINT
                os.write(terminal.master, b"\x03")
                time.sleep(0.3)  # apart, as keys are pressed (two signals pending at once are one)
        else:  # mid-flood: requests are being received, queued and written when it comes
            terminal.proc.send_signal(getattr(signal, ending))
        terminal.proc.wait(DEADLINE)
        acknowledged = flood.stop()
    finally:
        terminal.close()
    after = bytes(terminal.output[drawn:])
    assert terminal.proc.returncode == 0, terminal.text()[-2000:]
    assert LEFT_ALTERNATE_SCREEN in after and CURSOR_SHOWN in after
    assert b"\x1b[?1000l" in after or b"\x1b[?1003l" in after  # mouse reporting off
    assert acknowledged and acknowledged <= saved(path)
    assert "Traceback" not in terminal.text()  # nor a body cut short by the stop


def test_the_app_shows_a_full_disk_in_its_header_and_says_it_again_on_exit() -> None:
    terminal = Terminal(Path("/dev/full"))
    try:
        body, _ = make_request(4)
        assert post(terminal.http_port(), body) == 200
        until(lambda: "--save /dev/full: the disk is full" in terminal.text(), "the header's save error")
        drawn = len(terminal.output)
        terminal.proc.send_signal(signal.SIGTERM)
        terminal.proc.wait(DEADLINE)
    finally:
        terminal.close()
    after = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", bytes(terminal.output[drawn:]).decode("utf-8", "replace"))
    assert terminal.proc.returncode == 0
    assert "ollama-tui: --save /dev/full: the disk is full (No space left on device); 4 spans not saved — " in after


async def test_a_request_the_writer_cannot_convert_stops_saving_with_a_sentence_not_a_dead_thread(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in the conversion must not leave the writer dead and every later export refused for ever."""
    def broken(_request: ExportTraceServiceRequest) -> str:
        raise ValueError("cannot convert")

    monkeypatch.setattr("tui.receiver.recorder.request_line", broken)
    async with running_receivers(ReceiverConfig(grpc_port=0, http_port=0, save=tmp_path / "s.jsonl")) as running:
        recorder = running.receivers.recorder
        assert recorder is not None
        body, _ = make_request(4)
        assert await asyncio.to_thread(post, running.receivers.http.port, body) == 200
        await eventually(lambda: bool(recorder.error))
        assert recorder.error.startswith("--save ") and "a bug" in recorder.error
        assert recorder.error.endswith("4 spans not saved — restart to save again")
        assert await asyncio.to_thread(post, running.receivers.http.port, body) == 200  # still served, counted lost
