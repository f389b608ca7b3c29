"""Shared fixtures: real receivers on loopback port 0, and real OpenTelemetry SDK exporters."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

import pytest

os.environ.setdefault("GRPC_VERBOSITY", "NONE")

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter  # noqa: E402
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression  # noqa: E402
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan  # noqa: E402
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult  # noqa: E402

from tui.model.store import TraceStore  # noqa: E402
from tui.receiver import OtlpReceivers, ReceiverConfig, pump  # noqa: E402
from tui.receiver.loop_lag import LoopLag  # noqa: E402


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


def rss_bytes() -> int:
    """This process's resident memory now (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    """A loopback port nothing listens on just now, for a process that must be told its port up front."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def eventually(condition: Callable[[], object], timeout: float = 10.0, poll: float = 0.01) -> None:
    """Let this loop run until ``condition()`` holds; ``TimeoutError`` after ``timeout`` seconds.

    ``poll`` 0 checks on every turn of the loop, for a condition that may hold only briefly."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(poll)


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


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    async with running_receivers() as r:
        yield r


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


@contextlib.asynccontextmanager
async def loop_kept_late(lag: LoopLag, turn: float = 0.15) -> AsyncIterator[None]:
    """Keep this event loop late, as a flood of exports would: every turn of it takes ``turn`` seconds.

    Yields once ``lag`` has seen enough late ticks in a row to call it overload; clients must then
    run in threads (the loop they would share is the one being held).
    """
    holding = True

    async def hold() -> None:
        while holding:
            time.sleep(turn)
            await asyncio.sleep(0)

    task = asyncio.create_task(hold())
    try:
        await eventually(lambda: lag.late_in_a_row >= lag.late_ticks, poll=0)
        yield
    finally:
        holding = False
        await task


SpanFactory = Callable[[], list[ReadableSpan]]
