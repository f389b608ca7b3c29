"""Real receivers on loopback port 0 and the OpenTelemetry SDK's own exporters aimed at them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from support.event_loop import eventually
from tui.model.store import TraceStore
from tui.receiver import OtlpReceivers, ReceiverConfig, pump


@dataclass
class Running:
    """Receivers started on free loopback ports, pumping into a store."""

    receivers: OtlpReceivers
    store: TraceStore

    @property
    def grpc_endpoint(self) -> str:
        assert self.receivers.grpc is not None
        return f"127.0.0.1:{self.receivers.grpc.port}"

    @property
    def http_url(self) -> str:
        assert self.receivers.http is not None
        return f"http://127.0.0.1:{self.receivers.http.port}"

    async def wait_for_spans(self, count: int, timeout: float = 10.0) -> None:
        """Wait until the store holds ``count`` spans (the pump runs on this loop)."""
        await eventually(lambda: self.store.span_count >= count, timeout)


@contextlib.asynccontextmanager
async def running_receivers(config: ReceiverConfig | None = None, *, pumping: bool = True,
                            max_spans: int = 1_000_000) -> AsyncIterator[Running]:
    config = config or ReceiverConfig(grpc_port=0, http_port=0)
    receivers = OtlpReceivers(config)
    await receivers.start()
    store = TraceStore(max_spans)
    task = asyncio.create_task(pump(receivers.queue, store)) if pumping else None
    try:
        yield Running(receivers, store)
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await receivers.stop()


def make_exporter(running: Running, transport: str, gzip: bool = False, **kwargs: object) -> SpanExporter:
    """The SDK's own OTLP exporter for ``transport`` ("grpc" or "http") aimed at ``running``."""
    if transport == "grpc":
        import grpc

        return GrpcSpanExporter(
            endpoint=running.grpc_endpoint,
            insecure=True,
            compression=grpc.Compression.Gzip if gzip else grpc.Compression.NoCompression,
            **kwargs,
        )
    return HttpSpanExporter(
        endpoint=f"{running.http_url}/v1/traces",
        compression=HttpCompression.Gzip if gzip else HttpCompression.NoCompression,
        **kwargs,
    )


async def export(exporter: SpanExporter, spans: Sequence[ReadableSpan]) -> SpanExportResult:
    """Run the (blocking) SDK exporter off the loop, so the receiver on this loop can answer."""
    return await asyncio.to_thread(exporter.export, list(spans))


async def send(running: Running, spans: Sequence[ReadableSpan], transport: str = "http") -> None:
    """Export ``spans`` to ``running`` through a fresh SDK exporter, and require that they were accepted."""
    exporter = make_exporter(running, transport)
    try:
        assert await export(exporter, spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
