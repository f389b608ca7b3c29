"""Replay and compare in the app (issue 17): ``r`` on a recorded LLM call, edited, sent to the fake Ollama over
HTTP, linked back to the original (``b`` / ``n``), and compared with it (``C``), or two marked calls (``m``)."""

from __future__ import annotations

from textual.widgets import Input, Select, TabbedContent, TextArea

from support.app import detail_texts, screen_text, trace_list_lines, wait_until
from support.fake_ollama import FakeOllama
from support.receivers import Running, send
from support.sdk_spans import record
from test_genai_recordings import RECORDINGS, is_model_call
from tui.app.app import OllamaTuiApp
from tui.app.screens.compare import CompareScreen
from tui.app.widgets.chat import ChatInput, ChatTurn
from tui.app.widgets.replay_form import ReplayForm
from tui.model.conventions import REPLAY_OF
from tui.model.span import Span

SIZE = (200, 50)
SYSTEM = "You are a terse assistant. Answer in one sentence."
SKY = "Why is the sky blue?"



def app_with(running: Running, fake: FakeOllama, *recordings: str) -> OllamaTuiApp:
    files = [(f"{stem}.jsonl", (RECORDINGS / f"{stem}.jsonl").read_bytes()) for stem in recordings]
    return OllamaTuiApp(running.receivers, running.store, chat_host=fake.url, load=files)


def calls_holding(app: OllamaTuiApp, asking: str, service: str = "") -> list[Span]:
    """The recorded model calls whose span holds ``asking`` (from ``service``), by start time."""
    return sorted((s for t in app.services.store for s in t.spans.values()
                   if is_model_call(s) and asking.lower() in s.search_text and service in s.resource.service_name),
                  key=lambda s: s.start_ns)


async def select_call(pilot, asking: str, service: str = "") -> Span:
    """Select (once loaded) the first recorded model call holding ``asking``."""
    app = pilot.app
    await wait_until(pilot, lambda: bool(calls_holding(app, asking, service)))
    span = calls_holding(app, asking, service)[0]
    await wait_until(pilot, lambda: app.traces.trace_list.select(span.trace_id, span.span_id))
    await pilot.pause()
    return span


async def open_replay(pilot, asking: str = SKY) -> Span:
    app = pilot.app
    await wait_until(pilot, lambda: app.query_one("#chat-model", Select).value == "llama3.2:latest")
    span = await select_call(pilot, asking)
    await pilot.press("r")
    await wait_until(pilot, lambda: bool(app.query(ReplayForm)))
    return span


def turns(app: OllamaTuiApp) -> list[ChatTurn]:
    return list(app.query(ChatTurn))


def status(turn: ChatTurn) -> str:
    return str(turn.query_one(".turn-status").content)


async def replay_and_wait(pilot, *keys: str) -> ChatTurn:
    app = pilot.app
    await pilot.press(*keys, "enter")
    await wait_until(pilot, lambda: bool(turns(app)) and "tokens" in status(turns(app)[-1]))
    return turns(app)[-1]


def chat_requests(fake: FakeOllama) -> list[dict]:
    return [r.body for r in fake.requests if r.path == "/api/chat"]


async def test_r_loads_the_call_into_the_chat_pane_every_part_editable(app_receivers: Running,
                                                                        fake: FakeOllama) -> None:
    app = app_with(app_receivers, fake, "openllmetry-ollama-attributes")
    async with app.run_test(size=SIZE) as pilot:
        await open_replay(pilot)
        form = app.query_one(ReplayForm)
        assert app.query_one("#replay-system", TextArea).text == SYSTEM
        assert app.query_one(ChatInput).text == SKY
        assert app.focused is app.query_one(ChatInput)
        assert app.query_one("#chat-model", Select).value == "llama3.2:latest"  # the span's model, installed
        assert "Replay of" in screen_text(app) and form.note == ""


