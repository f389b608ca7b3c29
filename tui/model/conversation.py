"""The conversation of an agent run: a trace (or a span's subtree) as the ordered steps it took.

:func:`conversation` turns the spans into steps, in tree order (siblings by start time):

- **headings**: agent and chain spans (``invoke_agent`` / ``create_agent``, OpenInference ``AGENT`` /
  ``CHAIN``, Traceloop ``agent`` / ``workflow``, pydantic-ai's ``agent_name``) with their name, model,
  input and final output; a chain is a heading only when it holds two steps or more (not a wrapper
  around one call, as LangChain's ``RunnableSequence`` is);
- **LLM calls**: model, latency, tokens, finish reason, and only the messages the call *added* to the
  conversation: its history (system instructions + input messages) is compared, message by message on
  role + text, with the previous call's history and completion, and the repeated prefix is folded to a
  count; then its completion and the tool calls it asked for. A model span wrapping another LLM span
  (a framework's span around the client's) is left to the inner one;
- **tool executions**: ``execute_tool`` / OpenInference ``TOOL`` / Traceloop ``tool`` spans, or any span
  naming ``gen_ai.tool.name``: name, arguments, result, duration, error. A run that records no tool span
  gets one step per tool result message instead, placed before the call that was sent it.

:class:`Totals` sums tokens preferring leaves: a span's own usage counts only when nothing below it
reports usage, so an agent span's aggregate and its calls are not both counted. Times are unions of
intervals, so parallel calls are not counted twice, and time inside a tool spent in LLM calls is LLM
time.

Pure (no Textual, no Rich), so ``--print`` uses it too. Built once per trace ``version`` and kept in
a small cache; each message is hashed once and histories are compared as hashes.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from tui.model.conventions import (
    AGENT_NAME_KEYS,
    ERROR_TYPE,
    LLM_MARKERS,
    OPENINFERENCE_SPAN_KIND,
    OPERATION_KEYS,
    REQUEST_MODEL_KEYS,
    RESPONSE_MODEL_KEYS,
    STEP_INPUT_KEYS,
    STEP_OUTPUT_KEYS,
    TOOL_ARGUMENT_KEYS,
    TOOL_CALL_ID,
    TOOL_NAME_KEYS,
    TOOL_RESULT_KEYS,
    TRACELOOP_SPAN_KIND,
)
from tui.model.genai import (
    AGENT,
    CHAIN,
    MODEL_CALL,
    TOOL_EXECUTION,
    GenAIView,
    Message,
    ToolCall,
    UsageSummary,
    content,
    first_str,
    is_llm_span,
    span_kind,
)
from tui.model.span import Attributes, Event, Span
from tui.model.store import LARGE_TRACE_SPANS, Trace, TreeRow
from tui.model.text import format_duration, format_value

# --- what a span is -------------------------------------------------------------------------------

HEADING = "heading"
LLM = "llm"
TOOL = "tool"

_STEP_OF_KIND = {TOOL_EXECUTION: TOOL, AGENT: HEADING, MODEL_CALL: LLM, CHAIN: "chain"}

#: Bytes one of which is in the payload of any span :func:`step_kind` can classify.
_MARKERS = (*LLM_MARKERS, b"openinference.span.kind", b"traceloop.span.kind", b"agent_name", b"tool.name",
            b"tool_name")

LogEvents = Callable[[Span], tuple[Event, ...]]


def _no_logs(_span: Span) -> tuple[Event, ...]:
    return ()


def step_kind(span: Span) -> str:
    """``heading``, ``llm``, ``tool``, ``chain`` (a heading only if it holds steps) or "" for the rest."""
    if not span.may_contain(*_MARKERS):
        return ""
    a = span.attributes
    operation = first_str(a, *OPERATION_KEYS)
    if operation or a.get(OPENINFERENCE_SPAN_KIND) or a.get(TRACELOOP_SPAN_KIND):
        return _STEP_OF_KIND[span_kind(a)]  # what the span says it is, read as the LLM tab reads it
    if TOOL_NAME_KEYS[0] in a:  # a tool span that names no operation
        return TOOL
    if any(key in a for key in AGENT_NAME_KEYS):
        return HEADING
    if is_llm_span(span):
        usage = UsageSummary.from_span(span)
        if usage.model and (usage.input_tokens is not None or usage.output_tokens is not None):
            return LLM
    return ""


# --- steps ------------------------------------------------------------------------------------------

@dataclass(slots=True)
class Step:
    """One step of the run. ``kind`` is :data:`HEADING`, :data:`LLM` or :data:`TOOL`."""

    kind: str
    span: Span
    #: Headings above it (agents within agents), for indenting.
    depth: int = 0
    name: str = ""
    model: str = ""
    operation: str = ""
    duration_ns: int | None = None
    error: str = ""
    # LLM calls
    view: GenAIView | None = None
    #: Messages of the history repeated from the previous call, not shown.
    folded: int = 0
    #: What the call added to the conversation (system instructions as "system" messages).
    added: list[Message] = field(default_factory=list)
    # tool executions
    call_id: str = ""
    arguments: str = ""
    result: str = ""
    #: Built from a tool result message, not a span (the run recorded no tool span).
    from_messages: bool = False
    # headings
    input: str = ""
    output: str = ""
    instructions: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None

    @property
    def span_id(self) -> str:
        return self.span.span_id

    @property
    def tool_calls(self) -> list[ToolCall]:
        """The tool calls an LLM call asked for."""
        view = self.view
        return [call for m in view.output for call in m.tool_calls] if view is not None else []


@dataclass(slots=True)
class Totals:
    llm_calls: int = 0
    tool_calls: int = 0
    input_tokens: int | None = None
    output_tokens: int | None = None
    llm_ns: int = 0
    tool_ns: int = 0
    total_ns: int = 0
    errors: int = 0

    @property
    def other_ns(self) -> int:
        return max(0, self.total_ns - self.llm_ns - self.tool_ns)


@dataclass(slots=True)
class Conversation:
    steps: list[Step]
    totals: Totals
    #: The span whose subtree it is ("" for the whole trace).
    root_span_id: str = ""


# --- building -----------------------------------------------------------------------------------------

_CACHE_SIZE = 16
_cache: OrderedDict[tuple[str, str], tuple[Trace, int, Conversation]] = OrderedDict()


def conversation(trace: Trace, span_id: str | None = None, logs: LogEvents = _no_logs) -> Conversation:
    """The steps of ``trace`` (or of the subtree of span ``span_id``), cached per trace version."""
    key = (trace.trace_id, span_id or "")
    cached = _cache.get(key)
    if cached is not None and cached[0] is trace and cached[1] == trace.version:
        _cache.move_to_end(key)
        return cached[2]
    built = build(_subtree(trace, span_id), trace, span_id or "", logs)
    _cache[key] = (trace, trace.version, built)
    _cache.move_to_end(key)
    while len(_cache) > _CACHE_SIZE:
        _cache.popitem(last=False)
    return built


def has_llm_descendants(trace: Trace, span_id: str | None = None) -> bool:
    """Cheap (no message is parsed): whether the trace, or the subtree below span ``span_id`` (itself
    excluded), holds an LLM span. Decides whether the Conversation tab is offered."""
    if span_id is None:
        return any(is_llm_span(span) for span in trace.spans.values())
    rows = _subtree(trace, span_id)
    return any(is_llm_span(row.span) for row in rows[1:])


def _rows(trace: Trace) -> list[TreeRow]:
    return trace.rows() if trace.span_count <= LARGE_TRACE_SPANS else trace.latest_rows()


def _subtree(trace: Trace, span_id: str | None) -> list[TreeRow]:
    rows = _rows(trace)
    if span_id is None:
        return rows
    start = next((i for i, row in enumerate(rows) if row.span.span_id == span_id), None)
    if start is None:
        return []
    depth = rows[start].depth
    end = start + 1
    while end < len(rows) and rows[end].depth > depth:
        end += 1
    return rows[start:end]


def build(rows: list[TreeRow], trace: Trace | None = None, root_span_id: str = "",
          logs: LogEvents = _no_logs) -> Conversation:
    """The conversation of ``rows`` (a trace's rows, or a subtree's, in display order)."""
    n = len(rows)
    parent = _parents(rows)
    kinds = [step_kind(row.span) for row in rows]
    # Below each row: is there an LLM span (a model span around another is left to the inner one),
    # and is there any step (a chain is a heading only then)?
    llm_below = [False] * n
    steps_below = [0] * n  # LLM calls and tool executions
    for i in range(n - 1, -1, -1):
        p = parent[i]
        if p >= 0:
            if kinds[i] == LLM or llm_below[i]:
                llm_below[p] = True
            steps_below[p] += steps_below[i] + ((kinds[i] == LLM and not llm_below[i]) or kinds[i] == TOOL)

    steps: list[Step] = []
    has_tool_spans = any(kind == TOOL for kind in kinds)
    heading_depth = [0] * n
    previous: _History | None = None
    pending_calls: dict[str, ToolCall] = {}
    llm_intervals: list[tuple[int, int]] = []
    tool_intervals: list[tuple[int, int]] = []
    for i, row in enumerate(rows):
        p = parent[i]
        depth = heading_depth[p] if p >= 0 else 0
        kind = kinds[i]
        span = row.span
        if kind == "chain":
            kind = HEADING if steps_below[i] >= 2 else ""  # not a wrapper of one call (RunnableSequence)
        if kind == HEADING:
            steps.append(_heading(span, depth, logs))
            depth += 1
        elif kind == LLM and not llm_below[i]:
            step, previous = _llm_call(span, depth, previous, logs)
            if not has_tool_spans:
                steps.extend(_tools_from_messages(step, pending_calls))
            for call in step.tool_calls:
                pending_calls[call.id or call.name] = call
            steps.append(step)
            llm_intervals.append((span.start_ns, span.end_ns))
        elif kind == TOOL:
            steps.append(_tool(span, depth, logs))
            tool_intervals.append((span.start_ns, span.end_ns))
        heading_depth[i] = depth

    totals = Totals(
        llm_calls=sum(step.kind == LLM for step in steps),
        tool_calls=sum(step.kind == TOOL for step in steps),
        errors=sum(row.span.is_error for row in rows),
    )
    totals.input_tokens, totals.output_tokens = _leaf_usage(rows, parent)
    llm_ns = _union(llm_intervals)
    totals.llm_ns = llm_ns
    totals.tool_ns = max(0, _union(llm_intervals + tool_intervals) - llm_ns)
    if root_span_id and rows:
        totals.total_ns = rows[0].span.duration_ns
    elif trace is not None:
        totals.total_ns = trace.duration_ns
    elif rows:
        totals.total_ns = max(r.span.end_ns for r in rows) - min(r.span.start_ns for r in rows)
    return Conversation(steps, totals, root_span_id)


def _parents(rows: list[TreeRow]) -> list[int]:
    """Index of each row's parent row (-1 at the top), from the depths of the display order."""
    parent = [-1] * len(rows)
    stack: list[int] = []
    for i, row in enumerate(rows):
        while stack and rows[stack[-1]].depth >= row.depth:
            stack.pop()
        parent[i] = stack[-1] if stack else -1
        stack.append(i)
    return parent


