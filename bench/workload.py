"""Realistic GenAI OTLP requests for the benchmarks, pre-serialised so the sender costs little.

Each span looks like what opentelemetry-instrumentation-ollama sends for a chat call: ~10
attributes (model, tokens, roles) and ~700 bytes of prompt and completion text. A batch is one
``ExportTraceServiceRequest`` of 512 spans: 128 traces of 4 spans (a server span, an agent span, the
chat span and a tool span), the shape of an agent loop.
"""

from __future__ import annotations

import os
import random

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

BATCH = 512
SPANS_PER_TRACE = 4
_WORDS = ("the model answered with a long and careful explanation of rayleigh scattering and why the sky "
          "looks blue at noon but red at sunset while the user kept asking follow up questions about "
          "wavelengths photons molecules and the atmosphere").split()


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def _text(rng: random.Random, length: int) -> str:
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < length:
        words.append(rng.choice(_WORDS))
    return " ".join(words)[:length]


def genai_attributes(rng: random.Random) -> list[KeyValue]:
    """~10 attributes, ~700 bytes of prompt and completion text."""
    return [_kv(k, v) for k, v in (
        ("gen_ai.system", "Ollama"),
        ("llm.request.type", "chat"),
        ("gen_ai.request.model", rng.choice(["llama3.2", "qwen3:8b", "mistral", "gemma3"])),
        ("gen_ai.response.model", "llama3.2:latest"),
        ("gen_ai.prompt.0.role", "user"),
        ("gen_ai.prompt.0.content", _text(rng, 300)),
        ("gen_ai.completion.0.role", "assistant"),
        ("gen_ai.completion.0.content", _text(rng, 400)),
        ("gen_ai.usage.input_tokens", rng.randrange(10, 2000)),
        ("gen_ai.usage.output_tokens", rng.randrange(10, 800)),
    )]


def make_request(rng: random.Random, start_ns: int, batch: int = BATCH) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.extend([_kv("service.name", "bench-agent"), _kv("service.version", "1.0")])
    ss = rs.scope_spans.add()
    ss.scope.name = "opentelemetry.instrumentation.ollama"
    for _ in range(batch // SPANS_PER_TRACE):
        trace_id = os.urandom(16)
        ids = [os.urandom(8) for _ in range(SPANS_PER_TRACE)]
        names = ["POST /agent", "agent run", "ollama.chat", "execute_tool search"]
        for i in range(SPANS_PER_TRACE):
            span = Span(trace_id=trace_id, span_id=ids[i], name=names[i], kind=Span.SPAN_KIND_INTERNAL,
                        start_time_unix_nano=start_ns + i * 1_000_000, end_time_unix_nano=start_ns + 900_000_000)
            if i:
                span.parent_span_id = ids[0] if i != 2 else ids[1]
            if i == 2:
                span.attributes.extend(genai_attributes(rng))
            else:
                span.attributes.extend(_kv(k, v) for k, v in (
                    ("http.request.method", "POST"), ("http.route", "/agent"), ("gen_ai.operation.name",
                                                                                 "invoke_agent"),
                    ("note", _text(rng, 600)), ("attempt", i), ("user.id", f"user-{rng.randrange(1000)}"),
                    ("tool.name", "search"), ("retry", False), ("region", "eu-west-1"), ("tenant", "acme")))
            ss.spans.append(span)
    return request


def serialized_batches(count: int, seed: int = 1, batch: int = BATCH) -> list[bytes]:
    rng = random.Random(seed)
    return [make_request(rng, 1_800_000_000_000_000_000 + i * 1_000_000_000, batch).SerializeToString()
            for i in range(count)]