async def test_an_edited_replay_sends_what_was_edited_and_links_back_to_the_original(
        app_receivers: Running, fake: FakeOllama) -> None:
    app = app_with(app_receivers, fake, "openllmetry-ollama-attributes")
    async with app.run_test(size=SIZE) as pilot:
        original = await open_replay(pilot)
        app.query_one("#replay-system", TextArea).text = "Answer like a pirate."
        app.query_one("#replay-options", Input).value = "temperature=0.1 seed=7"
        app.query_one(ChatInput).text = "Why is the sea blue?"
        turn = await replay_and_wait(pilot)
        assert not app.query(ReplayForm)  # sent: the pane is a conversation again

        (body,) = chat_requests(fake)
        assert body["model"] == "llama3.2:latest"
        assert body["messages"] == [{"role": "system", "content": "Answer like a pirate."},
                                    {"role": "user", "content": "Why is the sea blue?"}]
        assert body["options"]["temperature"] == 0.1 and body["options"]["seed"] == 7

        await pilot.press("ctrl+t", "enter", "l")  # the replay's trace, its first span
        assert app.traces.trace_list.current.trace.trace_id == turn.trace_id
        replay = app.traces.trace_list.current.span_row.span
        assert replay.attributes[REPLAY_OF] == original.span_id
        assert [(link.trace_id, link.span_id) for link in replay.links] == [(original.trace_id, original.span_id)]
        await pilot.pause()
        llm = "\n".join(detail_texts(app, "llm"))
        assert "Replay of" in llm and original.span_id[:8] in llm

        await pilot.press("b")  # to the original
        assert app.traces.trace_list.current.span_row.span.span_id == original.span_id
        await wait_until(pilot, lambda: "Replayed 1 time" in "\n".join(detail_texts(app, "llm")))
        await pilot.press("n")  # and back to its replay
        assert app.traces.trace_list.current.span_row.span.span_id == replay.span_id


async def test_a_recorded_tool_loop_is_replayed_with_its_tools_and_the_models_tool_call_is_shown(
        app_receivers: Running, fake: FakeOllama) -> None:
    app = app_with(app_receivers, fake, "openllmetry-ollama-attributes")
    async with app.run_test(size=SIZE) as pilot:
        await open_replay(pilot, "What is the weather in Paris?")
        turn = await replay_and_wait(pilot)
        (body,) = chat_requests(fake)
        assert [tool["function"]["name"] for tool in body["tools"]] == ["get_weather"]
        assert "called get_weather" in status(turn)


async def test_a_remote_models_call_runs_on_an_installed_model_and_the_form_says_so(
        app_receivers: Running, fake: FakeOllama) -> None:
    app = app_with(app_receivers, fake, "openllmetry-openai-attributes")
    async with app.run_test(size=SIZE) as pilot:
        await open_replay(pilot)
        note = app.query_one(ReplayForm).note
        assert "gpt-4o-mini is a remote model" in note and "runs on llama3.2:latest" in note and "qwen3:8b" in note
        await replay_and_wait(pilot)
        (body,) = chat_requests(fake)
        assert body["model"] == "llama3.2:latest"


async def test_replaying_three_times_shows_the_spread(app_receivers: Running, fake: FakeOllama) -> None:
    app = app_with(app_receivers, fake, "openllmetry-ollama-attributes")
    async with app.run_test(size=SIZE) as pilot:
        await open_replay(pilot)
        app.query_one("#replay-runs", Input).value = "3"
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(app.query(".spread")))
        assert len(chat_requests(fake)) == 3 and len(turns(app)) == 3
        assert "3 runs · 1 distinct completion" in str(app.query_one(".spread").content)


async def test_a_malformed_option_is_one_sentence_and_nothing_is_sent(app_receivers: Running,
                                                                      fake: FakeOllama) -> None:
    app = app_with(app_receivers, fake, "openllmetry-ollama-attributes")
    async with app.run_test(size=SIZE) as pilot:
        await open_replay(pilot)
        app.query_one("#replay-options", Input).value = "temperature=warm"
        await pilot.press("enter")
        await pilot.pause()
        assert not chat_requests(fake) and app.query(ReplayForm)
        assert any("temperature" in str(n.message) for n in app._notifications)