def _leaf_usage(rows: list[TreeRow], parent: list[int]) -> tuple[int | None, int | None]:
    """Tokens in and out, a span's own counting only when nothing below it reports any."""
    n = len(rows)
    below_in: list[int | None] = [None] * n
    below_out: list[int | None] = [None] * n
    total_in: int | None = None
    total_out: int | None = None
    for i in range(n - 1, -1, -1):
        t_in, t_out = below_in[i], below_out[i]
        if t_in is None and t_out is None and is_llm_span(rows[i].span):
            usage = UsageSummary.from_span(rows[i].span)
            t_in, t_out = usage.input_tokens, usage.output_tokens
        p = parent[i]
        if p >= 0:
            below_in[p] = _add(below_in[p], t_in)
            below_out[p] = _add(below_out[p], t_out)
        else:
            total_in, total_out = _add(total_in, t_in), _add(total_out, t_out)
    return total_in, total_out


def _add(a: int | None, b: int | None) -> int | None:
    return a if b is None else (a or 0) + b


def _union(intervals: list[tuple[int, int]]) -> int:
    total = 0
    end = None
    for start, stop in sorted(intervals):
        if end is None or start > end:
            total += max(0, stop - start)
            end = stop
        elif stop > end:
            total += stop - end
            end = stop
    return total


