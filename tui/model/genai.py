"""The LLM view of a span, whatever convention its instrumentation followed.

Instrumentations disagree on where prompts, completions and token counts live. One function,
:meth:`GenAIView.from_span`, tries them in order and merges what it finds:

1. current semantic conventions: ``gen_ai.system_instructions`` / ``gen_ai.input.messages`` /
   ``gen_ai.output.messages`` (JSON string or structured value, the "parts" structure);
2. GenAI events on the span (``gen_ai.user.message``, ``gen_ai.choice``, the operation-details event);
3. OpenLLMetry's flattened ``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*``;
4. OpenInference's ``llm.input_messages.N.message.*`` / ``llm.output_messages.N.message.*``, then
   ``input.value`` / ``output.value``.

Message content may also be a list of content blocks (strands-agents / Bedrock Converse: ``[{"text": …}]``,
``toolUse`` and ``toolResult`` blocks; OpenAI / Anthropic ``{"type": "text"}`` parts), as structured data or
as JSON text: :func:`content` reads them into text, tool calls and the call a result answers.

What the span is (:attr:`GenAIView.kind`): a model call, an agent run, a chain step or a tool execution.
Only a model call has a prompt and a completion; the others have an input and an output.

Malformed JSON never raises: the raw text is shown as the message instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tui.model.conventions import (
    AGENT_MODEL_KEYS,
    AGENT_OPERATIONS,
    AGGREGATED_INPUT_TOKENS_KEYS,
    AGGREGATED_OUTPUT_TOKENS_KEYS,
    CHOICE_EVENT,
    DETAILS_EVENT,
    EXECUTE_TOOL_OPERATION,
    FINISH_REASONS,
    FIRST_TOKEN_EVENTS,
    GENAI_PREFIX,
    INPUT_MESSAGES,
    INPUT_TOKENS_KEYS,
    INPUT_VALUE,
    LLM_MARKERS,
    LLM_PREFIXES,
    MESSAGE_EVENTS,
    MODEL_OPERATIONS,
    OLLAMA_TIMINGS,
    OPENINFERENCE_INPUT,
    OPENINFERENCE_OUTPUT,
    OPENINFERENCE_SPAN_KIND,
    OPENLLMETRY_COMPLETION,
    OPENLLMETRY_PROMPT,
    OPERATION_KEYS,
    OUTPUT_MESSAGES,
    OUTPUT_TOKENS_KEYS,
    OUTPUT_VALUE,
    PROVIDER_KEYS,
    REQUEST_MODEL_KEYS,
    RESPONSE_MODEL_KEYS,
    SUMMARY_MODEL_KEYS,
    SYSTEM_INSTRUCTIONS,
    TOTAL_TOKENS_KEYS,
    TRACELOOP_SPAN_KIND,
    TTFT_KEYS,
)
from tui.model.span import Attributes, AttrValue, Event, Span

_FLAT = re.compile(rf"^({re.escape(OPENLLMETRY_PROMPT)}|{re.escape(OPENLLMETRY_COMPLETION)})\.(\d+)\.(.+)$")
_OPENINFERENCE = re.compile(
    rf"^({re.escape(OPENINFERENCE_INPUT)}|{re.escape(OPENINFERENCE_OUTPUT)})\.(\d+)\.message\.(.+)$")
_FLAT_TOOL = re.compile(r"^tool_calls\.(\d+)\.(.+)$")
_OI_TOOL = re.compile(r"^tool_calls\.(\d+)\.tool_call\.(?:function\.)?(.+)$")

#: What a span is (:attr:`GenAIView.kind`): one request to a model, an agent run, a step of a chain or
#: workflow (a framework's span, LangChain's CHAIN), one tool execution.
MODEL_CALL = "llm"
AGENT = "agent"
CHAIN = "chain"
TOOL_EXECUTION = "tool"


@dataclass(frozen=True, slots=True)
class ToolCall:
    name: str
    arguments: str = ""
    id: str = ""

    def describe(self) -> str:
        ident = f" [{self.id}]" if self.id else ""
        return f"{self.name}({self.arguments}){ident}"


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message: its role, its text, and any tool calls it made or answered."""

    role: str
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""
    finish_reason: str = ""

    def text(self) -> str:
        """Content plus readable tool calls, as shown in the LLM tab."""
        lines = [self.content] if self.content else []
        if self.tool_call_id:
            lines.insert(0, f"(result of tool call {self.tool_call_id})")
        elif self.role == "tool" and not self.tool_calls:
            lines.insert(0, "(tool result)")
        lines.extend(f"→ tool call: {call.describe()}" for call in self.tool_calls)
        return "\n".join(lines)