async def test_ollama_down_mid_replay_is_a_sentence_on_the_turn(app_receivers: Running, fake: FakeOllama) -> None:
    app = app_with(app_receivers, fake, "openllmetry-ollama-attributes")
    async with app.run_test(size=SIZE) as pilot:
        await open_replay(pilot)
        fake.fault = "drop"
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(turns(app)) and "dropped" in status(turns(app)[-1]))
        assert "Traceback" not in screen_text(app)


async def test_C_on_a_replay_compares_it_with_its_original(app_receivers: Running, fake: FakeOllama) -> None:
    app = app_with(app_receivers, fake, "openllmetry-openai-attributes")
    async with app.run_test(size=SIZE) as pilot:
        await open_replay(pilot)
        await replay_and_wait(pilot)
        await pilot.press("ctrl+t", "enter", "l", "C")
        await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen))
        text = screen_text(app)
        assert "gpt-4o-mini" in text and "llama3.2" in text and "remote" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, CompareScreen)


async def test_two_marked_calls_are_compared(app_receivers: Running, fake: FakeOllama) -> None:
    app = app_with(app_receivers, fake, "openllmetry-ollama-attributes", "openinference-openai-default")
    async with app.run_test(size=SIZE) as pilot:
        first = await select_call(pilot, SKY, "ollama")
        await pilot.press("m")
        assert first.span_id in app.traces.trace_list.marked
        assert sum("⚑" in line for line in trace_list_lines(app)) == 2  # its span row, and its trace's row
        await select_call(pilot, SKY, "openai")
        await pilot.press("m", "C")
        await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen))
        text = screen_text(app)
        assert "llama3.2" in text and "gpt-4o-mini" in text


async def test_r_on_a_span_that_is_no_llm_call_says_what_to_select(app_receivers: Running,
                                                                   fake: FakeOllama) -> None:
    app = app_with(app_receivers, fake, "openinference-langchain-default")
    async with app.run_test(size=SIZE) as pilot:
        store = app.services.store
        await wait_until(pilot, lambda: any(s.name == "agent" for t in store for s in t.spans.values()))
        agent = next(s for t in store for s in t.spans.values() if s.name == "agent")
        await wait_until(pilot, lambda: app.traces.trace_list.select(agent.trace_id, agent.span_id))
        await pilot.press("r")
        await pilot.pause()
        assert not app.query(ReplayForm)
        assert any("not an LLM call" in str(n.message) for n in app._notifications)


async def test_r_on_a_conversation_step_replays_that_call_with_the_tool_loop_before_it(
        app_receivers: Running, fake: FakeOllama) -> None:
    app = app_with(app_receivers, fake, "openinference-langchain-default")
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.query_one("#chat-model", Select).value == "llama3.2:latest")
        store = app.services.store
        await wait_until(pilot, lambda: any(s.name == "agent" for t in store for s in t.spans.values()))
        (trace,) = [t for t in store if any(s.name == "agent" for s in t.spans.values())]
        await wait_until(pilot, lambda: app.traces.trace_list.select(trace.trace_id))
        await pilot.press("r")  # a trace row of an agent run: which of its calls is meant?
        await pilot.pause()
        assert not app.query(ReplayForm)
        assert any("2 LLM calls" in str(n.message) for n in app._notifications)

        await pilot.press("tab")  # the Conversation tab, where the trace row opens
        conversation = app.traces.detail.list("conversation")
        assert app.focused is conversation
        llm_steps = [i for i, item in enumerate(conversation.items)
                     if item.span_id and is_model_call(trace.spans[item.span_id])]
        conversation.highlighted = llm_steps[1]  # the call made after the tool ran
        await pilot.press("r")
        await wait_until(pilot, lambda: bool(app.query(ReplayForm)))
        form = app.query_one(ReplayForm)
        assert form.request.original_span_id == conversation.items[llm_steps[1]].span_id
        roles = [m["role"] for m in form.request.messages]
        assert roles[-2:] == ["assistant", "tool"] and form.request.messages[-2]["tool_calls"]
        assert app.query_one(ChatInput).text == ""  # the last message is the tool's result, sent as recorded
        turn = await replay_and_wait(pilot)
        (body,) = chat_requests(fake)
        assert body["messages"][-1]["role"] == "tool" and "18°C" in body["messages"][-1]["content"]
        assert "18°C" in turn.answer  # the fake answers a conversation holding a tool result with the weather


