"""What the detail tabs show for a selected trace or span, as plain items.

Each item has a title, a body and the exact text ``y`` copies, so the tabs, the full-screen view
and the clipboard all show the same thing. Everything from a span passes through
:func:`safe_text` before it becomes a Rich ``Text`` (never markup), so span data cannot style,
move or clear the terminal. Items name a *tone* ("error", "user", …), never a colour: the widget
that draws them maps tones to its theme's styles.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from rich.style import Style
from rich.text import Text

from tui.model.conventions import GENAI_PREFIX
from tui.model.conversation import HEADING, TOOL, conversation, step_kind
from tui.model.genai import GenAIView, is_llm_span
from tui.model.replays import ReplayLinks, SpanRef
from tui.model.span import Attributes, Event, Span
from tui.model.store import Trace
from tui.model.text import bar_extent, format_duration, format_value, safe_text
from tui.model.trace_list import ListRow, LogEvents, display_rows, llm_spans, no_logs

#: Characters of one value shown inline; the full value opens with the full-screen key.
INLINE_LIMIT = 4_000
#: Characters of a title shown (a title can be a span name or an attribute key of any length).
TITLE_LIMIT = 500
#: Values up to this long (and without newlines) sit on the same line as their title.
SAME_LINE_LIMIT = 60
#: Attributes listed per section; the rest are counted (a span may carry 100 000).
MAX_ATTRIBUTES = 2_000
#: LLM spans a trace row's LLM tab lists; each of the others is shown on its own span row.
MAX_LLM_SPANS = 50

#: Every tone an item or a timeline bar may take; a widget maps each to a style from its theme.
TONES = ("title", "heading", "note", "error", "system", "user", "assistant", "tool", "bar", "muted")
#: A tone's style (the drawing widget's, from the theme).
Palette = Callable[[str], Style]


def plain_palette(_tone: str) -> Style:
    """No styling: for tests and for text that leaves the terminal."""
    return Style()


@dataclass(frozen=True, slots=True)
class Item:
    """One entry of a detail tab. ``heading`` items are section titles and cannot be selected."""

    title: str
    body: str = ""
    heading: bool = False
    #: One of :data:`TONES` for the title ("title" when unset).
    tone: str = ""
    #: The span the item stands for, when Enter can jump to it in the list (Conversation steps).
    span_id: str = ""

    @property
    def copy_text(self) -> str:
        return self.body or self.title

    def render(self, palette: Palette = plain_palette) -> Text:
        if self.heading:
            return Text.assemble("\n", Text(f" {safe_text(self.title[:TITLE_LIMIT])} ", style=palette("heading")))
        title = Text(safe_text(self.title[:TITLE_LIMIT]), style=palette(self.tone or "title"))
        if not self.body:
            return title
        if len(self.body) <= SAME_LINE_LIMIT and "\n" not in self.body:
            return Text.assemble(title, "  ", Text(safe_text(self.body)))
        body = self.body if len(self.body) <= INLINE_LIMIT else (
            self.body[:INLINE_LIMIT] + f"\n… {len(self.body) - INLINE_LIMIT:,} more characters (o opens it all)"
        )
        return Text.assemble(title, "\n", Text(safe_text(body, multiline=True)))


def _attribute_items(attributes: Attributes) -> list[Item]:
    items = [Item(key, format_value(value)) for key, value in list(attributes.items())[:MAX_ATTRIBUTES]]
    if len(attributes) > MAX_ATTRIBUTES:
        items.append(Item(f"… {len(attributes) - MAX_ATTRIBUTES:,} more attributes not listed", tone="note"))
    return items


# --- LLM tab ----------------------------------------------------------------------------------------

def has_llm_data(row: ListRow, logs: LogEvents = no_logs) -> bool:
    """Whether :func:`llm_items` would show anything, without building the views (decides if the
    LLM tab is offered while another tab is the one drawn)."""
    if row.span_row is not None and step_kind(row.span_row.span) in (HEADING, TOOL):
        return True  # an agent or tool view (OpenInference's TOOL spans carry no gen_ai.* key)
    spans = [row.span_row.span] if row.span_row is not None else row.trace.spans.values()
    return any(is_llm_span(span) or any(e.name.startswith(GENAI_PREFIX) for e in logs(span)) for span in spans)


def llm_items(row: ListRow, logs: LogEvents = no_logs) -> list[Item]:
    """The LLM tab: for a span its LLM view (an agent's or a tool's for those); for a trace every LLM
    span in it, in tree order."""
    if row.span_row is not None:
        span = row.span_row.span
        kind = step_kind(span)
        if kind == HEADING:
            return agent_items(row, logs)
        if kind == TOOL:
            return tool_items(row, logs)
        view = GenAIView.from_span(span, logs(span))
        return _view_items(view) if view else []
    items: list[Item] = []
    found = llm_spans(row.trace, logs, MAX_LLM_SPANS + 1)
    calls = [(span, view) for span, view in found if view.is_model_call]  # agents and chains: Conversation tab
    found = calls or found
    for span, view in found[:MAX_LLM_SPANS]:
        items.append(Item(f"{span.name}  ({format_duration(span.duration_ns)})", heading=True))
        items.extend(_view_items(view))
    if len(found) > MAX_LLM_SPANS:
        items.append(Item(f"… more LLM spans than the first {MAX_LLM_SPANS}: expand the trace and select one",
                          tone="note"))
    return items


def replay_items(links: ReplayLinks) -> list[Item]:
    """What a replay replays, and how often a span was replayed, each naming its jump key."""
    items: list[Item] = []
    if links.original is not None:
        items.append(Item("Replay of", f"{_ref(links.original)} · b jumps to it · C compares the two", tone="note"))
    if links.replays:
        count = len(links.replays)
        listed = "\n".join(_ref(ref) for ref in links.replays)
        items.append(Item(f"Replayed {count:,} time{'s' if count != 1 else ''}",
                          f"{listed}\nn jumps to each in turn · C compares with the latest", tone="note"))
    return items


def _ref(ref: SpanRef) -> str:
    what = ref.name or "a span no longer held"
    return f"{what} (span {ref.span_id[:8]}… in trace {ref.trace_id[:8]}…)"


def _view_items(view: GenAIView) -> list[Item]:
    """A model call's prompt and completion; of another span (a chain step) its input and output, and
    only the model and token figures it has."""
    items: list[Item] = []
    call = view.is_model_call
    model = [f"request {view.request_model or '–'}", f"response {view.response_model or '–'}"]
    if not call:
        model = [f"model {view.model}"] if view.model else []
    if view.provider:
        model.append(f"provider {view.provider}")
    if view.operation:
        model.append(f"operation {view.operation}")
    if model:
        items.append(Item("Model", " · ".join(model)))
    tokens = [f"in {_n(view.input_tokens)}", f"out {_n(view.output_tokens)}", f"total {_n(view.total_tokens)}"]
    if view.time_to_first_token_s is not None:
        note = f" ({view.time_to_first_token_note})" if view.time_to_first_token_note else ""
        tokens.append(f"time to first token {view.time_to_first_token_s:.3f}s{note}")
    elif view.time_to_first_token_note:
        tokens.append(f"time to first token – ({view.time_to_first_token_note})")
    if view.tokens_per_second is not None:
        tokens.append(f"{view.tokens_per_second:.1f} tokens/s")
    if call or view.total_tokens is not None:
        items.append(Item("Tokens", " · ".join(tokens)))
    if view.ollama_timings:
        items.append(Item("Ollama timings", _timing_breakdown(view.ollama_timings)))
    if view.finish_reasons:
        items.append(Item("Finish reason", ", ".join(view.finish_reasons)))
    if view.system or view.input:
        items.append(Item(("Prompt" if call else "Input") + (f"  (from {view.sources[0]})" if view.sources else ""),
                          heading=True))
    for text in view.system:
        items.append(Item("system (instructions)", text, tone="system"))
    for i, message in enumerate(view.input):
        items.append(Item(f"[{i}] {message.role or '?'}", message.text(), tone=_role_tone(message.role)))
    if view.output:
        items.append(Item("Completion" if call else "Output (not a model call)", heading=True))
    for i, message in enumerate(view.output):
        finish = f" · finish {message.finish_reason}" if message.finish_reason else ""
        items.append(Item(f"[{i}] {message.role or 'assistant'}{finish}", message.text(), tone="assistant"))
    if view.other:
        items.append(Item("Other LLM attributes", heading=True))
        items.extend(_attribute_items(view.other))
    return items


def agent_items(row: ListRow, logs: LogEvents = no_logs) -> list[Item]:
    """An agent (or chain) span: its name, model, instructions, input and output, and the usage of its
    run (its own aggregate when it reports one, else summed over the calls below it)."""
    assert row.span_row is not None
    span = row.span_row.span
    conv = conversation(row.trace, span.span_id, logs)
    step = next((s for s in conv.steps if s.span_id == span.span_id), None)
    totals = conv.totals
    items = [Item("Agent", heading=True)]
    items.append(Item("name", step.name if step else span.name))
    if step is not None and step.operation:
        items.append(Item("operation", step.operation))
    items.append(Item("model", (step.model if step else "") or "–"))
    items.append(Item("duration", format_duration(span.duration_ns)))
    if span.is_error and step is not None:
        items.append(Item("error", step.error, tone="error"))
    own = (step.input_tokens, step.output_tokens) if step is not None else (None, None)
    usage = [f"in {_n(totals.input_tokens)}", f"out {_n(totals.output_tokens)}"]
    if own != (None, None):
        usage.append(f"(the span reports in {_n(own[0])} · out {_n(own[1])})")
    calls = (f"{totals.llm_calls} LLM call{'s' if totals.llm_calls != 1 else ''} · {totals.tool_calls} tool "
             f"call{'s' if totals.tool_calls != 1 else ''}")
    items.append(Item("Usage", " · ".join([calls, *usage])))
    if step is not None:
        if step.instructions:
            items.append(Item("instructions", step.instructions, tone="system"))
        if step.input:
            items.append(Item("input", step.input, tone="user"))
        if step.output:
            items.append(Item("output", step.output, tone="assistant"))
    items.append(Item("The steps of this run are in the Conversation tab (t)", tone="note"))
    if step is not None and step.view is not None and step.view.other:
        items.append(Item("Other LLM attributes", heading=True))
        items.extend(_attribute_items(step.view.other))
    return items


def tool_items(row: ListRow, logs: LogEvents = no_logs) -> list[Item]:
    """A tool span: its name, call id, arguments, result, duration and error."""
    assert row.span_row is not None
    span = row.span_row.span
    conv = conversation(row.trace, span.span_id, logs)
    step = next((s for s in conv.steps if s.span_id == span.span_id), None)
    if step is None:
        return [Item("Tool", heading=True), Item("name", span.name)]
    items = [Item("Tool", heading=True), Item("name", step.name, tone="tool")]
    if step.call_id:
        items.append(Item("call id", step.call_id))
    items.append(Item("duration", format_duration(span.duration_ns)))
    items.append(Item("arguments", step.arguments or "–"))
    items.append(Item("result", step.result or "–", tone="assistant"))
    if step.error:
        items.append(Item("error", step.error, tone="error"))
    return items


def _timing_breakdown(timings: dict[str, float]) -> str:
    """load / prompt evaluation / generation as seconds and a proportional bar."""
    parts = [("load", "load_duration", "▒"), ("prompt eval", "prompt_eval_duration", "▓"),
             ("generation", "eval_duration", "█")]
    total = timings.get("total_duration") or sum(timings.get(k, 0.0) for _, k, _ in parts) or 1.0
    lines = []
    bar = ""
    for label, key, glyph in parts:
        seconds = timings.get(key)
        if seconds is None:
            continue
        lines.append(f"{label:<12}{seconds:8.3f}s  {seconds / total:6.1%}")
        bar += glyph * round(40 * seconds / total)
    if "total_duration" in timings:
        lines.append(f"{'total':<12}{timings['total_duration']:8.3f}s")
    return "\n".join([bar, *lines]) if bar else "\n".join(lines)


def _role_tone(role: str) -> str:
    return role if role in ("system", "user", "assistant", "tool") else "title"


def _n(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


# --- Attributes tab -------------------------------------------------------------------------------

def attribute_items(row: ListRow) -> list[Item]:
    trace = row.trace
    items: list[Item] = []
    if row.span_row is not None:
        span = row.span_row.span
        items.append(Item("Span", heading=True))
    else:
        items.append(Item("Trace", heading=True))
        items.append(Item("trace id", trace.trace_id))
        items.append(Item("spans", f"{trace.span_count} · {trace.error_count} with errors · "
                                   f"{format_duration(trace.duration_ns)}"))
        if trace.root is None:
            return items
        span = trace.root
        items.append(Item(f"Root span: {span.name}", heading=True))
    items.extend(_span_identity(span, trace.start_ns))
    if span.attributes:
        items.append(Item(f"Attributes ({len(span.attributes)})", heading=True))
        items.extend(_attribute_items(span.attributes))
    if span.links:
        items.append(Item(f"Links ({len(span.links)})", heading=True))
        for link in span.links:
            attrs = "\n".join(f"{k} = {format_value(v)}" for k, v in link.attributes.items())
            items.append(Item(f"→ trace {link.trace_id} span {link.span_id}", attrs))
    items.append(Item(f"Resource ({len(span.resource.attributes)})", heading=True))
    items.extend(_attribute_items(span.resource.attributes))
    items.append(Item("Instrumentation scope", heading=True))
    items.append(Item("scope", f"{span.scope.name} {span.scope.version}".strip() or "(none)"))
    items.extend(_attribute_items(span.scope.attributes))
    return items


def wall_time(ns: int, trace_start_ns: int) -> str:
    """Local wall time to the millisecond with its UTC offset, and how far into the trace it falls.
    (OTLP times are unsigned 64-bit nanoseconds: every one falls before the year 2555.)"""
    moment = datetime.fromtimestamp(ns / 1e9).astimezone()
    offset = ns - trace_start_ns
    into = f"{'+' if offset >= 0 else '-'}{format_duration(abs(offset))} from the trace's start"
    return f"{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond // 1000:03d} {moment:%z} · {into}"


def _span_identity(span: Span, trace_start_ns: int) -> list[Item]:
    status = span.status_code.name + (f": {span.status_message}" if span.status_message else "")
    items = [
        Item("name", span.name),
        Item("span id", span.span_id),
        Item("parent span id", span.parent_span_id or "(root)"),
        Item("trace id", span.trace_id),
        Item("kind", span.kind.name),
        Item("status", status, tone="error" if span.is_error else ""),
        Item("start", wall_time(span.start_ns, trace_start_ns)),
        Item("end", wall_time(span.end_ns, trace_start_ns)),
        Item("duration", format_duration(span.duration_ns)),
        Item("start, end (ns since epoch)", f"{span.start_ns}, {span.end_ns}"),
    ]
    if span.trace_state:
        items.append(Item("trace state", span.trace_state))
    dropped = (span.dropped_attributes_count, span.dropped_events_count, span.dropped_links_count)
    if any(dropped):
        items.append(Item("dropped by the SDK", f"{dropped[0]} attributes · {dropped[1]} events · {dropped[2]} links"))
    return items


# --- Events tab -----------------------------------------------------------------------------------

def event_items(row: ListRow, logs: LogEvents = no_logs) -> list[Item]:
    """Span events, then a "Logs" section of the log records naming the span, each in time order."""
    span = row.span_row.span if row.span_row else row.trace.root
    if span is None:
        return [Item("No events on this span", tone="note")]
    records = logs(span)
    items = [_event_item(span, event) for event in sorted(span.events, key=lambda e: e.time_ns)]
    if not items and not records:
        return [Item("No events or logs on this span", tone="note")]
    if records:
        items.append(Item(f"Logs ({len(records)})", heading=True))
        items.extend(_event_item(span, record) for record in records)
    return items


def _event_item(span: Span, event: Event) -> Item:
    offset = "+" + format_duration(max(0, event.time_ns - span.start_ns))
    a = event.attributes
    if event.name == "exception":
        kind = format_value(a.get("exception.type", "exception"))
        message = format_value(a.get("exception.message", ""))
        stack = format_value(a.get("exception.stacktrace", "")) if "exception.stacktrace" in a else ""
        rest = "\n".join(f"{k} = {format_value(v)}" for k, v in a.items() if not k.startswith("exception."))
        body = "\n".join(part for part in (f"{kind}: {message}", stack, rest) if part)
        return Item(f"{offset}  exception", body, tone="error")
    body = "\n".join(f"{k} = {format_value(v)}" for k, v in a.items())
    return Item(f"{offset}  {event.name}", body)


# --- Timeline tab ---------------------------------------------------------------------------------

#: Spans drawn in the timeline, around the selected one; a bigger trace says how many it left out.
MAX_TIMELINE_ROWS = 400


def timeline_lines(trace: Trace, width: int, palette: Palette = plain_palette,
                   around: str | None = None) -> list[tuple[str, Text]]:
    """The trace as a waterfall: one line per span, a bar scaled to the trace's time range; of a big
    trace the :data:`MAX_TIMELINE_ROWS` around span ``around`` (else the first), so that redrawing
    it as the trace grows costs what is drawn. A huge trace is drawn as the list last built it."""
    rows = display_rows(trace)
    at = 0
    if around is not None and len(rows) > MAX_TIMELINE_ROWS:
        at = next((i for i, row in enumerate(rows) if row.span.span_id == around), 0)
    first = max(0, min(at - MAX_TIMELINE_ROWS // 2, len(rows) - MAX_TIMELINE_ROWS))
    left_out = max(0, len(rows) - first - MAX_TIMELINE_ROWS)
    lines = [("", Text(f"… {first:,} spans above not drawn", style=palette("note")))] if first else []
    rows = rows[first:first + MAX_TIMELINE_ROWS]
    label_width = max(12, min(40, width // 3))
    bar_width = max(10, width - label_width - 12)
    for row in rows:
        span = row.span
        label = ("  " * min(row.depth, 10) + safe_text(span.name[:label_width]))[:label_width].ljust(label_width)
        left, length = bar_extent(span.start_ns, span.end_ns, trace.start_ns, trace.end_ns, bar_width)
        text = Text(label + " ")
        text.append((" " * left + "█" * length).ljust(bar_width), style=palette("error" if span.is_error else "bar"))
        text.append(f" {format_duration(span.duration_ns):>8}", style=palette("muted"))
        lines.append((span.span_id, text))
    if left_out:
        lines.append(("", Text(f"… {left_out:,} more spans not drawn", style=palette("note"))))
    return lines
