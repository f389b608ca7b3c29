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
dictionary look-up per trace. The App keeps one tracker in *follow* mode (handed every change set the
list applies), whose passes after the first look only at the traces named since.

Reading is what costs: a span without LLM figures (most) is a few byte searches and a tally, counted
with the others of its batch that share its service, time bucket, duration bucket and status
(:meth:`Stats.add_spans`); an LLM span's model, tokens, timings and time to first token are read from
its serialised bytes by the query's readers (:mod:`tui.model.query`), never decoded.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from itertools import islice

from tui.model.conventions import (
    INPUT_TOKENS_KEYS,
    OLLAMA_TIMINGS,
    OUTPUT_TOKENS_KEYS,
    SUMMARY_MODEL_KEYS,
    USAGE_MARKERS,
)
from tui.model.genai import first_token_seconds
from tui.model.query import (
    IN_TOKEN_PREFIXES,
    OUT_TOKEN_PREFIXES,
    first_number,
    in_memory,
    key_prefix,
    raw_payload,
    span_ttft,
    wire_scalars,
)
from tui.model.span import Span, StatusCode
from tui.model.store import StoreChanges, Trace, TraceStore

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
        """Read from a received span's bytes (the query's readers, :mod:`tui.model.query`), never decoding
        it unless it names a first-token event and no time-to-first-token attribute."""
        duration_s = span.duration_ns / 1e9
        key = Histogram.bucket(duration_s)
        service, bucket, error = span.resource.service_name, span.end_ns // _BUCKET_NS, span.is_error
        if not span.may_contain(*USAGE_MARKERS):
            return cls(service, "", bucket, key, error)
        model = span_model(span)
        tokens_in, tokens_out = _tokens(span)
        first = _first_token(span, duration_s)
        speed = None
        if tokens_out:
            generating = None
            if span.may_contain(_EVAL_MARKER):
                generating = first_number(span, _EVAL_KEYS, _EVAL_PREFIXES)
            seconds = generating / 1e9 if generating else duration_s - (first or 0.0)
            speed = tokens_out / seconds if seconds > 0 else None
        return cls(service, model, bucket, key, error, tokens_in, tokens_out, speed, first)


#: Half as many searches as :data:`USAGE_MARKERS`, in every span having one of them (and in few others:
#: those go through :meth:`Sample.of`, which tests the markers themselves).
_USAGE_HINTS = (b"usage.", b".model", b"model_name", b"token_count.")
assert all(any(hint in marker for hint in _USAGE_HINTS) for marker in USAGE_MARKERS)
_MODEL_PREFIXES = tuple(key_prefix(key) for key in SUMMARY_MODEL_KEYS)
_EVAL_KEYS = (OLLAMA_TIMINGS["eval_duration"],)
_EVAL_PREFIXES = tuple(map(key_prefix, _EVAL_KEYS))
_EVAL_MARKER = _EVAL_KEYS[0].encode()


def span_model(span: Span) -> str:
    """The model a span names (the first of :data:`SUMMARY_MODEL_KEYS` with a non-empty string), read
    from a received span's bytes like the query's ``model:`` term."""
    if in_memory(span):
        attributes = span.attributes
        for key in SUMMARY_MODEL_KEYS:
            value = attributes.get(key)
            if isinstance(value, str) and value:
                return value
        return ""
    payload = raw_payload(span)
    for prefix in _MODEL_PREFIXES:
        if prefix in payload:
            for value in wire_scalars(payload, prefix):
                if isinstance(value, str) and value:
                    return value
    return ""


def _tokens(span: Span) -> tuple[int | None, int | None]:
    """Input and output tokens as :func:`span_tokens` reads them, without its total (not shown here)."""
    if not span.may_contain(b"token"):
        return None, None
    tokens_in = first_number(span, INPUT_TOKENS_KEYS, IN_TOKEN_PREFIXES)
    tokens_out = first_number(span, OUTPUT_TOKENS_KEYS, OUT_TOKEN_PREFIXES)
    return None if tokens_in is None else int(tokens_in), None if tokens_out is None else int(tokens_out)


