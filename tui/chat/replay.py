"""Replay a recorded LLM span against a local model (issue 17): the headless half.

:func:`replay_request` turns a model-call span, whatever convention recorded it (anything
:meth:`GenAIView.from_span` reads), into the body Ollama's ``/api/chat`` takes: the model, the messages in
Ollama's wire format (assistant ``tool_calls`` with arguments as an object, tool results as ``tool``
messages), the tools offered and the recorded sampling options. It reads, never calls: the chat engine
sends the request, and the span ids kept here let the new span link back to the one replayed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tui.model.conventions import (
    DETAILS_EVENT,
    INVOCATION_OPTIONS,
    INVOCATION_PARAMETERS,
    OPENINFERENCE_TOOLS,
    OPENLLMETRY_FUNCTIONS,
    REQUEST_OPTIONS,
    TOOL_DEFINITIONS,
)
from tui.model.genai import GenAIView, Message
from tui.model.span import Attributes, AttrValue, Event, Span

_FUNCTION_FIELD = re.compile(rf"^{re.escape(OPENLLMETRY_FUNCTIONS)}\.(\d+)\.(.+)$")
_OI_TOOL_SCHEMA = re.compile(rf"^{re.escape(OPENINFERENCE_TOOLS)}\.(\d+)\.tool\.json_schema$")
#: Roles Ollama knows; others are mapped (Gemini's ``model`` is the assistant) or sent as the user's.
_ROLES = {"system": "system", "user": "user", "assistant": "assistant", "tool": "tool", "model": "assistant"}


@dataclass(frozen=True, slots=True)
class ReplayRequest:
    """What a replay sends to Ollama, and which recorded span it replays."""

    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    original_span_id: str = ""
    trace_id: str = ""

    def to_ollama(self, stream: bool = True) -> dict[str, Any]:
        """The ``/api/chat`` body; ``tools`` and ``options`` only when recorded (Ollama's defaults otherwise)."""
        body: dict[str, Any] = {"model": self.model, "messages": self.messages, "stream": stream}
        if self.tools:
            body["tools"] = self.tools
        if self.options:
            body["options"] = self.options
        return body


def replay_request(span: Span, log_events: Iterable[Event] = ()) -> ReplayRequest | None:
    """The Ollama chat request that replays ``span`` (with the log records naming it, as events), or None
    when it is no model call (an agent run, chain step or tool execution has no prompt to resend)."""
    events = tuple(log_events)
    view = GenAIView.from_span(span, events)
    if view is None or not view.is_model_call:
        return None
    # The span's attributes first, then any operation-details event (OpenLIT sends tools and parameters there).
    sources = [span.attributes, *(e.attributes for e in (*span.events, *events) if e.name == DETAILS_EVENT)]
    messages = [{"role": "system", "content": text} for text in view.system]
    messages.extend(_ollama_messages(view.input))
    return ReplayRequest(
        model=view.request_model or view.response_model,
        messages=messages,
        tools=next((tools for a in sources if (tools := _tools(a))), []),
        options={k: v for a in reversed(sources) for k, v in _options(a).items()},
        original_span_id=span.span_id,
        trace_id=span.trace_id,
    )


def _ollama_messages(inputs: Iterable[Message]) -> list[dict[str, Any]]:
    """Messages in Ollama's format. A message answering a tool call is a ``tool`` message even when the
    convention filed it under the user (pydantic-ai, strands' latest), named after the call it answers."""
    out: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool call id -> tool name
    last_calls: list[str] = []
    for message in inputs:
        role = _ROLES.get(message.role, "user")
        if message.tool_call_id and role == "user":
            role = "tool"
        entry: dict[str, Any] = {"role": role, "content": message.content}
        if message.tool_calls:
            entry["tool_calls"] = [{"function": {"name": call.name, "arguments": _arguments(call.arguments)}}
                                   for call in message.tool_calls]
            names.update((call.id, call.name) for call in message.tool_calls if call.id)
            last_calls = [call.name for call in message.tool_calls]
        if role == "tool":
            name = names.get(message.tool_call_id) or (last_calls[0] if len(last_calls) == 1 else "")
            if name:
                entry["tool_name"] = name
        out.append(entry)
    return out


def _arguments(text: str) -> dict[str, Any]:
    """Tool-call arguments as the object Ollama requires; text that is no JSON object is kept under ``input``."""
    if not text:
        return {}
    try:
        parsed = json.loads(text)
    except ValueError:
        return {"input": text}
    return parsed if isinstance(parsed, dict) else {"input": parsed}


def _tools(a: Attributes) -> list[dict[str, Any]]:
    """The tools the call offered, from the first convention that recorded them, as Ollama's
    ``{"type": "function", "function": {...}}``."""
    defined = _json_value(a.get(TOOL_DEFINITIONS))
    if isinstance(defined, list) and defined:
        return [tool for item in defined if (tool := _tool(item))]
    functions: dict[int, dict[str, Any]] = {}
    schemas: dict[int, Any] = {}
    for key, value in a.items():
        if match := _FUNCTION_FIELD.match(key):
            functions.setdefault(int(match.group(1)), {})[match.group(2)] = value
        elif match := _OI_TOOL_SCHEMA.match(key):
            schemas[int(match.group(1))] = _json_value(value)
    for found in (functions, schemas):
        if found:
            return [tool for _, item in sorted(found.items()) if (tool := _tool(item))]
    listed = _json_object(a.get(INVOCATION_PARAMETERS)).get("tools")
    return [tool for item in listed if (tool := _tool(item))] if isinstance(listed, list) else []


def _tool(item: Any) -> dict[str, Any] | None:
    """One tool definition in Ollama's shape: nested (OpenAI Chat, OpenInference) or flat (OpenAI Responses,
    GenAI, OpenLLMetry's fields, Anthropic's ``input_schema``); None without a name."""
    if not isinstance(item, dict):
        return None
    nested = item.get("function")
    function: dict[str, Any] = nested if isinstance(nested, dict) else item
    name = function.get("name")
    if not isinstance(name, str) or not name:
        return None
    spec: dict[str, Any] = {"name": name}
    if isinstance(function.get("description"), str):
        spec["description"] = function["description"]
    parameters = _json_value(function.get("parameters", function.get("input_schema", function.get("inputSchema"))))
    if isinstance(parameters, dict):
        spec["parameters"] = parameters
    return {"type": "function", "function": spec}


def _options(a: Attributes) -> dict[str, Any]:
    """Ollama ``options`` from the recorded request parameters (GenAI attributes win over OpenInference's
    invocation parameters); parameters recorded as null are left to the model's defaults."""
    invocation = _json_object(a.get(INVOCATION_PARAMETERS))
    options: dict[str, Any] = {}
    nested = invocation.get("options")  # Ollama's own client records its options as they were sent
    if isinstance(nested, dict):
        options.update({k: v for k, v in nested.items() if v is not None})
    for name, option in INVOCATION_OPTIONS.items():
        value = _option_value(option, invocation.get(name))
        if value is not None:
            options[option] = value
    for key, option in REQUEST_OPTIONS.items():
        value = _option_value(option, a.get(key))
        if value is not None:
            options[option] = value
    return options


def _option_value(option: str, value: Any) -> Any:
    """A recorded parameter as Ollama takes it: ``stop`` as a list of strings, numbers as numbers."""
    if value is None or isinstance(value, bool):
        return None
    if option == "stop":
        stops = [value] if isinstance(value, str) else value
        return [str(s) for s in stops] if isinstance(stops, (list, tuple)) and stops else None
    if isinstance(value, (int, float)):
        return int(value) if option in ("num_predict", "seed", "top_k") else value
    return None


def _json_value(value: AttrValue | Any) -> Any:
    """A value that may be JSON text, parsed; structured values (OTLP arrays as tuples) as plain lists and
    dicts; malformed JSON as None."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    if isinstance(value, (tuple, list)):
        return [_json_value(v) if not isinstance(v, str) else v for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) if not isinstance(v, str) else v for k, v in value.items()}
    return value


def _json_object(value: AttrValue) -> dict[str, Any]:
    parsed = _json_value(value)
    return parsed if isinstance(parsed, dict) else {}


__all__ = ["ReplayRequest", "replay_request"]
