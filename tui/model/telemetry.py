"""Logs and metrics that arrive beside the traces (pure Python, like the span store).

GenAI instrumentations emit prompts and completions as log records carrying the trace and span
they belong to, so records with ids are kept by span (the Events tab and the LLM tab read them);
records without a trace go to a bounded list of their own. Metrics are not stored: only the GenAI
ones are summed per model, and everything else is counted.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from tui.model.span import Attributes, AttrValue, Event, Resource, Span


@dataclass(frozen=True, slots=True)
class LogRecord:
    time_ns: int
    severity_text: str
    severity_number: int
    body: AttrValue
    attributes: Attributes
    trace_id: str
    span_id: str
    event_name: str
    resource: Resource

    @property
    def name(self) -> str:
        """The event name (``gen_ai.user.message``), else the severity, for display."""
        legacy = self.attributes.get("event.name")
        return self.event_name or (legacy if isinstance(legacy, str) else "") or self.severity_text or "log"

    def as_event(self) -> Event:
        """The record as a span event: GenAI log events carry their message fields in the body."""
        fields = dict(self.attributes)
        if isinstance(self.body, dict):
            fields.update(self.body)
        elif self.body is not None:
            fields.setdefault("body", self.body)
        return Event(self.name, self.time_ns, fields)


class LogStore:
    """Log records by span, plus a bounded list of records that name no span."""

    def __init__(self, max_records: int = 200_000, max_unattached: int = 10_000) -> None:
        self.max_records = max_records
        self._by_trace: dict[str, dict[str, list[LogRecord]]] = {}
        self._order: deque[tuple[str, str]] = deque()
        self.unattached: deque[LogRecord] = deque(maxlen=max_unattached)
        self.received = 0
        self.evicted = 0
        self.unattached_total = 0

    def add(self, records: list[LogRecord]) -> None:
        for record in records:
            self.received += 1
            if record.trace_id and record.span_id:
                spans = self._by_trace.setdefault(record.trace_id, {})
                spans.setdefault(record.span_id, []).append(record)
                self._order.append((record.trace_id, record.span_id))
            else:
                self.unattached_total += 1
                self.unattached.append(record)
        while len(self._order) > self.max_records:
            trace_id, span_id = self._order.popleft()
            spans = self._by_trace.get(trace_id, {})
            bucket = spans.get(span_id)
            if bucket:
                bucket.pop(0)
                self.evicted += 1
                if not bucket:
                    del spans[span_id]
                    if not spans:
                        del self._by_trace[trace_id]

    def for_span(self, trace_id: str, span_id: str) -> list[LogRecord]:
        return sorted(self._by_trace.get(trace_id, {}).get(span_id, ()), key=lambda r: r.time_ns)

    def events_for(self, span: Span) -> tuple[Event, ...]:
        """The records naming ``span``, as span events (how the detail tabs show them)."""
        return tuple(record.as_event() for record in self.for_span(span.trace_id, span.span_id))

    def forget_trace(self, trace_id: str) -> None:
        """Drop the records of an evicted or cleared trace (their order entries expire on their own)."""
        self._by_trace.pop(trace_id, None)

    def clear(self) -> None:
        self._by_trace.clear()
        self._order.clear()
        self.unattached.clear()


@dataclass(slots=True)
class ModelUsage:
    """GenAI client metrics summed for one model."""

    input_tokens: float = 0.0
    output_tokens: float = 0.0
    operations: int = 0
    duration_sum_s: float = 0.0
    first_token_count: int = 0
    first_token_sum_s: float = 0.0

    @property
    def mean_duration_s(self) -> float | None:
        return self.duration_sum_s / self.operations if self.operations else None

    @property
    def mean_time_to_first_token_s(self) -> float | None:
        return self.first_token_sum_s / self.first_token_count if self.first_token_count else None


@dataclass(slots=True)
class MetricsSummary:
    by_model: dict[str, ModelUsage] = field(default_factory=dict)
    #: Data points of every other metric, by metric name.
    other_points: dict[str, int] = field(default_factory=dict)

    def usage(self, model: str) -> ModelUsage:
        return self.by_model.setdefault(model or "(unknown model)", ModelUsage())
