"""The gRPC receiver's connections are bounded as the HTTP receiver's are: one idle for the idle timeout is
closed (clients reconnect by themselves), and past the cap gRPC core closes each new connection at once.
Raw TCP sockets speaking just enough HTTP/2 stand in for clients that open a connection and leave it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import grpc
import pytest

from support.event_loop import eventually
from support.otlp_bodies import protobuf_request
from tui.receiver.grpc_server import OtlpGrpcReceiver
from tui.receiver.ingest import Ingest, SpanQueue

TRACES = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
SETTINGS, GOAWAY = 0x4, 0x7


@contextlib.asynccontextmanager
async def receiver(**limits: float) -> AsyncIterator[OtlpGrpcReceiver]:
    grpc_receiver = OtlpGrpcReceiver(Ingest(SpanQueue(1000)), "127.0.0.1", 0, 1 << 20, **limits)  # type: ignore[arg-type]
    await grpc_receiver.start()
    try:
        yield grpc_receiver
    finally:
        await grpc_receiver.stop()


class RawConnection:
    """A TCP connection that sends the HTTP/2 preface (or nothing) and then stays silent."""

    def __init__(self, port: int, preface: bool = True) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        if preface:
            self.sock.sendall(PREFACE + EMPTY_SETTINGS)
        self._buffer = b""

    def frame_types_until_closed(self) -> list[int]:
        """Every frame the server sends, until it closes the connection (``socket.timeout`` after 30 s)."""
        while chunk := self.sock.recv(65536):
            self._buffer += chunk
        return self._frame_types()

    def first_frame_or_close(self) -> int | None:
        """The type of the server's first frame, or None if it closed the connection before sending one."""
        while len(self._buffer) < 9:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self._buffer += chunk
        return self._buffer[3]

    def _frame_types(self) -> list[int]:
        types, data = [], self._buffer
        while len(data) >= 9:
            types.append(data[3])
            data = data[9 + int.from_bytes(data[:3], "big"):]
        return types

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("preface", [True, False], ids=["http2-preface-then-silence", "tcp-only"])
async def test_an_idle_connection_is_closed_after_the_idle_timeout(preface: bool) -> None:
    # Before, such a connection was still open after 30 s (and for good): a file descriptor each.
    async with receiver(idle_timeout=1.0) as grpc_receiver:
        connection = await asyncio.to_thread(RawConnection, grpc_receiver.port, preface)
        try:
            frames = await asyncio.to_thread(connection.frame_types_until_closed)
        finally:
            connection.close()
    assert frames[0] == SETTINGS and frames[-1] == GOAWAY  # an orderly close, as gRPC clients expect


async def test_an_exporter_whose_idle_connection_was_closed_reconnects_by_itself() -> None:
    body = protobuf_request().SerializeToString()
    async with receiver(idle_timeout=1.0) as grpc_receiver:
        channel = grpc.insecure_channel(f"127.0.0.1:{grpc_receiver.port}")
        states: list[grpc.ChannelConnectivity] = []
        channel.subscribe(states.append)
        try:
            export = channel.unary_unary(TRACES)
            await asyncio.to_thread(export, body, timeout=10)
            assert states[-1] is grpc.ChannelConnectivity.READY
            # The server's GOAWAY puts the channel back to IDLE; its next call connects again.
            await eventually(lambda: states[-1] is grpc.ChannelConnectivity.IDLE, timeout=30)
            await asyncio.to_thread(export, body, timeout=10)
        finally:
            channel.close()
        assert grpc_receiver.ingest.stats.spans_accepted == 2 and grpc_receiver.ingest.stats.duplicate_spans == 2


async def test_past_the_cap_new_connections_are_closed_at_once_until_one_frees_a_place() -> None:
    async with receiver(max_connections=3) as grpc_receiver:
        port = grpc_receiver.port
        held = [await asyncio.to_thread(RawConnection, port) for _ in range(3)]
        try:
            assert [await asyncio.to_thread(c.first_frame_or_close) for c in held] == [SETTINGS] * 3
            refused = await asyncio.to_thread(RawConnection, port)
            assert await asyncio.to_thread(refused.first_frame_or_close) is None  # closed, never served
            refused.close()
            held.pop().close()

            async def a_new_one_is_served() -> bool:
                connection = await asyncio.to_thread(RawConnection, port)
                held.append(connection)
                return await asyncio.to_thread(connection.first_frame_or_close) == SETTINGS

            async with asyncio.timeout(30):  # the place is given back once gRPC has seen the close
                while not await a_new_one_is_served():
                    await asyncio.sleep(0.1)
        finally:
            for connection in held:
                connection.close()
