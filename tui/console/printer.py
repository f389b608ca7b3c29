"""Print received traces as indented trees (or JSON lines) — the drop-in for the console exporter.

A trace is printed once its root span has arrived and it has been quiet for a moment, so its
children arrive first and the tree reads top-down; traces ready at the same moment are printed by
start time, then trace id. Spans that arrive later are printed as a continuation of their trace
rather than being lost or reprinting everything.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TextIO

from tui.model.conventions import (
    COMPLETION_TOKENS,
    INPUT_TOKENS,
    LLM_MODEL_NAME,
    OPERATION_NAME,
    OUTPUT_TOKENS,
    PROMPT_TOKENS,
    REQUEST_MODEL,
    RESPONSE_MODEL,
)
from tui.model.conversation import LLM, conversation, conversation_lines, step_kind
from tui.model.otlp_json import span_to_json
from tui.model.query import Query
from tui.model.span import Span, SpanKind
from tui.model.store import Trace, TraceStore
from tui.model.text import format_duration, format_value, safe_text, tree_guides

#: Attributes worth a place on a span's line when present, most telling first.
KEY_ATTRIBUTES = (
    OPERATION_NAME,
    REQUEST_MODEL,
    RESPONSE_MODEL,
    INPUT_TOKENS,
    OUTPUT_TOKENS,
    PROMPT_TOKENS,
    COMPLETION_TOKENS,
    LLM_MODEL_NAME,
    "http.request.method",
    "http.method",
    "http.route",
    "url.path",
    "url.full",
    "http.response.status_code",
    "http.status_code",
    "db.system",
    "rpc.method",
    "error.type",
)
FALLBACK_ATTRIBUTES = 3
VALUE_LIMIT = 60


class _Style:
    """ANSI styling, or none at all when stdout is not a terminal (CI logs, pipes)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled else text