# --- LLM calls: the history diff ---------------------------------------------------------------------

class _History:
    """A call's history (system + input) and completion, each message hashed once."""

    __slots__ = ("messages", "hashes")

    def __init__(self, messages: list[Message]) -> None:
        self.messages = messages
        self.hashes = [_message_hash(m) for m in messages]


def _message_key(message: Message) -> tuple[str, str, tuple[ToolCall, ...], str]:
    return (message.role, message.content, message.tool_calls, message.tool_call_id)


def _message_hash(message: Message) -> int:
    return hash(_message_key(message))


def _common_prefix(history: _History, previous: _History) -> int:
    """Messages the two histories share from the start: equal hashes of role + text (64-bit SipHash of the
    text, and the same role, length and tool calls: a collision would need all of them)."""
    count = 0
    for a, b, ma, mb in zip(history.hashes, previous.hashes, history.messages, previous.messages, strict=False):
        if a != b or ma.role != mb.role or len(ma.content) != len(mb.content):
            break
        count += 1
    return count


def _llm_call(span: Span, depth: int, previous: _History | None,
              logs: LogEvents) -> tuple[Step, _History]:
    view = GenAIView.from_span(span, logs(span)) or GenAIView(duration_s=span.duration_ns / 1e9)
    history = _History([Message("system", text) for text in view.system] + view.input)
    folded = _common_prefix(history, previous) if previous is not None else 0
    step = Step(LLM, span, depth, name=span.name, model=view.model, operation=view.operation,
                duration_ns=span.duration_ns, error=_error(span), view=view, folded=folded,
                added=history.messages[folded:], input_tokens=view.input_tokens, output_tokens=view.output_tokens)
    after = _History([])
    after.messages = history.messages + view.output
    after.hashes = history.hashes + [_message_hash(m) for m in view.output]
    return step, after


