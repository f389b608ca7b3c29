"""What both transports share: the bounded span queue, the counters, and the accept decision.

A receiver only speaks its protocol; whether a batch is taken, refused for back-pressure, or
partly rejected is decided here once, so gRPC and HTTP can never disagree about it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from tui.model.span import Span
from tui.model.telemetry import LogStore, MetricsSummary
from tui.receiver.decode import (
    ExportLogsServiceRequest,
    ExportMetricsServiceRequest,
    ExportTraceServiceRequest,
    logs_from_request,
    spans_from_request,
    summarize_metrics,
)
from tui.receiver.loop_lag import LoopLag

#: The reason counted for spans refused because the queue was full; the exporter was told to retry.
BACK_PRESSURE = "back-pressure (retry asked)"
#: Seconds an exporter is told to wait before retrying a refused export.
RETRY_AFTER_SECONDS = 1
#: What a refused exporter is told, by cause.
QUEUE_FULL_MESSAGE = "ollama-tui is busy: its span queue is full; retry shortly"
LOOP_LATE_MESSAGE = "ollama-tui is busy: it cannot keep up with what is being sent; retry shortly"


class SpanQueue(asyncio.Queue[list[Span]]):
    """An ``asyncio.Queue`` of span batches bounded by the number of *spans* it holds.

    Bounding by batches would let one 100 000-span request slip past a limit meant for 512-span
    batches. A batch is refused (:meth:`offer` returns False) when it would not fit, unless the
    queue is empty: a single batch larger than the limit must still be able to get through.
    """

    def __init__(self, max_spans: int) -> None:
        super().__init__()
        self.max_spans = max_spans
        self.pending_spans = 0

    def offer(self, batch: list[Span]) -> bool:
        if self.pending_spans and self.pending_spans + len(batch) > self.max_spans:
            return False
        self.put_nowait(batch)
        return True

    def _put(self, item: list[Span]) -> None:
        self.pending_spans += len(item)
        super()._put(item)

    def _get(self) -> list[Span]:
        item = super()._get()
        self.pending_spans -= len(item)
        return item


@dataclass(slots=True)
class ReceiverStats:
    """Counters shown in the header and by ``--print`` at exit; every refused span is counted."""

    requests: Counter[str] = field(default_factory=Counter)
    spans_accepted: int = 0
    spans_rejected: Counter[str] = field(default_factory=Counter)
    requests_rejected: Counter[str] = field(default_factory=Counter)
    log_records: int = 0
    metric_points: int = 0
    #: Exports answered with back-pressure (503 / UNAVAILABLE and a retry hint), whatever the cause.
    retries_asked: int = 0

    @property
    def total_spans_rejected(self) -> int:
        return sum(self.spans_rejected.values())


class Outcome(Enum):
    ACCEPTED = "accepted"
    OVERLOADED = "overloaded"


@dataclass(frozen=True, slots=True)
class ExportResult:
    """The answer to one export; ``rejected``/``message`` fill OTLP's ``partial_success``."""

    outcome: Outcome
    rejected: int = 0
    message: str = ""


class Ingest:
    """Accepts decoded requests from any transport into one queue, counting as it goes."""

    def __init__(self, queue: SpanQueue, stats: ReceiverStats | None = None,
                 loop_lag: LoopLag | None = None) -> None:
        self.queue = queue
        self.stats = stats or ReceiverStats()
        #: When given, exports are refused while the event loop is running late (see :mod:`loop_lag`).
        self.loop_lag = loop_lag
        #: Logs and GenAI metrics, kept beside the traces (small, so stored directly, not queued).
        self.log_store = LogStore()
        self.metrics_summary = MetricsSummary()
        #: Called with every accepted trace request that came from outside (not from ``--load``),
        #: serialised once for all of them, and its span count: ``--save`` and ``--forward`` hook in here.
        self.listeners: list[Callable[[bytes, int], None]] = []

    def admit(self, transport: str, signal: str) -> str | None:
        """Called before a request's body is read or decoded: None to go on, or why to refuse it.

        Refusing here, before any decoding, is what lets an overloaded loop catch up. The spans of a
        refused request are not counted as rejected: they were never taken, and the exporter keeps
        them to retry; the refusal itself is counted.
        """
        if self.loop_lag is None or not self.loop_lag.overloaded:
            return None
        self.stats.retries_asked += 1
        self.stats.requests_rejected[f"{transport} {signal}: busy, retry asked"] += 1
        return LOOP_LATE_MESSAGE

    def traces(self, transport: str, request: ExportTraceServiceRequest) -> ExportResult:
        self.stats.requests[f"{transport} traces"] += 1
        decoded = spans_from_request(request)
        if decoded.rejected:
            self.stats.spans_rejected["invalid id"] += decoded.rejected
        if decoded.spans and not self.queue.offer(decoded.spans):
            self.stats.spans_rejected[BACK_PRESSURE] += len(decoded.spans)
            self.stats.retries_asked += 1
            return ExportResult(Outcome.OVERLOADED, message=QUEUE_FULL_MESSAGE)
        self.stats.spans_accepted += len(decoded.spans)
        if self.listeners and transport != "file":
            body, spans = request.SerializeToString(), len(decoded.spans) + decoded.rejected
            for listener in self.listeners:
                listener(body, spans)
        return ExportResult(Outcome.ACCEPTED, decoded.rejected, decoded.rejection)

    def logs(self, transport: str, request: ExportLogsServiceRequest) -> ExportResult:
        self.stats.requests[f"{transport} logs"] += 1
        records = logs_from_request(request)
        self.stats.log_records += len(records)
        self.log_store.add(records)
        return ExportResult(Outcome.ACCEPTED)

    def metrics(self, transport: str, request: ExportMetricsServiceRequest) -> ExportResult:
        self.stats.requests[f"{transport} metrics"] += 1
        self.stats.metric_points += summarize_metrics(request, self.metrics_summary)
        return ExportResult(Outcome.ACCEPTED)

    def bad_request(self, transport: str, reason: str) -> None:
        self.stats.requests_rejected[f"{transport}: {reason}"] += 1
