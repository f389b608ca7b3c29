"""ChatSession against the fake Ollama: traced turns, traceparent, history, every failure readable."""

from __future__ import annotations

import asyncio

import pytest

from support.fake_ollama import FakeOllama
from support.receivers import running_receivers
from tui.chat.host import normalize_host, resolve_ollama_host
from tui.chat.session import ChatSession, Delta, OllamaUnavailable, TurnFailed, TurnFinished, TurnStarted
from tui.chat.tracing import chat_tracer_provider
from tui.model.conventions import CHAT_SERVICE
from tui.model.genai import GenAIView


async def collect(session: ChatSession, model: str, prompt: str) -> list:
    return [event async for event in session.turn(model, prompt)]


@pytest.mark.parametrize(("given", "expected"), [
    ("0.0.0.0:11434", "http://0.0.0.0:11434"),
    ("0.0.0.0", "http://0.0.0.0:11434"),
    ("example.com", "http://example.com:11434"),
    ("https://example.com", "https://example.com:443"),
    ("http://[::1]:8080/", "http://[::1]:8080"),
    (":11435", "http://127.0.0.1:11435"),
    ("http://ollama.internal:11434/base", "http://ollama.internal:11434/base"),
])
def test_host_forms_like_the_ollama_cli(given: str, expected: str) -> None:
    assert normalize_host(given) == expected


def test_host_precedence() -> None:
    assert resolve_ollama_host("a:1", {"OLLAMA_HOST": "b:2"}) == "http://a:1"
    assert resolve_ollama_host(None, {"OLLAMA_HOST": "b:2"}) == "http://b:2"
    assert resolve_ollama_host(None, {}) == "http://127.0.0.1:11434"


async def test_turn_streams_traces_and_sends_traceparent(fake: FakeOllama) -> None:
    async with running_receivers() as running:
        session = ChatSession(fake.url, chat_tracer_provider(running.receivers.ingest))
        try:
            events = await collect(session, "llama3.2:latest", "Why is the sky blue?")
            assert isinstance(events[0], TurnStarted)
            assert [e.text for e in events if isinstance(e, Delta)] == fake.answer
            finished = events[-1]
            assert isinstance(finished, TurnFinished) and finished.content == "The sky is **blue**."
            stats = finished.stats
            assert (stats.input_tokens, stats.output_tokens, stats.done_reason) == (26, 5, "stop")
            assert stats.tokens_per_second == pytest.approx(10.0)
            assert stats.timings_ns["load_duration"] == fake.load_duration

            await running.wait_for_spans(2)
            trace = running.store.get(stats.trace_id)
            names = {s.name: s for s in trace.spans.values()}
            turn, instrumented = names["chat llama3.2:latest"], names["ollama.chat"]
            assert instrumented.parent_span_id == turn.span_id
            assert turn.resource.service_name == CHAT_SERVICE
            a = turn.attributes
            assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "ollama"
            assert a["gen_ai.usage.input_tokens"] == 26 and a["gen_ai.usage.output_tokens"] == 5
            assert a["gen_ai.response.finish_reasons"] == ("stop",)
            assert a["ollama.eval_duration"] == fake.eval_duration
            assert isinstance(a["gen_ai.response.time_to_first_chunk"], float)
            # opentelemetry-instrumentation-ollama's own span, as an instrumented app would send it.
            assert instrumented.attributes["gen_ai.system"] == "Ollama"
            assert instrumented.attributes["gen_ai.prompt.0.content"] == "Why is the sky blue?"
            assert instrumented.attributes["gen_ai.completion.0.content"] == "The sky is **blue**."

            view = GenAIView.from_span(turn)
            assert view.input[0].content == "Why is the sky blue?" and view.output[0].content == finished.content
            assert view.ollama_timings["eval_duration"] == pytest.approx(0.5)

            (chat_request,) = [r for r in fake.requests if r.path == "/api/chat"]
            traceparent = chat_request.headers["traceparent"]
            assert traceparent.split("-")[1] == stats.trace_id
            assert traceparent.split("-")[2] == turn.span_id

            # History goes with the next turn.
            await collect(session, "llama3.2:latest", "And at sunset?")
            second = [r for r in fake.requests if r.path == "/api/chat"][1]
            assert [m["role"] for m in second.body["messages"]] == ["user", "assistant", "user"]
            session.new_conversation()
            await collect(session, "llama3.2:latest", "Fresh start")
            third = [r for r in fake.requests if r.path == "/api/chat"][2]
            assert [m["content"] for m in third.body["messages"]] == ["Fresh start"]
        finally:
            await session.close()


