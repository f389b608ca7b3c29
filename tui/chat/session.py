"""One conversation with Ollama: streamed, traced turns that report failures as readable text.

A turn (and a replay of a recorded call) is an async generator of :class:`TurnStarted`, :class:`Delta` s,
then exactly one :class:`TurnFinished` or :class:`TurnFailed` — or it is cancelled (the UI's Escape), in
which case the HTTP stream is closed and the turn's span ends marked cancelled. Every failure the
``ollama`` package or httpx can raise becomes a sentence saying what happened and what to do; none
escapes as a traceback.
"""

from __future__ import annotations

import asyncio
import json
import string
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx
import ollama
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tui.chat.events import Delta, TurnEvent, TurnFailed, TurnFinished, TurnStarted, TurnStats
from tui.chat.replay import ReplayRequest
from tui.chat.tracing import TracedAsyncClient
from tui.model.conventions import (
    FINISH_REASONS,
    INPUT_MESSAGES,
    INPUT_TOKENS,
    OLLAMA_EVAL_RATE,
    OLLAMA_TIMINGS,
    OPERATION_NAME,
    OUTPUT_MESSAGES,
    OUTPUT_TOKENS,
    PROVIDER_NAME,
    REPLAY_OF,
    REQUEST_MODEL,
    REQUEST_OPTIONS,
    RESPONSE_MODEL,
    TIME_TO_FIRST_CHUNK,
    TOOL_DEFINITIONS,
)

_PROPAGATOR = TraceContextTextMapPropagator()


