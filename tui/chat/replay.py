"""Replay a recorded LLM span against a local model (issue 17): the headless half.

:func:`replay_request` turns a model-call span, whatever convention recorded it (anything
:meth:`GenAIView.from_span` reads), into the body Ollama's ``/api/chat`` takes: the model, the messages in
Ollama's wire format (assistant ``tool_calls`` with arguments as an object, tool results as ``tool``
messages), the tools offered and the recorded sampling options. It reads, never calls: the chat engine
sends the request, and the span ids kept here let the new span link back to the one replayed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tui.model.genai import GenAIView, Message
from tui.model.request import recorded_options, recorded_tools
from tui.model.span import Event, Span

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
    messages = [{"role": "system", "content": text} for text in view.system]
    messages.extend(_ollama_messages(view.input))
    return ReplayRequest(
        model=view.request_model or view.response_model,
        messages=messages,
        tools=recorded_tools(span, events),
        options=recorded_options(span, events),
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


__all__ = ["ReplayRequest", "replay_request"]
