"""A fake OpenAI-compatible server (aiohttp on loopback port 0), the counterpart of ``fake_ollama.py``.

``POST /v1/chat/completions`` answers as OpenAI does, streaming (server-sent events, ``data: [DONE]`` at
the end, a last chunk with ``usage`` and no choices when ``stream_options.include_usage`` is set) or
not (one ``chat.completion`` object with ``usage``); ``GET /v1/models`` lists the models. The answers
are scripted: a request that offers ``tools`` in a conversation that holds no tool result yet gets a
``tool_calls`` message (by default ``get_weather({"city": "Paris"})``, finish reason ``tool_calls``);
every other request gets the final text answer. The same paths without ``/v1`` are served too, for
clients whose base URL leaves it out. Every request's headers and body are recorded.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from support.loopback import serve_on_loopback


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


def _words(value: Any) -> int:
    """A stand-in token count: the words of every string in ``value`` (message contents, tool schemas)."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, dict):
        return sum(_words(v) for v in value.values())
    if isinstance(value, list):
        return sum(_words(v) for v in value)
    return 0


@dataclass
class FakeOpenAI:
    models: list[str] = field(default_factory=lambda: ["gpt-4o-mini", "gpt-4o"])
    answer: list[str] = field(default_factory=lambda: ["The ", "sky ", "is ", "**blue**", "."])
    #: The tool call scripted for a request that offers tools: (tool name, arguments).
    tool_call: tuple[str, dict[str, Any]] = ("get_weather", {"city": "Paris"})
    #: The answer to a conversation that holds a tool result (the text answer otherwise).
    tool_answer: list[str] = field(default_factory=lambda: ["It ", "is ", "18°C ", "and ", "sunny ", "in ", "Paris."])
    chunk_delay: float = 0.0
    requests: list[Recorded] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    @property
    def url(self) -> str:
        """The base URL an OpenAI client takes (``OPENAI_BASE_URL``), ``/v1`` included."""
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self, port: int = 0) -> FakeOpenAI:
        app = web.Application()
        for prefix in ("/v1", ""):
            app.router.add_get(f"{prefix}/models", self._models)
            app.router.add_post(f"{prefix}/chat/completions", self._chat)
        self._runner, self.port = await serve_on_loopback(app, port)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _models(self, request: web.Request) -> web.Response:
        self.requests.append(Recorded(request.path, dict(request.headers), {}))
        return web.json_response({"object": "list", "data": [
            {"id": m, "object": "model", "created": 1_715_367_049, "owned_by": "system"} for m in self.models]})

    def wants_tool_call(self, body: dict[str, Any]) -> bool:
        """Tools offered, and no tool result in the conversation yet."""
        messages = body.get("messages") or []
        return bool(body.get("tools")) and not any(
            isinstance(m, dict) and m.get("role") in ("tool", "function") for m in messages)

    def _tool_name(self, body: dict[str, Any]) -> str:
        offered = [t.get("function", {}).get("name") for t in body.get("tools") or [] if isinstance(t, dict)]
        return self.tool_call[0] if self.tool_call[0] in offered or not offered else str(offered[0])

    def _usage(self, body: dict[str, Any], completion_tokens: int) -> dict[str, Any]:
        prompt_tokens = 10 + _words(body.get("messages")) + _words(body.get("tools"))
        return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                              "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(Recorded(request.path, dict(request.headers), body))
        model = body.get("model", "")
        if model not in self.models:
            return web.json_response({"error": {
                "message": f"The model `{model}` does not exist or you do not have access to it.",
                "type": "invalid_request_error", "param": None, "code": "model_not_found"}}, status=404)
        completion_id = f"chatcmpl-fake{next(self._ids):06d}"
        created = int(time.time())
        tool = self.wants_tool_call(body)
        call_id = f"call_{completion_id[-6:]}"
        name, arguments = self._tool_name(body), json.dumps(self.tool_call[1], separators=(",", ":"))
        finish = "tool_calls" if tool else "stop"
        messages = body.get("messages") or []
        answer = self.tool_answer if any(isinstance(m, dict) and m.get("role") in ("tool", "function")
                                         for m in messages) else self.answer
        completion_tokens = 12 if tool else len(answer)
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": None if tool else "".join(answer),
                                       "refusal": None, "annotations": []}
            if tool:
                message["tool_calls"] = [{"id": call_id, "type": "function",
                                          "function": {"name": name, "arguments": arguments}}]
            return web.json_response({
                "id": completion_id, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                "usage": self._usage(body, completion_tokens), "service_tier": "default",
                "system_fingerprint": "fp_fake"})

        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)

        async def send(choices: list[dict[str, Any]], **extra: Any) -> None:
            chunk = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                     "service_tier": "default", "system_fingerprint": "fp_fake", "choices": choices, **extra}
            await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            await asyncio.sleep(self.chunk_delay)

        def delta(d: dict[str, Any], finish_reason: str | None = None) -> list[dict[str, Any]]:
            return [{"index": 0, "delta": d, "logprobs": None, "finish_reason": finish_reason}]

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        if tool:
            await send(delta({"role": "assistant", "content": None, "tool_calls": [
                {"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}]}))
            half = len(arguments) // 2
            for piece in (arguments[:half], arguments[half:]):
                await send(delta({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
        else:
            await send(delta({"role": "assistant", "content": "", "refusal": None}))
            for text in answer:
                await send(delta({"content": text}))
        await send(delta({}, finish), **({"usage": None} if include_usage else {}))
        if include_usage:
            await send([], usage=self._usage(body, completion_tokens))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


if __name__ == "__main__":  # a fake OpenAI server to try by hand: cd tests && python -m support.fake_openai PORT
    import sys

    async def serve() -> None:
        fake = await FakeOpenAI(chunk_delay=0.05).start(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
        print(f"fake OpenAI on {fake.url}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())
