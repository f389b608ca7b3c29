"""No client can wedge the HTTP receiver through its connections (issue 12): idle connections past the
open-files limit, slowloris headers and bodies, a body held open while the app quits; and the bearer
scheme is case-insensitive. Real sockets on loopback, the SDK's own exporters.

Timeouts are lowered on the running receiver (``http.limits``) so the tests are quick; every wait has a
generous deadline and asserts only that the thing happened, never how fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from support.event_loop import eventually
from support.receivers import Running, export, make_exporter, running_receivers
from support.sdk_spans import nested_trace, record
from tui.receiver import OtlpReceivers, ReceiverConfig, Security
from tui.receiver.connections import ConnectionGuard, ConnectionLimits

TOKEN = "s3cret-token"
ROOT = Path(__file__).resolve().parent.parent
#: Deadline for "the server closed it": far above every lowered timeout; only a hang fails it.
HANG = 20.0


def guard(running: Running) -> ConnectionGuard:
    assert running.receivers.http is not None and running.receivers.http.connections is not None
    return running.receivers.http.connections


def lower(running: Running, **limits: Any) -> None:
    assert running.receivers.http is not None
    running.receivers.http.limits = dataclasses.replace(ConnectionLimits(), **limits)


async def exports_work(running: Running) -> None:
    """A real export on each transport, through fresh SDK exporters, is accepted."""
    for transport in ("http", "grpc"):
        exporter = make_exporter(running, transport, timeout=10)
        try:
            assert await export(exporter, record(nested_trace)) is SpanExportResult.SUCCESS, transport
        finally:
            exporter.shutdown()


async def connect(port: int, count: int) -> list[socket.socket]:
    """``count`` idle connections (from a thread: connecting from the loop's own thread would stop it
    accepting them)."""
    return await asyncio.to_thread(lambda: [socket.create_connection(("127.0.0.1", port), timeout=10)
                                            for _ in range(count)])


def closed_by_peer(sock: socket.socket) -> bool:
    """True once the other end has closed ``sock`` (EOF or reset), without blocking."""
    sock.setblocking(False)
    try:
        while sock.recv(65536):
            pass
    except BlockingIOError:
        return False
    except OSError:
        return True
    return True


@contextlib.contextmanager
def closing(sockets: list[socket.socket]) -> Iterator[list[socket.socket]]:
    try:
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


async def test_the_oldest_idle_connections_make_room_at_the_cap() -> None:
    async with running_receivers() as running:
        lower(running, max_connections=20)
        port = running.receivers.http.port
        with closing(await connect(port, 60)) as idle:
            await exports_work(running)
            assert guard(running).open_connections <= 20
            assert guard(running).stats.evicted >= 40
            assert guard(running).stats.refused_busy == 0
            await eventually(lambda: closed_by_peer(idle[0]), HANG)  # the oldest went first...
            assert not closed_by_peer(idle[-1])  # ...the newest are still open
        # Closing idle connections to make room is routine, not a refused request.
        assert not running.receivers.stats.requests_rejected


async def test_idle_keep_alive_connections_are_closed_and_exporters_reconnect() -> None:
    async with running_receivers() as running:
        lower(running, idle_timeout=0.5)
        exporter = make_exporter(running, "http", timeout=10)  # keeps its connection alive between exports
        try:
            assert await export(exporter, record(nested_trace)) is SpanExportResult.SUCCESS
            await eventually(lambda: guard(running).stats.closed_idle >= 1, HANG)
            assert guard(running).open_connections == 0
            assert await export(exporter, record(nested_trace)) is SpanExportResult.SUCCESS
        finally:
            exporter.shutdown()


async def slowloris(port: int) -> bool:
    """Send request headers one byte every 50 ms (they would take minutes); True once the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for byte in b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n" * 100:
            writer.write(bytes([byte]))
            await writer.drain()
            with contextlib.suppress(asyncio.TimeoutError):
                if await asyncio.wait_for(reader.read(1), 0.05) == b"":
                    return True
        return False
    except ConnectionError:
        return True
    finally:
        writer.close()


