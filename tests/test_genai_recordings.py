"""Real OTLP output of GenAI instrumentation libraries (``tests/fixtures/genai/*.jsonl``) through the receiver path.

The recordings were made by ``tests/fixtures/genai/record.py`` (by hand, in a virtualenv with the libraries)
against the fake Ollama and OpenAI servers; see ``tests/fixtures/genai/README.md``. These tests only check that
every recording loads through the real receiver code and still holds what it held when recorded (model calls,
models, log records), so a broken or truncated fixture fails here and not in a display test; then, per library,
what the LLM tab and the ``L`` screen show of it (issue 15).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.app import FIXED_NOW, wait_until
from tui.app.app import OllamaTuiApp
from tui.app.present.detail import Item, llm_items
from tui.app.screens.telemetry import log_row
from tui.model.genai import GenAIView, Message, ToolCall
from tui.model.genai import is_model_call as genai_is_model_call
from tui.model.span import Resource, Span
from tui.model.store import Trace, TraceStore
from tui.model.telemetry import LogRecord, LogStore
from tui.model.trace_list import ListRow
from tui.receiver import OtlpReceivers, ReceiverConfig
from tui.receiver.decode import ExportLogsServiceRequest, logs_from_request, parse_json, spans_from_request
from tui.receiver.files import SourceReport, read_requests

RECORDINGS = Path(__file__).parent / "fixtures" / "genai"

#: Operation names of a model call (GenAI semantic conventions, OpenLLMetry's ``llm.request.type``).
_MODEL_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "completion"})


@dataclass(frozen=True)
class Facts:
    """What a recording holds, read from it when it was made."""

    spans: int
    traces: int
    model_calls: int
    models: frozenset[str]
    log_records: int = 0


# file stem -> Facts(spans, traces, model calls, models of the model calls, log records), as recorded
EXPECTED: dict[str, Facts] = {
    'openai-v2-capture-true': Facts(4, 4, 4, frozenset(['gpt-4o-mini'])),
    'openai-v2-latest-event': Facts(4, 4, 4, frozenset(['gpt-4o-mini']), 4),
    'openai-v2-latest-span-and-event': Facts(4, 4, 4, frozenset(['gpt-4o-mini']), 4),
    'openai-v2-latest-span': Facts(4, 4, 4, frozenset(['gpt-4o-mini'])),
    'openinference-langchain-default': Facts(16, 2, 3, frozenset(['gpt-4o-mini'])),
    'openinference-ollama-default': Facts(3, 3, 3, frozenset(['llama3.2'])),
    'openinference-openai-default': Facts(3, 3, 3, frozenset(['gpt-4o-mini'])),
    'openlit-default': Facts(6, 3, 3, frozenset(['gpt-4o-mini']), 3),
    'openllmetry-ollama-attributes': Facts(3, 3, 3, frozenset(['llama3.2'])),
    'openllmetry-ollama-events': Facts(3, 3, 3, frozenset(['llama3.2']), 11),
    'openllmetry-openai-attributes': Facts(3, 3, 3, frozenset(['gpt-4o-mini'])),
    'openllmetry-openai-events': Facts(3, 3, 3, frozenset(['gpt-4o-mini']), 11),
    'pydantic-ai-default': Facts(6, 2, 3, frozenset(['gpt-4o-mini'])),
    'strands-default': Facts(9, 2, 3, frozenset(['llama3.2'])),
    'strands-latest': Facts(9, 2, 3, frozenset(['llama3.2'])),
}


@dataclass
class Recording:
    spans: list[Span]
    logs: list[LogRecord]
    report: SourceReport


def load(path: Path) -> Recording:
    data = path.read_bytes()
    report = SourceReport(path.name)
    spans = [span for request in read_requests(path.name, data, report)
             for span in spans_from_request(request).spans]
    logs: list[LogRecord] = []
    for line in data.decode("utf-8").splitlines():
        if '"resourceLogs"' in line[:40]:
            logs.extend(logs_from_request(parse_json(ExportLogsServiceRequest, line.encode())))
    return Recording(spans, logs, report)


def is_model_call(span: Span) -> bool:
    """One request to a model, whichever convention says so (not an agent, chain, tool or workflow span)."""
    a = span.attributes
    return (a.get("gen_ai.operation.name") in _MODEL_OPERATIONS or a.get("llm.request.type") in _MODEL_OPERATIONS
            or a.get("openinference.span.kind") == "LLM")


def models(spans: list[Span]) -> frozenset[str]:
    found = set()
    for span in spans:
        for key in ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name"):
            value = span.attributes.get(key)
            if isinstance(value, str) and value:
                found.add(value)
    return frozenset(found)


def facts(recording: Recording) -> Facts:
    calls = [s for s in recording.spans if is_model_call(s)]
    return Facts(len(recording.spans), len({s.trace_id for s in recording.spans}), len(calls), models(calls),
                 len(recording.logs))


def test_every_recording_is_listed() -> None:
    on_disk = sorted(p.stem for p in RECORDINGS.glob("*.jsonl"))
    assert on_disk == sorted(EXPECTED)


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_recording_loads_with_its_spans_models_and_logs(stem: str) -> None:
    recording = load(RECORDINGS / f"{stem}.jsonl")
    assert recording.spans, "no spans"
    assert not recording.report.damaged, recording.report.damaged
    assert recording.report.other_lines == 0
    assert facts(recording) == EXPECTED[stem]


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_lines_are_otlp_export_requests_as_received(stem: str) -> None:
    for number, line in enumerate((RECORDINGS / f"{stem}.jsonl").read_text("utf-8").splitlines(), 1):
        document = json.loads(line)
        assert list(document) in (["resourceSpans"], ["resourceLogs"]), f"line {number}: {list(document)}"


# --- what the LLM tab shows for each library ----------------------------------------------------------

@dataclass
class Shown:
    """A recording as the app holds it: its traces, and the LLM tab of each span (by span name, in order)."""

    recording: Recording
    traces: list[Trace]
    logs: LogStore

    def rows(self, name: str) -> list[ListRow]:
        return [ListRow(t, row) for t in self.traces for row in t.rows() if row.span.name == name]

    def tab(self, name: str, index: int = 0) -> list[Item]:
        return llm_items(self.rows(name)[index], self.logs.events_for)

    def text(self, name: str, index: int = 0) -> str:
        return "\n".join(f"{item.title}  {item.body}" for item in self.tab(name, index))

    def view(self, name: str, index: int = 0) -> GenAIView:
        span = self.rows(name)[index].span_row.span  # type: ignore[union-attr]
        view = GenAIView.from_span(span, self.logs.events_for(span))
        assert view is not None
        return view


def shown(stem: str) -> Shown:
    recording = load(RECORDINGS / f"{stem}.jsonl")
    traces: dict[str, Trace] = {}
    for span in recording.spans:
        traces.setdefault(span.trace_id, Trace(span.trace_id, len(traces))).add(span)
    logs = LogStore()
    logs.add(recording.logs)
    return Shown(recording, list(traces.values()), logs)



@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_the_cheap_model_call_test_agrees_with_the_llm_view(stem: str) -> None:
    """``is_model_call`` (no messages read: what r, m, C and a trace row's call use) says what the LLM view says,
    for every span of every recording, and picks the convention's own model calls."""
    s = shown(stem)
    for trace in s.traces:
        for span in trace.spans.values():
            events = s.logs.events_for(span)
            view = GenAIView.from_span(span, events)
            assert genai_is_model_call(span, events) == (view is not None and view.is_model_call), span.name
            if is_model_call(span):
                assert genai_is_model_call(span, events), span.name

SYSTEM = "You are a terse assistant. Answer in one sentence."
WEATHER = "What is the weather in Paris?"
RESULT = "18°C and sunny in Paris"
ANSWER = "It is 18°C and sunny in Paris."


def roles_and_text(messages: list[Message]) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in messages]


