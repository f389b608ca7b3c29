"""Which held span a replay replays, and which replays a span has: the links both ways.

A replay's span names its original twice, as an OpenTelemetry span link (trace and span id) and as the
``REPLAY_OF`` attribute (the span id), so a tool that knows only one of them still finds it. The store keeps
the reverse index (:meth:`TraceStore.replays_of`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tui.model.conventions import REPLAY_OF
from tui.model.span import Span
from tui.model.store import TraceStore


@dataclass(frozen=True, slots=True)
class SpanRef:
    """A span by its ids, and its name when it is held ("" when it is not, or no longer)."""

    trace_id: str
    span_id: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class ReplayLinks:
    """The original a span replays (None if it is no replay) and its own replays, oldest first."""

    original: SpanRef | None = None
    replays: tuple[SpanRef, ...] = field(default_factory=tuple)


NO_LINKS = ReplayLinks()


def replay_links(store: TraceStore, span: Span) -> ReplayLinks:
    """Both directions for ``span``: cheap, so it can run each time a span is shown."""
    original = None
    of = span.attributes.get(REPLAY_OF)
    if isinstance(of, str) and of:
        trace_id = next((link.trace_id for link in span.links if link.span_id == of), "")
        original = _ref(store, trace_id, of)
    replays = tuple(_ref(store, trace_id, span_id) for trace_id, span_id in store.replays_of(span.span_id))
    return ReplayLinks(original, replays)


def _ref(store: TraceStore, trace_id: str, span_id: str) -> SpanRef:
    trace = store.get(trace_id)
    held = trace.spans.get(span_id) if trace is not None else None
    return SpanRef(trace_id, span_id, held.name if held is not None else "")
