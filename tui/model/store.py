"""The in-memory trace store: groups spans into traces, links parents, evicts, and tracks changes.

Pure Python so it can be tested, benchmarked and used headless (``--print``) without a UI. The UI
never scans the store: it asks for the traces that changed since it last looked
(:meth:`TraceStore.drain_changes`), which keeps the per-frame cost proportional to what changed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field

from tui.model.conventions import CHAT_SERVICE, REPLAY_OF
from tui.model.span import Resource, Span


@dataclass(frozen=True, slots=True)
class TreeRow:
    """One span placed in its trace's hierarchy, in display (depth-first) order."""

    span: Span
    depth: int
    #: The span names a parent that has not arrived (yet); it is shown at the top level, marked.
    orphan: bool = False
    #: The span's parent chain loops back on itself; it was cut here and shown as a root.
    cycle: bool = False
    #: Box-drawing prefix below the top level (``│  └─ ``), "" at depth 0: what the list draws
    #: before the name, less the top level's own column (see :attr:`Trace.last_top_row`).
    trunk: str = ""


#: Spans a trace holds by default (and never more than the store's whole budget): the first ones
#: to arrive, so one runaway trace cannot take the budget from every other.
DEFAULT_MAX_TRACE_SPANS = 100_000
#: Spans a slice of :meth:`Trace.build_rows` handles before it yields.
ROW_SLICE = 4096
#: Above this many spans, what is drawn on every change reads the rows last built (see
#: :meth:`Trace.latest_rows`) rather than rebuild them.
LARGE_TRACE_SPANS = 5_000


