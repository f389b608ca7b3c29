"""The Conversation view: agent runs recorded with the real SDK (and the recordings of real libraries, when
present) turned into steps, the tab in the app, Enter jumping to a step's span, and ``o`` on a step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from textual.widgets import TabbedContent

from support.app import FIXED_NOW, cursor_text, detail_texts, wait_until
from support.genai_spans import ANSWER, QUESTION, SYSTEM, agent_with_tools
from support.sdk_spans import record
from tui.app.app import OllamaTuiApp
from tui.app.present.conversation import conversation_items
from tui.app.present.detail import llm_items
from tui.app.screens.value import ValueScreen
from tui.model.conversation import HEADING, LLM, TOOL, conversation
from tui.model.store import Trace, TraceStore
from tui.model.trace_list import ListRow
from tui.receiver import OtlpReceivers, ReceiverConfig
from tui.receiver.decode import spans_from_request
from tui.receiver.files import read_requests

RECORDINGS = Path(__file__).parent / "fixtures" / "genai"


def store_of(*builds) -> TraceStore:
    store = TraceStore(100_000)
    for build in builds:
        store.add_spans(spans_from_request(encode_spans(record(build, "agent"))).spans)
    store.drain_changes()
    return store


def only_trace(store: TraceStore) -> Trace:
    (found,) = list(store)
    return found


def span_named(t: Trace, name: str, nth: int = 0):
    return [row.span for row in t.rows() if row.span.name == name][nth]


# --- the model ------------------------------------------------------------------------------------------

def test_an_agent_run_reads_in_order_with_the_repeated_history_folded() -> None:
    t = only_trace(store_of(agent_with_tools))
    conv = conversation(t)
    assert [(s.kind, s.depth) for s in conv.steps] == [(HEADING, 0), (LLM, 1), (TOOL, 1), (LLM, 1)]
    agent, first, tool, second = conv.steps
    assert agent.name == "weather-agent" and agent.model == "qwen3" and agent.instructions == SYSTEM
    assert agent.input == QUESTION and agent.output == ANSWER
    assert first.folded == 0 and [m.role for m in first.added] == ["system", "user"]
    assert [c.name for c in first.tool_calls] == ["get_weather"] and first.view.finish_reasons == ["tool_calls"]
    assert (tool.name, tool.call_id, json.loads(tool.arguments), tool.result) == (
        "get_weather", "call_1", {"location": "Paris"}, "rainy, 14 °C")
    # system + user + the assistant's tool call were in the previous call's history and completion
    assert second.folded == 3 and [(m.role, m.content) for m in second.added] == [("tool", "rainy, 14 °C")]
    assert second.view.output[0].content == ANSWER


def test_totals_count_leaf_calls_not_the_agents_aggregate_too() -> None:
    totals = conversation(only_trace(store_of(agent_with_tools))).totals
    assert (totals.llm_calls, totals.tool_calls) == (2, 1)
    assert (totals.input_tokens, totals.output_tokens) == (120 + 140, 18 + 45)  # not 520 / 126
    assert totals.llm_ns > 0 and totals.tool_ns > 0 and totals.errors == 0
    assert totals.llm_ns + totals.tool_ns + totals.other_ns == totals.total_ns


def test_an_agent_without_calls_below_counts_its_own_usage() -> None:
    def build(tracer: trace.Tracer) -> None:
        with tracer.start_as_current_span("invoke_agent solo", attributes={
                "gen_ai.operation.name": "invoke_agent", "gen_ai.usage.input_tokens": 7,
                "gen_ai.usage.output_tokens": 3}):
            pass

    totals = conversation(only_trace(store_of(build))).totals
    assert (totals.input_tokens, totals.output_tokens) == (7, 3)


def test_built_once_per_trace_version() -> None:
    store = store_of(agent_with_tools)
    t = only_trace(store)
    assert conversation(t) is conversation(t)
    before = conversation(t)
    store.add_spans([span_named(t, "execute_tool get_weather")])  # a re-sent span bumps the version
    assert conversation(t) is not before


def test_a_subtree_is_its_own_conversation() -> None:
    t = only_trace(store_of(agent_with_tools))
    tool = span_named(t, "execute_tool get_weather")
    conv = conversation(t, tool.span_id)
    assert [s.kind for s in conv.steps] == [TOOL] and conv.totals.llm_calls == 0
    assert conv.totals.total_ns == tool.duration_ns


def test_tool_results_in_the_messages_become_steps_when_no_tool_span_was_recorded() -> None:
    user = {"role": "user", "parts": [{"type": "text", "content": QUESTION}]}
    call = {"role": "assistant", "parts": [{"type": "tool_call", "id": "c9", "name": "get_weather",
                                            "arguments": {"location": "Paris"}}]}
    result = {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c9", "result": "rainy"}]}

    def build(tracer: trace.Tracer) -> None:
        with tracer.start_as_current_span("run"):
            for inputs, output in (([user], call), ([user, call, result], {"role": "assistant", "parts": [
                    {"type": "text", "content": ANSWER}]})):
                with tracer.start_as_current_span("chat llama3.2", attributes={
                        "gen_ai.operation.name": "chat", "gen_ai.request.model": "llama3.2",
                        "gen_ai.input.messages": json.dumps(inputs),
                        "gen_ai.output.messages": json.dumps([output])}):
                    pass

    steps = conversation(only_trace(store_of(build))).steps
    assert [s.kind for s in steps] == [LLM, TOOL, LLM]
    tool = steps[1]
    assert tool.from_messages and (tool.name, tool.call_id, tool.result) == ("get_weather", "c9", "rainy")
    assert json.loads(tool.arguments) == {"location": "Paris"}
    assert steps[2].folded == 2


def test_openinference_chains_tools_and_a_model_span_around_another() -> None:
    """LangChain through OpenInference: CHAIN → LLM (wrapping an OpenLLMetry client span) → TOOL → LLM."""
    def build(tracer: trace.Tracer) -> None:
        with tracer.start_as_current_span("LangGraph", attributes={"openinference.span.kind": "CHAIN",
                                                                   "input.value": QUESTION, "output.value": ANSWER}):
            with tracer.start_as_current_span("ChatOllama", attributes={
                    "openinference.span.kind": "LLM", "llm.model_name": "llama3.2",
                    "llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": QUESTION,
                    "llm.token_count.prompt": 10, "llm.token_count.completion": 4}):
                with tracer.start_as_current_span("ollama.chat", attributes={
                        "gen_ai.request.model": "llama3.2", "llm.request.type": "chat",
                        "gen_ai.usage.prompt_tokens": 10, "gen_ai.usage.completion_tokens": 4}):
                    pass
            with tracer.start_as_current_span("get_weather", attributes={
                    "openinference.span.kind": "TOOL", "tool.name": "get_weather", "input.value": "Paris",
                    "output.value": "rainy"}) as tool:
                tool.set_status(trace.Status(trace.StatusCode.ERROR, "weather service down"))

    conv = conversation(only_trace(store_of(build)))
    assert [(s.kind, s.name) for s in conv.steps] == [
        (HEADING, "LangGraph"), (LLM, "ollama.chat"), (TOOL, "get_weather")]
    assert conv.steps[0].input == QUESTION and conv.steps[0].output == ANSWER
    tool = conv.steps[2]
    assert (tool.arguments, tool.result, tool.error) == ("Paris", "rainy", "weather service down")
    assert (conv.totals.input_tokens, conv.totals.output_tokens, conv.totals.errors) == (10, 4, 1)


def test_fifty_calls_of_growing_history_each_fold_all_but_what_they_added() -> None:
    def build(tracer: trace.Tracer) -> None:
        history: list[dict] = []
        with tracer.start_as_current_span("invoke_agent long", attributes={"gen_ai.operation.name": "invoke_agent"}):
            for i in range(50):
                history.append({"role": "user", "parts": [{"type": "text", "content": f"question {i} " + "x" * 400}]})
                answer = {"role": "assistant", "parts": [{"type": "text", "content": f"answer {i}"}]}
                with tracer.start_as_current_span("chat", attributes={
                        "gen_ai.operation.name": "chat", "gen_ai.request.model": "m",
                        "gen_ai.input.messages": json.dumps(history),
                        "gen_ai.output.messages": json.dumps([answer])}):
                    pass
                history.append(answer)

    steps = [s for s in conversation(only_trace(store_of(build))).steps if s.kind == LLM]
    assert len(steps) == 50
    assert [s.folded for s in steps] == [2 * i for i in range(50)]
    assert all(len(s.added) == 1 and s.added[0].content.startswith(f"question {i} ") for i, s in enumerate(steps))


RECORDED = sorted(RECORDINGS.glob("*.jsonl")) if RECORDINGS.is_dir() else []


@pytest.mark.skipif(not RECORDED, reason="no recordings in tests/fixtures/genai yet")
@pytest.mark.parametrize("path", RECORDED, ids=lambda p: p.stem)
def test_every_recording_reads_as_a_conversation(path: Path) -> None:
    store = TraceStore(100_000)
    for request in read_requests(path.name, path.read_bytes()):
        store.add_spans(spans_from_request(request).spans)
    calls = 0
    for t in store:
        conv = conversation(t)
        calls += conv.totals.llm_calls
        for step in conv.steps:
            assert step.span.span_id in t.spans
        conversation_items(ListRow(t))  # renders
    assert calls >= 1, path.name


@pytest.mark.parametrize(("stem", "second_call_adds"), [
    ("pydantic-ai-default", "user"),  # pydantic-ai returns a tool's result in a user message
    ("strands-default", "tool"),
    ("strands-latest", "user"),
    ("openinference-langchain-default", "tool"),  # LangGraph's prebuilt ReAct agent
])
def test_a_tool_using_agent_from_each_framework_reads_as_its_run(stem: str, second_call_adds: str) -> None:
    """Recorded from the real framework: a question, the model asks for get_weather, the tool runs, the
    model answers; the second call's repeated history is folded to what it added."""
    path = RECORDINGS / f"{stem}.jsonl"
    store = TraceStore(100_000)
    for request in read_requests(path.name, path.read_bytes()):
        store.add_spans(spans_from_request(request).spans)
    (run,) = [t for t in store if any(s.kind == TOOL for s in conversation(t).steps)]
    conv = conversation(run)
    assert [s.kind for s in conv.steps if s.kind != HEADING] == [LLM, TOOL, LLM]
    assert conv.steps[0].kind == HEADING  # the agent (and its graph or loop) as headings above
    (tool,) = [s for s in conv.steps if s.kind == TOOL]
    assert tool.name == "get_weather" and "Paris" in tool.arguments
    assert tool.result == "18°C and sunny in Paris"  # strands' blocks and LangChain's dumped message read
    second = [s for s in conv.steps if s.kind == LLM][1]
    assert second.folded >= 2 and [m.role for m in second.added] == [second_call_adds]
    assert (conv.totals.llm_calls, conv.totals.tool_calls) == (2, 1)