def _tools_from_messages(step: Step, calls: dict[str, ToolCall]) -> list[Step]:
    """Tool steps for the tool results a call was sent, when the run recorded no tool span."""
    found = []
    for message in step.added:
        if message.role != "tool" and not message.tool_call_id:
            continue
        call = calls.pop(message.tool_call_id, None) if message.tool_call_id else None
        found.append(Step(TOOL, step.span, step.depth, name=call.name if call else "tool",
                          call_id=message.tool_call_id, arguments=call.arguments if call else "",
                          result=message.content, from_messages=True))
    return found


# --- tools and headings ---------------------------------------------------------------------------------

def _tool(span: Span, depth: int, logs: LogEvents) -> Step:
    a = span.attributes
    name = first_str(a, *TOOL_NAME_KEYS) or span.name.removeprefix("execute_tool ").removeprefix("running tool")
    arguments = _first_text(a, *TOOL_ARGUMENT_KEYS)
    result = next((content(a[key])[0] for key in TOOL_RESULT_KEYS if key in a), "")  # strands sends blocks
    if not arguments or not result:
        view = GenAIView.from_span(span, logs(span))
        if view is not None:
            if not arguments:
                arguments = "\n".join(_message_text(m) for m in view.input)
            if not result:
                result = "\n".join(_message_text(m) for m in view.output)
    return Step(TOOL, span, depth, name=name.strip() or span.name, duration_ns=span.duration_ns,
                error=_error(span), call_id=first_str(a, TOOL_CALL_ID), arguments=arguments, result=result)


def _heading(span: Span, depth: int, logs: LogEvents) -> Step:
    a = span.attributes
    view = GenAIView.from_span(span, logs(span))
    name = first_str(a, *AGENT_NAME_KEYS) or span.name
    step = Step(HEADING, span, depth, name=name, duration_ns=span.duration_ns, error=_error(span),
                operation=first_str(a, *OPERATION_KEYS) or str(a.get(OPENINFERENCE_SPAN_KIND, "") or "").lower())
    step.model = first_str(a, *RESPONSE_MODEL_KEYS, *REQUEST_MODEL_KEYS, "model_name")
    if view is not None:
        step.view = view
        step.instructions = "\n".join(view.system)
        users = [m for m in view.input if m.role == "user"]
        step.input = _message_text(users[-1]) if users else "\n".join(_message_text(m) for m in view.input)
        if view.output:
            step.output = _message_text(view.output[-1])
        step.input_tokens, step.output_tokens = view.input_tokens, view.output_tokens
    if not step.input:
        step.input = _first_text(a, *STEP_INPUT_KEYS)
    if not step.output:
        step.output = _first_text(a, *STEP_OUTPUT_KEYS)
    step.input, step.output = _state_text(step.input, "user"), _state_text(step.output, "")
    return step


