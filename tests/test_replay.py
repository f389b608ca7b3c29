"""Replaying a recorded LLM span as an Ollama ``/api/chat`` request (issue 17, headless half).

Every fact asserted here was read from the committed recordings in ``tests/fixtures/genai`` (see
``tests/test_genai_recordings.py``): the system prompt, the two questions, the ``get_weather`` tool with its
Paris call and result, which recordings carry tool definitions and which carry request parameters.
"""

from __future__ import annotations

from functools import cache

import aiohttp
import pytest

from support.fake_ollama import FakeOllama
from test_genai_recordings import EXPECTED, RECORDINGS, Recording, is_model_call, load
from tui.chat.replay import ReplayRequest, replay_request
from tui.model.span import Event, Span

SYSTEM = "You are a terse assistant. Answer in one sentence."
SKY = "Why is the sky blue?"
WEATHER = "What is the weather in Paris?"
RESULT = "18°C and sunny in Paris"
CALL = {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}

#: Recordings whose spans hold no message content: none captured, or only in log records naming no span.
NO_CONTENT = {"openai-v2-capture-true", "openllmetry-ollama-events"}
#: Where each recording keeps the tools it offered (absent: it records none).
TOOLS_IN = {
    "openinference-langchain-default": "llm.tools.N.tool.json_schema",
    "openinference-ollama-default": "llm.tools.N.tool.json_schema",
    "openinference-openai-default": "llm.tools.N.tool.json_schema",
    "openllmetry-ollama-attributes": "llm.request.functions.N.*",
    "openllmetry-openai-attributes": "gen_ai.tool.definitions (JSON)",
    "pydantic-ai-default": "gen_ai.tool.definitions (JSON)",
    "openlit-default": "gen_ai.tool.definitions (structured, on the operation-details log record)",
}


@cache
def recording(stem: str) -> Recording:
    return load(RECORDINGS / f"{stem}.jsonl")


def events_for(rec: Recording, span: Span) -> tuple[Event, ...]:
    """The log records naming ``span``, as events (how the app hands them to the LLM view)."""
    return tuple(record.as_event() for record in rec.logs if record.span_id and record.span_id == span.span_id)


def calls(stem: str) -> list[ReplayRequest]:
    """The replay request of every model call of a recording, in recorded order."""
    rec = recording(stem)
    found = []
    for span in sorted(rec.spans, key=lambda s: s.start_ns):
        if is_model_call(span):
            request = replay_request(span, events_for(rec, span))
            assert request is not None, (stem, span.name)
            found.append(request)
    return found


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_every_model_call_replays_with_its_model_and_question(stem: str) -> None:
    requests = calls(stem)
    assert len(requests) == EXPECTED[stem].model_calls
    for request in requests:
        assert request.model in EXPECTED[stem].models
        body = request.to_ollama()
        assert body["model"] == request.model and body["stream"] is True
        if stem in NO_CONTENT:
            assert request.messages == []
            continue
        assert request.messages[0] == {"role": "system", "content": SYSTEM}
        users = [m["content"] for m in request.messages if m["role"] == "user"]
        assert users in ([SKY], [WEATHER]), (stem, users)
    if stem not in NO_CONTENT:  # first the sky question, then the weather conversation
        assert [m["content"] for m in requests[0].messages if m["role"] == "user"] == [SKY]


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_replay_keeps_the_ids_of_the_span_it_replays(stem: str) -> None:
    rec = recording(stem)
    for span in rec.spans:
        request = replay_request(span, events_for(rec, span))
        if request is not None:
            assert (request.original_span_id, request.trace_id) == (span.span_id, span.trace_id)


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_only_model_calls_replay(stem: str) -> None:
    """Agent runs, chain steps and tool executions (and plain HTTP spans) give None."""
    rec = recording(stem)
    others = [span for span in rec.spans if not is_model_call(span)]
    assert all(replay_request(span, events_for(rec, span)) is None for span in others)


