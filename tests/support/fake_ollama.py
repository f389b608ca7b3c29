"""A fake Ollama server speaking Ollama's wire format (aiohttp on loopback port 0).

Streaming NDJSON for /api/chat and /api/generate with a final chunk carrying ``done_reason`` and
the metrics (durations in nanoseconds), non-streaming answers, /api/tags, /api/version, 404 for
unknown models, scripted tool calls (a /api/chat request that offers ``tools`` in a conversation with no
tool result yet is answered with ``message.tool_calls``, by default ``get_weather({"city": "Paris"})``;
every other request gets the text answer), and faults on demand: an ``{"error": ...}`` line mid-stream, a dropped
connection, a 500, a line that is not JSON, a stream that never ends. It records every request's
headers and body.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from support.loopback import serve_on_loopback

FAULTS = ("none", "error_line", "drop", "http500", "invalid_json", "hang")


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeOllama:
    models: list[str] = field(default_factory=lambda: ["llama3.2:latest", "qwen3:8b"])
    answer: list[str] = field(default_factory=lambda: ["The ", "sky ", "is ", "**blue**", "."])
    chunk_delay: float = 0.0
    first_chunk_delay: float = 0.0
    fault: str = "none"
    #: The tool call scripted for a /api/chat request that offers tools: (tool name, arguments).
    tool_call: tuple[str, dict[str, Any]] = ("get_weather", {"city": "Paris"})
    #: The answer to a conversation that holds a tool result (the text answer otherwise).
    tool_answer: list[str] = field(default_factory=lambda: ["It ", "is ", "18°C ", "and ", "sunny ", "in ", "Paris."])
    requests: list[Recorded] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None
    #: Set by stop(): releases handlers parked by the "hang" fault so shutdown is immediate.
    _released: asyncio.Event = field(default_factory=asyncio.Event)

    # Metrics the final chunk reports (ns), as a real server would.
    load_duration: int = 12_000_000
    prompt_eval_count: int = 26
    prompt_eval_duration: int = 130_000_000
    eval_duration: int = 500_000_000

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> FakeOllama:
        app = web.Application()
        app.router.add_get("/api/tags", self._tags)
        app.router.add_get("/api/version", self._version)
        app.router.add_post("/api/chat", self._chat)
        app.router.add_post("/api/generate", self._generate)
        self._runner, self.port = await serve_on_loopback(app, port)
        return self

    async def stop(self) -> None:
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _record(self, request: web.Request, body: dict[str, Any]) -> None:
        self.requests.append(Recorded(request.path, dict(request.headers), body))

    async def _tags(self, request: web.Request) -> web.Response:
        self._record(request, {})
        return web.json_response({"models": [
            {"name": m, "model": m, "modified_at": "2025-05-04T17:37:44.706015396-07:00", "size": 2019393189,
             "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
             "details": {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
                         "parameter_size": "3.2B", "quantization_level": "Q4_K_M"}}
            for m in self.models]})

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": "0.12.6"})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._answer(request, chat=True)

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        return await self._answer(request, chat=False)

    def _chunk(self, model: str, text: str, chat: bool) -> dict[str, Any]:
        created = datetime.now(timezone.utc).isoformat()
        piece = {"message": {"role": "assistant", "content": text}} if chat else {"response": text}
        return {"model": model, "created_at": created, **piece, "done": False}

    def wants_tool_call(self, body: dict[str, Any], chat: bool) -> bool:
        """A chat that offers tools and holds no tool result yet."""
        messages = body.get("messages") or []
        return chat and bool(body.get("tools")) and not any(
            isinstance(m, dict) and m.get("role") == "tool" for m in messages)

    def _answer_for(self, body: dict[str, Any]) -> list[str]:
        """The text answer, or ``tool_answer`` once the conversation holds a tool result."""
        messages = body.get("messages") or []
        has_result = any(isinstance(m, dict) and m.get("role") == "tool" for m in messages)
        return self.tool_answer if has_result else self.answer

    def _tool_calls(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        offered = [t.get("function", {}).get("name") for t in body.get("tools") or [] if isinstance(t, dict)]
        name = self.tool_call[0] if self.tool_call[0] in offered or not offered else str(offered[0])
        return [{"function": {"name": name, "arguments": dict(self.tool_call[1])}}]

    def _final(self, model: str, chat: bool, content: str = "", eval_count: int | None = None,
               answer: list[str] | None = None) -> dict[str, Any]:
        final = self._chunk(model, content, chat)
        eval_count = len(self.answer if answer is None else answer) if eval_count is None else eval_count
        final.update(done=True, done_reason="stop",
                     total_duration=self.load_duration + self.prompt_eval_duration + self.eval_duration + 1_000_000,
                     load_duration=self.load_duration, prompt_eval_count=self.prompt_eval_count,
                     prompt_eval_duration=self.prompt_eval_duration, eval_count=eval_count,
                     eval_duration=self.eval_duration)
        return final

    async def _answer(self, request: web.Request, *, chat: bool) -> web.StreamResponse:
        body = await request.json()
        self._record(request, body)
        model = body.get("model", "")
        if self.fault == "http500":
            return web.json_response({"error": "llama runner process has terminated: signal: killed"}, status=500)
        if model not in self.models and f"{model}:latest" not in self.models:
            return web.json_response({"error": f'model "{model}" not found, try pulling it first'}, status=404)
        if self.wants_tool_call(body, chat):
            calls = self._tool_calls(body)
            if not body.get("stream", True):
                final = self._final(model, chat, "", eval_count=12)
                final["message"]["tool_calls"] = calls
                return web.json_response(final)
            response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
            await response.prepare(request)
            chunk = self._chunk(model, "", chat)
            chunk["message"]["tool_calls"] = calls
            await response.write(json.dumps(chunk).encode() + b"\n")
            await response.write(json.dumps(self._final(model, chat, eval_count=12)).encode() + b"\n")
            await response.write_eof()
            return response
        answer = self._answer_for(body)
        if not body.get("stream", True):
            return web.json_response(self._final(model, chat, "".join(answer), answer=answer))

        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        await asyncio.sleep(self.first_chunk_delay)
        for i, text in enumerate(answer):
            if i == 2 and self.fault == "error_line":
                await response.write(b'{"error":"an error was encountered while running the model: out of memory"}\n')
                return response
            if i == 2 and self.fault == "invalid_json":
                await response.write(b"this is not json\n")
                return response
            if i == 2 and self.fault == "drop":
                assert request.transport is not None
                request.transport.abort()
                return response
            await response.write(json.dumps(self._chunk(model, text, chat)).encode() + b"\n")
            if i == 0 and self.fault == "hang":
                await self._released.wait()  # never ends (until the test stops the server)
                return response
            await asyncio.sleep(self.chunk_delay)
        await response.write(json.dumps(self._final(model, chat, answer=answer)).encode() + b"\n")
        await response.write_eof()
        return response


if __name__ == "__main__":  # a fake Ollama to try the chat pane by hand: cd tests && python -m support.fake_ollama PORT
    import sys

    async def serve() -> None:
        fake = await FakeOllama(chunk_delay=0.05, answer=[w + " " for w in (
            "Rayleigh scattering: air molecules scatter **short** (blue) wavelengths of sunlight far more "
            "than long (red) ones, so blue light reaches your eyes from every direction of the sky.").split()]
        ).start(int(sys.argv[1]) if len(sys.argv) > 1 else 11434)
        print(f"fake Ollama on {fake.url}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())