@pytest.mark.parametrize(("fault", "expect_in_message", "error_type"), [
    ("error_line", "out of memory", "ollama.stream_error"),
    ("drop", "dropped mid-answer", "RemoteProtocolError"),
    ("http500", "Ollama answered 500: llama runner process has terminated", "http.500"),
    ("invalid_json", "not JSON", "JSONDecodeError"),
])
async def test_failures_are_readable_and_recorded_on_the_span(fake: FakeOllama, fault: str, expect_in_message: str,
                                                              error_type: str) -> None:
    fake.fault = fault
    async with running_receivers() as running:
        session = ChatSession(fake.url, chat_tracer_provider(running.receivers.ingest))
        try:
            events = await asyncio.wait_for(collect(session, "llama3.2:latest", "hi"), 10)
        finally:
            await session.close()
        failed = events[-1]
        assert isinstance(failed, TurnFailed), events
        assert expect_in_message in failed.message and failed.error_type == error_type
        await running.wait_for_spans(2)
        turn = next(s for s in running.store.get(failed.trace_id).spans.values() if s.name.startswith("chat "))
        assert turn.is_error and turn.attributes["error.type"] == error_type
        assert session.history == []


async def test_missing_model_names_it_lists_installed_and_suggests_pull(fake: FakeOllama) -> None:
    async with running_receivers() as running:
        session = ChatSession(fake.url, chat_tracer_provider(running.receivers.ingest))
        try:
            events = await collect(session, "mistral", "hi")
        finally:
            await session.close()
    message = events[-1].message
    assert "'mistral' is not installed" in message
    assert "llama3.2:latest, qwen3:8b" in message and "ollama pull mistral" in message


async def test_unreachable_ollama(fake: FakeOllama) -> None:
    await fake.stop()
    async with running_receivers() as running:
        session = ChatSession(fake.url, chat_tracer_provider(running.receivers.ingest))
        try:
            with pytest.raises(OllamaUnavailable, match=r"Cannot reach Ollama at .*`ollama serve`"):
                await session.models()
            events = await collect(session, "llama3.2:latest", "hi")
        finally:
            await session.close()
    assert isinstance(events[-1], TurnFailed) and "Cannot reach Ollama" in events[-1].message


async def test_cancel_closes_the_stream_and_marks_the_span(fake: FakeOllama) -> None:
    fake.fault = "hang"
    async with running_receivers() as running:
        session = ChatSession(fake.url, chat_tracer_provider(running.receivers.ingest))
        got_first = asyncio.Event()

        async def consume() -> None:
            async for event in session.turn("llama3.2:latest", "hi"):
                if isinstance(event, Delta):
                    got_first.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(got_first.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await session.close()
        await running.wait_for_spans(2)
        (trace,) = list(running.store)
        turn = next(s for s in trace.spans.values() if s.name.startswith("chat "))
        assert turn.attributes["error.type"] == "cancelled" and turn.status_message == "cancelled by the user"
        assert session.history == []


async def test_ollama_restarting_between_turns(fake: FakeOllama) -> None:
    async with running_receivers() as running:
        session = ChatSession(fake.url, chat_tracer_provider(running.receivers.ingest))
        try:
            assert isinstance((await collect(session, "llama3.2:latest", "one"))[-1], TurnFinished)
            port = fake.port
            await fake.stop()
            down = (await collect(session, "llama3.2:latest", "two"))[-1]
            assert isinstance(down, TurnFailed) and "Cannot reach Ollama" in down.message
            back = await FakeOllama().start(port)
            try:
                assert isinstance((await collect(session, "llama3.2:latest", "three"))[-1], TurnFinished)
            finally:
                await back.stop()
        finally:
            await session.close()
        # The failed turn is not in the history: the third turn carries turns one and three only.
        assert [m["content"] for m in session.history if m["role"] == "user"] == ["one", "three"]