class Trace:
    """All spans received for one trace id, with a summary kept up to date as spans arrive."""

    __slots__ = ("trace_id", "seq", "spans", "start_ns", "end_ns", "error_count", "version", "true_root", "_rows",
                 "_rows_version", "last_top_row", "dropped_spans", "replaced")

    def __init__(self, trace_id: str, seq: int) -> None:
        self.trace_id = trace_id
        #: Arrival order of the trace's first span; higher is newer. Eviction removes the lowest,
        #: whatever the trace's start time (the list orders by start time, see ``TraceListIndex``).
        self.seq = seq
        self.spans: dict[str, Span] = {}
        self.start_ns = 0
        self.end_ns = 0
        self.error_count = 0
        #: Bumped on every change so views can cache what they derive from the trace.
        self.version = 0
        #: The earliest span without a parent, kept up to date on add (list rows read it every frame).
        self.true_root: Span | None = None
        self._rows: list[TreeRow] = []
        self._rows_version = -1
        #: Index in the rows last built of the last top-level row: the rows after it hang from it.
        self.last_top_row = -1
        #: Spans not stored because the trace held as many as the store allows one trace.
        self.dropped_spans = 0
        #: Spans replaced by a re-sent copy (views that scan only new spans rescan after one).
        self.replaced = 0

    def add(self, span: Span) -> bool:
        """Add or replace a span; returns True when it replaced one with the same id (later data wins)."""
        previous = self.spans.get(span.span_id)
        self.spans[span.span_id] = span
        self.version += 1
        if previous is not None:
            self.replaced += 1
            self._replace_in_summary(previous, span)
            return True
        if len(self.spans) == 1:
            self.start_ns, self.end_ns = span.start_ns, span.end_ns
        else:
            self.start_ns = min(self.start_ns, span.start_ns)
            self.end_ns = max(self.end_ns, span.end_ns)
        self.error_count += span.is_error
        if not span.parent_span_id and (self.true_root is None or span.start_ns < self.true_root.start_ns):
            self.true_root = span
        return False

    def _replace_in_summary(self, old: Span, new: Span) -> None:
        """A re-sent span: adjust the summary, rescanning the trace only when a bound may have moved."""
        self.error_count += new.is_error - old.is_error
        if (old.start_ns <= self.start_ns and new.start_ns > old.start_ns) or (
            old.end_ns >= self.end_ns and new.end_ns < old.end_ns
        ):
            spans = self.spans.values()
            self.start_ns = min(s.start_ns for s in spans)
            self.end_ns = max(s.end_ns for s in spans)
        else:
            self.start_ns = min(self.start_ns, new.start_ns)
            self.end_ns = max(self.end_ns, new.end_ns)
        if self.true_root is old or (not new.parent_span_id and (
                self.true_root is None or new.start_ns < self.true_root.start_ns)):
            roots = [s for s in self.spans.values() if not s.parent_span_id]
            self.true_root = min(roots, key=_start_key) if roots else None

    @property
    def span_count(self) -> int:
        return len(self.spans)

    @property
    def duration_ns(self) -> int:
        return max(0, self.end_ns - self.start_ns)

    @property
    def has_error(self) -> bool:
        return self.error_count > 0

    @property
    def root(self) -> Span | None:
        """The span that names the trace: the earliest true root, else the earliest top-level row."""
        if self.true_root is not None:
            return self.true_root
        rows = self.rows() if len(self.spans) <= LARGE_TRACE_SPANS else self.latest_rows()
        return rows[0].span if rows else None

    @property
    def has_root(self) -> bool:
        return self.true_root is not None

    @property
    def service_name(self) -> str:
        root = self.root
        return root.service_name if root is not None else "unknown_service"

    @property
    def name(self) -> str:
        root = self.root
        return root.name if root is not None else ""

    def rows(self) -> list[TreeRow]:
        """The span hierarchy in depth-first order, siblings by start time.

        Iterative, so a parent chain thousands deep cannot hit the recursion limit; every span
        appears exactly once, even when parent links are missing, point at the span itself, or form
        a cycle. Cached until the trace changes.
        """
        if not self.rows_built:
            for _ in self.build_rows():
                pass
        return self._rows

    @property
    def rows_built(self) -> bool:
        """Whether :meth:`rows` are built for the trace as it is now."""
        return self._rows_version == self.version

    def latest_rows(self) -> list[TreeRow]:
        """The rows last built, even if spans arrived since (built now if never): for views of a
        huge trace that must not rebuild it on every change."""
        return self._rows if self._rows_version >= 0 else self.rows()

    def build_rows(self) -> Generator[None, None, None]:
        """Build :meth:`rows` of the trace as it is now, :data:`ROW_SLICE` spans per ``next``; once
        exhausted, :meth:`rows` and :meth:`latest_rows` return them. Lets a view rebuild a huge
        trace across frames instead of stalling one."""
        return self._build_rows(dict(self.spans), self.version)

    def _build_rows(self, spans: dict[str, Span], version: int) -> Generator[None, None, None]:
        values = list(spans.values())
        children: dict[str, list[Span]] = {}
        tops: list[tuple[Span, bool]] = []
        for at in range(0, len(values), ROW_SLICE):
            for span in values[at:at + ROW_SLICE]:
                parent = span.parent_span_id
                if not parent or parent == span.span_id:
                    tops.append((span, False))
                elif parent not in spans:
                    tops.append((span, True))
                else:
                    children.setdefault(parent, []).append(span)
            yield
        for siblings in children.values():
            siblings.sort(key=_start_key)
        tops.sort(key=lambda item: item[0].start_ns)
        yield

        rows: list[TreeRow] = []
        placed: set[str] = set()
        last_top = -1

        def walk(top: Span, orphan: bool, cycle: bool) -> Generator[None, None, None]:
            # (span, depth, the trunk of its row less its own branch, whether it is its parent's last child)
            stack: list[tuple[Span, int, str, bool]] = [(top, 0, "", True)]
            first = True
            pause = len(rows) + ROW_SLICE
            while stack:
                span, depth, trunk, last = stack.pop()
                if span.span_id in placed:
                    continue
                placed.add(span.span_id)
                rows.append(TreeRow(span, depth, orphan and first, cycle and first,
                                    trunk + ("└─ " if last else "├─ ") if depth else ""))
                first = False
                kids = [kid for kid in children.get(span.span_id, ()) if kid.span_id not in placed]
                if kids:
                    below = trunk + ("   " if last else "│  ") if depth else ""
                    stack.append((kids[-1], depth + 1, below, True))
                    stack.extend((kid, depth + 1, below, False) for kid in reversed(kids[:-1]))
                if len(rows) >= pause:
                    pause += ROW_SLICE
                    yield

        for span, orphan in tops:
            last_top = len(rows)
            yield from walk(span, orphan, False)
        if len(placed) < len(spans):
            # Whatever is left is only reachable through a parent cycle: cut each cycle at its
            # earliest span so the display stays a tree.
            for span in sorted(spans.values(), key=_start_key):
                if span.span_id not in placed:
                    last_top = len(rows)
                    yield from walk(span, False, True)
        if version > self._rows_version:
            self._rows, self._rows_version, self.last_top_row = rows, version, last_top


