"""Replaying a recorded model call through the traced chat engine (issue 17): what Ollama receives, the span the
replay leaves (linked to the original, its parameters and messages readable back), editing before sending, tool
calls the model answers with, a model that is not installed, and Ollama dropping the connection mid-answer.

Against the fake Ollama over loopback, with the real provider and ingest: spans are read back from the store,
decoded as any exporter's would be.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import ollama
import pytest

from support.event_loop import eventually
from support.fake_ollama import FakeOllama
from support.receivers import Running, running_receivers
from test_genai_recordings import EXPECTED, is_model_call
from test_replay import CALL, NO_CONTENT, RESULT, SKY, SYSTEM, WEATHER, calls, events_for, recording
from tui.chat.events import Delta, TurnEvent, TurnFailed, TurnFinished, TurnStarted
from tui.chat.replay import ReplayRequest, format_options, parse_options, replay_request
from tui.chat.session import ChatSession
from tui.chat.tracing import chat_tracer_provider
from tui.model.conventions import REPLAY_OF, TOOL_DEFINITIONS
from tui.model.genai import GenAIView, Message
from tui.model.request import recorded_options, recorded_tools
from tui.model.span import Span

#: Installed on the fake; a recording of a remote model (gpt-4o-mini) is replayed on it, as the pane offers.
LOCAL = "llama3.2:latest"
PARIS = 'get_weather({"city": "Paris"})'



@contextlib.asynccontextmanager
async def chat_on(fake: FakeOllama) -> AsyncIterator[tuple[ChatSession, Running]]:
    """A session whose spans go through the real in-process exporter into a store."""
    async with running_receivers() as running:
        session = ChatSession(fake.url, chat_tracer_provider(running.receivers.ingest))
        try:
            yield session, running
        finally:
            await session.close()


async def replayed(session: ChatSession, running: Running, request: ReplayRequest) -> tuple[list[TurnEvent], Span]:
    """The events of one replay, and its span as the store holds it."""
    events = [event async for event in session.replay(request)]
    started = events[0]
    assert isinstance(started, TurnStarted)
    found: list[Span] = []

    def arrived() -> bool:
        trace = running.store.get(started.trace_id)
        found[:] = [s for s in trace.spans.values() if s.name == f"chat {request.model}"] if trace else []
        return bool(found)

    await eventually(arrived)
    return events, found[0]


def sent(fake: FakeOllama) -> dict[str, Any]:
    """The body of the last /api/chat request the fake received."""
    return [r for r in fake.requests if r.path == "/api/chat"][-1].body


def wire(request: ReplayRequest) -> dict[str, Any]:
    """The body Ollama's Python client sends for ``request``: it leaves out empty fields (an assistant tool call's
    "" content) and keeps of a tool's schema the fields Ollama reads (its own ``Tool`` model's: pydantic-ai's
    ``additionalProperties`` goes), and sends an empty tool list when none is offered."""
    body: dict[str, Any] = {
        "model": request.model,
        "stream": True,
        "messages": [{k: v for k, v in m.items() if v} for m in request.messages],
        "tools": [ollama.Tool.model_validate(t).model_dump(exclude_none=True) for t in request.tools],
    }
    if request.options:
        body["options"] = request.options
    return body


def on_installed(request: ReplayRequest, fake: FakeOllama) -> ReplayRequest:
    """The request on its own model when the fake has it, else on :data:`LOCAL`."""
    installed = request.model in fake.models or f"{request.model}:latest" in fake.models
    return request if installed else request.edited(model=LOCAL)


def linked_to(span: Span) -> list[tuple[str, str]]:
    return [(link.trace_id, link.span_id) for link in span.links]


def prompt(system: list[str], messages: list[Message]) -> dict[str, list[Any]]:
    """What an LLM view shows of a prompt, whatever role a convention filed each message under: the system text,
    the user's questions, the tool calls with their arguments, the tool results."""
    def is_result(m: Message) -> bool:
        return m.role == "tool" or bool(m.tool_call_id)

    return {
        "system": [*system, *(m.content for m in messages if m.role == "system")],
        "user": [m.content for m in messages if m.role == "user" and not is_result(m)],
        "calls": [(c.name, json.loads(c.arguments)) for m in messages for c in m.tool_calls],
        "results": [m.content for m in messages if is_result(m)],
    }