#: LangChain's message types, as the roles the tab shows.
_STATE_ROLES = {"human": "user", "ai": "assistant", "tool": "tool", "system": "system"}


def _state_text(text: str, role: str) -> str:
    """A graph's state dumped whole as a step's input or output (LangGraph's ``{"messages": [...]}``, the
    history so far) as the message a reader looks for: the last one of ``role``, or the last of all ("" role);
    any other text as it is (the whole value stays in the Attributes tab)."""
    if not text.startswith('{"messages"'):
        return text
    try:
        state = json.loads(text)
    except ValueError:
        return text
    messages = state.get("messages") if isinstance(state, dict) else None
    read = [m for m in (_state_message(item) for item in messages or ()) if m is not None]
    chosen = [m for m in read if not role or m.role == role]
    return chosen[-1].text() if chosen else text


def _state_message(item: object) -> Message | None:
    """One message of a graph state: LangChain's dump (``{"type": "ai", "data": {...}}``) or a plain
    ``{"role", "content"}``; None for anything else."""
    if not isinstance(item, dict):
        return None
    data = item.get("data")
    if isinstance(data, dict) and "type" in item:
        calls = tuple(ToolCall(str(c.get("name", "")), json.dumps(c.get("args"), ensure_ascii=False))
                      for c in data.get("tool_calls") or () if isinstance(c, dict))
        text, _, answers = content(data.get("content", ""))
        return Message(_STATE_ROLES.get(str(item["type"]), str(item["type"])), text, calls,
                       answers or str(data.get("tool_call_id") or ""))
    if "role" in item:
        return Message(str(item["role"]), content(item.get("content", ""))[0])
    return None


def _message_text(message: Message) -> str:
    return message.text()


def _error(span: Span) -> str:
    if not span.is_error:
        error_type = span.attributes.get(ERROR_TYPE)
        return str(error_type) if error_type else ""
    for event in span.events:
        if event.name == "exception":
            kind = event.attributes.get("exception.type", "")
            message = event.attributes.get("exception.message", "")
            return ": ".join(str(v) for v in (kind, message) if v) or span.status_message or "error"
    return span.status_message or str(span.attributes.get(ERROR_TYPE, "") or "") or "error"


def _first_text(a: Attributes, *keys: str) -> str:
    """The first of ``keys`` present, as text (structured values as JSON)."""
    for key in keys:
        if key in a:
            return "" if a[key] is None else format_value(a[key])  # the attribute tab's text
    return ""


# --- the shape shown (detail tab) and printed (--print) ---------------------------------------------------

#: A line of a step: (tone, text). Tones are those of the detail pane (``title``, ``heading``, ``user``,
#: ``assistant``, ``tool``, ``system``, ``error``, ``muted``, ``note``); the text is untrusted.
Line = tuple[str, str]

#: Characters of one message (or argument, result) shown inline; the rest is counted.
INLINE_CHARS = 600
#: Characters of a heading's input and output shown inline (often a framework's whole state as JSON).
HEADING_CHARS = 240
#: Lines of one message shown inline.
INLINE_LINES = 8


def tokens_text(tokens_in: int | None, tokens_out: int | None) -> str:
    return f"{_n(tokens_in)} → {_n(tokens_out)} tokens"


def totals_line(totals: Totals) -> str:
    parts = [f"{totals.llm_calls} LLM call{'s' if totals.llm_calls != 1 else ''}",
             f"{totals.tool_calls} tool call{'s' if totals.tool_calls != 1 else ''}",
             tokens_text(totals.input_tokens, totals.output_tokens),
             f"LLM {format_duration(totals.llm_ns)} · tools {format_duration(totals.tool_ns)} · "
             f"other {format_duration(totals.other_ns)}"]
    if totals.errors:
        parts.append(f"{totals.errors} error{'s' if totals.errors != 1 else ''}")
    return " · ".join(parts)