class TreePrinter:
    """Prints traces from a :class:`TraceStore` as they complete."""

    def __init__(
        self,
        store: TraceStore,
        out: TextIO,
        *,
        color: bool,
        quiet_seconds: float = 0.5,
        orphan_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        query: Query | None = None,
    ) -> None:
        """With a ``query`` (``--filter``), only traces with a span that matches it are printed (whole,
        matching spans marked ◆); one that matches only once a late span arrives is printed then."""
        self.store = store
        self._matches = query.span_test() if query is not None else None
        self.out = out
        self.style = _Style(color)
        self.quiet_seconds = quiet_seconds
        self.orphan_seconds = orphan_seconds
        self.clock = clock
        self._last_change: dict[str, float] = {}
        self._printed: dict[str, set[str]] = {}

    def poll(self, *, flush: bool = False) -> None:
        """Print every trace that is ready (all pending ones with ``flush``, e.g. at exit)."""
        now = self.clock()
        changes = self.store.drain_changes()
        for trace_id in changes.evicted:
            self._last_change.pop(trace_id, None)
            self._printed.pop(trace_id, None)
        for trace_id in changes.updated:
            self._last_change[trace_id] = now
        ready: list[Trace] = []
        for trace_id, changed_at in list(self._last_change.items()):
            trace = self.store.get(trace_id)
            if trace is None:
                del self._last_change[trace_id]
                continue
            quiet = now - changed_at
            if flush or (quiet >= self.quiet_seconds and trace.has_root) or quiet >= self.orphan_seconds:
                ready.append(trace)
                del self._last_change[trace_id]
        # The store reports changes as a set, whose order differs from run to run; the same input must
        # print the same way (diffs of CI logs, tests), so traces ready together go by start, then id.
        matches = self._matches
        for trace in sorted(ready, key=lambda trace: (trace.start_ns, trace.trace_id)):
            if matches is None or trace.trace_id in self._printed or any(map(matches, trace.spans.values())):
                self._print_trace(trace)
        self.out.flush()

    def _print_trace(self, trace: Trace) -> None:
        printed = self._printed.setdefault(trace.trace_id, set())
        rows = trace.rows()
        guides = tree_guides([row.depth for row in rows])
        fresh = [(guide, row) for guide, row in zip(guides, rows, strict=True) if row.span.span_id not in printed]
        if not fresh:
            return
        s = self.style
        if printed:
            header = f"{s('2', 'trace')} {trace.trace_id} {s('2', f'(continued: {len(fresh)} late span(s))')}"
        else:
            root_note = "" if trace.has_root else s("33", "  (root span not received)")
            if trace.dropped_spans:
                root_note += s("33", f"  (+{trace.dropped_spans:,} spans over the per-trace cap, not kept)")
            header = (
                f"{s('2', 'trace')} {trace.trace_id}  {s('36', safe_text(trace.service_name))}  "
                f"{s('1', safe_text(trace.name))}  {format_duration(trace.duration_ns)}  "
                f"{trace.span_count} span{'s' if trace.span_count != 1 else ''}{root_note}"
            )
        lines = [header]
        for guide, row in fresh:
            lines.append(s("2", guide) + self._span_line(row.span, orphan=row.orphan, cycle=row.cycle))
            printed.add(row.span.span_id)
        llm = any(step_kind(span) == LLM for span in trace.spans.values())
        if llm and any(step_kind(row.span) for _, row in fresh):
            lines.extend(self._conversation_lines(trace, updated=len(printed) > len(fresh)))
        self.out.write("\n".join(lines) + "\n")

    def _conversation_lines(self, trace: Trace, *, updated: bool) -> list[str]:
        """The trace's conversation under its tree, in the Conversation tab's shape (printed again, whole,
        when late spans bring steps)."""
        s = self.style
        lines: list[str] = []
        conv = conversation(trace)
        if not conv.steps:  # no LLM call in it: the tree says all there is
            return lines
        for n, (depth, step) in enumerate(conversation_lines(conv)):
            indent = "  " * (depth + 1)
            for tone, text in step:
                if n == 0 and updated:
                    text += " (updated by late spans)"
                code = _TONE_CODES.get(tone, "")
                lines.append(indent + (s(code, safe_text(text)) if code else safe_text(text)))
        return lines

    def _span_line(self, span: Span, *, orphan: bool, cycle: bool) -> str:
        s = self.style
        parts = [s("1", safe_text(span.name) or "(unnamed)"), format_duration(span.duration_ns)]
        if self._matches is not None and self._matches(span):
            parts[0] = s("35;1", "◆ ") + parts[0]
        if span.kind not in (SpanKind.UNSPECIFIED, SpanKind.INTERNAL):
            parts.append(s("2", span.kind.name.lower()))
        if span.is_error:
            message = f": {safe_text(span.status_message)}" if span.status_message else ""
            parts.append(s("31;1", f"ERROR{message}"))
        if orphan:
            parts.append(s("33", f"(parent {span.parent_span_id} not received)"))
        if cycle:
            parts.append(s("33", "(parent link forms a cycle)"))
        attrs = [(k, span.attributes[k]) for k in KEY_ATTRIBUTES if k in span.attributes]
        if not attrs:
            attrs = list(span.attributes.items())[:FALLBACK_ATTRIBUTES]
        for key, value in attrs:
            parts.append(f"{s('2', safe_text(key) + '=')}{safe_text(format_value(value, limit=VALUE_LIMIT))}")
        return "  ".join(parts)


#: ANSI codes of the Conversation's tones (as the detail pane draws them: roles in their colours).
_TONE_CODES = {"heading": "1;7", "title": "1", "note": "2", "muted": "2", "error": "31;1", "system": "35",
               "user": "34", "assistant": "32", "tool": "33"}


class JsonLinesPrinter:
    """``--print --json``: one OTLP/JSON span object per line, as soon as it arrives."""

    def __init__(self, out: TextIO, query: Query | None = None) -> None:
        """With a ``query`` (``--filter``), only the spans that match it, as they arrive (a span is not
        held back to learn whether another span of its trace will match)."""
        self.out = out
        self._matches = query.span_test() if query is not None else None

    def write(self, spans: list[Span]) -> None:
        if self._matches is not None:
            spans = list(filter(self._matches, spans))
            if not spans:
                return
        # json.dumps with ensure_ascii escapes every control character (C1 included): terminal-safe.
        self.out.write("".join(json.dumps(span_to_json(span)) + "\n" for span in spans))
        self.out.flush()
