"""The chat pane under Pilot, talking real HTTP to the fake Ollama; each turn lands in the tree."""

from __future__ import annotations

import pytest
from textual.widgets import Label, Select

from support.app import cursor_text, detail_texts, screen_text, wait_until
from support.fake_ollama import FakeOllama
from support.receivers import Running
from tui.app import traces_screen
from tui.app.app import OllamaTuiApp
from tui.app.widgets import chat as chat_module
from tui.app.widgets.chat import ChatInput, ChatTurn
from tui.model.conventions import CHAT_SERVICE

SIZE = (200, 50)
QUESTION = "Why is the sky blue?"



def make_app(running: Running, host: str, model: str | None = None) -> OllamaTuiApp:
    return OllamaTuiApp(running.receivers, running.store, chat_host=host, model=model)


def connection(app: OllamaTuiApp) -> str:
    return str(app.query_one("#chat-connection", Label).content)


async def ask(pilot, text: str) -> ChatTurn:
    app = pilot.app
    await pilot.press("a")
    assert app.focused is app.query_one(ChatInput)
    await pilot.press(*[("space" if c == " " else c) for c in text], "enter")
    await wait_until(pilot, lambda: len(app.query(ChatTurn)) > 0)
    return list(app.query(ChatTurn))[-1]


def status(turn: ChatTurn) -> str:
    return str(turn.query_one(".turn-status").content)


async def test_streamed_answer_then_its_trace_with_prompt_completion_tokens_and_timings(
    app_receivers: Running, fake: FakeOllama
) -> None:
    app = make_app(app_receivers, fake.url)
    async with app.run_test(size=SIZE) as pilot:
        assert app.query_one("#chat").display  # room enough: open by default
        await wait_until(pilot, lambda: app.query_one("#chat-model", Select).value == "llama3.2:latest")
        assert "2 models installed" in connection(app)
        turn = await ask(pilot, QUESTION)
        await wait_until(pilot, lambda: "tokens" in status(turn))
        assert turn.answer == "The sky is **blue**."
        assert "The sky is blue." in screen_text(app)  # rendered as Markdown
        assert "26 → 5 tokens · 10.0 tok/s" in status(turn) and "stop" in status(turn)

        await pilot.press("ctrl+t")  # jump to the turn's trace
        assert app.focused is app.traces.trace_list
        row = app.traces.trace_list.current
        assert row.trace.trace_id == turn.trace_id and row.trace.service_name == CHAT_SERVICE
        await pilot.press("enter", "l")
        assert cursor_text(app) == "chat llama3.2:latest"
        assert app.query_one("TabbedContent").active == "tab-llm"
        llm = "\n".join(detail_texts(app, "llm"))
        for expected in (QUESTION, "The sky is **blue**.", "in 26 · out 5 · total 31", "Ollama timings",
                         "generation", "load", "prompt eval", "Finish reason  stop", "provider ollama"):
            assert expected in llm, expected
        await pilot.press("j")
        assert cursor_text(app) == "ollama.chat"  # what opentelemetry-instrumentation-ollama recorded

        (request,) = [r for r in fake.requests if r.path == "/api/chat"]
        assert request.headers["traceparent"].split("-")[1] == turn.trace_id


async def test_escape_stops_a_slow_answer_and_gives_the_prompt_back(app_receivers: Running, fake: FakeOllama) -> None:
    fake.fault = "hang"
    app = make_app(app_receivers, fake.url)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.query_one("#chat-model", Select).value == "llama3.2:latest")
        turn = await ask(pilot, "tell me a long story")
        await wait_until(pilot, lambda: turn.answer == "The ")
        await pilot.press("escape")
        await wait_until(pilot, lambda: "stopped" in status(turn))
        assert app.query_one(ChatInput).text == "tell me a long story"
        await wait_until(pilot, lambda: app_receivers.store.span_count == 2)
        trace = app_receivers.store.get(turn.trace_id)
        span = next(s for s in trace.spans.values() if s.name.startswith("chat "))
        assert span.attributes["error.type"] == "cancelled"
        # The next turn works (the fake stops hanging).
        fake.fault = "none"
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(app.query(ChatTurn)) == 2
                         and "tokens" in status(list(app.query(ChatTurn))[-1]))


async def test_a_model_slow_to_answer_is_explained_then_the_answer_replaces_it(
        app_receivers: Running, fake: FakeOllama, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chat_module, "SLOW_SECONDS", 0.1)
    fake.first_chunk_delay = 1.0  # as when Ollama loads the model first
    app = make_app(app_receivers, fake.url)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.query_one("#chat-model", Select).value == "llama3.2:latest")
        turn = await ask(pilot, QUESTION)
        await wait_until(pilot, lambda: "loading the model can take a while" in status(turn))
        assert turn.answer == ""
        await wait_until(pilot, lambda: "tokens" in status(turn))
        assert turn.answer == "The sky is **blue**."


@pytest.mark.parametrize(("fault", "model", "expected"), [
    ("none", "mistral", "'mistral' is not installed"),
    ("error_line", None, "out of memory"),
    ("http500", None, "Ollama answered 500"),
    ("drop", None, "dropped mid-answer"),
])
async def test_failures_show_in_the_turn_and_the_span_ends_in_error(
    app_receivers: Running, fake: FakeOllama, fault: str, model: str | None, expected: str
) -> None:
    fake.fault = fault
    app = make_app(app_receivers, fake.url, model=model)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.query_one("#chat-model", Select).value is not Select.BLANK)
        turn = await ask(pilot, "hi")
        await wait_until(pilot, lambda: expected in status(turn))
        if model == "mistral":
            assert "ollama pull mistral" in status(turn) and "llama3.2:latest, qwen3:8b" in status(turn)
        await wait_until(pilot, lambda: app_receivers.store.get(turn.trace_id) is not None)
        app.traces.tick()
        trace = app_receivers.store.get(turn.trace_id)
        assert trace.has_error


async def test_unreachable_ollama_is_explained_and_reconnects(app_receivers: Running, fake: FakeOllama,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chat_module, "RETRY_SECONDS", 0.1)
    port = fake.port
    await fake.stop()
    app = make_app(app_receivers, f"http://127.0.0.1:{port}")
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "Cannot reach Ollama at" in connection(app))
        assert "ollama serve" in connection(app) and "--ollama-host" in connection(app)
        await pilot.press("a", "h", "i", "enter")  # no model known yet: nothing is sent, the prompt stays
        assert not app.query(ChatTurn) and app.query_one(ChatInput).text == "hi"
        back = await FakeOllama().start(port)
        try:
            await wait_until(pilot, lambda: "2 models installed" in connection(app))
            assert app.query_one("#chat-model", Select).value == "llama3.2:latest"
            await pilot.press("enter")  # and now it goes through
            await wait_until(pilot, lambda: app.query(ChatTurn) and "tokens" in status(list(app.query(ChatTurn))[-1]))
        finally:
            await back.stop()


async def test_chat_pane_is_hidden_on_narrow_terminals_and_toggles(app_receivers: Running, fake: FakeOllama) -> None:
    app = make_app(app_receivers, fake.url)
    async with app.run_test(size=(120, 40)) as pilot:
        assert not app.query_one("#chat").display
        await pilot.press("f2")
        assert app.query_one("#chat").display and app.focused is app.query_one(ChatInput)
        await pilot.press("f2")
        assert not app.query_one("#chat").display and app.focused is app.traces.trace_list
        assert traces_screen.CHAT_AUTO_WIDTH > 120