def the_call(view: GenAIView) -> ToolCall:
    calls = [call for m in view.output for call in m.tool_calls]
    assert len(calls) == 1, view.output
    return calls[0]


def test_strands_content_blocks_are_read_as_text_tool_calls_and_results() -> None:
    s = shown("strands-default")
    first = s.view("chat", 0)
    assert roles_and_text(first.input) == [("system", SYSTEM), ("user", "Why is the sky blue?")]
    assert roles_and_text(first.output) == [("assistant", "The sky is **blue**.")]  # a block list in gen_ai.choice
    call = the_call(s.view("chat", 1))
    assert (call.name, json.loads(call.arguments), call.id) == ("get_weather", {"city": "Paris"},
                                                                "tooluse_2739566be8734f11835fa7b1")
    last = s.view("chat", 2)
    assert last.input[2].tool_calls == (call,)
    assert (last.input[3].role, last.input[3].tool_call_id, last.input[3].content) == ("tool", call.id, RESULT)
    assert last.input[3].text().startswith(f"(result of tool call {call.id})")
    assert roles_and_text(last.output) == [("assistant", ANSWER)]
    text = s.text("chat", 2)
    assert '[{"text"' not in text and '"toolUse"' not in text and '"toolResult"' not in text
    # the agent span's gen_ai.choice message is a plain string
    agent = s.view("invoke_agent chat")
    assert agent.kind == "agent" and agent.output[0].content.strip() == "The sky is **blue**."