def _first_token(span: Span, duration_s: float) -> float | None:
    """:func:`span_ttft`, through the one rule for a reported value (:func:`first_token_seconds`); a span
    it had to decode (for a first-token event) is left undecoded again: a million decoded payloads kept
    would double the memory."""
    undecoded = span._attributes is None
    seconds = span_ttft(span)
    if undecoded and span._attributes is not None:
        span._attributes, span._events, span._links = None, (), ()
    if seconds is None or 0 <= seconds <= duration_s:
        return seconds
    return first_token_seconds(seconds, duration_s)[0]


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

    def add_plain(self, bucket: int, duration_key: int, error: bool, n: int) -> None:
        """``n`` spans with a duration and no LLM figures (what most spans are)."""
        for cell in (self.total, self.cells.get(bucket)):
            if cell is None:
                cell = self.cells[bucket] = Cell()
            cell.count += n
            if error:
                cell.errors += n
            cell.duration.add_key(duration_key, n)
        if self.cells[bucket].count <= 0:
            del self.cells[bucket]

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
        self._add_sample(Sample.of(span), n)

    def remove(self, span: Span) -> None:
        self.add(span, -1)

    def add_spans(self, spans: Iterable[Span], n: int = 1) -> None:
        """Count every span of ``spans`` (``n=-1``: take them out), as :meth:`add` would one by one, faster:
        spans without LLM figures (most) are tallied by (service, time bucket, duration bucket, error) and
        each distinct tally is added once; the others are read from their bytes (:meth:`Sample.of`)."""
        plain: dict[tuple[str, int, int, bool], int] = {}
        get = plain.get
        markers = _USAGE_HINTS
        log, log_growth, error_code = math.log, _LOG_GROWTH, StatusCode.ERROR
        count = 0
        for span in spans:
            payload = span.payload
            if payload is None or any(marker in payload for marker in markers):
                self._add_sample(Sample.of(span), n)
                continue
            count += 1
            start, end = span.start_ns, span.end_ns
            seconds = (end - start) / 1e9
            key = (span.resource.service_name, end // _BUCKET_NS,
                   math.floor(log(seconds) / log_growth) if seconds > 1e-12 else ZERO_BUCKET,
                   span.status_code is error_code)
            plain[key] = get(key, 0) + 1
        self.spans += n * count
        services = self.groups[SERVICE]
        for (service, bucket, duration_key, error), times in plain.items():
            group = services.get(service)
            if group is None:
                group = services[service] = Group()
            group.add_plain(bucket, duration_key, error, n * times)
            if group.total.count <= 0:
                del services[service]

    def _add_sample(self, sample: Sample, n: int) -> None:
        self.spans += n
        self._add(self.groups[SERVICE], sample.service, sample, n)
        if sample.model:
            self._add(self.groups[MODEL], sample.model, sample, n)

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
#: Spans counted together (:meth:`Stats.add_spans`): a batch takes a few milliseconds at most.
_BATCH = 128


class StatsTracker:
    """Keeps :attr:`stats` in step with ``store``, a time budget at a time (see the module's text).

    Call :meth:`step` from a timer: each call works for at most about ``budget_s`` and returns whether the
    pass it worked on has finished (then the figures are those of the store at the pass's start, or
    later). A re-sent span that replaced one already counted cannot be taken out as it was counted, so
    it starts the count over (rare: exporters re-send identical spans, which the receiver drops).

    With ``follow=True`` the owner hands the tracker every change set of the store (:meth:`note`) from
    its creation on, and only the first pass walks the whole store: later ones look at the traces the
    change sets named, and at the oldest counted ones only when some were evicted or the store cleared,
    so a tracker kept by the App costs next to nothing while nothing arrives (:attr:`idle`).
    """

    def __init__(self, store: TraceStore, *, follow: bool = False) -> None:
        self.store = store
        self.follow = follow
        #: Trace ids the change sets named since the last pass began (follow mode), in arrival order.
        self._dirty: dict[str, None] = {}
        #: Some trace was evicted, or the store cleared, since the last pass began (follow mode).
        self._gone = False
        #: The next pass walks the whole store.
        self._full = True
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

    def note(self, changes: StoreChanges) -> None:
        """One change set of the store (follow mode: every one of them, in order)."""
        if changes.evicted or changes.cleared:
            self._gone = True
        if changes.updated:
            self._dirty.update(dict.fromkeys(changes.updated))

    @property
    def idle(self) -> bool:
        """Nothing to do until the store changes (follow mode only: otherwise each pass walks the store)."""
        return (self.follow and self.complete and self._pass is None and not self._dirty and not self._gone
                and not self._full)

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
        self._full = True

    def _walk(self) -> Generator[None, None, None]:
        store = self.store
        counted = self._counted
        check = self._gone or not self.follow
        self._gone = False
        if counted and check:
            newest = next(reversed(counted.values())).trace
            if store.get(newest.trace_id) is not newest:  # cleared, or all evicted: nothing to take out
                self._start_over()
                counted = self._counted
        # Evictions, and clear(): the store drops traces oldest first, so the gone ones are in front.
        gone: list[Span] = []
        while counted and check:
            seq, entry = next(iter(counted.items()))
            trace = entry.trace
            if store.get(trace.trace_id) is trace:
                break
            del counted[seq]
            if trace.replaced != entry.replaced:
                self._start_over()
                counted = self._counted
                gone = []
                break
            gone.extend(islice(trace.spans.values(), entry.spans))
            if len(gone) >= _BATCH:
                self.stats.add_spans(gone, -1)
                gone = []
                yield
        self.stats.add_spans(gone, -1)
        if self._full or not self.follow:
            self._full, self._dirty = False, {}  # the walk sees every trace named so far
            ids = store.trace_ids()
        else:  # the traces the change sets named, oldest first (``counted`` must stay in arrival order)
            named, self._dirty = self._dirty, {}
            alive = [trace for trace in map(store.get, named) if trace is not None]
            alive.sort(key=lambda trace: trace.seq)
            ids = [trace.trace_id for trace in alive]
        self.progress = (0, len(ids))
        # New spans are counted a batch at a time (see Stats.add_spans); the batch is counted before the
        # pass ends, so a finished pass leaves nothing behind.
        batch: list[Span] = []
        for i, trace_id in enumerate(ids):
            if i % _CHECK_EVERY == 0:
                self.progress = (i, len(ids))
                if len(batch) >= _BATCH:
                    self.stats.add_spans(batch)
                    batch = []
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
            before = len(batch)
            batch.extend(islice(held.spans.values(), seen.spans, None))
            seen.spans += len(batch) - before
            seen.version = held.version
            while len(batch) >= 4 * _BATCH:  # a huge trace: counted over several frames
                self.stats.add_spans(batch[:_BATCH])
                del batch[:_BATCH]
                yield
        self.stats.add_spans(batch)
        self.progress = (len(ids), len(ids))