async def silent(port: int) -> bool:
    """Connect and send nothing; True once the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return await reader.read() == b""
    except ConnectionError:
        return True
    finally:
        writer.close()


async def test_slowloris_headers_and_silent_connections_are_closed_and_counted() -> None:
    async with running_receivers() as running:
        lower(running, header_timeout=1.0)
        port = running.receivers.http.port
        clients = [slowloris(port) for _ in range(50)] + [silent(port) for _ in range(10)]
        assert all(await asyncio.wait_for(asyncio.gather(*clients), HANG))  # a hang fails here
        await exports_work(running)
        stats = guard(running).stats
        assert stats.closed_slow_headers == 50 and stats.closed_silent == 10
        rejected = running.receivers.stats.requests_rejected
        assert rejected["http: connection closed, headers not complete within 1 s"] == 50


async def test_a_slow_body_is_answered_408_and_closed() -> None:
    async with running_receivers() as running:
        lower(running, body_timeout=1.0, header_timeout=1.0)
        reader, writer = await asyncio.open_connection("127.0.0.1", running.receivers.http.port)
        writer.write(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                     b"Content-Length: 1000\r\n\r\n")
        answer = b""
        started = time.monotonic()
        try:
            while not reader.at_eof() and time.monotonic() - started < HANG:
                writer.write(b"\x0a")  # one byte every 50 ms: the body would take 50 s
                with contextlib.suppress(ConnectionError):
                    await writer.drain()
                with contextlib.suppress(asyncio.TimeoutError, ConnectionError):
                    answer += await asyncio.wait_for(reader.read(4096), 0.05)
        finally:
            writer.close()
        assert reader.at_eof(), f"the slow body was still being taken after {HANG:g} s"
        assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
        assert running.receivers.stats.requests_rejected["http: 408 body not complete within 1 s"] == 1
        await exports_work(running)


async def test_stop_returns_promptly_while_a_client_holds_a_body_open() -> None:
    receivers = OtlpReceivers(ReceiverConfig(grpc_port=0, http_port=0))
    await receivers.start()
    assert receivers.http is not None and receivers.http.connections is not None
    connections, port, stopped = receivers.http.connections, receivers.http.port, False
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                     b"Content-Length: 1000000\r\n\r\n" + b"\x0a" * 10)  # and never the rest
        await writer.drain()
        with closing(await connect(port, 20)):  # idle ones beside it
            await eventually(lambda: connections.requests_in_progress == 1 and connections.open_connections == 21, HANG)
            started = time.monotonic()
            await asyncio.wait_for(receivers.stop(), HANG)
            took, stopped = time.monotonic() - started, True
        with contextlib.suppress(ConnectionError):
            await asyncio.wait_for(reader.read(), HANG)  # returns at EOF: the server closed the connection
        writer.close()
    finally:
        if not stopped:
            await receivers.stop()
    assert took < 5, f"stopping took {took:.1f} s"  # ~1 s of grace for the request in progress
    assert connections.open_connections == 0
    assert receivers.stats.requests_rejected["http: connection closed mid-body"] == 1


def test_bearer_scheme_is_case_insensitive_and_the_token_exact() -> None:
    security = Security(auth_token=TOKEN)
    for good in (f"Bearer {TOKEN}", f"bearer {TOKEN}", f"BEARER {TOKEN}", f"  bEaReR   {TOKEN} "):
        assert security.authorized(good), good
    for bad in (None, "", TOKEN, f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", "Bearer ",
                f"Bearer{TOKEN}", f"Bearer {TOKEN.upper()}"):
        assert not security.authorized(bad), bad


async def test_lowercase_bearer_is_accepted_on_both_receivers_and_a_wrong_token_refused() -> None:
    config = ReceiverConfig(grpc_port=0, http_port=0, security=Security(auth_token=TOKEN))
    async with running_receivers(config) as running:
        spans = record(nested_trace)
        url = f"{running.http_url}/v1/traces"
        for value, expected in ((f"bearer {TOKEN}", SpanExportResult.SUCCESS),
                                ("bearer wrong", SpanExportResult.FAILURE)):
            exporters = [GrpcSpanExporter(endpoint=running.grpc_endpoint, insecure=True, timeout=10,
                                          headers={"authorization": value}),
                         HttpSpanExporter(endpoint=url, timeout=10, headers={"Authorization": value})]
            for exporter in exporters:
                try:
                    assert await export(exporter, spans) is expected, (value, type(exporter).__module__)
                finally:
                    exporter.shutdown()
        stats = running.receivers.stats  # the same spans over both transports: the second time a duplicate
        assert (stats.spans_accepted, stats.duplicate_spans) == (len(spans), len(spans))


async def test_without_add_reader_asyncio_accepts_and_the_bounds_still_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loops with no ``add_reader`` (Windows' proactor): asyncio's own accept loop, the same bounds."""
    def no_add_reader(*_args: object) -> None:
        raise NotImplementedError

    monkeypatch.setattr(asyncio.get_running_loop(), "add_reader", no_add_reader)
    async with running_receivers() as running:
        lower(running, max_connections=5, header_timeout=1.0)
        with closing(await connect(running.receivers.http.port, 12)) as idle:
            await exports_work(running)
            assert guard(running).open_connections <= 5
            await eventually(lambda: all(closed_by_peer(sock) for sock in idle), HANG)
        assert guard(running).stats.evicted + guard(running).stats.closed_silent >= 12


