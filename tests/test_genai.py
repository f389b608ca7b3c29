"""GenAIView.from_span for each convention, with realistic fixtures, and the precedence between them."""

from __future__ import annotations

import json

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from support.genai_spans import ANSWER, CONVENTIONS, QUESTION, SYSTEM, record
from tui.model.genai import GenAIView, ToolCall, content, first_token_seconds, is_llm_span
from tui.model.span import Event, Span
from tui.receiver.decode import spans_from_request


def model_spans(convention: str) -> dict[str, Span]:
    """Record a fixture with the SDK, encode it as the OTLP exporter does, decode it as the receiver does."""
    request = encode_spans(record(CONVENTIONS[convention], "svc"))
    return {s.name: s for s in spans_from_request(request).spans}


def view_of(convention: str, name: str) -> GenAIView:
    view = GenAIView.from_span(model_spans(convention)[name])
    assert view is not None
    return view


def test_openllmetry_flattened_attributes_every_dynatrace_attribute() -> None:
    view = view_of("openllmetry", "ollama.chat")
    assert (view.provider, view.operation) == ("Ollama", "chat")  # gen_ai.system, llm.request.type
    assert (view.request_model, view.response_model) == ("llama3.2", "llama3.2:latest")
    assert [(m.role, m.content) for m in view.input] == [("system", SYSTEM), ("user", QUESTION)]
    assert [(m.role, m.content, m.finish_reason) for m in view.output] == [("assistant", ANSWER, "stop")]
    assert (view.input_tokens, view.output_tokens, view.total_tokens) == (31, 18, 49)
    assert view.finish_reasons == ["stop"]
    assert view.sources == ["gen_ai.prompt.N.*"]
    assert view.other == {"llm.is_streaming": True}


def test_semconv_json_messages_with_tool_calls() -> None:
    view = view_of("semconv", "chat qwen3")
    assert view.system == [SYSTEM]
    roles = [m.role for m in view.input]
    assert roles == ["user", "assistant", "tool"]
    call = view.input[1].tool_calls[0]
    assert (call.name, json.loads(call.arguments), call.id) == ("get_weather", {"location": "Paris"}, "call_1")
    assert view.input[2].tool_call_id == "call_1" and view.input[2].content == "rainy, 14 °C"
    assert "→ tool call: get_weather" in view.input[1].text()
    assert view.output[0].content == ANSWER and view.finish_reasons == ["stop"]
    assert (view.input_tokens, view.output_tokens, view.total_tokens) == (120, 45, 165)
    assert (view.provider, view.operation, view.model) == ("ollama", "chat", "qwen3:8b")
    assert view.other == {"gen_ai.request.temperature": 0.2}


def test_semconv_messages_as_structured_values_not_strings() -> None:
    span = Span("a" * 32, "b" * 16, "chat", 0, 10, attributes={
        "gen_ai.input.messages": ({"role": "user", "parts": ({"type": "text", "content": "hi"},)},),
        "gen_ai.output.messages": ({"role": "assistant", "parts": ({"type": "text", "content": "yo"},)},),
    })
    view = GenAIView.from_span(span)
    assert [(m.role, m.content) for m in view.input + view.output] == [("user", "hi"), ("assistant", "yo")]


def test_genai_events() -> None:
    view = view_of("events", "chat mistral")
    assert [(m.role, m.content) for m in view.input] == [("system", SYSTEM), ("user", QUESTION)]
    assert [(m.role, m.content, m.finish_reason) for m in view.output] == [("assistant", ANSWER, "stop")]
    assert view.sources == ["GenAI events"]


def test_operation_details_event() -> None:
    event = Event("gen_ai.client.inference.operation.details", 5, {
        "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "q"}]}]),
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "a"}]}]),
    })
    view = GenAIView.from_span(Span("a" * 32, "b" * 16, "chat", 0, 10, events=(event,)))
    assert [(m.role, m.content) for m in view.input + view.output] == [("user", "q"), ("assistant", "a")]


def test_openinference() -> None:
    view = view_of("openinference", "ChatOllama")
    assert view.request_model == "gemma3" and view.provider == "ollama" and view.operation == "llm"
    assert [(m.role, m.content) for m in view.input] == [("user", QUESTION)]
    assert [(m.role, m.content) for m in view.output] == [("assistant", ANSWER)]
    assert (view.input_tokens, view.output_tokens, view.total_tokens) == (15, 16, 31)
    assert view.sources == ["llm.input_messages.N.*"]  # preferred over input.value


