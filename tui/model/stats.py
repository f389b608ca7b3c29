"""Figures per service and per model over the spans held: count, errors, duration percentiles, tokens,
tokens/s and time to first token, over everything held or the last 1 / 5 / 15 minutes, with series for
sparklines. Pure Python, no UI.

Memory stays bounded whatever the number of spans: a group (a service, a model) keeps one :class:`Cell`
per :data:`BUCKET_SECONDS` of span end time, and a cell's percentiles come from a log-bucketed
:class:`Histogram` (fixed bucket edges, each :data:`GROWTH` times the last, so any percentile is within
±2.5 % of the exact one). Cells and histograms are counts, so a span is taken out exactly as it was put
in: eviction and clearing keep every figure right.

:class:`StatsTracker` keeps a :class:`Stats` in step with a :class:`TraceStore` without taking its
change sets (the list's refresh policy drains those): it walks the store in slices of a time budget,
adds the spans it has not counted, and takes out those of traces the store evicted, whose ``Trace``
objects it holds until then. A million spans are read once, across frames; after that a pass costs a
dictionary look-up per trace.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from itertools import islice

from tui.model.conventions import (
    FIRST_TOKEN_EVENTS,
    INPUT_TOKENS_KEYS,
    OLLAMA_TIMINGS,
    OUTPUT_TOKENS_KEYS,
    SUMMARY_MODEL_KEYS,
    TTFT_KEYS,
    USAGE_MARKERS,
)
from tui.model.span import Attributes, Event, Span
from tui.model.store import Trace, TraceStore

#: Width of a time bucket: windows and sparkline points are made of these.
BUCKET_SECONDS = 5
_BUCKET_NS = BUCKET_SECONDS * 1_000_000_000
#: The windows the Stats screen offers, in seconds (None: everything held).
WINDOWS: tuple[int | None, ...] = (60, 300, 900, None)
#: Each histogram bucket's upper edge is this many times its lower one.
GROWTH = 1.05
_LOG_GROWTH = math.log(GROWTH)
#: The histogram bucket of zero and of anything too small to bucket (durations of 0, 0 tokens/s).
ZERO_BUCKET = -(10**6)
#: At most this many points in a sparkline series (neighbouring buckets are merged to fit).
MAX_POINTS = 60


class Histogram:
    """Counts of positive values in log-spaced buckets, plus one for zero; supports removal."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.total = 0

    @staticmethod
    def bucket(value: float) -> int:
        if value <= 1e-12:
            return ZERO_BUCKET
        return math.floor(math.log(value) / _LOG_GROWTH)

    @staticmethod
    def representative(bucket: int) -> float:
        """The geometric middle of a bucket: within a factor √GROWTH of any value in it."""
        return 0.0 if bucket == ZERO_BUCKET else GROWTH ** (bucket + 0.5)

    def add(self, value: float, n: int = 1) -> None:
        self.add_key(self.bucket(value), n)

    def add_key(self, key: int, n: int = 1) -> None:
        """Count ``n`` values of bucket ``key`` (negative ``n``: take them out)."""
        left = self.counts.get(key, 0) + n
        if left > 0:
            self.counts[key] = left
        else:
            self.counts.pop(key, None)
        self.total += n

    def merge(self, other: Histogram) -> None:
        counts = self.counts
        for key, n in other.counts.items():
            counts[key] = counts.get(key, 0) + n
        self.total += other.total

    def percentile(self, q: float) -> float | None:
        """The nearest-rank ``q`` percentile (0 < q ≤ 1) as its bucket's middle; None when empty."""
        if self.total <= 0:
            return None
        rank = max(1, math.ceil(q * self.total - 1e-9))
        seen = 0
        for key in sorted(self.counts):
            seen += self.counts[key]
            if seen >= rank:
                return self.representative(key)
        return self.representative(max(self.counts))  # pragma: no cover - counts always sum to total


