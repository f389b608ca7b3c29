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
SAVE_BEHIND_MESSAGE = "ollama-tui is busy: its --save file is behind what arrives; retry shortly"
LOOP_LATE_MESSAGE = "ollama-tui is busy: it cannot keep up with what is being sent; retry shortly"
#: Spans remembered per generation by :class:`RecentSpans` (it holds two).
RECENT_GENERATION = 1 << 17


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
    #: Spans received again after they were accepted (see :class:`RecentSpans`), and the requests that held them.
    duplicate_spans: int = 0
    duplicate_requests: int = 0

    @property
    def spans_lost(self) -> dict[str, int]:
        """Spans lost for good, by reason (an invalid id...). Those refused with back-pressure are not: the
        exporter keeps them and sends them again, so they are counted apart (``BACK_PRESSURE``,
        ``retries_asked``)."""
        return {reason: n for reason, n in self.spans_rejected.items() if reason != BACK_PRESSURE}

    @property
    def total_spans_rejected(self) -> int:
        return sum(self.spans_lost.values())


SpanKey = tuple[str, str]


class RecentSpans:
    """The (trace id, span id) of the spans accepted lately, to tell a span sent again from a new one.

    An exporter whose gRPC deadline passed while its export was being taken sends the same spans again.
    Taking them twice would replace them in the store but write them twice to ``--save``, ``--forward``
    and ``--print --json``; so every path drops them here instead, once. Two generations of sets keep the
    memory bounded: when the current one is full it becomes the previous one and the older is dropped,
    so a span is remembered for at least a generation's worth of later spans. The keys are tuples of the
    spans' own id strings: nothing new is allocated but the tuple, and equality is exact.
    """

    def __init__(self, generation: int = RECENT_GENERATION) -> None:
        self.generation = generation
        self._current: set[SpanKey] = set()
        self._previous: set[SpanKey] = set()

    def split(self, spans: list[Span]) -> tuple[list[Span], set[SpanKey]]:
        """The spans not seen lately (each once, in order) and their keys; :meth:`remember` them once taken."""
        keys = {(span.trace_id, span.span_id) for span in spans}
        if len(keys) == len(spans) and keys.isdisjoint(self._current) and keys.isdisjoint(self._previous):
            return spans, keys  # the usual case: all new, decided by three C-level set operations
        fresh: list[Span] = []
        keys = set()
        for span in spans:
            key = (span.trace_id, span.span_id)
            if key not in keys and key not in self._current and key not in self._previous:
                keys.add(key)
                fresh.append(span)
        return fresh, keys

    def remember(self, keys: set[SpanKey]) -> None:
        self._current |= keys
        if len(self._current) >= self.generation:
            self._previous, self._current = self._current, set()


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
        #: Asked with an outside trace request's serialised size before it is taken: False refuses it with
        #: back-pressure (``--save``'s writer is behind), before anything is queued, so nothing is half-taken.
        self.room: list[Callable[[int], bool]] = []
        self.recent = RecentSpans()

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
        spans, keys = self.recent.split(decoded.spans)
        repeats = len(decoded.spans) - len(spans)
        listened = len(spans) + decoded.rejected  # the spans the listeners are given
        body = None
        if self.listeners and transport != "file" and (spans or not repeats):
            if repeats:  # partly sent before: the listeners get the new spans only
                request, listened = only_spans(request, keys), len(spans)
            body = request.SerializeToString()
        busy = self._busy(spans, body) if spans else None
        if busy is not None:
            self.stats.spans_rejected[BACK_PRESSURE] += len(decoded.spans)
            self.stats.retries_asked += 1
            return ExportResult(Outcome.OVERLOADED, message=busy)
        self.recent.remember(keys)
        if repeats:  # acknowledged all the same: the exporter did nothing wrong
            self.stats.duplicate_spans += repeats
            self.stats.duplicate_requests += 1
        self.stats.spans_accepted += len(spans)
        if body is not None:
            for listener in self.listeners:
                listener(body, listened)
        return ExportResult(Outcome.ACCEPTED, decoded.rejected, decoded.rejection)

    def _busy(self, spans: list[Span], body: bytes | None) -> str | None:
        """Why an export must be retried later, or None once its spans are queued."""
        if body is not None and not all(room(len(body)) for room in self.room):
            return SAVE_BEHIND_MESSAGE
        return None if self.queue.offer(spans) else QUEUE_FULL_MESSAGE

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


def only_spans(request: ExportTraceServiceRequest, keys: set[SpanKey]) -> ExportTraceServiceRequest:
    """A copy of ``request`` holding the first copy of each span in ``keys`` and no other span (the rare
    path: a request partly sent before)."""
    kept = ExportTraceServiceRequest()
    kept.CopyFrom(request)
    wanted = set(keys)
    for resource_spans in kept.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            spans = scope_spans.spans
            dropped = []
            for i, span in enumerate(spans):
                key = (span.trace_id.hex(), span.span_id.hex())
                if key in wanted:
                    wanted.discard(key)
                else:
                    dropped.append(i)
            for i in reversed(dropped):
                del spans[i]
    return kept