@pytest.mark.parametrize("stem", sorted(set(EXPECTED) - NO_CONTENT - {"openlit-default"}))
def test_the_second_call_carries_the_tool_call_and_its_result(stem: str) -> None:
    """In Ollama's wire format: arguments as an object, the result as a ``tool`` message naming its tool
    (pydantic-ai and strands' latest file the result under the user: it is still sent as a tool message)."""
    last = calls(stem)[-1]
    assert last.messages == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": WEATHER},
        {"role": "assistant", "content": "", "tool_calls": [CALL]},
        {"role": "tool", "content": RESULT, "tool_name": "get_weather"},
    ]


def test_openlit_records_the_tool_result_but_not_the_call() -> None:
    last = calls("openlit-default")[-1]
    assert last.messages == [{"role": "system", "content": SYSTEM}, {"role": "user", "content": WEATHER},
                             {"role": "tool", "content": RESULT}]


def test_log_records_given_for_a_span_are_replayed() -> None:
    """OpenLLMetry's event mode logs without span context; handed over for a span, they are its messages."""
    rec = recording("openllmetry-ollama-events")
    third = sorted((s for s in rec.spans if is_model_call(s)), key=lambda s: s.start_ns)[-1]
    request = replay_request(third, tuple(record.as_event() for record in rec.logs[6:10]))
    assert request is not None
    assert request.messages == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": WEATHER},
        {"role": "assistant", "content": "", "tool_calls": [CALL]},
        {"role": "tool", "content": RESULT, "tool_name": "get_weather"},
    ]


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_tool_definitions_are_read_where_recorded(stem: str) -> None:
    sky, *weather = calls(stem)
    assert sky.tools == [] and "tools" not in sky.to_ollama()
    for request in weather:
        if stem not in TOOLS_IN:
            assert request.tools == []
            continue
        [tool] = request.tools
        assert tool["type"] == "function"
        function = tool["function"]
        assert function["name"] == "get_weather"
        assert function["description"] == "Get the current weather in a city."
        assert function["parameters"]["required"] == ["city"]
        assert function["parameters"]["properties"]["city"]["type"] == "string"
        assert request.to_ollama()["tools"] == request.tools


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_options_come_from_the_recorded_parameters(stem: str) -> None:
    """Only OpenLIT records sampling parameters (temperature, top_p, seed); LangChain's ``"stop": null`` and the
    other invocation parameters (stream, model) are no options."""
    expected = {"temperature": 1.0, "top_p": 1.0, "seed": 0} if stem == "openlit-default" else {}
    for request in calls(stem):
        assert request.options == expected
        assert request.to_ollama().get("options", {}) == expected


def test_options_from_genai_attributes_and_openinference_parameters() -> None:
    span = Span("a" * 32, "b" * 16, "chat", 0, 10, attributes={
        "gen_ai.operation.name": "chat", "gen_ai.request.model": "llama3.2",
        "gen_ai.input.messages": '[{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]',
        "gen_ai.request.temperature": 0.2, "gen_ai.request.max_tokens": 64,
        "gen_ai.request.stop_sequences": ("END",),
        "llm.invocation_parameters": '{"temperature": 0.9, "top_p": 0.5, "stop": "###", "seed": 7}',
    })
    request = replay_request(span)
    assert request is not None
    assert request.messages == [{"role": "user", "content": "hi"}]
    assert request.options == {"temperature": 0.2, "top_p": 0.5, "num_predict": 64, "seed": 7, "stop": ["END"]}



async def test_the_fake_ollama_accepts_the_replayed_requests(fake: FakeOllama) -> None:
    """OpenLLMetry's Ollama recording (model llama3.2, tools as ``llm.request.functions``): the call offering
    the tool is answered with the tool call, the one holding the result with the text answer."""
    _sky, offer, answer = calls("openllmetry-ollama-attributes")
    replies = []
    async with aiohttp.ClientSession() as http:
        for request in (offer, answer):
            async with http.post(f"{fake.url}/api/chat", json=request.to_ollama(stream=False)) as response:
                assert response.status == 200, await response.text()
                replies.append(await response.json())
    assert [r.body for r in fake.requests] == [offer.to_ollama(stream=False), answer.to_ollama(stream=False)]
    assert replies[0]["message"]["tool_calls"] == [CALL]
    assert replies[1]["message"]["content"] == "It is 18°C and sunny in Paris."