@dataclass(slots=True)
class GenAIView:
    """Everything the LLM tab shows for one span."""

    operation: str = ""
    provider: str = ""
    request_model: str = ""
    response_model: str = ""
    system: list[str] = field(default_factory=list)
    input: list[Message] = field(default_factory=list)
    output: list[Message] = field(default_factory=list)
    finish_reasons: list[str] = field(default_factory=list)
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens_reported: int | None = None
    time_to_first_token_s: float | None = None
    #: Why the time to first token is shown converted, or not at all (see :func:`first_token_seconds`).
    time_to_first_token_note: str = ""
    duration_s: float = 0.0
    #: :data:`MODEL_CALL`, :data:`AGENT`, :data:`CHAIN` or :data:`TOOL_EXECUTION` (see :func:`span_kind`).
    kind: str = MODEL_CALL
    #: Ollama's own timings from the final chunk (seconds), when the span carries them.
    ollama_timings: dict[str, float] = field(default_factory=dict)
    #: Other ``gen_ai.*`` / ``llm.*`` attributes not consumed above (request parameters and so on).
    other: dict[str, AttrValue] = field(default_factory=dict)
    #: Where the messages came from, e.g. "gen_ai.input.messages" or "gen_ai.prompt.N.*".
    sources: list[str] = field(default_factory=list)

    @property
    def model(self) -> str:
        return self.response_model or self.request_model

    @property
    def is_model_call(self) -> bool:
        """Whether the span is one request to a model (its messages are a prompt and a completion)."""
        return self.kind == MODEL_CALL

    @property
    def total_tokens(self) -> int | None:
        if self.total_tokens_reported is not None:
            return self.total_tokens_reported
        if self.input_tokens is None and self.output_tokens is None:
            return None
        return (self.input_tokens or 0) + (self.output_tokens or 0)

    @property
    def tokens_per_second(self) -> float | None:
        """Output tokens over generation time (after the first token when that is known)."""
        if not self.output_tokens:
            return None
        generating = self.ollama_timings.get("eval_duration")
        if not generating:
            generating = self.duration_s - (self.time_to_first_token_s or 0.0)
        return self.output_tokens / generating if generating > 0 else None

    @classmethod
    def from_span(cls, span: Span, log_events: tuple[Event, ...] = ()) -> GenAIView | None:
        """The LLM view of ``span`` (and of the log records that name it, as events), or None when
        neither carries LLM data."""
        if not is_llm_span(span) and not any(e.name.startswith(GENAI_PREFIX) for e in log_events):
            return None
        a = span.attributes
        view = cls(duration_s=span.duration_ns / 1e9, kind=span_kind(a))
        view.operation = first_str(a, *OPERATION_KEYS) or _openinference_kind(a)
        view.provider = first_str(a, *PROVIDER_KEYS)
        view.request_model = first_str(a, *REQUEST_MODEL_KEYS, *AGENT_MODEL_KEYS)
        view.response_model = first_str(a, *RESPONSE_MODEL_KEYS)
        view.input_tokens = _first_int(a, *INPUT_TOKENS_KEYS, *AGGREGATED_INPUT_TOKENS_KEYS)
        view.output_tokens = _first_int(a, *OUTPUT_TOKENS_KEYS, *AGGREGATED_OUTPUT_TOKENS_KEYS)
        view.total_tokens_reported = _first_int(a, *TOTAL_TOKENS_KEYS)
        view.finish_reasons = _strings(a.get(FINISH_REASONS))
        view.time_to_first_token_s, view.time_to_first_token_note = _time_to_first_token(span)
        view.ollama_timings = _ollama_timings(a)

        events = (*span.events, *log_events)
        for source, extract in _MESSAGE_SOURCES:
            system, inputs, outputs = extract(span, events)
            if system and not view.system:
                view.system = system
            if inputs and not view.input:
                view.input = inputs
                view.sources.append(source)
            if outputs and not view.output:
                view.output = outputs
                if source not in view.sources:
                    view.sources.append(source)
        if view.system and view.input:  # OpenLIT sends the instructions again as a system message
            instructions = set(view.system)
            view.input = [m for m in view.input
                          if not (m.role == "system" and not m.tool_calls and m.content in instructions)]
        if not view.finish_reasons:
            view.finish_reasons = [m.finish_reason for m in view.output if m.finish_reason]
        view.other = {k: v for k, v in a.items() if _is_other(k)}
        return view