def replay_spans(app: OllamaTuiApp, original: Span) -> list[Span]:
    return [s for t in app.services.store for s in t.spans.values() if s.attributes.get(REPLAY_OF) == original.span_id]


async def test_n_steps_through_every_replay_and_b_goes_back_from_a_trace_row(app_receivers: Running,
                                                                             fake: FakeOllama) -> None:
    app = app_with(app_receivers, fake, "openllmetry-ollama-attributes")
    async with app.run_test(size=SIZE) as pilot:
        original = await open_replay(pilot)
        app.query_one("#replay-runs", Input).value = "2"
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(app.query(".spread")) and len(replay_spans(app, original)) == 2)
        first, second = sorted(replay_spans(app, original), key=lambda s: s.start_ns)

        await pilot.press("ctrl+t")  # the latest run's trace row, not expanded: the row stands for its call
        assert app.traces.trace_list.current.span_row is None
        assert app.traces.trace_list.current.trace.trace_id == second.trace_id
        app.traces.detail.query_one(TabbedContent).active = "tab-llm"  # a trace row opens on its Conversation
        await wait_until(pilot, lambda: "Replay of" in "\n".join(detail_texts(app, "llm")))
        await pilot.press("b")
        assert app.traces.trace_list.current.span_row.span.span_id == original.span_id
        await wait_until(pilot, lambda: "Replayed 2 times" in "\n".join(detail_texts(app, "llm")))
        visited = []
        for _ in range(3):
            await pilot.press("n")
            visited.append(app.traces.trace_list.current.span_row.span.span_id)
        assert visited == [first.span_id, second.span_id, first.span_id]


async def test_enter_in_the_options_field_sends_the_replay(app_receivers: Running, fake: FakeOllama) -> None:
    app = app_with(app_receivers, fake, "openllmetry-ollama-attributes")
    async with app.run_test(size=SIZE) as pilot:
        await open_replay(pilot)
        app.query_one("#replay-options", Input).focus()
        await pilot.press("space", "s", "e", "e", "d", "equals_sign", "3", "enter")
        await wait_until(pilot, lambda: bool(chat_requests(fake)))
        assert chat_requests(fake)[0]["options"] == {"seed": 3}


async def test_esc_mid_replay_brings_the_replay_back_as_sent_and_enter_sends_it_again(
        app_receivers: Running, fake: FakeOllama) -> None:
    fake.chunk_delay = 0.5  # slow enough to be stopped mid-answer, even on a loaded machine
    app = app_with(app_receivers, fake, "openllmetry-ollama-attributes")
    async with app.run_test(size=SIZE) as pilot:
        original = await open_replay(pilot)
        app.query_one("#replay-system", TextArea).text = "Answer like a pirate."
        app.query_one("#replay-runs", Input).value = "3"
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(turns(app)) and bool(turns(app)[-1].answer))
        await pilot.press("escape")
        await wait_until(pilot, lambda: bool(app.query(ReplayForm)))
        assert "stopped" in status(turns(app)[-1])
        assert app.query_one("#replay-system", TextArea).text == "Answer like a pirate."
        assert app.query_one("#replay-runs", Input).value == "1"
        assert len(chat_requests(fake)) == 1  # the other runs were never sent
        fake.chunk_delay = 0.0
        await replay_and_wait(pilot)
        again = chat_requests(fake)[-1]
        assert again["messages"][0] == {"role": "system", "content": "Answer like a pirate."}
        await wait_until(pilot, lambda: len(replay_spans(app, original)) == 2)  # both linked to the original


