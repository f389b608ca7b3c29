"""The flat row index behind the trace list: which row shows which trace or span.

Rows are traces newest first; an expanded trace is followed by its spans in tree order. The
index is maintained incrementally from the store's change sets, so applying a frame's changes
costs what changed, and mapping a screen row to its content costs O(expanded traces · log n) —
never a walk over everything stored. Pure Python: unit-tested and benchmarked without a UI.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass

from tui.model.conventions import USAGE_MARKERS
from tui.model.genai import GenAIView, UsageSummary, summarize
from tui.model.span import Event, Span
from tui.model.store import StoreChanges, Trace, TraceStore, TreeRow
from tui.model.text import tree_guides


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


@dataclass(slots=True)
class _Expansion:
    """A snapshot of an expanded trace's span rows (refreshed when changes are applied)."""

    rows: list[TreeRow]
    guides: list[str]
    positions: dict[str, int]

    @classmethod
    def of(cls, trace: Trace) -> _Expansion:
        rows = trace.rows()
        return cls(rows, tree_guides([r.depth for r in rows]), {r.span.span_id: i for i, r in enumerate(rows)})


@dataclass(slots=True)
class TraceSummary:
    """What a trace row shows beyond the store's own summary: its LLM model and token totals."""

    model: str
    tokens_in: int | None
    tokens_out: int | None