def step_title(step: Step) -> str:
    """The step's first line."""
    duration = format_duration(step.duration_ns) if step.duration_ns is not None else ""
    if step.kind == HEADING:
        what = [p for p in (step.operation or "agent", step.model, duration) if p]
        return f"▸ {step.name}  ({' · '.join(what)})"
    if step.kind == LLM:
        view = step.view
        parts = [step.model or step.name, duration, tokens_text(step.input_tokens, step.output_tokens)]
        if view is not None and view.finish_reasons:
            parts.append(", ".join(view.finish_reasons))
        return "● " + " · ".join(p for p in parts if p)
    source = " (from the messages: no tool span)" if step.from_messages else ""
    return "⚙ " + " · ".join(p for p in (f"tool {step.name}", duration) if p) + source


def step_lines(step: Step, limit: int | None = INLINE_CHARS) -> list[Line]:
    """The step as lines: its title, then what it said and did. ``limit`` cuts each message (None: all)."""
    title_tone = {HEADING: "heading", LLM: "title", TOOL: "tool"}[step.kind]
    lines: list[Line] = [(title_tone, step_title(step))]
    if step.kind == HEADING:
        if step.instructions:
            lines += _labelled("system", "instructions", step.instructions, limit)
        short = None if limit is None else min(limit, HEADING_CHARS)
        if step.input:
            lines += _labelled("user", "input", step.input, short)
        if step.output:
            lines += _labelled("assistant", "output", step.output, short)
    elif step.kind == LLM:
        if step.folded:
            lines.append(("muted", f"  ⋯ {step.folded} earlier message{'s' if step.folded != 1 else ''} "
                                   "of the history folded"))
        for message in step.added:
            lines += _labelled(_role_tone(message.role), message.role or "?", message.text(), limit)
        view = step.view
        for message in view.output if view is not None else []:
            if message.content:
                lines += _labelled("assistant", f"{message.role or 'assistant'} (completion)", message.content,
                                   limit)
            for call in message.tool_calls:
                lines += _labelled("tool", "→ tool call", call.describe(), limit)
    else:
        if step.call_id:
            lines.append(("muted", f"  call id {step.call_id}"))
        lines += _labelled("tool", "arguments", step.arguments or "–", limit)
        if step.result or not step.error:
            lines += _labelled("assistant", "result", step.result or "–", limit)
    if step.error:
        lines += _labelled("error", "error", step.error, limit)
    return lines


def conversation_lines(conv: Conversation, limit: int | None = INLINE_CHARS) -> list[tuple[int, list[Line]]]:
    """Every step's lines with its depth, after the totals (depth 0)."""
    out: list[tuple[int, list[Line]]] = [(0, [("note", "Conversation · " + totals_line(conv.totals))])]
    out.extend((step.depth, step_lines(step, limit)) for step in conv.steps)
    return out


def _labelled(tone: str, label: str, text: str, limit: int | None) -> list[Line]:
    text = _cut(text, limit)
    first, _, rest = text.partition("\n")
    lines = [(tone, f"  {label}: {first}")]
    if rest:
        lines.extend(("", f"    {line}") for line in rest.split("\n"))
    return lines


def _cut(text: str, limit: int | None) -> str:
    if limit is None:
        return text
    cut = text[:limit]
    lines = cut.split("\n")
    if len(lines) > INLINE_LINES:
        cut = "\n".join(lines[:INLINE_LINES])
    if len(cut) < len(text):
        cut += f" … ({len(text) - len(cut):,} more characters)"
    return cut


def _role_tone(role: str) -> str:
    return role if role in ("system", "user", "assistant", "tool") else "title"


def _n(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


__all__ = ["HEADING", "LLM", "TOOL", "Conversation", "Line", "Step", "Totals", "build", "conversation",
           "conversation_lines", "has_llm_descendants", "step_kind", "step_lines", "step_title", "totals_line"]