def test_input_value_output_value_fallback() -> None:
    span = Span("a" * 32, "b" * 16, "llm", 0, 10,
                attributes={"openinference.span.kind": "LLM", "input.value": "q", "output.value": "a"})
    view = GenAIView.from_span(span)
    assert [(m.role, m.content) for m in view.input + view.output] == [("input", "q"), ("output", "a")]


def test_precedence_semconv_over_flattened() -> None:
    span = Span("a" * 32, "b" * 16, "chat", 0, 10, attributes={
        "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "new"}]}]),
        "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "old",
        "gen_ai.completion.0.content": "flat answer",
    })
    view = GenAIView.from_span(span)
    assert [m.content for m in view.input] == ["new"]
    assert [m.content for m in view.output] == ["flat answer"]  # merged from the next convention


@pytest.mark.parametrize("raw", ['[{"role": "user", ', "not json", "42", '{"role": "user"}', "[1, 2]"])
def test_malformed_messages_are_shown_raw(raw: str) -> None:
    view = GenAIView.from_span(Span("a" * 32, "b" * 16, "chat", 0, 10, attributes={"gen_ai.input.messages": raw}))
    assert view is not None and view.input
    assert raw.strip("[]").split(",")[0] in "\n".join(m.content for m in view.input)


def test_tokens_per_second_and_time_to_first_token() -> None:
    span = Span("a" * 32, "b" * 16, "chat", 0, 3_000_000_000, attributes={
        "gen_ai.usage.output_tokens": 100, "gen_ai.response.time_to_first_chunk": 0.5,
        "gen_ai.usage.prompt_tokens": "12",
    })
    view = GenAIView.from_span(span)
    assert view.time_to_first_token_s == 0.5
    assert view.tokens_per_second == pytest.approx(40.0)
    assert view.input_tokens == 12


def test_plain_spans_are_not_llm_spans() -> None:
    spans = model_spans("failing")
    assert not any(is_llm_span(s) for s in spans.values())
    assert GenAIView.from_span(spans["GET /forecast"]) is None


# --- issue 15: content blocks, tool calls beside the message, units ------------------------------------------

@pytest.mark.parametrize(("value", "duration", "expected"), [
    (0.2, 0.9, (0.2, "")),                                       # seconds, within the span: as is
    (797, 0.9, (0.797, "sent 797, read as milliseconds")),      # strands: milliseconds
    (5000, 0.9, (None, "sent 5000: longer than the span (0.900s) in seconds and in milliseconds")),
    (-1.0, 0.9, (None, "sent -1: negative")),
])
def test_time_to_first_token_rule(value: float, duration: float, expected: tuple[float | None, str]) -> None:
    seconds, note = first_token_seconds(value, duration)
    assert (seconds if seconds is None else pytest.approx(seconds), note) == (
        expected[0] if expected[0] is None else pytest.approx(expected[0]), expected[1])


def test_time_to_first_token_longer_than_the_span_is_not_shown_as_is() -> None:
    span = Span("a" * 32, "b" * 16, "chat", 0, 900_000_000, attributes={
        "gen_ai.operation.name": "chat", "gen_ai.server.time_to_first_token": 5000.0})
    view = GenAIView.from_span(span)
    assert view is not None and view.time_to_first_token_s is None and "longer than the span" in \
        view.time_to_first_token_note


@pytest.mark.parametrize(("value", "expected"), [
    ('[{"text": "hi"}, {"text": "there"}]', ("hi\nthere", (), "")),
    ([{"type": "text", "text": "hi"}], ("hi", (), "")),
    ('[{"toolUse": {"toolUseId": "t1", "name": "f", "input": {"a": 1}}}]',
     ("", (ToolCall("f", '{"a": 1}', "t1"),), "")),
    ('[{"toolResult": {"toolUseId": "t1", "content": [{"text": "ok"}, {"json": {"b": 2}}]}}]',
     ('ok\n{"b": 2}', (), "t1")),
    ('[1, 2]', ("[1, 2]", (), "")),                                 # not blocks: as sent
    ('[{"no": "block"}]', ('[{"no": "block"}]', (), "")),
    ("[not json", ("[not json", (), "")),
    ({}, ("", (), "")),
])
def test_content_blocks(value: object, expected: tuple[str, tuple[ToolCall, ...], str]) -> None:
    assert content(value) == expected