async def test_ctrl_n_with_the_form_up_leaves_nothing_of_the_replay(app_receivers: Running, fake: FakeOllama) -> None:
    app = app_with(app_receivers, fake, "openllmetry-ollama-attributes")
    async with app.run_test(size=SIZE) as pilot:
        await open_replay(pilot)
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert not app.query(ReplayForm) and app.query_one(ChatInput).text == ""
        await pilot.press("enter")
        assert not chat_requests(fake)


async def test_marks_go_with_the_traces_cleared(app_receivers: Running, fake: FakeOllama) -> None:
    app = app_with(app_receivers, fake, "openllmetry-ollama-attributes")
    async with app.run_test(size=SIZE) as pilot:
        await select_call(pilot, SKY)
        await pilot.press("m")
        assert app.traces.marked
        await pilot.press("c", "y")
        await wait_until(pilot, lambda: not app.traces.marked)
        assert not app.traces.trace_list.marked


async def test_two_marked_calls_are_compared_whatever_is_selected(app_receivers: Running, fake: FakeOllama) -> None:
    app = app_with(app_receivers, fake, "openllmetry-ollama-attributes", "openinference-langchain-default")
    async with app.run_test(size=SIZE) as pilot:
        first = await select_call(pilot, SKY, "ollama")
        await pilot.press("m")
        second = await select_call(pilot, SKY, "langchain")
        await pilot.press("m")
        store = app.services.store
        agent = next(s for t in store for s in t.spans.values() if s.name == "agent")
        await wait_until(pilot, lambda: app.traces.trace_list.select(agent.trace_id, agent.span_id))  # no LLM call
        await pilot.press("C")
        await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen))
        compared = app.screen.comparison
        assert (compared.left.span_id, compared.right.span_id) == (first.span_id, second.span_id)


async def test_span_names_are_never_markup_in_what_r_and_m_say(app_receivers: Running, fake: FakeOllama) -> None:
    def build(tracer) -> None:
        with tracer.start_as_current_span("[/oops] GET /blog/[slug]"):
            pass

    app = app_with(app_receivers, fake)
    async with app.run_test(size=SIZE) as pilot:
        await send(app_receivers, record(build, "blog"))
        await wait_until(pilot, lambda: len(app.services.store) == 1)
        (trace,) = list(app.services.store)
        await wait_until(pilot, lambda: app.traces.trace_list.select(trace.trace_id, trace.root.span_id))
        await pilot.press("r", "m")
        await pilot.pause()
        said = [str(n.message) for n in app._notifications]
        assert sum("'[/oops] GET /blog/[slug]' is not an LLM call" in text for text in said) == 2


async def test_at_80x24_the_replay_has_the_screen_and_ctrl_t_gives_the_list_back(app_receivers: Running,
                                                                                  fake: FakeOllama) -> None:
    app = app_with(app_receivers, fake, "openllmetry-ollama-attributes")
    async with app.run_test(size=(80, 24)) as pilot:
        await open_replay(pilot)
        assert app.traces.zoomed == "chat"
        await replay_and_wait(pilot)
        await pilot.press("ctrl+t")
        assert app.traces.zoomed == "" and app.focused is app.traces.trace_list  # never an invisible focus


async def test_the_filter_bar_keeps_a_zoom(app_receivers: Running, fake: FakeOllama) -> None:
    app = app_with(app_receivers, fake, "openllmetry-ollama-attributes")
    async with app.run_test(size=SIZE) as pilot:
        await select_call(pilot, SKY)
        await pilot.press("tab", "z")
        assert app.traces.zoomed == "detail"
        await pilot.press("slash")
        assert app.traces.zoomed == "detail"
