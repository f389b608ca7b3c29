"""--forward: a second receiver gets every accepted request; a down or refusing upstream costs nothing."""

from __future__ import annotations

import asyncio
import socket

import pytest
from opentelemetry.sdk.trace.export import SpanExportResult

from support.event_loop import eventually
from support.host import free_port
from support.otlp_bodies import protobuf_request
from support.receivers import export, make_exporter, running_receivers, send
from support.sdk_spans import nested_trace, record
from tui.receiver import ReceiverConfig, ReceiverConfigError, Security
from tui.receiver.forward import REQUEST_OVERHEAD, Forwarder

MIB = 1024 * 1024


@pytest.mark.parametrize("scheme", ["grpc", "http"])
async def test_forwards_to_a_second_receiver(scheme: str) -> None:
    async with running_receivers() as upstream:
        port = upstream.receivers.grpc.port if scheme == "grpc" else upstream.receivers.http.port
        config = ReceiverConfig(grpc_port=0, http_port=0, forward=(f"{scheme}://127.0.0.1:{port}",))
        async with running_receivers(config) as front:
            spans = record(nested_trace)
            exporter = make_exporter(front, "http")
            try:
                assert await export(exporter, spans) is SpanExportResult.SUCCESS
            finally:
                exporter.shutdown()
            await front.wait_for_spans(len(spans))
            await upstream.wait_for_spans(len(spans))
            (forwarder,) = front.receivers.forwarders
            await eventually(lambda: not forwarder.pending)  # the upstream may store the spans before our send returns
            assert forwarder.stats.sent_spans == len(spans) and not forwarder.stats.lost
        shown = sorted((s.trace_id, s.span_id, s.name) for t in front.store for s in t.spans.values())
        forwarded = sorted((s.trace_id, s.span_id, s.name) for t in upstream.store for s in t.spans.values())
        assert forwarded == shown


async def test_a_down_upstream_is_retried_then_delivered() -> None:
    port = free_port()
    config = ReceiverConfig(grpc_port=0, http_port=0, forward=(f"http://127.0.0.1:{port}",))
    async with running_receivers(config) as front:
        spans = record(nested_trace)
        exporter = make_exporter(front, "grpc")
        try:
            assert await export(exporter, spans) is SpanExportResult.SUCCESS  # the viewer is not held up
        finally:
            exporter.shutdown()
        await front.wait_for_spans(len(spans))
        (forwarder,) = front.receivers.forwarders
        await eventually(lambda: forwarder.stats.retries >= 1, poll=0.05)
        assert forwarder.pending == 1 and "ClientConnectorError" in forwarder.stats.last_error
        async with running_receivers(ReceiverConfig(grpc_port=None, http_port=port)) as upstream:
            await upstream.wait_for_spans(len(spans), timeout=15)
            await eventually(lambda: not forwarder.pending)
        assert forwarder.pending == 0 and forwarder.stats.sent_spans == len(spans) and not forwarder.stats.lost


async def test_a_refusing_upstream_loses_the_request_counted_and_the_buffer_is_bounded() -> None:
    needs_token = ReceiverConfig(grpc_port=0, http_port=0, security=Security(auth_token="x"))
    async with running_receivers(needs_token) as upstream:
        body = protobuf_request().SerializeToString()  # 2 spans
        forwarder = Forwarder(f"http://127.0.0.1:{upstream.receivers.http.port}",
                              buffer_bytes=2 * (len(body) + REQUEST_OVERHEAD))
        for _ in range(3):
            forwarder.offer(body, 2)
        assert forwarder.pending == 2 and forwarder.stats.lost[forwarder.buffer_full] == 1
        forwarder.start()
        await forwarder.stop(drain_seconds=5)
        assert forwarder.stats.lost["rejected: HTTP 401"] == 2 and forwarder.pending == 0


def test_bad_forward_url() -> None:
    with pytest.raises(ReceiverConfigError, match="use grpc://host:port"):
        Forwarder("ftp://example.com")


async def test_a_slow_upstream_never_holds_up_the_viewer() -> None:
    """An upstream that has not answered yet: exports to ollama-tui are answered regardless."""
    from aiohttp import web

    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.wait_for(release.wait(), 3)
        return web.Response(body=b"", content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/traces", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        config = ReceiverConfig(grpc_port=0, http_port=0, forward=(f"http://127.0.0.1:{port}",))
        async with running_receivers(config) as front:
            exporter = make_exporter(front, "http")
            try:
                for _ in range(3):  # each answered while the upstream still sits on the first request
                    assert await export(exporter, record(nested_trace)) is SpanExportResult.SUCCESS
                    assert not release.is_set()
            finally:
                exporter.shutdown()
            await front.wait_for_spans(12)
            (forwarder,) = front.receivers.forwarders
            assert forwarder.pending >= 2  # still queued behind the slow first request
            release.set()
            await eventually(lambda: not forwarder.pending, poll=0.05)
            assert forwarder.stats.sent_spans == 12 and not forwarder.stats.lost
    finally:
        await runner.cleanup()


def large_span(tracer) -> None:
    with tracer.start_as_current_span("long prompt") as span:
        span.set_attribute("gen_ai.prompt.0.content", "x" * (8 * MIB))


async def test_large_requests_for_an_upstream_that_never_answers_stay_within_the_byte_budget() -> None:
    """An upstream that takes the connection and never reads a byte: twelve 8 MiB exports fill the
    default 64 MiB buffer; the oldest are dropped and counted, and the bytes held never exceed it."""
    with socket.create_server(("127.0.0.1", 0)) as silent:  # the kernel completes the handshake; nobody reads
        config = ReceiverConfig(grpc_port=0, http_port=0, forward=(f"http://127.0.0.1:{silent.getsockname()[1]}",))
        async with running_receivers(config, max_spans=1) as front:
            (forwarder,) = front.receivers.forwarders
            assert forwarder.buffer_bytes == 64 * MIB
            for _ in range(12):
                await send(front, record(large_span))
                assert forwarder.buffered <= forwarder.buffer_bytes
            lost = forwarder.stats.lost[forwarder.buffer_full]
            assert forwarder.buffer_full == "buffer full (64 MiB)"
            assert lost >= 4 and forwarder.pending + lost == 12 and forwarder.stats.sent_requests == 0
            assert forwarder.buffered > forwarder.buffer_bytes - 9 * MIB  # full, not emptied by the drops
