"""The flat row index behind the trace list: which row shows which trace or span.

Rows are traces ordered by start time, newest first; an expanded trace is followed by its spans in
tree order. The index is maintained incrementally from the store's change sets, so applying a
frame's changes costs what changed, and mapping a screen row to its content costs
O(expanded traces · log n) — never a walk over everything stored. Pure Python: unit-tested and
benchmarked without a UI.
"""

from __future__ import annotations

import heapq
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import accumulate, islice

from tui.model.conventions import USAGE_MARKERS
from tui.model.genai import GenAIView, UsageSummary, is_model_call, summarize
from tui.model.query import MIN_ID_PREFIX, Query, QueryError, SpanTest, parse, span_tokens, span_ttft
from tui.model.span import Event, Span
from tui.model.store import LARGE_TRACE_SPANS, ROW_SLICE, StoreChanges, Trace, TraceStore, TreeRow

__all__ = ["MIN_ID_PREFIX", "SORTS", "ListRow", "Query", "QueryError", "TraceListIndex", "TraceSummary",
           "display_rows", "llm_spans", "order_key", "sort_key", "usage_spans"]

#: Low bits of an order key that hold the trace's arrival number (see :func:`order_key`).
_SEQ_BITS = 40
_SEQ_MASK = (1 << _SEQ_BITS) - 1


def order_key(trace: Trace) -> int:
    """Where a trace sorts in the list by default (newest first): by start time, ties (and equal clocks)
    by arrival.

    One int, ``start_ns · 2⁴⁰ + seq``, rather than a tuple: keys are compared on every lookup and
    kept for every trace, and a small int compares faster and weighs less than a pair. Unique,
    because ``seq`` is (it stays below 2⁴⁰: a trillion traces). Every sort's key has this shape,
    ``metric · 2⁴⁰ + seq`` with the metric ≥ 0, and the list shows the highest key first.
    """
    return (trace.start_ns << _SEQ_BITS) + trace.seq


#: The list's sort orders, in the order the sort key cycles through them, with what the header says.
SORTS: dict[str, str] = {
    "newest": "newest first",
    "oldest": "oldest first",
    "duration": "longest first",
    "tokens": "most tokens first",
    "ttft": "slowest first token first",
    "errors": "errors first",
}
_LAST_NS = (1 << 64) - 1
#: Above this many spans a trace's token or time-to-first-token figure is kept and extended as spans
#: arrive, instead of being read again from every span.
_METRIC_CACHE_SPANS = 64


def sort_key(sort: str) -> Callable[[Trace], int]:
    """The key function of a sort (see :data:`SORTS`): ``metric · 2⁴⁰ + seq``, highest shown first.
    Token counts and times to first token are read from the spans' bytes, not decoded; a trace with
    none sorts after every trace with one."""
    if sort == "oldest":
        return lambda t: ((_LAST_NS - t.start_ns) << _SEQ_BITS) + t.seq
    if sort == "duration":
        return lambda t: (max(0, t.end_ns - t.start_ns) << _SEQ_BITS) + t.seq
    if sort == "errors":
        return lambda t: ((((t.error_count > 0) << 64) + t.start_ns) << _SEQ_BITS) + t.seq
    if sort == "tokens":
        metrics = _TraceMetrics(_tokens_of)
        return lambda t: (metrics.value(t) << _SEQ_BITS) + t.seq
    if sort == "ttft":
        metrics = _TraceMetrics(_ttft_of)
        return lambda t: (metrics.value(t) << _SEQ_BITS) + t.seq
    return order_key


def _tokens_of(trace: Trace, spans: Iterable[Span], found: list[tuple[Span, UsageSummary]]) -> int:
    """Input + output tokens summed over the trace's innermost LLM spans (what its row shows), plus one;
    0 without any. ``found`` collects the LLM spans among ``spans`` (the new ones)."""
    for span in spans:
        tokens_in, tokens_out, _ = span_tokens(span)
        if tokens_in is not None or tokens_out is not None:
            found.append((span, UsageSummary("", tokens_in, tokens_out)))
    if not found:
        return 0
    return 1 + sum((u.input_tokens or 0) + (u.output_tokens or 0) for _, u in _innermost(trace, found))


def _ttft_of(trace: Trace, spans: Iterable[Span], found: list[tuple[Span, UsageSummary]]) -> int:
    """The longest time to first token among the trace's spans, in µs, plus one; 0 without any. ``found``
    keeps the longest so far as its only entry's input tokens."""
    best = found[0][1].input_tokens if found else None
    for span in spans:
        seconds = span_ttft(span)
        if seconds is not None:
            micros = max(0, round(seconds * 1e6))
            if best is None or micros > best:
                best = micros
                found[:] = [(span, UsageSummary("", best, None))]
    return 0 if best is None else best + 1


class _TraceMetrics:
    """A per-trace figure for a sort, extended with each trace's new spans for large traces (spans are
    only appended; a replaced one means a rescan) and computed afresh for small ones (not kept: a cache
    entry for each of a million traces would cost more than the reading)."""

    def __init__(self, compute: Callable[[Trace, Iterable[Span], list[tuple[Span, UsageSummary]]], int]) -> None:
        self.compute = compute
        self.kept: dict[str, tuple[int, int, list[tuple[Span, UsageSummary]]]] = {}

    def value(self, trace: Trace) -> int:
        if trace.span_count <= _METRIC_CACHE_SPANS:
            return self.compute(trace, trace.spans.values(), [])
        replaced, checked, found = self.kept.get(trace.trace_id, (trace.replaced, 0, []))
        if replaced != trace.replaced:
            checked, found = 0, []
        value = self.compute(trace, islice(trace.spans.values(), checked, None), found)
        if len(self.kept) > 10_000:
            self.kept.clear()
        self.kept[trace.trace_id] = (trace.replaced, trace.span_count, found)
        return value