def test_strands_tool_span_shows_its_arguments_as_arguments_and_its_result_as_result() -> None:
    s = shown("strands-default")
    view = s.view("execute_tool get_weather")
    assert roles_and_text(view.input) == [("arguments", '{"city": "Paris"}')]
    assert roles_and_text(view.output) == [("result", RESULT)]
    items = {item.title: item.body for item in s.tab("execute_tool get_weather")}
    assert items["arguments"] == '{"city": "Paris"}' and items["result"] == RESULT
    assert "result of tool call" not in items["arguments"]


def test_strands_time_to_first_token_in_milliseconds_is_read_as_milliseconds() -> None:
    s = shown("strands-default")
    for index, ms in enumerate((150, 119, 143)):
        view = s.view("chat", index)
        assert view.time_to_first_token_s == pytest.approx(ms / 1000)
        assert view.time_to_first_token_s is not None and view.time_to_first_token_s < view.duration_s
        assert "read as milliseconds" in view.time_to_first_token_note
    assert "time to first token 0.150s (sent 150, read as milliseconds)" in s.text("chat", 0)


def test_strands_latest_mode_parts_with_block_results() -> None:
    s = shown("strands-latest")
    first = s.view("chat", 0)
    assert first.system == [SYSTEM] and roles_and_text(first.output) == [("assistant", "The sky is **blue**.")]
    assert the_call(s.view("chat", 1)).name == "get_weather"
    tool = s.view("execute_tool get_weather")
    assert tool.output[0].content == RESULT  # tool_call_response whose response is a block list


def test_openllmetry_openai_events_tool_calls_beside_the_message() -> None:
    s = shown("openllmetry-openai-events")
    call = the_call(s.view("openai.chat", 1))
    assert (call.name, call.arguments, call.id) == ("get_weather", '{"city":"Paris"}', "call_000005")
    last = s.view("openai.chat", 2)
    assert roles_and_text(last.input)[:2] == [("system", SYSTEM), ("user", WEATHER)]
    assert last.input[2].tool_calls[0].name == "get_weather"
    assert last.input[3].role == "tool" and last.input[3].text() == f"(tool result)\n{RESULT}"
    assert roles_and_text(last.output) == [("assistant", ANSWER)]


def test_openlit_system_prompt_is_shown_once() -> None:
    s = shown("openlit-default")
    for index in range(3):
        view = s.view("chat gpt-4o-mini", index)
        assert view.system == [SYSTEM]
        assert all(m.role != "system" for m in view.input)
        assert s.text("chat gpt-4o-mini", index).count(SYSTEM) == 1
    assert s.view("chat gpt-4o-mini", 0).time_to_first_token_note == ""  # sent in seconds: kept as is
    assert the_call(s.view("chat gpt-4o-mini", 1)).name == "get_weather"