def nearest_rank(values: Iterable[float], q: float) -> float | None:
    """The exact nearest-rank percentile (what :meth:`Histogram.percentile` approximates)."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(1, math.ceil(q * len(ordered) - 1e-9)) - 1]


class Cell:
    """What a group's spans in one time bucket (or in all of them) add up to."""

    __slots__ = ("count", "errors", "tokens_in", "tokens_out", "duration", "speed", "first_token")

    def __init__(self) -> None:
        self.count = 0
        self.errors = 0
        self.tokens_in = 0
        self.tokens_out = 0
        self.duration = Histogram()
        self.speed = Histogram()
        self.first_token = Histogram()

    def add(self, sample: Sample, n: int) -> None:
        self.count += n
        if sample.error:
            self.errors += n
        self.duration.add_key(sample.duration_key, n)
        if sample.tokens_in:
            self.tokens_in += n * sample.tokens_in
        if sample.tokens_out:
            self.tokens_out += n * sample.tokens_out
        if sample.speed is not None:
            self.speed.add(sample.speed, n)
        if sample.first_token_s is not None:
            self.first_token.add(sample.first_token_s, n)

    def merge(self, other: Cell) -> None:
        self.count += other.count
        self.errors += other.errors
        self.tokens_in += other.tokens_in
        self.tokens_out += other.tokens_out
        self.duration.merge(other.duration)
        self.speed.merge(other.speed)
        self.first_token.merge(other.first_token)


@dataclass(frozen=True, slots=True)
class Sample:
    """What one span adds to its service's and its model's figures."""

    service: str
    #: The LLM model ("" when the span names none: it counts for its service only).
    model: str
    end_bucket: int
    #: The duration's :class:`Histogram` bucket.
    duration_key: int
    error: bool
    tokens_in: int | None = None
    tokens_out: int | None = None
    #: Output tokens per second of generation (after the first token when that is known).
    speed: float | None = None
    first_token_s: float | None = None

    @classmethod
    def of(cls, span: Span) -> Sample:
        duration_s = span.duration_ns / 1e9
        key = Histogram.bucket(duration_s)
        service, bucket, error = span.resource.service_name, span.end_ns // _BUCKET_NS, span.is_error
        if not span.may_contain(*USAGE_MARKERS):
            return cls(service, "", bucket, key, error)
        attributes, events = _peek(span)
        model = _first_str(attributes, SUMMARY_MODEL_KEYS)
        tokens_in = _first_int(attributes, INPUT_TOKENS_KEYS)
        tokens_out = _first_int(attributes, OUTPUT_TOKENS_KEYS)
        first = _first_token(attributes, events, span.start_ns)
        speed = None
        if tokens_out:
            generating = attributes.get(OLLAMA_TIMINGS["eval_duration"])
            if isinstance(generating, (int, float)) and not isinstance(generating, bool) and generating > 0:
                seconds = generating / 1e9
            else:
                seconds = duration_s - (first or 0.0)
            speed = tokens_out / seconds if seconds > 0 else None
        return cls(service, model, bucket, key, error, tokens_in, tokens_out, speed, first)


def _peek(span: Span) -> tuple[Attributes, tuple[Event, ...]]:
    """A span's attributes and events, decoded for this read only when the span has not kept them: the
    stats read every LLM span once, and keeping a million decoded payloads would double the memory."""
    if span._attributes is None and span._payload is not None and span._decode is not None:
        attributes, events, _ = span._decode(span._payload)
        return attributes, events
    return span.attributes, span.events


def _first_str(a: Attributes, keys: Iterable[str]) -> str:
    for key in keys:
        value = a.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _first_int(a: Attributes, keys: Iterable[str]) -> int | None:
    for key in keys:
        value = a.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            return int(value)
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
    return None


def _first_token(a: Attributes, events: tuple[Event, ...], start_ns: int) -> float | None:
    for key in TTFT_KEYS:
        value = a.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    for event in events:
        if event.name in FIRST_TOKEN_EVENTS:
            return max(0, event.time_ns - start_ns) / 1e9
    return None


class Group:
    """One service's or one model's cells, by time bucket, and their running total."""

    __slots__ = ("total", "cells")

    def __init__(self) -> None:
        self.total = Cell()
        self.cells: dict[int, Cell] = {}

    def add(self, sample: Sample, n: int) -> None:
        self.total.add(sample, n)
        cell = self.cells.get(sample.end_bucket)
        if cell is None:
            cell = self.cells[sample.end_bucket] = Cell()
        cell.add(sample, n)
        if cell.count <= 0:
            del self.cells[sample.end_bucket]

    def window(self, since_bucket: int | None) -> Cell:
        if since_bucket is None:
            return self.total
        merged = Cell()
        for bucket, cell in self.cells.items():
            if bucket >= since_bucket:
                merged.merge(cell)
        return merged