class _Order:
    """Trace ids sorted by :func:`order_key`, oldest first, with the key each one is filed under.

    The key is the one the trace had when it was filed: a trace's start time can move (its root
    arrives late) before the index applies the change set that says so, and it must still be found
    under its old key to be moved.

    Sorted chunks of about :attr:`LOAD` entries, not one flat list: a trace filed deep in the order
    (a host whose clock is behind, a replayed file) moves one chunk's entries, not a million. A
    position is a bisection over the chunks' last keys, then within one chunk; the chunks' start
    offsets are summed again only after a change (:meth:`_starts`).
    """

    __slots__ = ("_keys", "_ids", "_maxes", "_offsets", "_valid", "key_of")

    #: Target chunk size; a chunk is split past twice this and merged into a neighbour below a quarter.
    LOAD = 2048

    def __init__(self, keys: list[int] | None = None, ids: list[str] | None = None) -> None:
        """Empty, or from ``keys`` (sorted) and the ``ids`` filed under them."""
        keys, ids = keys or [], ids or []
        self.key_of: dict[str, int] = dict(zip(ids, keys, strict=True))
        load = self.LOAD
        self._keys: list[list[int]] = [keys[i:i + load] for i in range(0, len(keys), load)]
        self._ids: list[list[str]] = [ids[i:i + load] for i in range(0, len(ids), load)]
        self._maxes: list[int] = [chunk[-1] for chunk in self._keys]
        #: Where each chunk starts (and, last, the total); entries up to ``_valid`` are current.
        self._offsets: list[int] = [0]
        self._valid = 0

    @classmethod
    def of(cls, traces: list[Trace], key: Callable[[Trace], int] | None = None) -> _Order:
        """``traces`` filed by their current keys (plain ints sort several times faster than pairs)."""
        if key is None or key is order_key:
            keys = [(t.start_ns << _SEQ_BITS) + t.seq for t in traces]  # order_key, inlined
        else:
            keys = list(map(key, traces))
        return cls.of_keys(dict(zip([t.trace_id for t in traces], keys, strict=True)))

    @classmethod
    def of_keys(cls, key_of: Mapping[str, int]) -> _Order:
        """Ids filed under the given keys (unique)."""
        id_of = {key: trace_id for trace_id, key in key_of.items()}
        keys = sorted(id_of)
        return cls(keys, list(map(id_of.__getitem__, keys)))

    def __len__(self) -> int:
        return len(self.key_of)

    def __contains__(self, trace_id: str) -> bool:
        return trace_id in self.key_of

    def ids(self) -> list[str]:
        """Every id, oldest first (a fresh list)."""
        return [trace_id for chunk in self._ids for trace_id in chunk]

    def id_chunks(self, *, copy: bool) -> list[list[str]]:
        """Every id, oldest first, as the chunks hold them: copied (C speed), or handed over as they
        are when this order is being dropped."""
        return [list(chunk) for chunk in self._ids] if copy else self._ids

    def _starts(self) -> list[int]:
        """Each chunk's start, summed again from the first chunk that changed (usually the last)."""
        offsets, valid, chunks = self._offsets, self._valid, len(self._keys)
        if valid < chunks or len(offsets) != chunks + 1:
            offsets[valid:] = accumulate(map(len, self._keys[valid:]), initial=offsets[valid])
            self._valid = chunks
        return offsets

    def _touch(self, c: int) -> None:
        """Chunk ``c`` changed size (or chunks from ``c`` on were split, merged or dropped)."""
        if c < self._valid:
            self._valid = c

    def rank(self, key: int) -> int:
        """How many entries sort before ``key`` (its position from the oldest end, if filed)."""
        c = bisect_left(self._maxes, key)
        if c == len(self._maxes):
            return len(self.key_of)
        return self._starts()[c] + bisect_left(self._keys[c], key)

    def at(self, rank: int) -> tuple[int, str]:
        """The key and id at a position from the oldest end."""
        if not 0 <= rank < len(self.key_of):
            raise IndexError(rank)
        starts = self._starts()
        c = bisect_right(starts, rank) - 1
        i = rank - starts[c]
        return self._keys[c][i], self._ids[c][i]

    def id_at(self, rank: int) -> str:
        """The id at a position from the oldest end, which the caller knows is in range (row reads)."""
        starts = self._offsets
        if self._valid < len(self._keys) or len(starts) != len(self._keys) + 1:
            starts = self._starts()
        c = bisect_right(starts, rank) - 1
        return self._ids[c][rank - starts[c]]

    def find_seq(self, seq: int) -> int | None:
        """The key holding arrival number ``seq``, by a walk over every key: O(n)."""
        return next((key for chunk in self._keys for key in chunk if key & _SEQ_MASK == seq), None)

    def add(self, trace_id: str, key: int) -> None:
        maxes = self._maxes
        if not maxes:
            self._keys.append([key])
            self._ids.append([trace_id])
            maxes.append(key)
            self._touch(0)
        else:
            c = bisect_left(maxes, key)
            if c == len(maxes):  # the newest: the last chunk's end (the usual case)
                c -= 1
                self._keys[c].append(key)
                self._ids[c].append(trace_id)
                maxes[c] = key
            else:
                chunk = self._keys[c]
                i = bisect_left(chunk, key)
                chunk.insert(i, key)
                self._ids[c].insert(i, trace_id)
            self._touch(c)
            if len(self._keys[c]) > 2 * self.LOAD:
                self._split(c)
        self.key_of[trace_id] = key

    def remove(self, trace_id: str) -> None:
        key = self.key_of.pop(trace_id)
        c = bisect_left(self._maxes, key)
        chunk = self._keys[c]
        i = bisect_left(chunk, key)
        del chunk[i]
        del self._ids[c][i]
        self._touch(c)
        self._settle(c)

    def prepend(self, keys: list[int], ids: list[str]) -> None:
        """File ``ids`` under ``keys`` (sorted, all older than every entry) in front, in one move."""
        load = self.LOAD
        self._keys[0:0] = [keys[i:i + load] for i in range(0, len(keys), load)]
        self._ids[0:0] = [ids[i:i + load] for i in range(0, len(ids), load)]
        self._maxes[0:0] = [keys[min(i + load, len(keys)) - 1] for i in range(0, len(keys), load)]
        self.key_of.update(zip(ids, keys, strict=True))
        self._touch(0)

    def extend(self, keys: list[int], ids: list[str]) -> None:
        """File ``ids`` under ``keys`` (sorted, all newer than every entry) at the end: the last chunk
        filled up to :attr:`LOAD`, then whole chunks (an order built a slice at a time, see
        :meth:`TraceListIndex.continue_sort`)."""
        if not keys:
            return
        self.key_of.update(zip(ids, keys, strict=True))
        load = self.LOAD
        if self._keys and len(self._keys[-1]) < load:
            c = len(self._keys) - 1
            room = load - len(self._keys[c])
            self._keys[c] += keys[:room]
            self._ids[c] += ids[:room]
            self._maxes[c] = self._keys[c][-1]
            self._touch(c)
            keys, ids = keys[room:], ids[room:]
        for i in range(0, len(keys), load):
            self._keys.append(keys[i:i + load])
            self._ids.append(ids[i:i + load])
            self._maxes.append(self._keys[-1][-1])

    def update(self, changes: Mapping[str, int | None]) -> None:
        """File each trace id under its new key (``None``: remove it; unfiled ids are added).

        A large change set (a flood's tick, an eviction burst) is grouped by chunk first, and a chunk
        that takes many changes is rebuilt once instead of being edited entry by entry.
        """
        key_of = self.key_of
        moves = {t: k for t, k in changes.items() if key_of.get(t) != k}
        if len(moves) <= 8 or not self._maxes:
            for trace_id, key in moves.items():
                if trace_id in key_of:
                    self.remove(trace_id)
                if key is not None:
                    self.add(trace_id, key)
            return
        maxes, last = self._maxes, len(self._maxes) - 1
        drops: dict[int, list[int]] = {}
        adds: dict[int, list[tuple[int, str]]] = {}
        for trace_id, key in moves.items():
            old = key_of.get(trace_id)
            if old is not None:
                drops.setdefault(bisect_left(maxes, old), []).append(old)
                del key_of[trace_id]
            if key is not None:
                adds.setdefault(min(bisect_left(maxes, key), last), []).append((key, trace_id))
                key_of[trace_id] = key
        for c in sorted(drops.keys() | adds.keys(), reverse=True):  # from the end: indices stay valid
            keys, ids = self._keys[c], self._ids[c]
            gone, new = drops.get(c, ()), adds.get(c, ())
            if len(gone) + len(new) > self.LOAD // 8:  # many: rebuild the chunk once
                id_of = dict(zip(keys, ids, strict=True))
                for key in gone:
                    del id_of[key]
                id_of.update(new)
                keys[:] = sorted(id_of)
                ids[:] = [id_of[key] for key in keys]
            else:
                for key in gone:
                    i = bisect_left(keys, key)
                    del keys[i]
                    del ids[i]
                for key, trace_id in new:
                    i = bisect_left(keys, key)
                    keys.insert(i, key)
                    ids.insert(i, trace_id)
            if keys:
                maxes[c] = keys[-1]
            self._touch(c)
            if len(keys) > 2 * self.LOAD:
                self._split(c)
            else:
                self._settle(c)

    def _split(self, c: int) -> None:
        keys, ids, load = self._keys[c], self._ids[c], self.LOAD
        self._touch(c)
        self._keys[c:c + 1] = [keys[i:i + load] for i in range(0, len(keys), load)]
        self._ids[c:c + 1] = [ids[i:i + load] for i in range(0, len(ids), load)]
        self._maxes[c:c + 1] = [chunk[-1] for chunk in self._keys[c:c + (len(keys) + load - 1) // load]]

    def _settle(self, c: int) -> None:
        """After removals from chunk ``c``: drop it if empty, merge it into a neighbour if small."""
        keys = self._keys[c]
        if not keys:
            self._touch(c)
            del self._keys[c], self._ids[c], self._maxes[c]
            return
        self._maxes[c] = keys[-1]
        if len(keys) < self.LOAD // 4 and len(self._keys) > 1:
            left = c - 1 if c + 1 == len(self._keys) else c
            self._touch(left)
            self._keys[left] += self._keys.pop(left + 1)
            self._ids[left] += self._ids.pop(left + 1)
            del self._maxes[left]
            if len(self._keys[left]) > 2 * self.LOAD:
                self._split(left)


@dataclass(frozen=True, slots=True)
class ListRow:
    """One row of the list: a trace (``span_row is None``) or one of its spans."""

    trace: Trace
    span_row: TreeRow | None = None
    guide: str = ""

    @property
    def span_id(self) -> str | None:
        return self.span_row.span.span_id if self.span_row else None

    @property
    def key(self) -> tuple[str, str | None]:
        return (self.trace.trace_id, self.span_id)


def display_rows(trace: Trace) -> list[TreeRow]:
    """:meth:`Trace.rows`, or for a trace over :data:`LARGE_TRACE_SPANS` the rows last built (by the
    list while it is expanded): views that redraw on every change must not rebuild a huge trace."""
    return trace.rows() if trace.span_count <= LARGE_TRACE_SPANS else trace.latest_rows()


@dataclass(slots=True)
class _Expansion:
    """A snapshot of an expanded trace's span rows (refreshed when changes are applied)."""

    rows: list[TreeRow]
    positions: dict[str, int]
    #: Index of the last top-level row (:attr:`Trace.last_top_row`).
    last_top: int
    #: The trace's version the rows were built at.
    version: int

    @classmethod
    def of(cls, trace: Trace) -> _Expansion:
        building = cls.building(trace)
        while True:
            try:
                next(building)
            except StopIteration as done:
                return done.value

    @classmethod
    def building(cls, trace: Trace) -> Generator[None, None, _Expansion]:
        """The snapshot of the trace as it is now (not at the first ``next``), built a slice per ``next``."""
        return cls._build(trace, trace.version, None if trace.rows_built else trace.build_rows())

    @classmethod
    def _build(cls, trace: Trace, version: int,
               building_rows: Generator[None, None, None] | None) -> Generator[None, None, _Expansion]:
        if building_rows is not None:
            yield from building_rows
        rows, last_top = trace.latest_rows(), trace.last_top_row
        positions: dict[str, int] = {}
        for at in range(0, len(rows), ROW_SLICE):
            positions.update((row.span.span_id, i) for i, row in enumerate(rows[at:at + ROW_SLICE], at))
            yield
        return cls(rows, positions, last_top, version)

    def guide(self, i: int) -> str:
        """Row ``i``'s box-drawing prefix: its trunk behind the top level's own column."""
        row = self.rows[i]
        if not row.depth:
            return "└─ " if i == self.last_top else "├─ "
        return ("   " if i > self.last_top else "│  ") + row.trunk


@dataclass(slots=True)
class TraceSummary:
    """What a trace row shows beyond the store's own summary: its LLM model and token totals."""

    model: str
    tokens_in: int | None
    tokens_out: int | None


@dataclass(slots=True)
class _UsageScan:
    """A trace's LLM spans found so far: a change scans only the spans added since (spans are only
    appended to a trace; a replaced one means a rescan)."""

    version: int = -1
    replaced: int = 0
    checked: int = 0
    found: list[tuple[Span, UsageSummary]] = field(default_factory=list)
    summary: TraceSummary | None = None


@dataclass(slots=True)
class _Sorting:
    """A new sort under way (see :meth:`TraceListIndex.set_sort`): its keys computed a slice at a time into
    sorted runs, then the runs merged a chunk at a time into the new orders, which are swapped in whole."""

    sort: str
    key: Callable[[Trace], int]
    #: Ids not keyed yet, in chunks (from the end, newest first).
    pending: list[list[str]]
    #: Each key computed, and the id it belongs to (keys are unique).
    id_of: dict[int, str] = field(default_factory=dict)
    #: Sorted runs of keys, and the keys not yet sorted into one.
    runs: list[list[int]] = field(default_factory=list)
    batch: list[int] = field(default_factory=list)
    #: Once every key is known: the runs merged, oldest first, and the new orders built from them.
    merged: Iterator[int] | None = None
    every: _Order | None = None
    #: The new order of the filter's members (None: the members are every trace).
    members: _Order | None = None
    #: Traces changed or added, evicted, or let in or out by the filter since the keys began: filed again
    #: at the end (what changed while a sort was under way, not the whole list).
    dirty: set[str] = field(default_factory=set)
    gone: set[str] = field(default_factory=set)
    member_changes: set[str] = field(default_factory=set)
    #: The filter changed while the runs were merged: the members' order is built again at the end.
    members_stale: bool = False


class TraceListIndex:
    """Filtered, expandable rows over a :class:`TraceStore`: traces by start time, newest first.

    "Newest" is the trace's start (its earliest span), so a trace sits where it happened, whatever
    batch or exporter brought it; ties go by arrival. A trace whose start moves earlier — its root
    arrives after its children — moves down to its place when that change set is applied. The
    store still evicts by *arrival* (:class:`TraceStore`), so under a flood the rows that vanish
    are those that came first, which are usually, not always, the bottom rows.

    Two orders are kept: every trace (``_all``) and the traces the filter lets through
    (``_members``, the same object while nothing is filtered), so a new filter can scan newest
    first without sorting anything.

    Other sorts (:data:`SORTS`: oldest, longest, most tokens, slowest first token, errors first) file
    the traces under another key of the same shape; :meth:`set_sort` computes the new keys in slices
    (:meth:`continue_sort`) while the list stays in its old order, then swaps both orders at once.
    """

    def __init__(self, store: TraceStore) -> None:
        self.store = store
        #: The filter as typed (stripped); :attr:`query` is what it asks for.
        self.filter_text = ""
        self.errors_only = False
        self.query = Query.empty()
        #: Why the last filter given could not be read (the filter then stayed as it was).
        self.query_error: QueryError | None = None
        self._span_test: SpanTest | None = None
        self._test: Callable[[Trace], bool] | None = None
        #: The sort shown (a key of :data:`SORTS`), its key function, and a new sort being computed.
        self.sort = "newest"
        self._key: Callable[[Trace], int] = order_key
        self._sorting: _Sorting | None = None
        self._all = _Order()
        self._members = self._all
        self._expanded: dict[str, _Expansion] = {}
        self._expanded_order: list[tuple[int, str]] = []  # (key, id), newest first
        self._layout: tuple[list[int], list[tuple[int, int, str, int]], int] | None = None
        #: Expanded traces over :data:`LARGE_TRACE_SPANS` being rebuilt since they changed; their old
        #: rows are shown meanwhile.
        self._rebuilding: dict[str, Generator[None, None, _Expansion]] = {}
        self._summaries: dict[str, _UsageScan] = {}
        #: Ids of traces the current filter has not looked at yet, oldest first, in chunks (scanned
        #: from the end; an empty chunk is dropped as soon as it empties).
        self._pending: list[list[str]] = []
        #: Expanded traces hidden by a filter change, re-expanded if they match again.
        self._want_expanded: set[str] = set()
        #: Keys (by seq) of the traces the last change set took off the list, for :meth:`position_near`.
        self._gone: dict[int, int] = {}
        self.rebuild()

    # --- size and lookup -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._members) + (self._layout or self._lay_out())[2]

    @property
    def trace_count(self) -> int:
        return len(self._members)

    def _lay_out(self) -> tuple[list[int], list[tuple[int, int, str, int]], int]:
        """Where each expanded trace's block of rows starts, newest first: (starts, (start, span
        rows, trace id, span rows above) per block, all span rows). Kept until the rows change, so
        reading a screen of rows costs a bisection each, however many traces are expanded."""
        members = self._members
        last = len(members) - 1
        starts: list[int] = []
        blocks: list[tuple[int, int, str, int]] = []
        extra = 0
        for key, trace_id in self._expanded_order:
            count = len(self._expanded[trace_id].rows)
            start = last - members.rank(key) + extra
            starts.append(start)
            blocks.append((start, count, trace_id, extra))
            extra += count
        layout = self._layout = (starts, blocks, extra)
        return layout

    def row(self, index: int) -> ListRow:
        """The row at display position ``index`` (0 = newest trace)."""
        starts, blocks, _ = self._layout or self._lay_out()
        extra = 0
        if starts:
            b = bisect_right(starts, index) - 1
            if b >= 0:
                start, count, trace_id, above = blocks[b]
                if index <= start + count:
                    trace = self.store.shown(trace_id)
                    assert trace is not None
                    if index == start:
                        return ListRow(trace)
                    expansion = self._expanded[trace_id]
                    i = index - start - 1
                    return ListRow(trace, expansion.rows[i], expansion.guide(i))
                extra = above + count
        members = self._members
        n = len(members)
        position = index - extra
        if not 0 <= position < n:
            raise IndexError(index)
        trace = self.store.shown(members.id_at(n - 1 - position))
        assert trace is not None
        return ListRow(trace)

    def position_of(self, trace_id: str, span_id: str | None = None) -> int | None:
        """Display position of a trace row (or of one of its span rows when expanded), if shown."""
        key = self._members.key_of.get(trace_id)
        if key is None:
            return None
        return self._position(key, trace_id, span_id)

    def _position(self, key: int, trace_id: str, span_id: str | None = None) -> int | None:
        position = len(self._members) - 1 - self._members.rank(key)
        for other_key, other_id in self._expanded_order:
            if other_key <= key:
                break
            position += len(self._expanded[other_id].rows)
        if span_id is None:
            return position
        expansion = self._expanded.get(trace_id)
        if expansion is None or span_id not in expansion.positions:
            return None
        return position + 1 + expansion.positions[span_id]

    def shown_trace_ids(self) -> list[str]:
        """Every trace the list shows (matching the filter), newest first."""
        return self._members.ids()[::-1]

    def position_near(self, seq: int, trace_id: str | None = None) -> int | None:
        """Row of the shown trace next to where a trace that is gone (evicted or filtered out) would
        be — the next newer, else the newest older: where the selection goes when it loses its trace.

        Pass the trace's id: its place is where its start time puts it (read from the store, which
        keeps an evicted trace until the change set after the one reporting it). With ``seq``
        (:attr:`Trace.seq`) alone the place is known at once only for a trace the last change set
        took off the list; otherwise it is looked for among all traces held, O(n).
        """
        members = self._members
        if not len(members):
            return None
        key = None
        trace = self.store.shown(trace_id) if trace_id is not None else None
        if trace is not None and trace.seq == seq:
            key = self._all.key_of.get(trace.trace_id) or self._key(trace)
        if key is None:
            key = self._gone.get(seq)
        if key is None:
            key = self._all.find_seq(seq)
        if key is None:
            return 0
        return self._position(*members.at(min(members.rank(key), len(members) - 1)))

    def parent_position(self, index: int) -> int | None:
        """Where ``←`` goes from a span row: its parent span's row, or its trace's row."""
        row = self.row(index)
        if row.span_row is None:
            return None
        parent = row.span_row.span.parent_span_id
        if parent and not row.span_row.orphan and not row.span_row.cycle:
            found = self.position_of(row.trace.trace_id, parent)
            if found is not None:
                return found
        return self.position_of(row.trace.trace_id)

    # --- expansion -------------------------------------------------------------------------------

    def is_expanded(self, trace_id: str) -> bool:
        return trace_id in self._expanded

    def expand(self, trace_id: str) -> bool:
        trace = self.store.get(trace_id)
        if trace is None or trace_id not in self._members or trace_id in self._expanded:
            return False
        self._rebuilding.pop(trace_id, None)
        self._expanded[trace_id] = _Expansion.of(trace)
        self._order_expanded()
        return True

    def collapse(self, trace_id: str) -> bool:
        if self._expanded.pop(trace_id, None) is None:
            return False
        self._rebuilding.pop(trace_id, None)
        self._order_expanded()
        return True

    @property
    def rebuilding(self) -> bool:
        """Whether a changed huge expanded trace awaits :meth:`continue_rebuild`."""
        return bool(self._rebuilding)

    def is_rebuilding(self, trace_id: str) -> bool:
        """Whether an expanded trace's rows are being rebuilt (its spans shown are a little behind)."""
        return trace_id in self._rebuilding

    def _refresh_expansion(self, trace: Trace) -> None:
        """A changed expanded trace: rebuilt now if small, else a slice per frame from now on (over
        :data:`LARGE_TRACE_SPANS`, see :meth:`continue_rebuild`)."""
        if trace.span_count <= LARGE_TRACE_SPANS:
            self._rebuilding.pop(trace.trace_id, None)
            self._expanded[trace.trace_id] = _Expansion.of(trace)
        elif trace.trace_id not in self._rebuilding:
            self._rebuilding[trace.trace_id] = _Expansion.building(trace)

    def continue_rebuild(self, budget_s: float) -> bool:
        """Rebuild changed huge expanded traces for about ``budget_s`` seconds; True when rows changed.

        A trace that changed again while it was rebuilt starts over (from its state then), so under
        a steady stream a huge trace is redrawn every few frames at a bounded cost per frame.
        """
        if not self._rebuilding:
            return False
        deadline = time.perf_counter() + budget_s
        changed = False
        for trace_id, building in list(self._rebuilding.items()):
            try:
                next(building)  # at least one slice a call
                while time.perf_counter() < deadline:
                    next(building)
                break
            except StopIteration as done:
                del self._rebuilding[trace_id]
                trace = self.store.get(trace_id)
                if trace is None or trace_id not in self._expanded:
                    continue
                expansion = self._expanded[trace_id] = done.value
                self._layout = None
                changed = True
                if trace.version != expansion.version:
                    self._rebuilding[trace_id] = _Expansion.building(trace)
        return changed

    def _order_expanded(self) -> None:
        self._layout = None
        key_of = self._members.key_of
        self._expanded_order = sorted(((key_of[t], t) for t in self._expanded), reverse=True)

    # --- filtering -------------------------------------------------------------------------------
    #
    # A filter over a million spans cannot be decided in one frame (scanning ~1 GB of span text
    # takes about half a second here), so it is scanned newest first, in slices: the rows on screen
    # are final as soon as enough matches are found, and the rest of the list fills in below them
    # while the UI keeps running. A narrower filter (the next keystroke) scans only what matched.

    def set_filter(self, text: str | None = None, errors_only: bool | None = None, *,
                   scan: bool = True) -> QueryError | None:
        """Change the filter (see :mod:`tui.model.query` for what it finds); with ``scan`` it completes
        now, otherwise call :meth:`continue_scan`. A ``text`` that does not parse changes nothing: its
        error is returned (and kept in :attr:`query_error`)."""
        parsed = parse(text) if text is not None else self.query
        if isinstance(parsed, QueryError):
            self.query_error = parsed
            return parsed
        self.query_error = None
        old_query, old_errors, was_done = self.query, self.errors_only, self.scan_done
        self._layout = None
        if text is not None:
            self.filter_text = parsed.typed
        if errors_only is not None:
            self.errors_only = errors_only
        query = self.query = parsed
        if self._sorting is not None:  # the members' new order, if being built, is for the old filter
            self._sorting.members_stale = True
        self._span_test = query.span_test()
        self._test = query.trace_test()
        self._gone = {}
        narrower = (was_done and (self.errors_only or not old_errors) and bool(old_query.typed or old_errors)
                    and query.narrows(old_query, self.store.resource_keys))
        # The old members, handed over as they are (unless they are every trace, which lives on).
        candidates = self._members.id_chunks(copy=self._members is self._all) if narrower else None
        self._want_expanded |= set(self._expanded)
        self._expanded.clear()
        self._rebuilding.clear()
        self._expanded_order = []
        self._pending = []
        if not query.typed and not self.errors_only:
            self._members = self._all
            self._expand_wanted(list(self._want_expanded))
            return None
        lookup = query.lookup
        if lookup is not None:  # decided now: no text to search
            if lookup.field == "trace id":  # one dict lookup, however much is stored
                trace = self.store.get(lookup.value)
                found = [trace] if trace is not None else []
            else:  # one dict lookup a trace
                found = self.store.traces_with(lookup.value, lookup.value)
            filed = self._all.key_of
            self._members = _Order.of_keys({t.trace_id: filed.get(t.trace_id) or self._key(t)
                                            for t in found if self.matches(t)})
            self._expand_wanted([t.trace_id for t in found])
            return None
        self._members = _Order()
        self._pending = candidates if candidates is not None else self._all.id_chunks(copy=True)
        if scan:
            self.continue_scan(None)
        return None

    @property
    def scan_done(self) -> bool:
        return not self._pending

    @property
    def scan_progress(self) -> float:
        """Share of the store the current filter has looked at (1.0 when done)."""
        total = len(self.store)
        return 1.0 if not self._pending or not total else 1.0 - sum(map(len, self._pending)) / total

    def continue_scan(self, budget_s: float | None, until_rows: int | None = None) -> None:
        """Scan pending traces newest first for ``budget_s`` seconds (None: to the end), stopping
        early once ``until_rows`` rows are shown."""
        pending = self._pending
        deadline = None if budget_s is None else time.perf_counter() + budget_s
        found: list[Trace] = []
        checked = 0
        get = self.store.get
        filed = self._members.key_of
        matches = self.matches if self.errors_only or self._test is None else self._test
        stop = False
        while pending and not stop:
            chunk = pending[-1]
            while chunk:
                trace = get(chunk.pop())
                if trace is None or trace.trace_id in filed:
                    continue  # evicted since, or already added by a live update
                if matches(trace):
                    found.append(trace)
                checked += 1
                if checked % 64 == 0:
                    if deadline is not None and time.perf_counter() > deadline:
                        stop = True
                        break
                    if until_rows is not None and len(filed) + len(found) >= until_rows:
                        stop = True
                        break
            if not chunk:
                pending.pop()
        self._add_scanned(found)

    def _add_scanned(self, found: list[Trace]) -> None:
        """Add matches found newest first; normally all older than every member, so one prepend."""
        if not found:
            return
        self._layout = None
        found.reverse()
        ids = [t.trace_id for t in found]
        # The key every trace is filed under (the same int objects: a dropped member list frees none).
        filed = self._all.key_of
        keys = [filed.get(t.trace_id) or self._key(t) for t in found]
        members = self._members
        if self._sorting is not None:
            self._sorting.member_changes.update(ids)
        if members.rank(keys[-1]) == 0 and keys == sorted(keys):
            members.prepend(keys, ids)
        else:  # a trace's start moved since the scan began, or a live update got ahead
            members.update(dict(zip(ids, keys, strict=True)))
        if self._want_expanded:
            self._expand_wanted(ids)

    def matches(self, trace: Trace) -> bool:
        """Errors-only and the filter (:class:`Query`).

        Text is searched case-insensitively in each span's strings. An ASCII query is searched for
        in each span's raw bytes (``bytes.lower`` folds ASCII, which is all such a query needs, and
        no span is decoded); those bytes are the serialised span, so attribute keys are found as
        text too. A query with other letters ("café", "Straße") needs Unicode case folding, so it
        decodes each span's text: about ten times slower, paid only by such queries.
        """
        if self.errors_only and not trace.has_error:
            return False
        test = self._test
        return test is None or test(trace)

    def span_matches(self, span: Span) -> bool:
        """Whether a span passes the filter's query on its own: the spans marked in an expanded trace.
        False while there is no query (nothing to mark)."""
        test = self._span_test
        return test is not None and test(span)

    # --- sorting ---------------------------------------------------------------------------------
    #
    # A new sort needs a key for every trace; a duration is a subtraction, but tokens and times to first
    # token are read out of LLM spans' bytes, which for a million spans takes longer than a frame. So the
    # keys are computed in slices, newest first, while the list keeps its old order, and sorted into runs
    # as they come; the runs are then merged into the new orders a chunk at a time, still in slices, and
    # the finished orders are swapped in at once, with only what changed meanwhile filed again.

    #: Keys sorted into one run (a C sort of this many ints takes a few ms).
    SORT_RUN = 32_768

    def set_sort(self, sort: str, *, now: bool = True) -> None:
        """Sort the list by ``sort`` (a key of :data:`SORTS`); with ``now`` it completes at once,
        otherwise call :meth:`continue_sort` until :attr:`sort_done`."""
        if sort not in SORTS:
            raise ValueError(f"unknown sort {sort!r}")
        if sort == self.sort and self._sorting is None:
            return
        self._sorting = None if sort == self.sort else _Sorting(sort, sort_key(sort), self._all.id_chunks(copy=True))
        if now:
            self.continue_sort(None)

    @property
    def sort_done(self) -> bool:
        return self._sorting is None

    @property
    def sort_progress(self) -> float:
        """Share of a new sort done (1.0 when done): keys computed, then (the last tenth) merged."""
        sorting = self._sorting
        if sorting is None:
            return 1.0
        keyed = len(sorting.id_of)
        if sorting.every is None:
            total = keyed + sum(map(len, sorting.pending))
            return 0.9 * keyed / total if total else 0.9
        return 0.9 + 0.1 * len(sorting.every) / keyed if keyed else 0.9

    def continue_sort(self, budget_s: float | None) -> bool:
        """Work on a new sort for ``budget_s`` seconds (None: to the end); True when it was put in place
        (the rows moved)."""
        sorting = self._sorting
        if sorting is None:
            return False
        deadline = None if budget_s is None else time.perf_counter() + budget_s
        pending, id_of, key, get = sorting.pending, sorting.id_of, sorting.key, self.store.get
        batch, run = sorting.batch, self.SORT_RUN
        checked = 0
        while pending:
            chunk = pending[-1]
            while chunk:
                trace = get(chunk.pop())
                if trace is not None:
                    k = key(trace)
                    id_of[k] = trace.trace_id
                    batch.append(k)
                    if len(batch) >= run:
                        batch.sort()
                        sorting.runs.append(batch)
                        batch = sorting.batch = []
                checked += 1
                if checked % 256 == 0 and deadline is not None and time.perf_counter() > deadline:
                    return False
            pending.pop()
        if sorting.merged is None:
            if batch:
                batch.sort()
                sorting.runs.append(batch)
                sorting.batch = []
            runs = sorting.runs
            sorting.merged = iter(runs[0]) if len(runs) == 1 else heapq.merge(*runs)
            sorting.runs = []
            sorting.every = _Order()
            sorting.members = None if self._members is self._all else _Order()
            sorting.members_stale = False
            if deadline is not None and time.perf_counter() > deadline:
                return False
        every, members, merged = sorting.every, sorting.members, sorting.merged
        assert every is not None
        step = _Order.LOAD
        stepped = False
        while True:
            keys = list(islice(merged, step))
            if not keys:
                if stepped and deadline is not None:
                    return False  # the swap in a slice of its own, with the rows' redraw it causes
                break
            stepped = True
            ids = list(map(id_of.__getitem__, keys))
            every.extend(keys, ids)
            if members is not None and not sorting.members_stale:
                shown = self._members.key_of
                kept = [i for i, trace_id in enumerate(ids) if trace_id in shown]
                members.extend([keys[i] for i in kept], [ids[i] for i in kept])
            if deadline is not None and time.perf_counter() > deadline:
                return False
        self._sorting = None
        self._swap_sort(sorting, every, members)
        return True

    def _swap_sort(self, sorting: _Sorting, every: _Order, members: _Order | None) -> None:
        """Put a sort's finished orders in place, first filing again what changed while they were built."""
        get, key, filed = self.store.get, sorting.key, self._all.key_of
        changes: dict[str, int | None] = {}
        for trace_id in sorting.dirty | sorting.gone:
            if trace_id in filed:
                trace = get(trace_id)
                if trace is not None:
                    changes[trace_id] = key(trace)
            else:
                changes[trace_id] = None
        every.update(changes)
        shown = self._members.key_of
        if self._members is self._all:
            members = every
        elif members is None or sorting.members_stale:
            members = _Order.of_keys({t: k for t in shown if (k := every.key_of.get(t)) is not None})
        else:
            filed_now = every.key_of.get
            members.update({t: filed_now(t) if t in shown else None
                            for t in sorting.member_changes | changes.keys()})
        self.sort, self._key = sorting.sort, key
        self._all, self._members = every, members
        if self._pending:  # a filter still scanning: newest first in the new order too
            waiting = {trace_id for chunk in self._pending for trace_id in chunk}
            self._pending = [c for c in ([t for t in chunk if t in waiting]
                                         for chunk in self._all.id_chunks(copy=False)) if c]
        self._gone = {}
        self._layout = None
        self._order_expanded()

    # --- applying changes --------------------------------------------------------------------------

    def rebuild(self) -> None:
        """Recompute everything from the store, completely (after a clear; tests compare against it)."""
        self._all = _Order.of(list(self.store), self._key)
        if self._sorting is not None:  # start the new sort's keys over
            self._sorting = _Sorting(self._sorting.sort, self._sorting.key, self._all.id_chunks(copy=True))
        self._members = self._all
        self._layout = None
        self._expanded.clear()
        self._rebuilding.clear()
        self._expanded_order = []
        self.set_filter(self.filter_text, self.errors_only)

    def _expand_wanted(self, trace_ids: list[str]) -> None:
        """Re-expand those of ``trace_ids`` that were expanded before a filter hid them, once shown again."""
        for trace_id in trace_ids:
            if trace_id in self._want_expanded and trace_id in self._members:
                self._want_expanded.discard(trace_id)
                self.expand(trace_id)

    def apply(self, changes: StoreChanges) -> None:
        """Bring the index up to date with one change set from :meth:`TraceStore.drain_changes`."""
        self._gone = {}
        self._layout = None
        if changes.cleared:
            self._want_expanded.clear()
            self._summaries.clear()
            self.rebuild()
        sorting = self._sorting
        if sorting is not None:
            sorting.dirty.update(changes.updated)
            sorting.gone.update(changes.evicted)
        members, every = self._members, self._all
        filtered = members is not every
        moves: dict[str, int | None] = {}
        member_moves: dict[str, int | None] = {}
        gone_key = members.key_of.get
        for trace_id in changes.evicted:
            if trace_id in every:
                moves[trace_id] = None
            key = gone_key(trace_id)
            if key is not None:
                self._gone[key & _SEQ_MASK] = key
                member_moves[trace_id] = None
            self._summaries.pop(trace_id, None)
            self._want_expanded.discard(trace_id)
        expanded = self._expanded
        reorder = False
        rebuilding = self._rebuilding
        for trace_id in changes.evicted:
            reorder |= expanded.pop(trace_id, None) is not None
            rebuilding.pop(trace_id, None)  # its rebuild would hold a copy of its spans for nothing
        store_get = self.store.get
        filed = members.key_of
        added: list[str] = []
        for trace_id in changes.updated:
            trace = store_get(trace_id)
            if trace is None:
                continue
            key = moves[trace_id] = self._key(trace)
            if not filtered or self.matches(trace):
                if trace_id not in filed or member_moves.get(trace_id, 0) is None:  # new, or back
                    added.append(trace_id)
                member_moves[trace_id] = key
                if trace_id in expanded:
                    self._refresh_expansion(trace)
                    reorder = True  # its key may have moved
            elif trace_id in filed:
                old = filed[trace_id]
                self._gone[old & _SEQ_MASK] = old
                member_moves[trace_id] = None
                reorder |= expanded.pop(trace_id, None) is not None
                rebuilding.pop(trace_id, None)
        every.update(moves)  # while nothing is filtered, the members are every trace: this is them
        if filtered:
            members.update(member_moves)
            if sorting is not None:
                sorting.member_changes.update(member_moves)
        if reorder:
            self._order_expanded()
        if added and self._want_expanded:
            self._expand_wanted(added)

    # --- per-trace LLM summary ---------------------------------------------------------------------

    def summary(self, trace: Trace) -> TraceSummary:
        """Model and token totals of a trace's LLM spans; computed for visible rows only, and after a
        change only the spans added since are looked at."""
        scan = self._summaries.get(trace.trace_id)
        if scan is None or scan.replaced != trace.replaced:
            scan = self._summaries[trace.trace_id] = _UsageScan(replaced=trace.replaced)
        if scan.summary is None or scan.version != trace.version:
            scan.found += _usages(islice(trace.spans.values(), scan.checked, None))
            scan.checked, scan.version = trace.span_count, trace.version
            scan.summary = TraceSummary(*summarize(usage for _, usage in _innermost(trace, scan.found)))
        return scan.summary


def usage_spans(trace: Trace) -> list[tuple[Span, UsageSummary]]:
    """Spans naming a model or counting tokens, with those counts, minus spans that wrap another such span.

    A traced chat turn wraps the instrumentation's own span of the same request, and an agent span
    may total its model calls; summing both would count every token twice, so only the innermost
    count. Spans whose raw bytes mention no model or usage key are skipped without decoding.
    """
    return _innermost(trace, _usages(trace.spans.values()))


def _usages(spans: Iterable[Span]) -> list[tuple[Span, UsageSummary]]:
    found: list[tuple[Span, UsageSummary]] = []
    for span in spans:
        if span.may_contain(*USAGE_MARKERS):
            usage = UsageSummary.from_span(span)
            if usage.model or usage.input_tokens is not None or usage.output_tokens is not None:
                found.append((span, usage))
    return found


def _innermost(trace: Trace, found: list[tuple[Span, UsageSummary]]) -> list[tuple[Span, UsageSummary]]:
    """``found`` less the spans that wrap another of them."""
    llm_ids = {span.span_id for span, _ in found}
    covering: set[str] = set()
    for span, _ in found:
        parent = trace.spans.get(span.parent_span_id)
        seen = {span.span_id}
        while parent is not None and parent.span_id not in seen:
            seen.add(parent.span_id)
            if parent.span_id in llm_ids:
                covering.add(parent.span_id)
            parent = trace.spans.get(parent.parent_span_id)
    return [(span, usage) for span, usage in found if span.span_id not in covering]


LogEvents = Callable[[Span], tuple[Event, ...]]


def no_logs(_span: Span) -> tuple[Event, ...]:
    return ()


def llm_spans(trace: Trace, logs: LogEvents = no_logs, limit: int | None = None) -> list[tuple[Span, GenAIView]]:
    """A trace's LLM spans in tree order with their views (the LLM tab of a trace row), the first
    ``limit`` of them; ``logs`` gives the log records naming a span, as events (GenAI
    instrumentations log prompts there)."""
    found = []
    for row in display_rows(trace):
        view = GenAIView.from_span(row.span, logs(row.span))
        if view is not None:
            found.append((row.span, view))
            if len(found) == limit:
                break
    return found


#: Model calls counted when a trace row must say how many it has.
COUNTED_CALLS = 100


def trace_call(trace: Trace, logs: LogEvents = no_logs) -> tuple[Span | None, int]:
    """The model call a trace row stands for, and how many calls it has (up to :data:`COUNTED_CALLS`): its
    only call, or the first when the others are its children (a traced chat turn wraps its client's span)."""
    calls = list(islice((row.span for row in display_rows(trace) if is_model_call(row.span, logs(row.span))),
                        COUNTED_CALLS))
    if calls and all(span.parent_span_id == calls[0].span_id for span in calls[1:]):
        return calls[0], len(calls)
    return None, len(calls)