def test_a_langgraph_state_reads_as_the_question_and_the_answer_not_as_json() -> None:
    """OpenInference records LangGraph's whole state (``{"messages": [...]}``, LangChain's dumps) as a graph
    or node span's input and output: the heading shows the last user message and the last message."""
    path = RECORDINGS / "openinference-langchain-default.jsonl"
    store = TraceStore(100_000)
    for request in read_requests(path.name, path.read_bytes()):
        store.add_spans(spans_from_request(request).spans)
    (run,) = [t for t in store if t.name == "LangGraph"]
    headings = [(s.name, s.input, s.output) for s in conversation(run).steps if s.kind == HEADING]
    assert headings == [
        ("LangGraph", "What is the weather in Paris?", "It is 18°C and sunny in Paris."),
        ("agent", "What is the weather in Paris?", '→ tool call: get_weather({"city": "Paris"})'),
        ("agent", "What is the weather in Paris?", "It is 18°C and sunny in Paris."),
    ]


# --- the detail pane -------------------------------------------------------------------------------------

def agent_app() -> OllamaTuiApp:
    return OllamaTuiApp(OtlpReceivers(ReceiverConfig()), store_of(agent_with_tools), clock=lambda: FIXED_NOW)


@pytest.mark.parametrize("size", [(160, 45), (80, 24)])
async def test_the_tab_moves_step_by_step_and_enter_jumps_to_the_span(size: tuple[int, int]) -> None:
    app = agent_app()
    async with app.run_test(size=size) as pilot:
        await wait_until(pilot, lambda: app.traces.trace_list.index.trace_count == 1)
        await pilot.press("enter")  # the trace, expanded: a trace with LLM calls opens on its Conversation tab
        await wait_until(pilot, lambda: app.query_one(TabbedContent).active == "tab-conversation")
        texts = detail_texts(app, "conversation")
        assert texts[0].startswith("Conversation · 2 LLM calls · 1 tool call · 260 → 63 tokens")
        assert "⋯ 3 earlier messages of the history folded" in texts[4]
        await pilot.press("tab")  # into the tab's list
        steps = app.traces.detail.list("conversation")
        assert app.focused is steps and steps.highlighted == 0
        await pilot.press("down", "down", "down")  # totals → agent → first call → tool
        assert steps.current.title.startswith("⚙ tool get_weather")
        await pilot.press("enter")
        assert app.focused is app.traces.trace_list
        assert cursor_text(app) == "execute_tool get_weather"
        assert app.query_one(TabbedContent).active == "tab-llm"  # the tool's own view
        llm = "\n".join(detail_texts(app, "llm"))
        assert "name  get_weather" in llm and "result  rainy, 14 °C" in llm