@dataclass(frozen=True, slots=True)
class StatsRow:
    """One line of the Stats screen's tables."""

    name: str
    count: int
    errors: int
    duration_p50: float | None
    duration_p95: float | None
    duration_p99: float | None
    tokens_in: int
    tokens_out: int
    speed_p50: float | None
    first_token_p50: float | None
    first_token_p95: float | None

    @property
    def error_rate(self) -> float:
        return self.errors / self.count if self.count else 0.0

    @classmethod
    def of(cls, name: str, cell: Cell) -> StatsRow:
        d, first = cell.duration, cell.first_token
        return cls(name, cell.count, cell.errors, d.percentile(0.5), d.percentile(0.95), d.percentile(0.99),
                   cell.tokens_in, cell.tokens_out, cell.speed.percentile(0.5), first.percentile(0.5),
                   first.percentile(0.95))


@dataclass(frozen=True, slots=True)
class Series:
    """A group's figures over time, oldest first, for sparklines: spans/s, p50 duration (s) and p50
    tokens/s per point (0 where a point has none), and how many seconds a point covers."""

    rate: tuple[float, ...] = ()
    latency: tuple[float, ...] = ()
    speed: tuple[float, ...] = ()
    point_seconds: float = BUCKET_SECONDS


SERVICE = "service"
MODEL = "model"


def since_bucket(window_s: int | None, now_s: float) -> int | None:
    """The first time bucket a window includes (None for everything held): a span is in the window when
    it ended in the bucket holding ``now - window`` or after."""
    if window_s is None:
        return None
    return int((now_s - window_s) * 1e9) // _BUCKET_NS


def in_window(end_ns: int, window_s: int | None, now_s: float) -> bool:
    first = since_bucket(window_s, now_s)
    return first is None or end_ns // _BUCKET_NS >= first