class TraceListIndex:
    """Filtered, expandable, newest-first rows over a :class:`TraceStore`."""

    def __init__(self, store: TraceStore) -> None:
        self.store = store
        self.filter_text = ""
        self.errors_only = False
        self._ids: list[str] = []  # matching traces, oldest first
        self._seqs: list[int] = []  # their store sequence numbers (sorted)
        self._seq_of: dict[str, int] = {}
        self._expanded: dict[str, _Expansion] = {}
        self._expanded_order: list[tuple[int, str]] = []  # (seq, id), newest first
        self._summaries: dict[str, tuple[int, TraceSummary]] = {}
        #: Ids of traces the current filter has not looked at yet, oldest first (scanned from the end).
        self._pending: list[str] = []
        #: Expanded traces hidden by a filter change, re-expanded if they match again.
        self._want_expanded: set[str] = set()
        self._needle = b""
        #: The filter case-folded as text when it has non-ASCII letters (see :meth:`matches`).
        self._unicode_needle: str | None = None
        self.rebuild()

    # --- size and lookup -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._ids) + sum(len(e.rows) for e in self._expanded.values())

    @property
    def trace_count(self) -> int:
        return len(self._ids)

    def row(self, index: int) -> ListRow:
        """The row at display position ``index`` (0 = newest trace)."""
        n = len(self._ids)
        extra = 0
        for seq, trace_id in self._expanded_order:
            k = bisect_left(self._seqs, seq)
            start = (n - 1 - k) + extra
            if index < start:
                break
            expansion = self._expanded[trace_id]
            if index <= start + len(expansion.rows):
                trace = self.store.shown(trace_id)
                assert trace is not None
                if index == start:
                    return ListRow(trace)
                i = index - start - 1
                return ListRow(trace, expansion.rows[i], expansion.guides[i])
            extra += len(expansion.rows)
        position = index - extra
        if not 0 <= position < n:
            raise IndexError(index)
        trace = self.store.shown(self._ids[n - 1 - position])
        assert trace is not None
        return ListRow(trace)

    def position_of(self, trace_id: str, span_id: str | None = None) -> int | None:
        """Display position of a trace row (or of one of its span rows when expanded), if shown."""
        seq = self._seq_of.get(trace_id)
        if seq is None:
            return None
        k = bisect_left(self._seqs, seq)
        position = len(self._ids) - 1 - k
        for other_seq, other_id in self._expanded_order:
            if other_seq <= seq:
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
        return self._ids[::-1]

    def position_near(self, seq: int) -> int | None:
        """Row of the shown trace closest in age to a trace that is gone (the next newer, else the
        newest older): where the selection goes when its trace is evicted or filtered out."""
        if not self._ids:
            return None
        k = min(bisect_left(self._seqs, seq), len(self._ids) - 1)
        return self.position_of(self._ids[k])

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
        if trace is None or trace_id not in self._seq_of or trace_id in self._expanded:
            return False
        self._expanded[trace_id] = _Expansion.of(trace)
        self._order_expanded()
        return True

    def collapse(self, trace_id: str) -> bool:
        if self._expanded.pop(trace_id, None) is None:
            return False
        self._order_expanded()
        return True

    def _order_expanded(self) -> None:
        self._expanded_order = sorted(((self._seq_of[t], t) for t in self._expanded), reverse=True)

    # --- filtering -------------------------------------------------------------------------------
    #
    # A filter over a million spans cannot be decided in one frame (scanning ~1 GB of span text
    # takes about half a second here), so it is scanned newest first, in slices: the rows on screen
    # are final as soon as enough matches are found, and the rest of the list fills in below them
    # while the UI keeps running. A narrower filter (the next keystroke) scans only what matched.

    def set_filter(self, text: str | None = None, errors_only: bool | None = None, *, scan: bool = True) -> None:
        """Change the filter; with ``scan`` it completes now, otherwise call :meth:`continue_scan`."""
        old_text, old_errors, was_done = self.filter_text, self.errors_only, self.scan_done
        if text is not None:
            self.filter_text = text.strip().lower()
        if errors_only is not None:
            self.errors_only = errors_only
        self._needle = self.filter_text.encode()
        self._unicode_needle = None if self.filter_text.isascii() else self.filter_text.casefold()
        narrower = (was_done and self.filter_text.startswith(old_text) and (self.errors_only or not old_errors)
                    and (old_text or old_errors))
        candidates = self._ids if narrower else None  # the old member list, reused as is
        self._want_expanded |= set(self._expanded)
        self._reset_members()
        if not self.filter_text and not self.errors_only:
            self._pending = []
            self._take_all()
        else:
            self._pending = candidates if candidates is not None else self.store.trace_ids()
        if scan:
            self.continue_scan(None)

    @property
    def scan_done(self) -> bool:
        return not self._pending

    @property
    def scan_progress(self) -> float:
        """Share of the store the current filter has looked at (1.0 when done)."""
        total = len(self.store)
        return 1.0 if not self._pending or not total else 1.0 - len(self._pending) / total

    def continue_scan(self, budget_s: float | None, until_rows: int | None = None) -> None:
        """Scan pending traces newest first for ``budget_s`` seconds (None: to the end), stopping
        early once ``until_rows`` rows are shown."""
        pending = self._pending
        deadline = None if budget_s is None else time.perf_counter() + budget_s
        found: list[Trace] = []
        checked = 0
        get = self.store.get
        while pending:
            trace = get(pending.pop())
            if trace is None or trace.trace_id in self._seq_of:
                continue  # evicted since, or already added by a live update
            if self.matches(trace):
                found.append(trace)
            checked += 1
            if checked % 64 == 0:
                if deadline is not None and time.perf_counter() > deadline:
                    break
                if until_rows is not None and len(self._ids) + len(found) >= until_rows:
                    break
        self._add_scanned(found)

    def _add_scanned(self, found: list[Trace]) -> None:
        """Add matches found newest first; normally all older than every member, so one prepend."""
        if not found:
            return
        found.reverse()
        if not self._seqs or found[-1].seq < self._seqs[0]:
            self._ids[0:0] = [t.trace_id for t in found]
            self._seqs[0:0] = [t.seq for t in found]
            for trace in found:
                self._seq_of[trace.trace_id] = trace.seq
        else:
            for trace in found:
                self._insert(trace)
        self._expand_wanted([t.trace_id for t in found])

    def matches(self, trace: Trace) -> bool:
        """Errors-only and the filter text, case-insensitively, anywhere in the trace's strings.

        An ASCII filter is searched for in each span's raw bytes (``bytes.lower`` folds ASCII, which
        is all such a filter needs, and no span is decoded). A filter with other letters ("café",
        "Straße") needs Unicode case folding, so it decodes each span's text: about ten times
        slower, paid only by such filters.
        """
        if self.errors_only and not trace.has_error:
            return False
        if not self.filter_text:
            return True
        needle, text, unicode = self._needle, self.filter_text, self._unicode_needle
        resources: set[int] = set()
        for span in trace.spans.values():
            if (needle in span.search_bytes) if unicode is None else (unicode in span.search_text):
                return True
            if id(span.resource) not in resources:
                resources.add(id(span.resource))
                service = span.resource.service_name
                if (text in service.lower()) if unicode is None else (unicode in service.casefold()):
                    return True
        return False

    # --- applying changes --------------------------------------------------------------------------

    def rebuild(self) -> None:
        """Recompute membership from scratch, completely (after a clear; tests compare against it)."""
        self.set_filter(self.filter_text, self.errors_only)

    def _reset_members(self) -> None:
        self._ids, self._seqs, self._seq_of = [], [], {}
        self._expanded.clear()
        self._expanded_order = []

    def _take_all(self) -> None:
        """No filter: every trace is a member (no scan needed)."""
        traces = list(self.store)
        self._ids = [t.trace_id for t in traces]
        self._seqs = [t.seq for t in traces]
        self._seq_of = dict(zip(self._ids, self._seqs, strict=True))
        self._expand_wanted(list(self._want_expanded))

    def _expand_wanted(self, trace_ids: list[str]) -> None:
        """Re-expand those of ``trace_ids`` that were expanded before a filter hid them, once shown again."""
        for trace_id in trace_ids:
            if trace_id in self._want_expanded and trace_id in self._seq_of:
                self._want_expanded.discard(trace_id)
                self.expand(trace_id)

    def apply(self, changes: StoreChanges) -> None:
        """Bring the index up to date with one change set from :meth:`TraceStore.drain_changes`."""
        if changes.cleared:
            self._want_expanded.clear()
            self._summaries.clear()
            self._reset_members()
            self.rebuild()
        if changes.evicted:
            self._remove_evicted(changes.evicted)
        expansion_changed = False
        for trace_id in changes.updated:
            trace = self.store.get(trace_id)
            if trace is None:
                continue
            member = trace_id in self._seq_of
            if self.matches(trace):
                if not member:
                    self._insert(trace)
                    self._expand_wanted([trace_id])
                elif trace_id in self._expanded:
                    self._expanded[trace_id] = _Expansion.of(trace)
            elif member:
                self._remove(trace_id)
                expansion_changed |= self._expanded.pop(trace_id, None) is not None
        if expansion_changed:
            self._order_expanded()

    def _insert(self, trace: Trace) -> None:
        if not self._seqs or trace.seq > self._seqs[-1]:
            self._ids.append(trace.trace_id)
            self._seqs.append(trace.seq)
        else:
            k = bisect_left(self._seqs, trace.seq)
            self._ids.insert(k, trace.trace_id)
            self._seqs.insert(k, trace.seq)
        self._seq_of[trace.trace_id] = trace.seq

    def _remove(self, trace_id: str) -> None:
        seq = self._seq_of.pop(trace_id)
        k = bisect_left(self._seqs, seq)
        del self._ids[k]
        del self._seqs[k]

    def _remove_evicted(self, evicted: set[str]) -> None:
        # The store evicts oldest first, so evicted members are a prefix of the index.
        k = 0
        while k < len(self._ids) and self._ids[k] in evicted:
            k += 1
        for trace_id in self._ids[:k]:
            del self._seq_of[trace_id]
        del self._ids[:k]
        del self._seqs[:k]
        for trace_id in evicted:
            if trace_id in self._seq_of:  # not in the prefix (cannot happen with oldest-first eviction)
                self._remove(trace_id)
            self._summaries.pop(trace_id, None)
            self._want_expanded.discard(trace_id)
        gone = [t for t in self._expanded if t in evicted]
        for trace_id in gone:
            del self._expanded[trace_id]
        if gone:
            self._order_expanded()

    # --- per-trace LLM summary ---------------------------------------------------------------------

    def summary(self, trace: Trace) -> TraceSummary:
        """Model and token totals of a trace's LLM spans; computed for visible rows only, cached."""
        cached = self._summaries.get(trace.trace_id)
        if cached is not None and cached[0] == trace.version:
            return cached[1]
        summary = TraceSummary(*summarize(usage for _, usage in usage_spans(trace)))
        self._summaries[trace.trace_id] = (trace.version, summary)
        return summary


def usage_spans(trace: Trace) -> list[tuple[Span, UsageSummary]]:
    """Spans naming a model or counting tokens, with those counts, minus spans that wrap another such span.

    A traced chat turn wraps the instrumentation's own span of the same request, and an agent span
    may total its model calls; summing both would count every token twice, so only the innermost
    count. Spans whose raw bytes mention no model or usage key are skipped without decoding.
    """
    found: list[tuple[Span, UsageSummary]] = []
    for span in trace.spans.values():
        if span.may_contain(*USAGE_MARKERS):
            usage = UsageSummary.from_span(span)
            if usage.model or usage.input_tokens is not None or usage.output_tokens is not None:
                found.append((span, usage))
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


def llm_spans(trace: Trace, logs: LogEvents = no_logs) -> list[tuple[Span, GenAIView]]:
    """A trace's LLM spans in tree order with their views (the LLM tab of a trace row); ``logs``
    gives the log records naming a span, as events (GenAI instrumentations log prompts there)."""
    found = []
    for row in trace.rows():
        view = GenAIView.from_span(row.span, logs(row.span))
        if view is not None:
            found.append((row.span, view))
    return found