# -- the open-files limit, for real, in a child process --------------------------------------------------

CHILD = textwrap.dedent("""
    import asyncio, dataclasses, json, os, resource, sys
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))  # low, and no higher hard limit to raise it to
    from tui.receiver import OtlpReceivers, ReceiverConfig
    from tui.receiver.connections import raise_open_files_limit

    def say(**fields):
        print(json.dumps(fields), flush=True)

    async def main():
        raise_open_files_limit()  # what start-up does; nothing to gain here
        receivers = OtlpReceivers(ReceiverConfig(grpc_port=0, http_port=0))
        await receivers.start()
        say(grpc=receivers.grpc.port, http=receivers.http.port, cap=receivers.http.connections.cap)
        held = []
        while line := (await asyncio.to_thread(sys.stdin.readline)).strip():
            if line == "exhaust":  # every descriptor this process may still open, taken
                try:
                    while True:
                        held.append(os.open(os.devnull, os.O_RDONLY))
                except OSError:
                    pass
                say(held=len(held))
            elif line == "release":
                for fd in held:
                    os.close(fd)
                say(released=len(held))
                held = []
        stats = receivers.http.connections.stats
        await receivers.stop()
        say(connections=dataclasses.asdict(stats), rejected=dict(receivers.stats.requests_rejected))

    asyncio.run(main())
""")


class Child:
    """The child above, spoken to one line at a time."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc

    async def answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), 60)
        assert line, "the child exited early"
        return json.loads(line)

    async def ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return await self.answer()

    async def finish(self) -> tuple[dict[str, Any], str]:
        assert self.proc.stdin is not None and self.proc.stderr is not None
        self.proc.stdin.close()
        last = await self.answer()
        await asyncio.wait_for(asyncio.to_thread(self.proc.wait), 60)
        return last, self.proc.stderr.read()


def child_exporters(ports: dict[str, Any]) -> list[Any]:
    return [HttpSpanExporter(endpoint=f"http://127.0.0.1:{ports['http']}/v1/traces", timeout=10),
            GrpcSpanExporter(endpoint=f"127.0.0.1:{ports['grpc']}", insecure=True, timeout=10)]


async def exports_to_child_work(ports: dict[str, Any]) -> None:
    for exporter in child_exporters(ports):
        try:
            assert await export(exporter, record(nested_trace)) is SpanExportResult.SUCCESS, type(exporter)
        finally:
            exporter.shutdown()


async def test_a_process_at_its_open_files_limit_keeps_serving() -> None:
    """256 descriptors and no way to raise them: 400 idle HTTP connections, then every descriptor taken;
    exports still succeed on both transports, and stderr holds one line, not a traceback storm."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD], cwd=ROOT, text=True, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        child = Child(proc)
        ports = await child.answer()
        assert ports["cap"] == 64  # (256 - 128) / 2: HTTP alone cannot use the limit up
        with closing(await connect(ports["http"], 400)):
            await exports_to_child_work(ports)
            held = await child.ask("exhaust")
            assert held["held"] > 0
            with closing(await connect(ports["http"], 5)):  # accepted once descriptors are free again
                await asyncio.sleep(2.5)  # accept() fails meanwhile, about once a second
                await child.ask("release")
                await exports_to_child_work(ports)
        last, stderr = await child.finish()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    assert proc.returncode == 0, stderr
    connections, rejected = last["connections"], last["rejected"]
    assert connections["evicted"] >= 400 - 64 and connections["peak"] <= 64
    assert connections["accept_failures"] >= 1
    assert rejected["http: accept failed (too many open files), paused 1 s"] == connections["accept_failures"]
    assert "Traceback" not in stderr
    assert stderr.count("cannot accept connections") == 1, stderr
    assert len(stderr.splitlines()) <= 3, stderr


def test_the_soft_open_files_limit_is_raised_to_the_hard_one() -> None:
    code = ("import resource; resource.setrlimit(resource.RLIMIT_NOFILE, (64, 512)); "
            "from tui.receiver.connections import raise_open_files_limit; "
            "print(raise_open_files_limit(), resource.getrlimit(resource.RLIMIT_NOFILE))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["(64,", "512)", "(512,", "512)"], out.stderr
