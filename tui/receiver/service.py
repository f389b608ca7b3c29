"""Starts the configured receivers together and moves their batches into a :class:`TraceStore`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tui.model.store import TraceStore
from tui.receiver.connections import raise_open_files_limit
from tui.receiver.doctor import Doctor
from tui.receiver.forward import Forwarder
from tui.receiver.grpc_server import OtlpGrpcReceiver
from tui.receiver.http_server import OtlpHttpReceiver
from tui.receiver.ingest import Ingest, ReceiverStats, SpanQueue
from tui.receiver.loop_lag import LoopLag
from tui.receiver.recorder import RequestRecorder
from tui.receiver.security import Security
from tui.receiver.sources import SourceTable

#: 32 MiB. gRPC's own default (4 MiB) rejects a 512-span batch of GenAI spans carrying long prompts;
#: the OpenTelemetry Collector lets users raise it for the same reason. 32 MiB holds ~512 spans of
#: 64 KB each while still bounding what one request can make us allocate.
DEFAULT_MAX_MESSAGE_BYTES = 32 * 1024 * 1024
#: Spans waiting between the receivers and the store before exporters are told to back off.
DEFAULT_QUEUE_SPANS = 200_000
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(slots=True)
class ReceiverConfig:
    host: str = "127.0.0.1"
    #: ``None`` disables that receiver; 0 picks a free port.
    grpc_port: int | None = 4317
    http_port: int | None = 4318
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    queue_spans: int = DEFAULT_QUEUE_SPANS
    security: Security = field(default_factory=Security)
    #: ``--forward`` upstream URLs.
    forward: tuple[str, ...] = ()
    #: ``--save``: append every accepted trace request to this file.
    save: Path | None = None

    @property
    def is_loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS or self.host.startswith("127.")


class OtlpReceivers:
    """The gRPC and HTTP receivers sharing one queue and one set of counters."""

    def __init__(self, config: ReceiverConfig) -> None:
        self.config = config
        self.queue = SpanQueue(config.queue_spans)
        self.stats = ReceiverStats()
        self.loop_lag = LoopLag()
        self.ingest = Ingest(self.queue, self.stats, self.loop_lag)
        #: Every exporter seen, and what became of its requests (the Sources screen).
        self.sources = SourceTable()
        #: Failed exports diagnosed, with their fixes (notifications, the empty state, ``--print`` stderr).
        self.doctor = Doctor()
        self.grpc = (
            OtlpGrpcReceiver(self.ingest, config.host, config.grpc_port, config.max_message_bytes, config.security,
                             sources=self.sources, doctor=self.doctor)
            if config.grpc_port is not None
            else None
        )
        self.http = (
            OtlpHttpReceiver(self.ingest, config.host, config.http_port, config.max_message_bytes, config.security,
                             sources=self.sources, doctor=self.doctor)
            if config.http_port is not None
            else None
        )
        self.forwarders = [Forwarder(url) for url in config.forward]
        for forwarder in self.forwarders:
            self.ingest.listeners.append(forwarder.offer)
        self.recorder = RequestRecorder(config.save) if config.save else None
        if self.recorder is not None:
            self.ingest.listeners.append(self.recorder.record)
            self.ingest.room.append(self.recorder.has_room)

    async def start(self) -> None:
        """Start every enabled receiver; if one cannot bind, stop the others and re-raise."""
        raise_open_files_limit()  # each connection is a descriptor, and the soft limit is often 1,024
        try:
            if self.grpc:
                await self.grpc.start()
            if self.http:
                await self.http.start()
        except BaseException:
            await self.stop()
            raise
        self.doctor.listening(self.scheme, dict(self.addresses))
        self.loop_lag.start()
        for forwarder in self.forwarders:
            forwarder.start()

    async def stop(self) -> None:
        self.loop_lag.stop()
        if self.grpc:
            await self.grpc.stop()
        if self.http:
            await self.http.stop()
        for forwarder in self.forwarders:
            await forwarder.stop()
        if self.recorder is not None:
            self.recorder.close()  # after the receivers: everything accepted is written

    @property
    def scheme(self) -> str:
        """``https`` when the receivers serve TLS, for the endpoints shown to the user."""
        return "https" if self.config.security.tls else "http"

    @property
    def addresses(self) -> list[tuple[str, str]]:
        """``[("grpc", "127.0.0.1:4317"), ("http", "127.0.0.1:4318")]`` with the real bound ports."""
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        found = []
        if self.grpc:
            found.append(("grpc", f"{host}:{self.grpc.port}"))
        if self.http:
            found.append(("http", f"{host}:{self.http.port}"))
        return found


async def pump(queue: SpanQueue, store: TraceStore, on_batch: Callable[[], None] | None = None) -> None:
    """Move batches from the queue into the store until cancelled.

    Everything already waiting is taken in one go, so a burst costs one notification, not one per
    request.
    """
    while True:
        batch = await queue.get()
        store.add_spans(batch)
        while not queue.empty():
            store.add_spans(queue.get_nowait())
        if on_batch is not None:
            on_batch()
        await asyncio.sleep(0)
