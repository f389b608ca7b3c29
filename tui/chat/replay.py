"""Replay a recorded LLM span against a local model (issue 17): the headless half.

:func:`replay_request` turns a model-call span, whatever convention recorded it (anything
:meth:`GenAIView.from_span` reads), into the body Ollama's ``/api/chat`` takes: the model, the messages in
Ollama's wire format (assistant ``tool_calls`` with arguments as an object, tool results as ``tool``
messages), the tools offered and the recorded sampling options. It reads, never calls: the chat engine
sends the request, and the span ids kept here let the new span link back to the one replayed.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from tui.model.conventions import REQUEST_OPTIONS
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

    @property
    def system_text(self) -> str:
        """The system messages' text, joined: the system prompt the replay form edits."""
        return "\n\n".join(str(m.get("content") or "") for m in self.messages if m.get("role") == "system")

    @property
    def last_user_text(self) -> str:
        """The last message's text when it is the user's (the prompt to edit); "" when the call ends otherwise
        (with a tool result, say: the user then adds a message or sends it as it was)."""
        last = self.messages[-1] if self.messages else {}
        return str(last.get("content") or "") if last.get("role") == "user" else ""

    def edited(self, *, model: str | None = None, system: str | None = None, last_user: str | None = None,
               options: dict[str, Any] | None = None) -> ReplayRequest:
        """This request with what the user edited (None, or the text as it was: left as recorded); this one is
        never changed, so the form can start again from the recording.

        ``system`` replaces every system message with one at the front ("" sends none); ``last_user``
        replaces the last message's text when it is the user's, else is appended as a user message (unless "").
        """
        messages = list(self.messages)
        if system is not None and system != self.system_text:
            messages = [m for m in messages if m.get("role") != "system"]
            if system:
                messages.insert(0, {"role": "system", "content": system})
        if last_user is not None:
            if messages and messages[-1].get("role") == "user":
                messages[-1] = {**messages[-1], "content": last_user}
            elif last_user:
                messages.append({"role": "user", "content": last_user})
        return replace(self, model=self.model if model is None else model, messages=messages,
                       options=self.options if options is None else dict(options))


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


#: The one option that takes a list (of strings); the others that the conventions record take a number, so a
#: value that is none is a typo to report rather than a string to pass on.
_STOP = "stop"
_NUMERIC_OPTIONS = frozenset(REQUEST_OPTIONS.values()) - {_STOP}
#: Escapes inside option values, so a one-line field can hold a newline (``'\n\n'``) or a comma in a stop string.
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", ",": ","}
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_INTEGER = re.compile(r"[+-]?\d+")


def format_options(options: dict[str, Any]) -> str:
    """Options as one editable line, ``temperature=0.2 num_predict=256 stop='\\n\\n',END``, which
    :func:`parse_options` reads back to the same dict."""
    return " ".join(f"{name}={_format_value(value)}" for name, value in options.items())


def parse_options(text: str) -> dict[str, Any] | str:
    """The options a line of ``name=value`` pairs gives, or one sentence naming what is wrong with it.

    Values are shell-quoted (shlex); numbers are read as int or float, ``true``/``false`` as booleans;
    ``stop`` is a comma-separated list of strings. ``\\n``, ``\\t``, ``\\,`` and ``\\\\`` in a quoted value are a
    newline, a tab, a comma and a backslash. Unknown names are passed on (Ollama has many options)."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=",")
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        tokens = list(lexer)
    except ValueError as exc:  # an unclosed quote, a trailing backslash
        return f"Cannot read the options: {str(exc).lower()}."
    raw: dict[str, list[str]] = {}
    name = ""
    after_comma = False
    for token in tokens:
        if token.strip(",") == "":  # commas outside quotes separate the items of a list
            if not name:
                return "A comma must follow a value, as in stop=END,###."
            after_comma = True
        elif after_comma:
            raw[name].append(token)
            after_comma = False
        else:
            name, equals, value = token.partition("=")
            if not (equals and name):
                return f"Cannot read {token!r}: write name=value, as in temperature=0.2."
            if name in raw:
                return f"{name} is given twice."
            raw[name] = [value]
    options: dict[str, Any] = {}
    for name, values in raw.items():
        items = [_ESCAPE.sub(lambda m: _ESCAPES.get(m[1], m[0]), v) for v in values]
        if name == _STOP:
            options[name] = [item for item in items if item]
            continue
        if len(items) > 1:
            return f"Only {_STOP} takes a comma-separated list, not {name}."
        value = _value(items[0])
        if name in _NUMERIC_OPTIONS and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return f"{name} takes a number, not {items[0]!r}."
        if value == "":
            return f"{name} has no value: write {name}=VALUE, or leave it out."
        options[name] = value
    return options


def _value(text: str) -> Any:
    """A number when the text reads as one (int when whole), a boolean for true/false, else the text."""
    if _INTEGER.fullmatch(text):
        return int(text)
    try:
        number = float(text)
    except ValueError:
        return {"true": True, "false": False}.get(text, text)
    return number if math.isfinite(number) else text


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return ",".join(_format_text(str(item)) for item in value)
    return _format_text(value if isinstance(value, str) else json.dumps(value))


def _format_text(text: str) -> str:
    """Text escaped as :func:`parse_options` unescapes it, then shell-quoted."""
    for plain, escaped in (("\\", "\\\\"), ("\n", "\\n"), ("\t", "\\t"), ("\r", "\\r"), (",", "\\,")):
        text = text.replace(plain, escaped)
    return shlex.quote(text)


__all__ = ["ReplayRequest", "format_options", "parse_options", "replay_request"]
