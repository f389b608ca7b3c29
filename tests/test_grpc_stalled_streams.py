"""A raw HTTP/2 client that opens gRPC calls and never sends their message (issue 12): however many
such streams a connection (or several) opens, a real exporter is still served, and every stalled
stream is ended — at once when it is past the per-connection cap or carries no token, after the
receiver's wait for the message otherwise.

The client writes its frames by hand (no HTTP/2 library), so it can do what well-behaved clients do
not: ignore the server's ``SETTINGS_MAX_CONCURRENT_STREAMS`` and open streams past it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import AsyncIterator

import pytest
from opentelemetry.sdk.trace.export import SpanExportResult

from support.event_loop import eventually
from support.receivers import Running, export, make_exporter, running_receivers
from support.sdk_spans import nested_trace, record
from tui.receiver import ReceiverConfig
from tui.receiver.grpc_server import MAX_STREAMS_PER_CONNECTION, UNAUTHENTICATED, stalled_reason
from tui.receiver.security import Security

TRACES = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
TOKEN = "s3cret-token"

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_HEADERS, _RST_STREAM, _SETTINGS, _PING, _GOAWAY = 0x1, 0x3, 0x4, 0x6, 0x7
_END_STREAM = _ACK = 0x1
_END_HEADERS = 0x4
#: RST_STREAM error codes gRPC core uses for streams past the cap.
REFUSED_STREAM, ENHANCE_YOUR_CALM = 0x7, 0xB


def _frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def _hpack_int(value: int, prefix_bits: int = 7) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([value])
    out, value = bytearray([limit]), value - limit
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _hpack(headers: list[tuple[str, str]]) -> bytes:
    """Every field as a literal without indexing, new name, no Huffman coding (RFC 7541 §6.2.2)."""
    block = bytearray()
    for name, value in headers:
        block += b"\x00" + _hpack_int(len(name)) + name.encode() + _hpack_int(len(value)) + value.encode()
    return bytes(block)


class StallingConnection:
    """One TCP connection that opens gRPC Export calls, sends their headers and never their message.

    A reader thread answers the server's SETTINGS and PINGs (so the connection stays healthy) and records
    how each stream ended: ``"reset"`` (RST_STREAM) or ``"answered"`` (a HEADERS frame ending the stream:
    the call's status).
    """

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.settimeout(None)  # the reader waits as long as the server keeps the connection
        self.opened: list[int] = []
        self.ended: dict[int, str] = {}
        self.reset_codes: set[int] = set()
        self._lock = threading.Lock()
        self.sock.sendall(_PREFACE + _frame(_SETTINGS, 0, 0))
        self._reader = threading.Thread(target=self._read, name="stalling-h2-reader", daemon=True)
        self._reader.start()

    def open(self, count: int, token: str | None = None) -> None:
        headers = [(":method", "POST"), (":scheme", "http"), (":path", TRACES), (":authority", "127.0.0.1"),
                   ("content-type", "application/grpc"), ("te", "trailers")]
        if token is not None:
            headers.append(("authorization", f"Bearer {token}"))
        block = _hpack(headers)
        frames = bytearray()
        with self._lock:
            for _ in range(count):
                stream = 2 * len(self.opened) + 1
                self.opened.append(stream)
                frames += _frame(_HEADERS, _END_HEADERS, stream, block)  # no END_STREAM: a message should follow
            self.sock.sendall(frames)

    def count(self, how: str) -> int:
        with self._lock:
            return sum(1 for ended in self.ended.values() if ended == how)

    @property
    def still_open(self) -> int:
        with self._lock:
            return len(self.opened) - len(self.ended)

    def close(self) -> None:
        with self._lock:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)  # wakes the reader's recv
            self.sock.close()
        self._reader.join(timeout=5)

    def _recv_exactly(self, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return bytes(data)

    def _read(self) -> None:
        try:
            while True:
                head = self._recv_exactly(9)
                kind, flags = head[3], head[4]
                stream = int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
                payload = self._recv_exactly(int.from_bytes(head[:3], "big"))
                with self._lock:
                    if kind == _SETTINGS and not flags & _ACK:
                        self.sock.sendall(_frame(_SETTINGS, _ACK, 0))
                    elif kind == _PING and not flags & _ACK:
                        self.sock.sendall(_frame(_PING, _ACK, 0, payload))
                    elif kind == _RST_STREAM:
                        self.ended.setdefault(stream, "reset")
                        self.reset_codes.add(int.from_bytes(payload[:4], "big"))
                    elif kind == _HEADERS and flags & _END_STREAM:
                        self.ended.setdefault(stream, "answered")
        except (EOFError, OSError):
            return


@pytest.fixture
async def attack(running: Running) -> AsyncIterator[list[StallingConnection]]:
    """Stalling connections to ``running``'s gRPC port, closed at the end of the test."""
    connections: list[StallingConnection] = []
    yield connections
    for connection in connections:
        await asyncio.to_thread(connection.close)


async def connect(running: Running, connections: list[StallingConnection]) -> StallingConnection:
    assert running.receivers.grpc is not None
    connection = await asyncio.to_thread(StallingConnection, running.receivers.grpc.port)
    connections.append(connection)
    return connection


async def exporter_is_served(running: Running, headers: dict[str, str] | None = None) -> None:
    """A real SDK gRPC exporter gets its spans accepted within a short deadline (its own 5 s timeout:
    the SDK gives up with FAILURE when it passes)."""
    spans = record(nested_trace)
    before = running.store.span_count
    exporter = make_exporter(running, "grpc", timeout=5, headers=headers or {})
    try:
        assert await export(exporter, spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    await running.wait_for_spans(before + len(spans))


async def test_200_stalled_streams_on_one_connection_do_not_stop_an_exporter(
        running: Running, attack: list[StallingConnection]) -> None:
    assert running.receivers.grpc is not None
    running.receivers.grpc.receive_timeout = 60.0  # the stalled streams are held throughout
    connection = await connect(running, attack)
    connection.open(200)
    # Past the per-connection cap, the streams are refused at once by gRPC core; the rest are held.
    await eventually(lambda: connection.count("reset") >= 200 - MAX_STREAMS_PER_CONNECTION, timeout=10)
    assert connection.reset_codes <= {REFUSED_STREAM, ENHANCE_YOUR_CALM}
    assert 0 < connection.still_open <= MAX_STREAMS_PER_CONNECTION
    await exporter_is_served(running)
    await exporter_is_served(running)  # and again: nothing was used up by the first
    assert connection.still_open  # still held, and still not in anyone's way


async def test_stalled_streams_on_several_connections_do_not_stop_an_exporter(
        running: Running, attack: list[StallingConnection]) -> None:
    assert running.receivers.grpc is not None
    running.receivers.grpc.receive_timeout = 60.0
    for _ in range(8):  # 8 × the cap held at once: four times the 32 handler threads gRPC once had
        (await connect(running, attack)).open(40)
    await eventually(lambda: all(c.still_open <= MAX_STREAMS_PER_CONNECTION for c in attack), timeout=10)
    assert sum(c.still_open for c in attack) > 32
    await exporter_is_served(running)
    await exporter_is_served(running)


async def test_a_stalled_stream_is_ended_after_the_wait_for_its_message_and_counted(
        running: Running, attack: list[StallingConnection]) -> None:
    assert running.receivers.grpc is not None
    running.receivers.grpc.receive_timeout = 1.0
    connection = await connect(running, attack)
    connection.open(40)
    await eventually(lambda: connection.still_open == 0, timeout=20)  # every one ended: none left hanging
    answered = connection.count("answered")  # the ones let in, answered DEADLINE_EXCEEDED after 1 s
    assert 0 < answered <= MAX_STREAMS_PER_CONNECTION
    rejected = running.receivers.stats.requests_rejected
    await eventually(lambda: rejected[f"grpc: {stalled_reason(1.0)}"] == answered)
    # The connection is still usable: new streams now get in, and are ended the same way.
    connection.open(4)
    await eventually(lambda: connection.still_open == 0, timeout=20)
    await eventually(lambda: rejected[f"grpc: {stalled_reason(1.0)}"] == answered + 4)
    await exporter_is_served(running)


async def test_without_the_token_a_stream_is_refused_before_any_wait_for_its_message() -> None:
    config = ReceiverConfig(grpc_port=0, http_port=0, security=Security(auth_token=TOKEN))
    async with running_receivers(config) as running:
        assert running.receivers.grpc is not None
        running.receivers.grpc.receive_timeout = 60.0  # a wait for the message would outlast the test's deadline
        connections: list[StallingConnection] = []
        try:
            connection = await connect(running, connections)
            connection.open(40)
            await eventually(lambda: connection.still_open == 0, timeout=10)
            answered = connection.count("answered")  # UNAUTHENTICATED, from the headers alone
            assert answered >= 1
            rejected = running.receivers.stats.requests_rejected
            await eventually(lambda: rejected[f"grpc: {UNAUTHENTICATED}"] == answered)
            # With the token, stalled streams are let in and wait for their message, while the
            # exporter, with the token, is served beside them.
            connection.open(4, token=TOKEN)
            await exporter_is_served(running, headers={"authorization": f"Bearer {TOKEN}"})
            assert connection.still_open == 4
        finally:
            for connection in connections:
                await asyncio.to_thread(connection.close)
