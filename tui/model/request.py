"""What a recorded model call asked for besides its messages: the tools it offered and its sampling parameters.

Read from the span's attributes and from any operation-details event (OpenLIT sends both there), in every
convention, as Ollama's ``/api/chat`` takes them: the replay sends them, the compare view shows them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
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
from tui.model.span import Attributes, AttrValue, Event, Span

_FUNCTION_FIELD = re.compile(rf"^{re.escape(OPENLLMETRY_FUNCTIONS)}\.(\d+)\.(.+)$")
_OI_TOOL_SCHEMA = re.compile(rf"^{re.escape(OPENINFERENCE_TOOLS)}\.(\d+)\.tool\.json_schema$")


def _sources(span: Span, events: Iterable[Event]) -> list[Attributes]:
    """The span's attributes first, then any operation-details event's."""
    return [span.attributes, *(e.attributes for e in (*span.events, *events) if e.name == DETAILS_EVENT)]


def recorded_tools(span: Span, events: Iterable[Event] = ()) -> list[dict[str, Any]]:
    """The tools the call offered, in Ollama's ``{"type": "function", "function": {...}}`` shape."""
    return next((tools for a in _sources(span, events) if (tools := _tools(a))), [])


def recorded_options(span: Span, events: Iterable[Event] = ()) -> dict[str, Any]:
    """The sampling parameters the call recorded, as Ollama ``options`` (the span's own attributes win)."""
    return {k: v for a in reversed(_sources(span, events)) for k, v in _options(a).items()}


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
