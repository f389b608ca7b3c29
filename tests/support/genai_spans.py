"""Realistic LLM spans in each attribute convention, recorded with the real OpenTelemetry SDK.

Used by the tests, by ``screenshots/make_screenshots.py`` and for trying the app by hand
(``python tests/support/genai_spans.py http://127.0.0.1:4318``).
"""

from __future__ import annotations

import json
import sys
import time

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

SYSTEM = "You are a concise assistant for a weather app."
QUESTION = "What's the weather in Paris today?"
ANSWER = "It is rainy in Paris today, around 14 °C, with wind from the west."


def openllmetry(tracer: trace.Tracer) -> None:
    """What opentelemetry-instrumentation-ollama records (the Dynatrace attribute list)."""
    with tracer.start_as_current_span("POST /ask", kind=trace.SpanKind.SERVER):
        with tracer.start_as_current_span("ollama.chat", kind=trace.SpanKind.CLIENT) as span:
            span.set_attributes({
                "gen_ai.system": "Ollama",
                "llm.request.type": "chat",
                "gen_ai.request.model": "llama3.2",
                "gen_ai.response.model": "llama3.2:latest",
                "llm.is_streaming": True,
                "gen_ai.prompt.0.role": "system",
                "gen_ai.prompt.0.content": SYSTEM,
                "gen_ai.prompt.1.role": "user",
                "gen_ai.prompt.1.content": QUESTION,
                "gen_ai.completion.0.role": "assistant",
                "gen_ai.completion.0.content": ANSWER,
                "gen_ai.completion.0.finish_reason": "stop",
                "gen_ai.usage.prompt_tokens": 31,
                "gen_ai.usage.completion_tokens": 18,
                "llm.usage.total_tokens": 49,
            })
            time.sleep(0.002)


def semconv(tracer: trace.Tracer) -> None:
    """Current GenAI semantic conventions: JSON messages with parts, including a tool call."""
    with tracer.start_as_current_span("agent run") as root:
        root.set_attribute("gen_ai.operation.name", "invoke_agent")
        with tracer.start_as_current_span("chat qwen3", kind=trace.SpanKind.CLIENT) as span:
            span.set_attributes({
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "ollama",
                "gen_ai.request.model": "qwen3",
                "gen_ai.response.model": "qwen3:8b",
                "gen_ai.request.temperature": 0.2,
                "gen_ai.usage.input_tokens": 120,
                "gen_ai.usage.output_tokens": 45,
                "gen_ai.response.finish_reasons": ["stop"],
                "gen_ai.system_instructions": json.dumps([{"type": "text", "content": SYSTEM}]),
                "gen_ai.input.messages": json.dumps([
                    {"role": "user", "parts": [{"type": "text", "content": QUESTION}]},
                    {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "get_weather",
                                                     "arguments": {"location": "Paris"}}]},
                    {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1",
                                                "result": "rainy, 14 °C"}]},
                ]),
                "gen_ai.output.messages": json.dumps([
                    {"role": "assistant", "parts": [{"type": "text", "content": ANSWER}], "finish_reason": "stop"}
                ]),
            })
            time.sleep(0.002)
        with tracer.start_as_current_span("execute_tool get_weather") as tool:
            tool.set_attribute("gen_ai.tool.name", "get_weather")


def events(tracer: trace.Tracer) -> None:
    """Messages as GenAI events on the span (the older event convention)."""
    with tracer.start_as_current_span("chat mistral", kind=trace.SpanKind.CLIENT) as span:
        span.set_attributes({"gen_ai.operation.name": "chat", "gen_ai.system": "ollama",
                             "gen_ai.request.model": "mistral", "gen_ai.usage.input_tokens": 20,
                             "gen_ai.usage.output_tokens": 7})
        span.add_event("gen_ai.system.message", {"content": SYSTEM})
        span.add_event("gen_ai.user.message", {"content": QUESTION})
        span.add_event("gen_ai.choice", {"index": 0, "finish_reason": "stop",
                                         "message": json.dumps({"role": "assistant", "content": ANSWER})})


def openinference(tracer: trace.Tracer) -> None:
    """OpenInference (Arize Phoenix) flattened messages and token counts."""
    with tracer.start_as_current_span("ChatOllama", kind=trace.SpanKind.CLIENT) as span:
        span.set_attributes({
            "openinference.span.kind": "LLM",
            "llm.model_name": "gemma3",
            "llm.provider": "ollama",
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.content": QUESTION,
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": ANSWER,
            "llm.token_count.prompt": 15,
            "llm.token_count.completion": 16,
            "llm.token_count.total": 31,
            "input.value": QUESTION,
            "output.value": ANSWER,
        })