class ChatSession:
    """A conversation (history sent with every turn) against one Ollama server."""

    def __init__(self, host: str, provider: TracerProvider) -> None:
        self.host = host
        self.provider = provider
        self.tracer = provider.get_tracer("ollama-tui.chat")
        self.client = TracedAsyncClient(
            host, provider.get_tracer("opentelemetry.instrumentation.ollama"),
            event_hooks={"request": [self._inject_traceparent]},
        )
        #: The messages sent with the next turn, in Ollama's wire format (tool calls and results included).
        self.history: list[dict[str, Any]] = []
        parts = urlsplit(host)
        self._server = (parts.hostname or "", parts.port or 0)

    async def close(self) -> None:
        await self.client.close()

    @staticmethod
    async def _inject_traceparent(request: httpx.Request) -> None:
        """W3C ``traceparent`` on every request, so Ollama's own server spans join the turn's trace."""
        _PROPAGATOR.inject(request.headers)

    def new_conversation(self) -> None:
        self.history.clear()

    async def models(self) -> list[str]:
        """Installed models (``GET /api/tags``); raises :class:`OllamaUnavailable` with a readable reason."""
        try:
            listing = await self.client.list()
        except Exception as exc:  # noqa: BLE001 - every failure becomes one readable sentence
            raise OllamaUnavailable(self.describe(exc, model="")) from None
        return [m.model for m in listing.models if m.model]

    def turn(self, model: str, prompt: str) -> AsyncIterator[TurnEvent]:
        """Send ``prompt`` (after the history) and stream the answer, all inside one traced span."""
        return self._chat(model, [*self.history, {"role": "user", "content": prompt}])

    def replay(self, request: ReplayRequest) -> AsyncIterator[TurnEvent]:
        """Send a recorded call again (its messages, tools and options, as edited) and stream the answer.

        Its span is a turn's plus what the viewer needs to pair it with the original: a span link to it,
        :data:`REPLAY_OF`, and the request parameters and tool definitions it sent. Once it finishes, the
        history is the replayed messages and the answer, so the user can go on from there with :meth:`turn`.
        """
        replay_of = {REPLAY_OF: request.original_span_id} if request.original_span_id else {}
        return self._chat(request.model, request.messages, tools=request.tools, options=request.options,
                          links=_link_to(request), attributes=replay_of)

    async def _chat(self, model: str, messages: list[dict[str, Any]], *, tools: Sequence[dict[str, Any]] = (),
                    options: Mapping[str, Any] | None = None, links: Sequence[trace.Link] = (),
                    attributes: Mapping[str, Any] | None = None) -> AsyncIterator[TurnEvent]:
        """One traced, streamed ``/api/chat`` request: the single implementation behind turns and replays."""
        span = self.tracer.start_span(f"chat {model}", kind=SpanKind.CLIENT, links=links, attributes={
            OPERATION_NAME: "chat",
            PROVIDER_NAME: "ollama",
            REQUEST_MODEL: model,
            "server.address": self._server[0],
            "server.port": self._server[1],
            INPUT_MESSAGES: json.dumps([_parts_message(m) for m in messages], ensure_ascii=False),
            **_request_attributes(tools, options or {}),
            **(attributes or {}),
        })
        trace_id = format(span.get_span_context().trace_id, "032x")
        yield TurnStarted(trace_id)
        started = time.perf_counter()
        first_token: float | None = None
        content: list[str] = []
        calls: list[dict[str, Any]] = []
        last: Any = None
        try:
            stream = await _inside(span, self.client.chat(model=model, messages=messages, tools=tools or None,
                                                          options=options or None, stream=True))
            while True:
                try:
                    chunk = await _inside(span, anext(stream))
                except StopAsyncIteration:
                    break
                last = chunk
                if chunk.message and chunk.message.tool_calls:  # each call whole, never in fragments
                    calls.extend({"function": {"name": call.function.name, "arguments": dict(call.function.arguments)}}
                                 for call in chunk.message.tool_calls)
                text = (chunk.message.content or "") if chunk.message else ""
                if text:
                    if first_token is None:
                        first_token = time.perf_counter() - started
                    content.append(text)
                    yield Delta(text)
        except (asyncio.CancelledError, GeneratorExit):
            # Escape in the pane: the task is cancelled mid-stream (httpx closes the connection).
            span.set_attribute("error.type", "cancelled")
            span.set_attribute(FINISH_REASONS, ["cancelled"])
            span.set_status(Status(StatusCode.ERROR, "cancelled by the user"))
            span.end()
            raise
        except Exception as exc:  # noqa: BLE001 - reported in the pane and on the span
            message = self.describe(exc, model=model)
            if isinstance(exc, ollama.ResponseError) and exc.status_code == 404:
                message = await self._not_installed(model)
            span.set_attribute("error.type", _error_type(exc))
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, message))
            span.end()
            yield TurnFailed(message, _error_type(exc), trace_id, "".join(content))
            return

        answer: dict[str, Any] = {"role": "assistant", "content": "".join(content)}
        if calls:
            answer["tool_calls"] = calls
        stats = self._finish_span(span, trace_id, model, last, answer, first_token, time.perf_counter() - started)
        span.end()
        self.history = [*messages, answer]
        yield TurnFinished(answer["content"], stats, tuple(_describe_call(call) for call in calls))

    def _finish_span(self, span: trace.Span, trace_id: str, model: str, last: Any, answer: dict[str, Any],
                     first_token: float | None, duration_s: float) -> TurnStats:
        final = last.model_dump() if last is not None else {}
        timings = {name: int(final[name]) for name in OLLAMA_TIMINGS if final.get(name) is not None}
        input_tokens = final.get("prompt_eval_count")
        output_tokens = final.get("eval_count")
        done_reason = final.get("done_reason") or ""
        rate = None
        if output_tokens and timings.get("eval_duration"):
            rate = output_tokens / (timings["eval_duration"] / 1e9)
        attributes: dict[str, Any] = {
            RESPONSE_MODEL: final.get("model") or model,
            OUTPUT_MESSAGES: json.dumps([{**_parts_message(answer), "finish_reason": done_reason}],
                                        ensure_ascii=False),
        }
        if done_reason:
            attributes[FINISH_REASONS] = [done_reason]
        if input_tokens is not None:
            attributes[INPUT_TOKENS] = input_tokens
        if output_tokens is not None:
            attributes[OUTPUT_TOKENS] = output_tokens
        if first_token is not None:
            attributes[TIME_TO_FIRST_CHUNK] = first_token
        if rate is not None:
            attributes[OLLAMA_EVAL_RATE] = rate
        attributes.update({OLLAMA_TIMINGS[name]: value for name, value in timings.items()})
        span.set_attributes(attributes)
        return TurnStats(trace_id, str(attributes[RESPONSE_MODEL]), done_reason, input_tokens,
                         output_tokens, first_token, rate, timings, duration_s)

    async def _not_installed(self, model: str) -> str:
        try:
            installed = await self.models()
        except OllamaUnavailable:
            installed = []
        listing = f" Installed: {', '.join(installed)}." if installed else " No models are installed."
        return f"Model {model!r} is not installed on {self.host}.{listing} Get it with: ollama pull {model}"

    def describe(self, exc: BaseException, *, model: str) -> str:
        """A sentence for the pane: what went wrong and what the user can do about it."""
        if isinstance(exc, (ConnectionError, httpx.ConnectError, httpx.ConnectTimeout)):
            return (f"Cannot reach Ollama at {self.host}. Start it with `ollama serve`, or point ollama-tui "
                    "elsewhere with --ollama-host or OLLAMA_HOST. Retrying every few seconds.")
        if isinstance(exc, ollama.ResponseError):
            if exc.status_code == 404 and model:
                return f"Model {model!r} is not installed on {self.host}. Get it with: ollama pull {model}"
            where = f"Ollama answered {exc.status_code}" if exc.status_code and exc.status_code > 0 else "Ollama said"
            return f"{where}: {exc.error}"
        if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
            return f"The connection to Ollama at {self.host} dropped mid-answer ({type(exc).__name__}). Try again."
        if isinstance(exc, httpx.TimeoutException):
            return f"Ollama at {self.host} did not answer in time ({type(exc).__name__})."
        if isinstance(exc, json.JSONDecodeError):
            return f"Ollama sent a line that is not JSON ({exc.msg}); the answer was cut short."
        return f"Chat failed: {type(exc).__name__}: {exc}"