def span_kind(a: Attributes) -> str:
    """What the span is, from its operation name or OpenInference / Traceloop span kind: a tool execution,
    an agent run, a model call, or (any other operation or kind: LangChain's CHAIN, strands'
    ``execute_event_loop_cycle``, a Traceloop workflow) a chain step. A span naming none is a model call."""
    operation = first_str(a, *OPERATION_KEYS)
    oi_kind = a.get(OPENINFERENCE_SPAN_KIND)
    traceloop = a.get(TRACELOOP_SPAN_KIND)
    if operation == EXECUTE_TOOL_OPERATION or oi_kind == "TOOL" or traceloop == "tool":
        return TOOL_EXECUTION
    if operation in AGENT_OPERATIONS or oi_kind == "AGENT" or traceloop == "agent":
        return AGENT
    if operation in MODEL_OPERATIONS or oi_kind in ("LLM", "EMBEDDING"):
        return MODEL_CALL
    if operation or (isinstance(oi_kind, str) and oi_kind) or traceloop in ("workflow", "task"):
        return CHAIN
    return MODEL_CALL


def is_model_call(span: Span, log_events: tuple[Event, ...] = ()) -> bool:
    """Whether :meth:`GenAIView.from_span` would give a model call's view, without reading the messages:
    what picks a call out of a trace (or refuses a span) on a key press or a detail rebuild."""
    has_llm_data = is_llm_span(span) or any(e.name.startswith(GENAI_PREFIX) for e in log_events)
    return has_llm_data and span_kind(span.attributes) == MODEL_CALL


def is_llm_span(span: Span) -> bool:
    """Cheap test used for every row: any GenAI / OpenInference attribute or GenAI event."""
    if not span.may_contain(*LLM_MARKERS):
        return False  # decided from the raw bytes: no attribute or event names a GenAI key
    for key in span.attributes:
        if key.startswith(LLM_PREFIXES) or (key == OPENINFERENCE_SPAN_KIND and span.attributes[key] == "LLM"):
            return True
    return any(e.name.startswith(GENAI_PREFIX) for e in span.events)


# --- convention 1: gen_ai.system_instructions / input.messages / output.messages -------------------

def _semconv(source: Callable[[str], AttrValue]) -> tuple[list[str], list[Message], list[Message]]:
    system = [part for part in _parts_text(_structured(source(SYSTEM_INSTRUCTIONS)))]
    return system, _semconv_messages(source(INPUT_MESSAGES)), _semconv_messages(source(OUTPUT_MESSAGES))


def _from_semconv_attributes(span: Span, _events: tuple[Event, ...]) -> tuple[list[str], list[Message], list[Message]]:
    return _semconv(span.attributes.get)