def malformed(tracer: trace.Tracer) -> None:
    """A messages attribute that is not valid JSON: shown raw, never a crash."""
    with tracer.start_as_current_span("chat broken", kind=trace.SpanKind.CLIENT) as span:
        span.set_attributes({"gen_ai.request.model": "llama3.2", "gen_ai.input.messages": '[{"role": "user", '})


def failing(tracer: trace.Tracer) -> None:
    """An HTTP request whose downstream call raised."""
    with tracer.start_as_current_span("GET /forecast", kind=trace.SpanKind.SERVER) as root:
        root.set_attributes({"http.request.method": "GET", "http.route": "/forecast"})
        with tracer.start_as_current_span("fetch upstream") as child:
            try:
                raise TimeoutError("upstream did not answer within 2s")
            except TimeoutError as exc:
                child.record_exception(exc)
                child.set_status(trace.Status(trace.StatusCode.ERROR, "upstream timeout"))
        root.set_status(trace.Status(trace.StatusCode.ERROR, "502 from upstream"))


def agent_with_tools(tracer: trace.Tracer) -> None:
    """A tool-using agent run in the current conventions: invoke_agent → chat (asks for a tool) →
    execute_tool → chat (repeats the history, answers). The agent span carries the run's aggregated usage,
    as strands does. Not in :data:`CONVENTIONS` (the demo store and its snapshots stay as they are)."""
    user = {"role": "user", "parts": [{"type": "text", "content": QUESTION}]}
    call = {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "get_weather",
                                            "arguments": {"location": "Paris"}}]}
    result = {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "result": "rainy, 14 °C"}]}
    answer = {"role": "assistant", "parts": [{"type": "text", "content": ANSWER}], "finish_reason": "stop"}
    system = json.dumps([{"type": "text", "content": SYSTEM}])
    with tracer.start_as_current_span("invoke_agent weather-agent") as agent:
        agent.set_attributes({
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "weather-agent",
            "gen_ai.provider.name": "ollama", "gen_ai.request.model": "qwen3", "gen_ai.system_instructions": system,
            "gen_ai.input.messages": json.dumps([user]), "gen_ai.output.messages": json.dumps([answer]),
            "gen_ai.usage.input_tokens": 260, "gen_ai.usage.output_tokens": 63,
        })
        with tracer.start_as_current_span("chat qwen3", kind=trace.SpanKind.CLIENT) as first:
            first.set_attributes({
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "ollama", "gen_ai.request.model": "qwen3",
                "gen_ai.response.model": "qwen3:8b", "gen_ai.usage.input_tokens": 120,
                "gen_ai.usage.output_tokens": 18, "gen_ai.response.finish_reasons": ["tool_calls"],
                "gen_ai.system_instructions": system, "gen_ai.input.messages": json.dumps([user]),
                "gen_ai.output.messages": json.dumps([{**call, "finish_reason": "tool_calls"}]),
            })
            time.sleep(0.002)
        with tracer.start_as_current_span("execute_tool get_weather") as tool:
            tool.set_attributes({
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather",
                "gen_ai.tool.call.id": "call_1", "gen_ai.tool.call.arguments": json.dumps({"location": "Paris"}),
                "gen_ai.tool.call.result": "rainy, 14 °C",
            })
            time.sleep(0.001)
        with tracer.start_as_current_span("chat qwen3", kind=trace.SpanKind.CLIENT) as second:
            second.set_attributes({
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "ollama", "gen_ai.request.model": "qwen3",
                "gen_ai.response.model": "qwen3:8b", "gen_ai.usage.input_tokens": 140,
                "gen_ai.usage.output_tokens": 45, "gen_ai.response.finish_reasons": ["stop"],
                "gen_ai.system_instructions": system, "gen_ai.input.messages": json.dumps([user, call, result]),
                "gen_ai.output.messages": json.dumps([answer]),
            })
            time.sleep(0.002)


CONVENTIONS = {"openllmetry": openllmetry, "semconv": semconv, "events": events, "openinference": openinference,
               "malformed": malformed, "failing": failing}


def record(build, service: str) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    build(provider.get_tracer("demo", "0.1"))
    provider.shutdown()
    return list(memory.get_finished_spans())


def record_all() -> list[list[ReadableSpan]]:
    """One trace per convention, each from its own service."""
    services = {"openllmetry": "weather-api", "semconv": "agent", "events": "chatbot", "openinference": "rag-app",
                "malformed": "chatbot", "failing": "weather-api"}
    return [record(build, services[name]) for name, build in CONVENTIONS.items()]


if __name__ == "__main__":
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    exporter = OTLPSpanExporter(endpoint=(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:4318") + "/v1/traces")
    for spans in record_all():
        exporter.export(spans)
        time.sleep(0.05)