def _start_key(span: Span) -> int:
    return span.start_ns


@dataclass(slots=True)
class StoreChanges:
    """What changed since the last :meth:`TraceStore.drain_changes` call."""

    updated: set[str] = field(default_factory=set)
    evicted: set[str] = field(default_factory=set)
    cleared: bool = False

    def __bool__(self) -> bool:
        return bool(self.updated or self.evicted or self.cleared)


#: Distinct resource attribute keys :attr:`TraceStore.resource_keys` remembers before it gives up.
MAX_RESOURCE_KEYS = 10_000


class TraceStore:
    """Traces in arrival order, bounded by a span budget.

    When more than ``max_spans`` spans are held, whole traces are evicted oldest first (a trace
    is never split: half a trace is worse than none) and counted. One trace holds at most
    ``max_trace_spans`` (at most ``max_spans``): the first to arrive, less one place kept for a root
    until one arrives (an SDK exports the root last, when it ends, and it names the trace); the rest
    are counted on the trace and in :attr:`capped_spans`, so "accepted = stored + evicted + replaced
    + capped" always adds up. Oldest means first to *arrive*, not earliest to start: the list
    shows traces by start time, but the budget is about what has been held longest, and a trace
    replayed from a file or sent by a host with a slow clock must not be evicted the moment it
    arrives because its timestamps are old.
    """

    def __init__(self, max_spans: int = 500_000, max_trace_spans: int = DEFAULT_MAX_TRACE_SPANS) -> None:
        if max_spans < 1 or max_trace_spans < 1:
            raise ValueError("max_spans and max_trace_spans must be at least 1")
        self.max_spans = max_spans
        self.max_trace_spans = min(max_trace_spans, max_spans)
        self._traces: dict[str, Trace] = {}
        #: (seq, trace id) in arrival order. Eviction pops from here: ``next(iter(dict))`` after many
        #: deletions at the front of a dict is O(deleted) (it skips the holes), which under a flood
        #: with eviction cost 9% of the receivers' time.
        self._arrivals: deque[tuple[int, str]] = deque()
        self._next_seq = 0
        self.span_count = 0
        self.spans_added = 0
        self.spans_replaced = 0
        self.evicted_spans = 0
        self.evicted_traces = 0
        #: Spans not stored because their trace was full (see ``max_trace_spans``).
        self.capped_spans = 0
        self._changes = StoreChanges()
        #: Traces evicted since the last :meth:`drain_changes`, and those the last one reported:
        #: kept that long so views can still draw them (see :meth:`shown`).
        self._evicted_since_drain: dict[str, Trace] = {}
        self._evicted_reported: dict[str, Trace] = {}
        #: Every resource attribute key seen, lower-cased (``None`` once more than
        #: :data:`MAX_RESOURCE_KEYS` were): lets the list's filter tell that a query cannot be a
        #: whole resource key, so the next keystroke may rescan only the previous one's matches.
        self.resource_keys: set[str] | None = set()
        self._last_resource: Resource | None = None
        #: Replayed span id → (trace id, span id) of each replay, in arrival order. Only the chat pane's spans
        #: (few, typed by a person) are read for it, so nothing else is decoded to keep it.
        self._replays: dict[str, list[tuple[str, str]]] = {}
        self._from_chat = False
        #: Replays noted so far: a view showing a span's replay count redraws when this moves.
        self.replays_noted = 0

    def __len__(self) -> int:
        return len(self._traces)

    def __iter__(self) -> Iterator[Trace]:
        """Traces oldest first."""
        return iter(self._traces.values())

    def __contains__(self, trace_id: object) -> bool:
        return trace_id in self._traces

    def get(self, trace_id: str) -> Trace | None:
        return self._traces.get(trace_id)

    def shown(self, trace_id: str) -> Trace | None:
        """The trace, or, if it was evicted but a view may not have applied that yet, its last state.

        A view draws from its own row index, which learns of evictions only when it applies a
        drained change set. It may draw before the drain (under a flood the list is updated five
        times a second while rows near the oldest end, where a held selection drifts, are evicted
        in between) and reads its rows while applying it. So an evicted trace stays here until the
        drain *after* the one that reports it.
        """
        trace = self._traces.get(trace_id)
        if trace is None:
            trace = self._evicted_since_drain.get(trace_id) or self._evicted_reported.get(trace_id)
        return trace

    def trace_ids(self) -> list[str]:
        """Every trace id, oldest first (a fresh list)."""
        return list(self._traces)

    def traces_with(self, span_id: str, trace_id_prefix: str = "") -> list[Trace]:
        """Traces holding a span with id ``span_id``, or whose own id starts with ``trace_id_prefix``
        (ids are lower-case hex): one pass, a dict lookup a trace, oldest first."""
        if trace_id_prefix:
            return [t for t in self._traces.values() if span_id in t.spans or t.trace_id.startswith(trace_id_prefix)]
        return [t for t in self._traces.values() if span_id in t.spans]

    def add_spans(self, spans: Iterable[Span]) -> None:
        """Add a batch; parents and children may arrive in any order and in any batch."""
        traces = self._traces
        updated = self._changes.updated
        resource = self._last_resource
        nearly_full = self.max_trace_spans - 1
        for span in spans:
            if span.resource is not resource:  # once a batch: its spans share one Resource
                resource = span.resource
                self._note_resource(resource)
            if self._from_chat:
                self._note_replay(span)
            trace = traces.get(span.trace_id)
            if trace is None:
                trace = traces[span.trace_id] = Trace(span.trace_id, self._next_seq)
                self._arrivals.append((self._next_seq, span.trace_id))
                self._next_seq += 1
            self.spans_added += 1
            if len(trace.spans) >= nearly_full and self._over_cap(trace, span):
                updated.add(span.trace_id)  # its row shows the count
                continue
            if trace.add(span):
                self.spans_replaced += 1
            else:
                self.span_count += 1
            updated.add(span.trace_id)
        self._evict()

    def _over_cap(self, trace: Trace, span: Span) -> bool:
        """Whether a full trace refuses ``span`` (counted if so): a re-sent copy of a span it holds
        is taken, and the last place waits for a root while the trace has none."""
        if span.span_id in trace.spans:
            return False
        held, cap = len(trace.spans), self.max_trace_spans
        if held < cap and (cap == 1 or not span.parent_span_id or trace.true_root is not None):
            return False
        trace.dropped_spans += 1
        self.capped_spans += 1
        return True

    def _note_resource(self, resource: Resource) -> None:
        self._last_resource = resource
        self._from_chat = resource.service_name == CHAT_SERVICE
        keys = self.resource_keys
        if keys is None:
            return
        keys.update(key.lower() for key in resource.attributes)
        if len(keys) > MAX_RESOURCE_KEYS:
            self.resource_keys = None

    def _note_replay(self, span: Span) -> None:
        original = span.attributes.get(REPLAY_OF)
        if isinstance(original, str) and original:
            replays = self._replays.setdefault(original, [])
            if (span.trace_id, span.span_id) not in replays:  # a re-sent copy is the same replay
                replays.append((span.trace_id, span.span_id))
                self.replays_noted += 1

    def replays_of(self, span_id: str) -> list[tuple[str, str]]:
        """(trace id, span id) of each replay of ``span_id`` still held, oldest first."""
        traces = self._traces
        return [(t, s) for t, s in self._replays.get(span_id, ()) if (trace := traces.get(t)) and s in trace.spans]

    def _evict(self) -> None:
        traces = self._traces
        arrivals = self._arrivals
        while self.span_count > self.max_spans and len(traces) > 1:
            seq, trace_id = arrivals.popleft()
            trace = traces.get(trace_id)
            if trace is None or trace.seq != seq:
                continue  # already gone (cleared), or a newer trace that reuses the id
            del traces[trace_id]
            self.span_count -= trace.span_count
            self.evicted_spans += trace.span_count
            self.evicted_traces += 1
            self._changes.updated.discard(trace_id)
            self._changes.evicted.add(trace_id)
            self._evicted_since_drain[trace_id] = trace

    def clear(self) -> None:
        """Forget every trace (a user action, so nothing is counted as evicted)."""
        self._traces.clear()
        self._arrivals.clear()
        self.span_count = 0
        self._changes = StoreChanges(cleared=True)
        self._evicted_since_drain, self._evicted_reported = {}, {}
        self.resource_keys, self._last_resource = set(), None
        self._replays, self._from_chat = {}, False

    def drain_changes(self) -> StoreChanges:
        """Return what changed since the previous call and start a new change set."""
        changes, self._changes = self._changes, StoreChanges()
        self._evicted_reported, self._evicted_since_drain = self._evicted_since_drain, {}
        return changes