@pytest.mark.parametrize("stem", sorted(EXPECTED))
async def test_a_replay_of_every_recorded_call_sends_it_and_links_back_to_it(fake: FakeOllama, stem: str) -> None:
    """Every model call of every recording: Ollama receives its messages, tools and options; the replay's span
    links to the original, names it in REPLAY_OF, and its LLM view shows the prompt the original's shows —
    replaying the replay's span gives the same request again."""
    rec = recording(stem)
    originals = sorted((s for s in rec.spans if is_model_call(s)), key=lambda s: s.start_ns)
    if stem in NO_CONTENT:  # no message content recorded: nothing to resend
        assert all(request.messages == [] for request in calls(stem))
        return
    async with chat_on(fake) as (session, running):
        for original in originals:
            recorded = replay_request(original, events_for(rec, original))
            assert recorded is not None
            request = on_installed(recorded, fake)
            events, span = await replayed(session, running, request)

            assert isinstance(events[-1], TurnFinished), events[-1]
            assert sent(fake) == wire(request)
            assert linked_to(span) == [(original.trace_id, original.span_id)]
            assert span.attributes[REPLAY_OF] == original.span_id
            assert (TOOL_DEFINITIONS in span.attributes) == bool(request.tools)

            was = GenAIView.from_span(original, events_for(rec, original))
            now = GenAIView.from_span(span)
            assert was is not None and now is not None
            assert prompt(now.system, now.input) == prompt(was.system, was.input)
            again = replay_request(span)
            assert again is not None
            assert (again.model, again.messages, again.tools, again.options) == (
                request.model, request.messages, request.tools, request.options)


@pytest.mark.parametrize("which", ["sky", "weather"])
async def test_what_the_user_edited_is_exactly_what_changes_in_what_ollama_receives(fake: FakeOllama,
                                                                                    which: str) -> None:
    """The sky call ends with the user's question (edited in place); the weather call ends with the tool result
    (the edited question is appended). Model, system prompt and options change; everything else is as sent
    unedited; the span records the parameters as the compare view reads them back."""
    sky, _offer, weather = calls("openllmetry-ollama-attributes")
    recorded = sky if which == "sky" else weather
    options = {"temperature": 0.2, "top_p": 0.9, "top_k": 40, "num_predict": 256, "seed": 7, "stop": ["\n\n", "END"],
               "num_ctx": 4096}
    edited = recorded.edited(model="qwen3:8b", system="Answer in French.", last_user="And in Lyon?", options=options)
    async with chat_on(fake) as (session, running):
        await replayed(session, running, recorded)
        unedited = sent(fake)
        _events, span = await replayed(session, running, edited)
        received = sent(fake)

    expected = {**unedited, "model": "qwen3:8b", "options": options}
    question = {"role": "user", "content": "And in Lyon?"}
    middle = unedited["messages"][1:]
    expected["messages"] = [{"role": "system", "content": "Answer in French."},
                            *([question] if which == "sky" else [*middle, question])]
    assert received == expected
    # Read back from the replay's span as from any recorded call; num_ctx has no GenAI attribute, so is not recorded.
    assert recorded_options(span) == {k: v for k, v in options.items() if k != "num_ctx"}
    assert recorded_tools(span) == edited.tools
    assert span.attributes["gen_ai.request.model"] == "qwen3:8b"