async def test_o_opens_a_whole_step_full_screen() -> None:
    app = agent_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.traces.trace_list.index.trace_count == 1)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.query_one(TabbedContent).active == "tab-conversation")
        await pilot.press("tab", "down", "down")
        assert app.traces.detail.list("conversation").current.title.startswith("● qwen3:8b")
        await pilot.press("o")
        await pilot.pause()
        assert isinstance(app.screen, ValueScreen)
        assert app.screen.value.startswith("● qwen3:8b") and "→ tool call: get_weather" in app.screen.value


async def test_an_agent_span_shows_its_own_view_and_its_subtree_conversation() -> None:
    app = agent_app()
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_until(pilot, lambda: app.traces.trace_list.index.trace_count == 1)
        await pilot.press("enter", "down")
        assert cursor_text(app) == "invoke_agent weather-agent"
        assert app.query_one(TabbedContent).active == "tab-conversation"
        app.query_one(TabbedContent).active = "tab-llm"
        await pilot.pause()
        llm = "\n".join(detail_texts(app, "llm"))
        for expected in ("name  weather-agent", "model  qwen3", "2 LLM calls · 1 tool call · in 260 · out 63",
                         f"instructions  {SYSTEM}", f"input  {QUESTION}"):
            assert expected in llm, expected


def test_untrusted_text_in_a_step_is_never_markup() -> None:
    evil = "[bold]x[/] \x1b[2J"

    def build(tracer: trace.Tracer) -> None:
        with tracer.start_as_current_span("run"):
            with tracer.start_as_current_span(evil, attributes={"gen_ai.operation.name": "execute_tool",
                                                                "gen_ai.tool.name": evil}):
                pass
            with tracer.start_as_current_span("chat", attributes={"gen_ai.operation.name": "chat",
                                                                  "gen_ai.request.model": evil}):
                pass

    t = only_trace(store_of(build))
    _, prompts = conversation_items(ListRow(t))
    shown = "\n".join(p.plain for p in prompts)
    assert "[bold]x[/] \\e[2J" in shown and "\x1b" not in shown
    tool_view = llm_items(ListRow(t, t.rows()[1]))
    assert any(item.body == evil for item in tool_view)  # raw in the item; escaped when rendered
    assert "\x1b" not in "\n".join(item.render().plain for item in tool_view)