async def _inside(span: trace.Span, awaitable: Any) -> Any:
    """Await with ``span`` current — only for the await, never across a ``yield`` to the caller.

    The instrumentation's span and the ``traceparent`` hook read the current context, so both must
    run inside the turn's span; keeping it current across yields would leak it into the UI's code.
    """
    with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
        return await awaitable


def _parts_message(message: Mapping[str, Any]) -> dict[str, Any]:
    """An Ollama wire-format message in the GenAI "parts" format: its text, its tool calls as ``tool_call``
    parts, a tool result as a ``tool_call_response`` part (Ollama's messages carry no call ids)."""
    text = message.get("content") or ""
    if message.get("role") == "tool":
        return {"role": "tool", "parts": [{"type": "tool_call_response", "response": text}]}
    calls = message.get("tool_calls") or []
    parts = [{"type": "text", "content": text}] if text or not calls else []
    parts.extend({"type": "tool_call", "name": call["function"]["name"],
                  "arguments": call["function"].get("arguments") or {}} for call in calls)
    return {"role": message.get("role", "user"), "parts": parts}


def _describe_call(call: Mapping[str, Any]) -> str:
    """``get_weather({"city": "Paris"})``: a tool call as the pane shows it."""
    function = call["function"]
    return f"{function['name']}({json.dumps(function.get('arguments') or {}, ensure_ascii=False)})"


#: Ollama option -> the GenAI request attribute it is recorded as (the inverse of REQUEST_OPTIONS, its one home).
_OPTION_ATTRIBUTES = {option: key for key, option in REQUEST_OPTIONS.items()}


def _request_attributes(tools: Sequence[dict[str, Any]], options: Mapping[str, Any]) -> dict[str, Any]:
    """The request parameters and tool definitions sent, as the GenAI attributes that
    :func:`tui.model.request.recorded_options` and ``recorded_tools`` read back identically. Options without
    a GenAI attribute (``num_ctx``, ``mirostat``…) are sent but not recorded."""
    attributes: dict[str, Any] = {}
    for option, value in options.items():
        key = _OPTION_ATTRIBUTES.get(option)
        if key is None or value is None or isinstance(value, bool):
            continue
        attributes[key] = [str(v) for v in value] if isinstance(value, (list, tuple)) else value
    if tools:  # the conventions' flat shape: {"type": "function", "name": ..., "parameters": ...}
        attributes[TOOL_DEFINITIONS] = json.dumps([{"type": tool.get("type", "function"), **tool["function"]}
                                                   for tool in tools], ensure_ascii=False)
    return attributes


def _link_to(request: ReplayRequest) -> list[trace.Link]:
    """A span link to the replayed span, when the request names one by valid OpenTelemetry ids."""
    trace_id, span_id = _hex_id(request.trace_id, 32), _hex_id(request.original_span_id, 16)
    if not (trace_id and span_id):
        return []
    return [trace.Link(SpanContext(trace_id=trace_id, span_id=span_id, is_remote=True,
                                   trace_flags=TraceFlags(TraceFlags.SAMPLED)))]


def _hex_id(text: str, digits: int) -> int:
    """An id of ``digits`` hex digits as its number; 0 (OpenTelemetry's invalid id) for anything else."""
    return int(text, 16) if len(text) == digits and all(c in string.hexdigits for c in text) else 0


class OllamaUnavailable(Exception):
    """Ollama could not be asked (not running, unreachable, or answering errors)."""


def _error_type(exc: BaseException) -> str:
    if isinstance(exc, ollama.ResponseError):
        return f"http.{exc.status_code}" if exc.status_code and exc.status_code > 0 else "ollama.stream_error"
    return type(exc).__qualname__