async def test_a_tool_call_the_model_answers_with_is_reported_and_recorded(fake: FakeOllama) -> None:
    """The call that offered get_weather, replayed: the model answers with the call, not with text. The pane gets
    it in TurnFinished, the span's output messages carry it as a tool_call part, and the history holds it, so
    the conversation goes on from there."""
    _sky, offer, _weather = calls("openllmetry-ollama-attributes")
    async with chat_on(fake) as (session, running):
        events, span = await replayed(session, running, offer)
        assert session.history == [*offer.messages, {"role": "assistant", "content": "", "tool_calls": [CALL]}]
        [event async for event in session.turn("llama3.2", "Thanks. And tomorrow?")]
        followed = sent(fake)["messages"]

    finished = events[-1]
    assert isinstance(finished, TurnFinished)
    assert (finished.content, finished.tool_calls) == ("", (PARIS,))
    assert not [e for e in events if isinstance(e, Delta)]
    assert finished.stats.duration_s > 0
    view = GenAIView.from_span(span)
    assert view is not None
    [answer] = view.output
    assert [(c.name, json.loads(c.arguments)) for c in answer.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert view.finish_reasons == ["stop"]
    assert followed[-2:] == [{"role": "assistant", "tool_calls": [CALL]},
                             {"role": "user", "content": "Thanks. And tomorrow?"}]


async def test_after_a_replay_the_conversation_goes_on_from_the_replayed_messages(fake: FakeOllama) -> None:
    sky = calls("openllmetry-ollama-attributes")[0]
    async with chat_on(fake) as (session, running):
        session.history = [{"role": "user", "content": "an earlier conversation"}]
        events, _span = await replayed(session, running, sky)
        [event async for event in session.turn("llama3.2", "And at sunset?")]
    assert isinstance(events[-1], TurnFinished)
    assert [(m["role"], m["content"]) for m in sent(fake)["messages"]] == [
        ("system", SYSTEM), ("user", SKY), ("assistant", "The sky is **blue**."), ("user", "And at sunset?")]


async def test_a_model_that_is_not_installed_fails_with_the_installed_ones_listed(fake: FakeOllama) -> None:
    request = calls("openinference-openai-default")[0]
    assert request.model == "gpt-4o-mini"
    async with chat_on(fake) as (session, running):
        events, span = await replayed(session, running, request)
    failed = events[-1]
    assert isinstance(failed, TurnFailed) and failed.error_type == "http.404"
    assert failed.message == (f"Model 'gpt-4o-mini' is not installed on {fake.url}. Installed: llama3.2:latest, "
                              "qwen3:8b. Get it with: ollama pull gpt-4o-mini")
    assert span.is_error and span.status_message == failed.message
    assert linked_to(span) == [(request.trace_id, request.original_span_id)]
    assert span.attributes[REPLAY_OF] == request.original_span_id
    assert session.history == []


async def test_ollama_dropping_the_connection_mid_replay(fake: FakeOllama) -> None:
    """The fake aborts the connection after two chunks: a readable sentence, the partial answer, and a span that
    ends in error still linked to the original."""
    fake.fault = "drop"
    sky = calls("openllmetry-ollama-attributes")[0]
    async with chat_on(fake) as (session, running):
        events, span = await replayed(session, running, sky)
    failed = events[-1]
    assert [e.text for e in events if isinstance(e, Delta)] == ["The ", "sky "]
    assert isinstance(failed, TurnFailed)
    assert failed.message == (f"The connection to Ollama at {fake.url} dropped mid-answer (RemoteProtocolError). "
                              "Try again.")
    assert failed.partial == "The sky "
    assert span.is_error and span.attributes["error.type"] == "RemoteProtocolError"
    assert linked_to(span) == [(sky.trace_id, sky.original_span_id)]
    assert span.attributes[REPLAY_OF] == sky.original_span_id
    assert session.history == []


@pytest.mark.parametrize(("trace_id", "span_id"), [("", ""), ("0" * 32, "0" * 16), ("xyz", "b" * 16)])
async def test_no_link_without_valid_ids(fake: FakeOllama, trace_id: str, span_id: str) -> None:
    """A request naming no span (or ids OpenTelemetry cannot link to) still runs; REPLAY_OF only when named."""
    request = ReplayRequest("llama3.2", [{"role": "user", "content": SKY}], original_span_id=span_id,
                            trace_id=trace_id)
    async with chat_on(fake) as (session, running):
        events, span = await replayed(session, running, request)
    assert isinstance(events[-1], TurnFinished)
    assert span.links == ()
    assert span.attributes.get(REPLAY_OF) == (span_id or None)


# --- editing before sending (pure) --------------------------------------------------------------------------

TWO_SYSTEMS = ReplayRequest("gpt-4o-mini", [
    {"role": "system", "content": "Be terse."},
    {"role": "user", "content": WEATHER},
    {"role": "system", "content": "Use Celsius."},
    {"role": "assistant", "content": "", "tool_calls": [CALL]},
    {"role": "tool", "content": RESULT, "tool_name": "get_weather"},
], options={"temperature": 1.0}, original_span_id="b" * 16, trace_id="a" * 32)


def test_system_and_last_user_text() -> None:
    sky = calls("openllmetry-ollama-attributes")[0]
    assert (sky.system_text, sky.last_user_text) == (SYSTEM, SKY)
    assert (TWO_SYSTEMS.system_text, TWO_SYSTEMS.last_user_text) == ("Be terse.\n\nUse Celsius.", "")
    assert (ReplayRequest("m", []).system_text, ReplayRequest("m", []).last_user_text) == ("", "")


def test_edited_system_replaces_every_system_message_with_one_at_the_front() -> None:
    edited = TWO_SYSTEMS.edited(system="Be verbose.")
    assert edited.messages == [{"role": "system", "content": "Be verbose."}, *(
        m for m in TWO_SYSTEMS.messages if m["role"] != "system")]
    assert TWO_SYSTEMS.edited(system="").messages == [m for m in TWO_SYSTEMS.messages if m["role"] != "system"]
    # The text as shown, sent back unchanged, leaves the messages as recorded.
    assert TWO_SYSTEMS.edited(system=TWO_SYSTEMS.system_text).messages == TWO_SYSTEMS.messages


def test_edited_last_user_replaces_the_users_last_message_or_appends_one() -> None:
    sky = calls("openllmetry-ollama-attributes")[0]
    assert sky.edited(last_user="Why is the sea blue?").messages == [
        {"role": "system", "content": SYSTEM}, {"role": "user", "content": "Why is the sea blue?"}]
    assert TWO_SYSTEMS.edited(last_user="And tomorrow?").messages == [
        *TWO_SYSTEMS.messages, {"role": "user", "content": "And tomorrow?"}]
    assert TWO_SYSTEMS.edited(last_user="").messages == TWO_SYSTEMS.messages


def test_edited_leaves_the_rest_and_the_original_alone() -> None:
    before = json.dumps(TWO_SYSTEMS.messages)
    edited = TWO_SYSTEMS.edited(model="qwen3:8b", system="x", last_user="y", options={"seed": 1})
    assert (edited.model, edited.options, edited.tools) == ("qwen3:8b", {"seed": 1}, TWO_SYSTEMS.tools)
    assert (edited.original_span_id, edited.trace_id) == (TWO_SYSTEMS.original_span_id, TWO_SYSTEMS.trace_id)
    assert json.dumps(TWO_SYSTEMS.messages) == before and TWO_SYSTEMS.options == {"temperature": 1.0}
    assert TWO_SYSTEMS.edited() == TWO_SYSTEMS


# --- the one-line options field --------------------------------------------------------------------------

def test_parse_options_reads_the_documented_line() -> None:
    assert parse_options(r'temperature=0.2 top_p=0.9 num_predict=256 seed=7 stop="\n\n",END') == {
        "temperature": 0.2, "top_p": 0.9, "num_predict": 256, "seed": 7, "stop": ["\n\n", "END"]}
    assert parse_options("") == parse_options("   ") == {}
    # Names Ollama knows and the conventions do not are passed on: numbers, booleans, text.
    assert parse_options("num_ctx=4096 mirostat_tau=5.0 numa=true stop='a,b',c") == {
        "num_ctx": 4096, "mirostat_tau": 5.0, "numa": True, "stop": ["a,b", "c"]}


@pytest.mark.parametrize("options", [
    {"temperature": 0.2, "top_p": 0.9, "num_predict": 256, "seed": 7, "stop": ["\n\n", "END"]},
    {"temperature": 1.0, "top_k": 40, "seed": 0, "num_predict": -1},
    {"stop": [",", "a,b", "it's", "back\\slash", "\\n as typed", "°C", "x=y", " spaced ", "#", "\t"]},
    {"num_ctx": 4096, "numa": False, "repeat_penalty": 1.1, "temperature": 1e-05},
    {},
])
def test_format_then_parse_gives_the_options_back(options: dict[str, Any]) -> None:
    line = format_options(options)
    assert "\n" not in line
    assert parse_options(line) == options


@pytest.mark.parametrize(("line", "error"), [
    ("temperature=warm", "temperature takes a number, not 'warm'."),
    ("seed=true", "seed takes a number, not 'true'."),
    ("top_p", "Cannot read 'top_p': write name=value, as in temperature=0.2."),
    ("=3", "Cannot read '=3': write name=value, as in temperature=0.2."),
    ("seed=1 seed=2", "seed is given twice."),
    ("num_ctx=1,2", "Only stop takes a comma-separated list, not num_ctx."),
    ("stop='END", "Cannot read the options: no closing quotation."),
    (",END", "A comma must follow a value, as in stop=END,###."),
    ("num_ctx=", "num_ctx has no value: write num_ctx=VALUE, or leave it out."),
])
def test_parse_options_names_the_bad_part(line: str, error: str) -> None:
    assert parse_options(line) == error