def test_langchain_chain_spans_are_not_shown_as_completions() -> None:
    s = shown("openinference-langchain-default")
    for name in ("LangGraph", "call_model", "RunnableSequence", "Prompt", "should_continue"):
        view = s.view(name)
        assert view.kind == "chain" and not view.is_model_call
        titles = [item.title for item in s.tab(name)]
        assert "Completion" not in titles and not any(t.startswith("Tokens") for t in titles), (name, titles)
    model = s.view("ChatOpenAI", 1)
    assert model.is_model_call and the_call(model).name == "get_weather"
    assert "Completion" in [item.title for item in s.tab("ChatOpenAI", 1)]
    # the trace's LLM tab lists the model calls only
    trace_items = llm_items(ListRow(s.traces[1]), s.logs.events_for)
    headings = [item.title.split("  ")[0] for item in trace_items  # span headings: "name  (duration)"
                if item.heading and re.search(r"  \(\d", item.title)]
    assert headings == ["ChatOpenAI", "ChatOpenAI"]
    tool = {item.title: item.body for item in s.tab("get_weather")}
    assert tool["arguments"] == "Paris"


def test_pydantic_ai_agent_span_reads_model_name_and_aggregated_usage() -> None:
    s = shown("pydantic-ai-default")
    view = s.view("invoke_agent weather")
    assert (view.kind, view.request_model, view.input_tokens, view.output_tokens) == ("agent", "gpt-4o-mini", 90, 19)
    assert not any(key.startswith("gen_ai.aggregated_usage.input") for key in view.other)
    text = s.text("invoke_agent weather")
    assert "model  gpt-4o-mini" in text and "(the span reports in 90 · out 19)" in text and " – ·" not in text
    tool = {item.title: item.body for item in s.tab("execute_tool get_weather")}
    assert (tool["arguments"], tool["result"]) == ('{"city":"Paris"}', RESULT)


@pytest.mark.parametrize("stem", ["openllmetry-ollama-events"])
def test_log_records_without_trace_context_show_event_name_and_readable_body(stem: str) -> None:
    s = shown(stem)
    records = list(reversed(s.logs.latest_unattached(100)))
    assert len(records) == 11 and not any(r.trace_id for r in records)
    rows = [[cell.plain for cell in log_row(record)] for record in records]
    assert [row[2] for row in rows[:3]] == ["gen_ai.system.message", "gen_ai.user.message", "gen_ai.choice"]
    assert rows[0][3] == f"system: {SYSTEM}"
    assert rows[2][3] == "assistant (finish stop): The sky is **blue**."
    assert rows[8][3] == 'assistant: → tool call: get_weather({"city": "Paris"})'
    assert rows[9][3] == f"tool: (tool result) ↵ {RESULT}"
    assert not any("{" in row[3] and "content" in row[3] for row in rows)


def test_log_record_event_name_from_the_legacy_attribute() -> None:
    record = LogRecord(0, "INFO", 9, {"content": "hi"}, {"event.name": "gen_ai.user.message"}, "", "", "",
                       Resource({}))
    assert record.event == "gen_ai.user.message"
    assert [cell.plain for cell in log_row(record)][2:] == ["gen_ai.user.message", "user: hi"]
    plain = LogRecord(0, "WARN", 13, "[bold]disk[/] low", {}, "", "", "", Resource({}))
    assert [cell.plain for cell in log_row(plain)][2:] == ["-", "[bold]disk[/] low"]  # text, not markup


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_every_model_call_shows_its_prompt_and_completion(stem: str) -> None:
    """Of every recording with content: each model call shows a user prompt as text and a completion (text or a
    tool call), the system prompt at most once, and a sane time to first token."""
    s = shown(stem)
    calls = [s.view(r.span.name, s.rows(r.span.name).index(ListRow(t, r)))
             for t in s.traces for r in t.rows() if is_model_call(r.span)]
    with_content = [view for view in calls if view.input or view.output]
    if stem in ("openai-v2-capture-true", "openllmetry-ollama-events"):
        # what these modes send: no content at all; content only in log records naming no span (the L screen)
        assert not with_content
        return
    assert with_content
    for view in with_content:
        users = [m for m in view.input if m.role == "user"]
        assert users and not users[0].content.startswith(("[", "{")), (stem, users)
        assert (view.output and all(m.content or m.tool_calls for m in view.output)) or stem.startswith(
            "openllmetry-ollama"), (stem, view.output)  # OpenLLMetry ollama records no tool_calls answer
        system = [m for m in view.input if m.role == "system"] + [Message("system", t) for t in view.system]
        assert len(system) <= 1, (stem, system)
        if view.time_to_first_token_s is not None:
            assert view.time_to_first_token_s <= view.duration_s