def _structured(value: AttrValue) -> Any:
    """A messages attribute as Python data: parsed from a JSON string, or converted from an AnyValue."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return _Raw(value)
    return _plain(value)


class _Raw(str):
    """Text that should have been JSON; shown as is rather than dropped."""


def _plain(value: AttrValue) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _semconv_messages(value: AttrValue) -> list[Message]:
    data = _structured(value)
    if data is None:
        return []
    if isinstance(data, _Raw) or not isinstance(data, list):
        return [Message("(unparsed)", str(data) if isinstance(data, str) else json.dumps(data))]
    messages = []
    for item in data:
        if not isinstance(item, dict):
            messages.append(Message("(unparsed)", json.dumps(item)))
            continue
        texts, calls, call_id = [], [], ""
        parts = item.get("parts")
        if isinstance(parts, list):
            for part in parts:
                if not isinstance(part, dict):
                    texts.append(str(part))
                    continue
                kind = part.get("type")
                if kind == "tool_call":
                    calls.append(ToolCall(str(part.get("name", "")), _json_text(part.get("arguments")),
                                          str(part.get("id", "") or "")))
                elif kind == "tool_call_response":
                    call_id = str(part.get("id", "") or "").strip()
                    texts.append(content(part.get("result", part.get("response")))[0])
                elif "content" in part:
                    texts.append(_json_text(part.get("content")))
                else:
                    texts.append(json.dumps(part, ensure_ascii=False))
        elif "content" in item:
            texts.append(_json_text(item.get("content")))
        messages.append(Message(str(item.get("role", "")), "\n".join(texts), tuple(calls), call_id,
                                str(item.get("finish_reason", "") or "")))
    return messages


def _parts_text(data: Any) -> list[str]:
    if data is None:
        return []
    if isinstance(data, str):
        return [data]
    if isinstance(data, list):
        return [_json_text(p.get("content")) if isinstance(p, dict) and "content" in p else _json_text(p) for p in data]
    return [_json_text(data)]


def _json_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def content(value: Any) -> tuple[str, tuple[ToolCall, ...], str]:
    """A message's content as (text, tool calls, id of the tool call it answers): plain text as is, a list
    of content blocks (structured, or as JSON text) read block by block, other data as JSON."""
    if isinstance(value, str):
        opening = value.lstrip()[:7]
        if opening[:1] == "[" or opening == '{"type"':
            try:
                data = json.loads(value)
            except ValueError:
                return value, (), ""
            read = _blocks(data) if isinstance(data, list) else _langchain_message(data)
            if read is not None:
                return read
        return value, (), ""
    data = _plain(value)
    if data is None or data == {} or data == []:
        return "", (), ""
    read = _blocks(data)
    return read if read is not None else (_json_text(data), (), "")


def _langchain_message(data: Any) -> tuple[str, tuple[ToolCall, ...], str] | None:
    """A LangChain message as OpenInference dumps it (``{"type": "tool", "data": {"content": …,
    "tool_call_id": …}}``, a tool span's ``output.value``): its text; None for any other object."""
    inner = data.get("data") if isinstance(data, dict) else None
    if not (isinstance(inner, dict) and isinstance(inner.get("content"), str)):
        return None
    return inner["content"], (), str(inner.get("tool_call_id") or "")


def _blocks(data: Any) -> tuple[str, tuple[ToolCall, ...], str] | None:
    """Content blocks (strands / Bedrock ``text`` / ``toolUse`` / ``toolResult``, Anthropic ``tool_use`` /
    ``tool_result``, ``{"type": "text"}`` parts); None when ``data`` is no list of known blocks."""
    if not isinstance(data, list) or not data or not all(isinstance(block, dict) for block in data):
        return None
    texts: list[str] = []
    calls: list[ToolCall] = []
    answers = ""
    known = False
    for block in data:
        kind = block.get("type")
        use = block.get("toolUse")
        result = block.get("toolResult")
        if isinstance(use, dict):
            calls.append(ToolCall(str(use.get("name", "")), _json_text(use.get("input")),
                                  str(use.get("toolUseId", "") or "")))
        elif isinstance(result, dict):
            answers = str(result.get("toolUseId", "") or "")
            texts.append(content(result.get("content"))[0])
        elif kind in ("tool_use", "tool_call"):
            calls.append(ToolCall(str(block.get("name", "")), _json_text(block.get("input", block.get("arguments"))),
                                  str(block.get("id", "") or "")))
        elif kind in ("tool_result", "tool_call_response"):
            answers = str(block.get("tool_use_id", block.get("id", "")) or "")
            texts.append(content(block.get("content", block.get("response", block.get("result"))))[0])
        elif isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "text" and "content" in block:
            texts.append(_json_text(block["content"]))
        elif "json" in block:
            texts.append(_json_text(block["json"]))
        else:
            texts.append(json.dumps(block, ensure_ascii=False))
            continue
        known = True
    return ("\n".join(text for text in texts if text), tuple(calls), answers) if known else None


# --- convention 2: GenAI events on the span ---------------------------------------------------------

def _from_events(span: Span, events: tuple[Event, ...]) -> tuple[list[str], list[Message], list[Message]]:
    """GenAI events on the span, and log records naming the span (the same fields, as events).

    On a tool execution (strands' ``execute_tool``) the ``gen_ai.tool.message`` event carries the call's
    arguments and the ``gen_ai.choice`` event its result."""
    system: list[str] = []
    inputs: list[Message] = []
    outputs: list[Message] = []
    tool = span_kind(span.attributes) == TOOL_EXECUTION
    for event in sorted(events, key=lambda e: e.time_ns):
        a = event.attributes
        if event.name == DETAILS_EVENT:
            s, i, o = _semconv(a.get)
            system, inputs, outputs = system or s, inputs or i, outputs or o
        elif event.name in MESSAGE_EVENTS:
            if tool and MESSAGE_EVENTS[event.name] == "tool":
                inputs.append(Message("arguments", content(a.get("content"))[0]))
            else:
                inputs.append(_event_message(MESSAGE_EVENTS[event.name], a))
        elif event.name == CHOICE_EVENT:
            fields = _choice_fields(a)
            if tool:
                outputs.append(Message("result", content(fields.get("content"))[0]))
                continue
            outputs.append(_event_message(str(fields.get("role") or "assistant"), fields,
                                          finish_reason=str(a.get("finish_reason", "") or "")))
    return system, inputs, outputs


def event_message(event: Event) -> Message | None:
    """The message a GenAI message or choice event carries (a log record's, as :meth:`LogRecord.as_event`
    gives it), None for any other event."""
    a = event.attributes
    if event.name in MESSAGE_EVENTS:
        return _event_message(MESSAGE_EVENTS[event.name], a)
    if event.name == CHOICE_EVENT:
        fields = _choice_fields(a)
        return _event_message(str(fields.get("role") or "assistant"), fields, str(a.get("finish_reason", "") or ""))
    return None


def _choice_fields(a: Mapping[str, Any]) -> dict[str, Any]:
    """A ``gen_ai.choice`` event's message: a map (its role, content, tool calls), or content alone (text or
    blocks, as strands sends it); ``tool_calls`` beside ``message`` (OpenLLMetry) belong to it."""
    message: Any = a.get("message")
    if isinstance(message, str) and message.lstrip()[:1] == "{":
        parsed = _structured(message)
        message = parsed if isinstance(parsed, dict) else message
    if isinstance(message, dict):
        fields = dict(message)
    elif message is not None:
        fields = {"content": message}
    else:
        fields = {"content": a.get("content", "")}
    if not fields.get("tool_calls") and a.get("tool_calls"):
        fields["tool_calls"] = a["tool_calls"]
    return fields


def _event_message(default_role: str, a: Mapping[str, Any], finish_reason: str = "") -> Message:
    calls = _structured(a.get("tool_calls"))
    tool_calls: list[ToolCall] = []
    if isinstance(calls, list):
        for call in calls:
            if isinstance(call, dict):
                function = call.get("function")
                fn = function if isinstance(function, dict) else call
                tool_calls.append(ToolCall(str(fn.get("name", "")), _json_text(fn.get("arguments")),
                                           str(call.get("id", "") or "")))
    text, block_calls, answers = content(a.get("content"))
    return Message(str(a.get("role") or default_role), text, (*tool_calls, *block_calls),
                   str(a.get("id", "") or "") or answers, finish_reason)


# --- conventions 3 and 4: flattened indexed attributes ---------------------------------------------

def _indexed(attributes: Attributes, pattern: re.Pattern[str]) -> dict[tuple[str, int], dict[str, AttrValue]]:
    found: dict[tuple[str, int], dict[str, AttrValue]] = {}
    for key, value in attributes.items():
        match = pattern.match(key)
        if match:
            found.setdefault((match.group(1), int(match.group(2))), {})[match.group(3)] = value
    return found


def _flat_message(fields: Mapping[str, AttrValue], default_role: str, tool_pattern: re.Pattern[str]) -> Message:
    calls: dict[int, dict[str, str]] = {}
    for key, value in fields.items():
        match = tool_pattern.match(key)
        if match:
            calls.setdefault(int(match.group(1)), {})[match.group(2)] = _json_text(_plain(value))
    tool_calls = tuple(ToolCall(c.get("name", ""), c.get("arguments", ""), c.get("id", ""))
                       for _, c in sorted(calls.items()))
    text, block_calls, answers = content(fields.get("content"))
    return Message(
        str(fields.get("role") or default_role),
        text,
        (*tool_calls, *block_calls),
        str(fields.get("tool_call_id", "") or "") or answers,
        str(fields.get("finish_reason", "") or ""),
    )


def _flattened(span: Span, pattern: re.Pattern[str], tools: re.Pattern[str], input_kind: str,
               output_kind: str) -> tuple[list[str], list[Message], list[Message]]:
    """Messages spread over indexed attributes (``<kind>.<N>.<field>``), in index order."""
    found = sorted(_indexed(span.attributes, pattern).items())
    inputs = [_flat_message(f, "user", tools) for (kind, _), f in found if kind == input_kind]
    outputs = [_flat_message(f, "assistant", tools) for (kind, _), f in found if kind == output_kind]
    return [], inputs, outputs


def _from_openllmetry(span: Span, _events: tuple[Event, ...]) -> tuple[list[str], list[Message], list[Message]]:
    return _flattened(span, _FLAT, _FLAT_TOOL, OPENLLMETRY_PROMPT, OPENLLMETRY_COMPLETION)


def _from_openinference(span: Span, _events: tuple[Event, ...]) -> tuple[list[str], list[Message], list[Message]]:
    return _flattened(span, _OPENINFERENCE, _OI_TOOL, OPENINFERENCE_INPUT, OPENINFERENCE_OUTPUT)


def _from_generic_values(span: Span, _events: tuple[Event, ...]) -> tuple[list[str], list[Message], list[Message]]:
    a = span.attributes
    inputs = [Message("input", _json_text(_plain(a[INPUT_VALUE])))] if INPUT_VALUE in a else []
    outputs = [Message("output", _json_text(_plain(a[OUTPUT_VALUE])))] if OUTPUT_VALUE in a else []
    return [], inputs, outputs


_Extract = Callable[[Span, tuple[Event, ...]], tuple[list[str], list[Message], list[Message]]]
_MESSAGE_SOURCES: tuple[tuple[str, _Extract], ...] = (
    (INPUT_MESSAGES, _from_semconv_attributes),
    ("GenAI events", _from_events),
    (f"{OPENLLMETRY_PROMPT}.N.*", _from_openllmetry),
    (f"{OPENINFERENCE_INPUT}.N.*", _from_openinference),
    (INPUT_VALUE, _from_generic_values),
)

# Attributes the view consumes; everything else under gen_ai.* / llm.* is listed as "other".
_CONSUMED_PREFIXES = tuple(f"{prefix}." for prefix in (OPENLLMETRY_PROMPT, OPENLLMETRY_COMPLETION,
                                                       OPENINFERENCE_INPUT, OPENINFERENCE_OUTPUT))
_CONSUMED = frozenset({
    *OPERATION_KEYS, *PROVIDER_KEYS, *REQUEST_MODEL_KEYS, *RESPONSE_MODEL_KEYS, *INPUT_TOKENS_KEYS,
    *OUTPUT_TOKENS_KEYS, *TOTAL_TOKENS_KEYS, FINISH_REASONS, SYSTEM_INSTRUCTIONS, INPUT_MESSAGES, OUTPUT_MESSAGES,
    *TTFT_KEYS, *AGGREGATED_INPUT_TOKENS_KEYS, *AGGREGATED_OUTPUT_TOKENS_KEYS,
})


def _is_other(key: str) -> bool:
    return key.startswith(LLM_PREFIXES) and key not in _CONSUMED and not key.startswith(_CONSUMED_PREFIXES)


def first_str(a: Attributes, *keys: str) -> str:
    """The first of ``keys`` whose value is a non-empty string ("" for none)."""
    for key in keys:
        value = a.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _first_int(a: Attributes, *keys: str) -> int | None:
    for key in keys:
        value = a.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            return int(value)
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
    return None


def _strings(value: AttrValue) -> list[str]:
    if isinstance(value, tuple):
        return [str(v) for v in value]
    if isinstance(value, str) and value:
        parsed = _structured(value)
        return [str(v) for v in parsed] if isinstance(parsed, list) else [value]
    return []


def _openinference_kind(a: Attributes) -> str:
    kind = a.get(OPENINFERENCE_SPAN_KIND)
    return str(kind).lower() if kind else ""


def first_token_seconds(value: float, duration_s: float) -> tuple[float | None, str]:
    """The one rule for a reported time to first token, as (seconds or None, note): it cannot be longer
    than its span, so a value longer than the span in seconds but not in milliseconds (strands sends
    ``gen_ai.server.time_to_first_token`` in ms) is milliseconds; anything still longer than the span,
    or negative, is not shown (None), and the note says what was sent."""
    if value < 0:
        return None, f"sent {value:g}: negative"
    if value <= duration_s:
        return value, ""
    if value <= duration_s * 1000:
        return value / 1000, f"sent {value:g}, read as milliseconds"
    return None, f"sent {value:g}: longer than the span ({duration_s:.3f}s) in seconds and in milliseconds"


def _time_to_first_token(span: Span) -> tuple[float | None, str]:
    """Seconds from the span's start to the first token, and a note when the value sent was not taken as
    is: an attribute if given (through :func:`first_token_seconds`), else a first-token event."""
    for key in TTFT_KEYS:
        value = span.attributes.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return first_token_seconds(float(value), span.duration_ns / 1e9)
    for event in span.events:
        if event.name in FIRST_TOKEN_EVENTS:
            return max(0, event.time_ns - span.start_ns) / 1e9, ""
    return None, ""


def _ollama_timings(a: Attributes) -> dict[str, float]:
    """Ollama's final-chunk durations (nanoseconds on the wire) in seconds."""
    timings = {}
    for name, key in OLLAMA_TIMINGS.items():
        value = a.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            timings[name] = value / 1e9
    return timings


@dataclass(frozen=True, slots=True)
class UsageSummary:
    """Model and token counts of one LLM span: what a trace row needs, without parsing messages."""

    model: str
    input_tokens: int | None
    output_tokens: int | None

    @classmethod
    def from_span(cls, span: Span) -> UsageSummary:
        a = span.attributes
        return cls(first_str(a, *SUMMARY_MODEL_KEYS), _first_int(a, *INPUT_TOKENS_KEYS),
                   _first_int(a, *OUTPUT_TOKENS_KEYS))


def summarize(usages: Iterable[UsageSummary]) -> tuple[str, int | None, int | None]:
    """Model and summed input/output tokens over a trace's LLM spans, for its row in the list."""
    model = ""
    tokens_in: int | None = None
    tokens_out: int | None = None
    for usage in usages:
        model = model or usage.model
        if usage.input_tokens is not None:
            tokens_in = (tokens_in or 0) + usage.input_tokens
        if usage.output_tokens is not None:
            tokens_out = (tokens_out or 0) + usage.output_tokens
    return model, tokens_in, tokens_out


__all__ = ["AGENT", "CHAIN", "MODEL_CALL", "TOOL_EXECUTION", "Event", "GenAIView", "Message", "ToolCall",
           "UsageSummary", "content", "event_message", "first_token_seconds", "is_llm_span", "span_kind", "summarize"]
