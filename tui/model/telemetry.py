"""Logs and metrics that arrive beside the traces (pure Python, like the span store).

GenAI instrumentations emit prompts and completions as log records carrying the trace and span
they belong to, so records with ids are kept by span (the Events tab and the LLM tab read them);
records without a trace go to a bounded list of their own. Metrics are not stored: only the GenAI
ones are summed per model, and everything else is counted.

Anyone who can reach the ports can send these, so every table here is bounded by what it holds, not
only by how many entries: records by their bytes (a count alone let a few thousand 1 MiB bodies take
a gigabyte), metric tables by their distinct keys (a sender inventing model names grew them without
end). What does not fit is dropped or folded, and counted.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from tui.model.conventions import EVENT_NAME_ATTRIBUTE
from tui.model.genai import event_message
from tui.model.span import Attributes, AttrValue, Event, Resource, Span
from tui.model.text import format_value

MIB = 1024 * 1024
#: Bytes of log records held in all (as :func:`stored_size` counts them); the oldest go first beyond it.
MAX_LOG_BYTES = 64 * MIB
#: One record's share at most: a larger one is cut to it, and says so.
MAX_RECORD_BYTES = 256 * 1024
#: What a record costs beside its values: the object, its ids, its places in the indexes.
RECORD_OVERHEAD = 200
#: What each value or key costs beside its text: the Python object around it.
VALUE_OVERHEAD = 50
#: The row that metrics of models or names beyond a full table are summed into.
OTHER = "(other)"
#: Model and metric names are cut to this many characters before they become keys.
MAX_KEY_CHARS = 200
#: The key under which a cut record says so (in its event fields).
CUT_NOTE_KEY = "ollama_tui.truncated"


def stored_size(value: AttrValue | Attributes) -> int:
    """Roughly what holding ``value`` costs in memory: its text, plus an object per value and key."""
    if isinstance(value, (str, bytes)):
        return VALUE_OVERHEAD + len(value)
    if isinstance(value, tuple):
        return VALUE_OVERHEAD + sum(stored_size(item) for item in value)
    if isinstance(value, Mapping):
        return VALUE_OVERHEAD + sum(VALUE_OVERHEAD + len(key) + stored_size(item) for key, item in value.items())
    return VALUE_OVERHEAD


def _cut(value: AttrValue, room: list[int]) -> AttrValue:
    """``value`` within ``room[0]`` bytes (spent as it goes): text shortened, items past the room left out."""
    room[0] -= VALUE_OVERHEAD
    if isinstance(value, (str, bytes)):
        kept = value[:max(0, room[0])]
        room[0] -= len(value)
        return kept
    if isinstance(value, tuple):
        items = []
        for item in value:
            if room[0] <= 0:
                break
            items.append(_cut(item, room))
        return tuple(items)
    if isinstance(value, dict):
        return _cut_pairs(value, room)
    return value


def _cut_pairs(pairs: Attributes, room: list[int]) -> dict[str, AttrValue]:
    kept: dict[str, AttrValue] = {}
    for key, item in pairs.items():
        if room[0] <= 0:
            break
        room[0] -= VALUE_OVERHEAD + len(key)
        kept[key] = _cut(item, room)
    return kept


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
    #: Bytes left out of the body and attributes to keep the record under :data:`MAX_RECORD_BYTES`.
    cut_bytes: int = 0

    @property
    def event(self) -> str:
        """The event the record reports: its ``event_name`` field, else its ``event.name`` attribute ("" for a
        plain log line)."""
        legacy = self.attributes.get(EVENT_NAME_ATTRIBUTE)
        return self.event_name or (legacy if isinstance(legacy, str) else "")

    @property
    def name(self) -> str:
        """The event name (``gen_ai.user.message``), else the severity, for display."""
        return self.event or self.severity_text or "log"

    def as_event(self) -> Event:
        """The record as a span event: GenAI log events carry their message fields in the body."""
        fields = dict(self.attributes)
        if isinstance(self.body, dict):
            fields.update(self.body)
        elif self.body is not None:
            fields.setdefault("body", self.body)
        if self.cut_bytes:
            fields[CUT_NOTE_KEY] = cut_note(self.cut_bytes)
        return Event(self.name, self.time_ns, fields)


def readable_body(record: LogRecord) -> str:
    """A record's body on one line: a GenAI message or choice event as ``role: text`` (tool calls as calls,
    content blocks read), a map as ``key: value`` pairs, text as is. Untrusted: shown through ``safe_text``."""
    message = event_message(record.as_event()) if record.event else None
    if message is not None:
        text = message.text().replace("\n", " ↵ ")
        finish = f" (finish {message.finish_reason})" if message.finish_reason else ""
        return f"{message.role}{finish}: {text}"
    if isinstance(record.body, dict):
        return " · ".join(f"{key}: {format_value(value)}" for key, value in record.body.items())
    return format_value(record.body)


def cut_note(cut_bytes: int) -> str:
    return f"{cut_bytes:,} bytes left out to keep the record under {MAX_RECORD_BYTES // 1024} KiB"


class _Held(NamedTuple):
    """A record as stored: ``seq`` tells its own entry in the arrival order from a stale one."""

    seq: int
    size: int
    record: LogRecord


class LogStore:
    """Log records by span, plus a list of records that name no span, all within a byte budget.

    One arrival order covers both, so the oldest record goes first whichever kind it is. Entries of
    records already gone (their trace forgotten, the list of records without a trace full) stay in
    that order until they reach its front, where their sequence number no longer matches.
    """

    def __init__(self, max_records: int = 200_000, max_unattached: int = 10_000, max_bytes: int = MAX_LOG_BYTES,
                 max_record_bytes: int = MAX_RECORD_BYTES) -> None:
        self.max_records = max_records
        self.max_unattached = max_unattached
        self.max_bytes = max_bytes
        self.max_record_bytes = max_record_bytes
        self._by_trace: dict[str, dict[str, list[_Held]]] = {}
        self._unattached: deque[_Held] = deque()
        #: (seq, trace id, span id) oldest first; no ids for a record without a trace.
        self._order: deque[tuple[int, str, str]] = deque()
        self._seq = 0
        self.bytes_held = 0
        self.received = 0
        self.evicted = 0
        self.cut = 0
        self.unattached_total = 0

    def add(self, records: list[LogRecord]) -> None:
        for record in records:
            self.received += 1
            self._seq += 1
            held = self._fitted(self._seq, record)
            self.bytes_held += held.size
            if record.trace_id and record.span_id:
                spans = self._by_trace.setdefault(record.trace_id, {})
                spans.setdefault(record.span_id, []).append(held)
                self._order.append((held.seq, record.trace_id, record.span_id))
            else:
                self.unattached_total += 1
                self._unattached.append(held)
                self._order.append((held.seq, "", ""))
                if len(self._unattached) > self.max_unattached:
                    self._evict(self._unattached.popleft())
        while self._order and (len(self._order) > self.max_records or self.bytes_held > self.max_bytes):
            self._evict_oldest()

    def _fitted(self, seq: int, record: LogRecord) -> _Held:
        """The record as it will be held: cut to :attr:`max_record_bytes` when it is larger."""
        size = RECORD_OVERHEAD + stored_size(record.body) + stored_size(record.attributes)
        size += len(record.resource.service_name)
        if size <= self.max_record_bytes:
            return _Held(seq, size, record)
        room = [self.max_record_bytes - RECORD_OVERHEAD - VALUE_OVERHEAD - len(record.resource.service_name)]
        attributes = _cut_pairs(record.attributes, room)
        body = _cut(record.body, room)
        kept = RECORD_OVERHEAD + stored_size(body) + stored_size(attributes) + len(record.resource.service_name)
        self.cut += 1
        return _Held(seq, kept, dataclasses.replace(record, body=body, attributes=attributes, cut_bytes=size - kept))

    def _evict_oldest(self) -> None:
        seq, trace_id, span_id = self._order.popleft()
        if not trace_id:
            if self._unattached and self._unattached[0].seq == seq:
                self._evict(self._unattached.popleft())
            return
        spans = self._by_trace.get(trace_id, {})
        bucket = spans.get(span_id)
        if bucket and bucket[0].seq == seq:
            self._evict(bucket.pop(0))
            if not bucket:
                del spans[span_id]
                if not spans:
                    del self._by_trace[trace_id]

    def _evict(self, held: _Held) -> None:
        self.bytes_held -= held.size
        self.evicted += 1

    def latest_unattached(self, count: int) -> list[LogRecord]:
        """The newest ``count`` records that name no span, newest first."""
        held = self._unattached
        return [held[i].record for i in range(len(held) - 1, max(-1, len(held) - 1 - count), -1)]

    def losses(self) -> list[str]:
        """What was dropped or cut to stay within the budget, one phrase each (none when nothing was)."""
        phrases = []
        if self.evicted:
            phrases.append(f"{self.evicted:,} older log records dropped to stay under {self.max_bytes / MIB:g} MiB "
                           f"({self.max_records:,} records, {self.max_unattached:,} without a trace)")
        if self.cut:
            phrases.append(f"{self.cut:,} log records cut to {self.max_record_bytes // 1024} KiB")
        return phrases

    def for_span(self, trace_id: str, span_id: str) -> list[LogRecord]:
        held = self._by_trace.get(trace_id, {}).get(span_id, ())
        return sorted((h.record for h in held), key=lambda r: r.time_ns)

    def events_for(self, span: Span) -> tuple[Event, ...]:
        """The records naming ``span``, as span events (how the detail tabs show them)."""
        return tuple(record.as_event() for record in self.for_span(span.trace_id, span.span_id))

    def forget_trace(self, trace_id: str) -> None:
        """Drop the records of an evicted or cleared trace (their order entries expire on their own)."""
        for bucket in self._by_trace.pop(trace_id, {}).values():
            self.bytes_held -= sum(held.size for held in bucket)

    def clear(self) -> None:
        self._by_trace.clear()
        self._order.clear()
        self._unattached.clear()
        self.bytes_held = 0


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
    """GenAI usage by model, and data points of every other metric by name, each table of bounded size."""

    by_model: dict[str, ModelUsage] = field(default_factory=dict)
    #: Data points of every other metric, by metric name.
    other_points: dict[str, int] = field(default_factory=dict)
    max_models: int = 1_000
    max_names: int = 10_000
    #: Data points summed into :data:`OTHER` because their model, or metric name, found its table full.
    folded_model_points: int = 0
    folded_name_points: int = 0

    def usage(self, model: str) -> ModelUsage:
        key = model[:MAX_KEY_CHARS] or "(unknown model)"
        usage = self.by_model.get(key)
        if usage is None:
            if len(self.by_model) - (OTHER in self.by_model) >= self.max_models:
                self.folded_model_points += 1
                key = OTHER
            usage = self.by_model.setdefault(key, ModelUsage())
        return usage

    def count_other(self, name: str, points: int) -> None:
        """Count the data points of a metric that is not summed per model."""
        key = name[:MAX_KEY_CHARS]
        if key not in self.other_points and len(self.other_points) - (OTHER in self.other_points) >= self.max_names:
            self.folded_name_points += points
            key = OTHER
        self.other_points[key] = self.other_points.get(key, 0) + points

    def losses(self) -> list[str]:
        """What was folded into the "(other)" rows, one phrase each (none when nothing was)."""
        phrases = []
        if self.folded_model_points:
            phrases.append(f"{self.folded_model_points:,} GenAI metric points of models beyond the first "
                           f"{self.max_models:,} summed as {OTHER}")
        if self.folded_name_points:
            phrases.append(f"{self.folded_name_points:,} points of metrics beyond the first {self.max_names:,} "
                           f"names counted as {OTHER}")
        return phrases