def test_long_completion_keeps_its_last_line_and_more_marker_in_the_llm_tab() -> None:
    """Drawn in the app at 80x24 and 160x45 (see test_long_item_... below); here, the item itself."""
    s = shown("openai-v2-latest-span")
    span = s.rows("chat gpt-4o-mini")[0].span_row.span  # type: ignore[union-attr]
    long = "Lorem ipsum dolor sit amet. " * 200 + "FINAL"
    item = Item("[0] assistant", long)
    assert item.render().plain.endswith(f"… {len(long) - 4_000:,} more characters (o opens it all)")
    assert span.name == "chat gpt-4o-mini"


def long_store(text: str) -> TraceStore:
    """The recorded openai-v2 chat span (span-only mode) with a long completion."""
    s = shown("openai-v2-latest-span")
    span = s.rows("chat gpt-4o-mini")[0].span_row.span  # type: ignore[union-attr]
    kept = ("gen_ai.operation.name", "gen_ai.request.model", "gen_ai.input.messages", "gen_ai.usage.input_tokens")
    attributes = {key: value for key, value in span.attributes.items() if key in kept}  # the completion is last
    attributes["gen_ai.output.messages"] = json.dumps(
        [{"role": "assistant", "parts": [{"type": "text", "content": text}], "finish_reason": "stop"}])
    copy = Span(span.trace_id, span.span_id, span.name, span.start_ns, span.end_ns, attributes=attributes,
                resource=span.resource, scope=span.scope)
    store = TraceStore(1000)
    store.add_spans([copy])
    return store


@pytest.mark.parametrize("size", [(80, 24), (160, 45)])
@pytest.mark.parametrize("cut", [False, True], ids=["whole", "cut"])
async def test_long_item_is_drawn_to_its_last_line(size: tuple[int, int], cut: bool) -> None:
    text = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * (90 if cut else 30)) + "THE LAST WORDS."
    app = OllamaTuiApp(OtlpReceivers(ReceiverConfig()), long_store(text), clock=lambda: FIXED_NOW)
    async with app.run_test(size=size) as pilot:
        await wait_until(pilot, lambda: app.traces.trace_list.index.trace_count == 1)
        await pilot.press("enter", "down", "tab", "G")
        await pilot.pause()
        detail_list = app.traces.detail.list("llm")
        assert detail_list.current is not None and detail_list.current.body == text
        detail_list.scroll_end(animate=False)
        await pilot.pause()
        lines = [detail_list.render_line(y).text.rstrip() for y in range(detail_list.size.height)]
        while lines and not lines[-1]:
            lines.pop()
        expected = f"… {len(text) - 4_000:,} more characters (o opens it all)" if cut else "THE LAST WORDS."
        assert lines[-1].strip().endswith(expected), lines[-3:]


def main() -> None:  # prints EXPECTED as read from the recordings, after re-recording: python tests/test_genai_...
    for path in sorted(RECORDINGS.glob("*.jsonl")):
        f = facts(load(path))
        print(f"    {path.stem!r}: Facts({f.spans}, {f.traces}, {f.model_calls}, frozenset({sorted(f.models)!r})"
              + (f", {f.log_records}" if f.log_records else "") + "),")


if __name__ == "__main__":
    main()