class Stats:
    """Figures per service and per model, kept up to date span by span (added or taken out)."""

    def __init__(self) -> None:
        self.groups: dict[str, dict[str, Group]] = {SERVICE: {}, MODEL: {}}
        self.spans = 0

    def add(self, span: Span, n: int = 1) -> None:
        """Count ``span`` (``n=-1``: take it out, as it was counted)."""
        sample = Sample.of(span)
        self.spans += n
        self._add(self.groups[SERVICE], sample.service, sample, n)
        if sample.model:
            self._add(self.groups[MODEL], sample.model, sample, n)

    def remove(self, span: Span) -> None:
        self.add(span, -1)

    @staticmethod
    def _add(groups: dict[str, Group], name: str, sample: Sample, n: int) -> None:
        group = groups.get(name)
        if group is None:
            group = groups[name] = Group()
        group.add(sample, n)
        if group.total.count <= 0:
            del groups[name]

    def rows(self, kind: str, window_s: int | None = None, now_s: float | None = None) -> list[StatsRow]:
        """One row per service (``kind=SERVICE``) or model, busiest first, over the window ending now."""
        first = since_bucket(window_s, time.time() if now_s is None else now_s)
        rows = [StatsRow.of(name, group.window(first)) for name, group in self.groups[kind].items()]
        return sorted((row for row in rows if row.count), key=lambda row: (-row.count, row.name))

    def overall(self, window_s: int | None = None, now_s: float | None = None) -> StatsRow:
        """Every span in the window, as one row."""
        first = since_bucket(window_s, time.time() if now_s is None else now_s)
        merged = Cell()
        for group in self.groups[SERVICE].values():
            merged.merge(group.window(first))
        return StatsRow.of("all", merged)

    def series(self, kind: str, name: str, window_s: int | None = None, now_s: float | None = None,
               points: int = MAX_POINTS) -> Series:
        """The group's figures over the window (over the time its spans cover, for everything held)."""
        group = self.groups[kind].get(name)
        if group is None or not group.cells:
            return Series()
        now = time.time() if now_s is None else now_s
        first = since_bucket(window_s, now)
        if first is None:
            first, last = min(group.cells), max(group.cells)
        else:
            last = max(int(now * 1e9) // _BUCKET_NS, first)
        width = max(1, math.ceil((last - first + 1) / points))
        merged = [Cell() for _ in range((last - first) // width + 1)]
        for bucket, cell in group.cells.items():
            if first <= bucket <= last:
                merged[(bucket - first) // width].merge(cell)
        seconds = width * BUCKET_SECONDS
        return Series(tuple(cell.count / seconds for cell in merged),
                      tuple(cell.duration.percentile(0.5) or 0.0 for cell in merged),
                      tuple(cell.speed.percentile(0.5) or 0.0 for cell in merged), seconds)


class _Counted:
    """What the tracker counted of one trace: its first ``spans`` spans, at ``version``."""

    __slots__ = ("trace", "spans", "version", "replaced")

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.spans = 0
        self.version = -1
        self.replaced = trace.replaced


#: Traces a pass looks at between two checks of the clock.
_CHECK_EVERY = 16


class StatsTracker:
    """Keeps :attr:`stats` in step with ``store``, a time budget at a time (see the module's text).

    Call :meth:`step` from a timer: each call works for at most about ``budget_s`` and returns whether the
    pass it worked on has finished (then the figures are those of the store at the pass's start, or
    later). A re-sent span that replaced one already counted cannot be taken out as it was counted, so
    it starts the count over (rare: exporters re-send identical spans, which the receiver drops).
    """

    def __init__(self, store: TraceStore) -> None:
        self.store = store
        self.stats = Stats()
        #: By the trace's arrival number, oldest first (the store evicts in that order).
        self._counted: dict[int, _Counted] = {}
        self._pass: Generator[None, None, None] | None = None
        self._restart = False
        #: A whole pass has finished since the tracker started (or started over).
        self.complete = False
        #: Traces the pass in progress has looked at, of how many.
        self.progress: tuple[int, int] = (0, 0)

    @property
    def fraction(self) -> float:
        done, total = self.progress
        return 1.0 if self.complete or not total else done / total

    def step(self, budget_s: float = 0.01) -> bool:
        """Work for about ``budget_s``; True when a pass has just finished (the next call starts another)."""
        deadline = time.perf_counter() + budget_s
        if self._pass is None:
            self._pass = self._walk()
        for _ in self._pass:
            if time.perf_counter() >= deadline:
                return False
        self._pass = None
        if self._restart:
            self._restart = False
            return False
        self.complete = True
        return True

    def sync(self) -> None:
        """Run passes until one finishes (tests and tools; the screen steps)."""
        while not self.step(budget_s=3600):
            pass

    def _start_over(self) -> None:
        self.stats = Stats()
        self._counted = {}
        self.complete = False

    def _walk(self) -> Generator[None, None, None]:
        store = self.store
        counted = self._counted
        # Evictions, and clear(): the store drops traces oldest first, so the gone ones are in front.
        while counted:
            seq, entry = next(iter(counted.items()))
            trace = entry.trace
            if store.get(trace.trace_id) is trace:
                break
            del counted[seq]
            if trace.replaced != entry.replaced:
                self._start_over()
                counted = self._counted
                break
            for span in islice(trace.spans.values(), entry.spans):
                self.stats.remove(span)
            yield
        ids = store.trace_ids()
        self.progress = (0, len(ids))
        for i, trace_id in enumerate(ids):
            if i % _CHECK_EVERY == 0:
                self.progress = (i, len(ids))
                yield
            held = store.get(trace_id)
            if held is None:
                continue  # evicted since the pass began: the next pass takes it out if it was counted
            seen = counted.get(held.seq)
            if seen is None:
                seen = counted[held.seq] = _Counted(held)
            elif seen.version == held.version:
                continue
            elif seen.replaced != held.replaced:
                self._start_over()
                self._restart = True
                return
            new = list(islice(held.spans.values(), seen.spans, None))
            seen.spans += len(new)
            seen.version = held.version
            add = self.stats.add
            for at in range(0, len(new), 4096):
                for span in new[at:at + 4096]:
                    add(span)
                if len(new) > 4096:
                    yield
        self.progress = (len(ids), len(ids))

