"""The flat row index behind the trace list: which row shows which trace or span.

Rows are traces newest first; an expanded trace is followed by its spans in tree order. The
index is maintained incrementally from the store's change sets, so applying a frame's changes
costs what changed, and mapping a screen row to its content costs O(expanded traces · log n) —
never a walk over everything stored. Pure Python: unit-tested and benchmarked without a UI.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass

from tui.model.genai import GenAIView, is_llm_span, summarize
from tui.model.span import Span
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
        self._search_text: dict[str, tuple[int, str]] = {}
        self._summaries: dict[str, tuple[int, TraceSummary]] = {}
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
                trace = self.store.get(trace_id)
                assert trace is not None
                if index == start:
                    return ListRow(trace)
                i = index - start - 1
                return ListRow(trace, expansion.rows[i], expansion.guides[i])
            extra += len(expansion.rows)
        position = index - extra
        if not 0 <= position < n:
            raise IndexError(index)
        trace = self.store.get(self._ids[n - 1 - position])
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

    def set_filter(self, text: str | None = None, errors_only: bool | None = None) -> None:
        if text is not None:
            self.filter_text = text.strip().lower()
        if errors_only is not None:
            self.errors_only = errors_only
        self.rebuild()

    def matches(self, trace: Trace) -> bool:
        if self.errors_only and not trace.has_error:
            return False
        return not self.filter_text or self.filter_text in self._text_of(trace)

    def _text_of(self, trace: Trace) -> str:
        """Lower-cased searchable text of a trace (services, names, string values), cached per version."""
        cached = self._search_text.get(trace.trace_id)
        if cached is not None and cached[0] == trace.version:
            return cached[1]
        parts: list[str] = []
        services: set[str] = set()
        for span in trace.spans.values():
            parts.append(span.name)
            services.add(span.service_name)
            _collect_strings(span.attributes.values(), parts)
            for event in span.events:
                parts.append(event.name)
                _collect_strings(event.attributes.values(), parts)
        parts.extend(services)
        text = "\n".join(parts).lower()
        self._search_text[trace.trace_id] = (trace.version, text)
        return text

    # --- applying changes --------------------------------------------------------------------------

    def rebuild(self) -> None:
        """Recompute membership from scratch (after a filter change or a clear)."""
        self._ids = []
        self._seqs = []
        self._seq_of = {}
        for trace in self.store:
            if self.matches(trace):
                self._ids.append(trace.trace_id)
                self._seqs.append(trace.seq)
                self._seq_of[trace.trace_id] = trace.seq
        self._search_text = {k: v for k, v in self._search_text.items() if k in self.store}
        for trace_id in [t for t in self._expanded if t not in self._seq_of]:
            del self._expanded[trace_id]
        for trace_id in self._expanded:
            trace = self.store.get(trace_id)
            assert trace is not None
            self._expanded[trace_id] = _Expansion.of(trace)
        self._order_expanded()

    def apply(self, changes: StoreChanges) -> None:
        """Bring the index up to date with one change set from :meth:`TraceStore.drain_changes`."""
        if changes.cleared:
            self._expanded.clear()
            self._summaries.clear()
            self._search_text.clear()
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
            self._search_text.pop(trace_id, None)
            self._summaries.pop(trace_id, None)
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
        summary = TraceSummary(*summarize(view for _, view in innermost_llm_spans(trace)))
        self._summaries[trace.trace_id] = (trace.version, summary)
        return summary


def _collect_strings(values: object, out: list[str]) -> None:
    stack = list(values)  # type: ignore[call-overload]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, tuple):
            stack.extend(value)
        elif isinstance(value, dict):
            stack.extend(value.values())


def innermost_llm_spans(trace: Trace) -> list[tuple[Span, GenAIView]]:
    """LLM spans with no LLM span below them: the calls that actually spent the tokens.

    A traced chat turn wraps the instrumentation's own span of the same request, and an agent span
    wraps its model calls; summing both would count every token twice.
    """
    found = llm_spans(trace)
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
    return [(span, view) for span, view in found if span.span_id not in covering]


def llm_spans(trace: Trace) -> list[tuple[Span, GenAIView]]:
    """A trace's LLM spans in tree order with their views (the LLM tab of a trace row)."""
    found = []
    for row in trace.rows():
        if is_llm_span(row.span):
            view = GenAIView.from_span(row.span)
            if view is not None:
                found.append((row.span, view))
    return found
