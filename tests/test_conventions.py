"""One home for each contract: the GenAI keys the chat engine writes are the ones every reader reads,
and the save keys write the OTLP/JSON lines ``--load`` reads back."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tui.console.printer import KEY_ATTRIBUTES
from tui.model.conventions import (
    FINISH_REASONS,
    INPUT_MESSAGES,
    INPUT_TOKENS,
    INPUT_TOKENS_KEYS,
    OLLAMA_EVAL_RATE,
    OLLAMA_TIMINGS,
    OPERATION_NAME,
    OUTPUT_MESSAGES,
    OUTPUT_TOKENS,
    OUTPUT_TOKENS_KEYS,
    PROVIDER_NAME,
    REQUEST_MODEL,
    RESPONSE_MODEL,
    SUMMARY_MODEL_KEYS,
    TIME_TO_FIRST_CHUNK,
)
from tui.model.genai import GenAIView, UsageSummary, is_llm_span
from tui.model.otlp_json import request_json
from tui.model.span import Span
from tui.model.store import Trace, TraceStore
from tui.model.trace_list import usage_spans
from tui.receiver.decode import spans_from_request
from tui.receiver.files import read_requests, save_traces


def received(build: Callable[[trace.Tracer], None]) -> list[Span]:
    """Spans recorded with the real SDK, encoded as the OTLP exporter does and decoded as the receiver does."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "conventions"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    build(provider.get_tracer("tests.conventions", "1.0"))
    provider.shutdown()
    return spans_from_request(encode_spans(exporter.get_finished_spans())).spans


def stored(spans: list[Span]) -> list[Trace]:
    store = TraceStore()
    store.add_spans(spans)
    trace_ids = dict.fromkeys(s.trace_id for s in spans)
    traces = [t for t in map(store.get, trace_ids) if t is not None]
    assert len(traces) == len(trace_ids)
    return traces


def chat_turn(tracer: trace.Tracer) -> None:
    """A finished chat turn carrying the attributes ``ChatSession`` sets, by the same names."""
    # A second long, as a turn is: a time to first token longer than its span is not shown as is.
    started = time.time_ns() - 1_000_000_000
    with tracer.start_as_current_span("chat llama3.2", kind=trace.SpanKind.CLIENT, start_time=started) as span:
        span.set_attributes({
            OPERATION_NAME: "chat",
            PROVIDER_NAME: "ollama",
            REQUEST_MODEL: "llama3.2",
            INPUT_MESSAGES: json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Why blue?"}]}]),
            RESPONSE_MODEL: "llama3.2:latest",
            OUTPUT_MESSAGES: json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "Rayleigh."}],
                                          "finish_reason": "stop"}]),
            FINISH_REASONS: ["stop"],
            INPUT_TOKENS: 26,
            OUTPUT_TOKENS: 5,
            TIME_TO_FIRST_CHUNK: 0.25,
            OLLAMA_EVAL_RATE: 10.0,
            **{key: 500_000_000 for key in OLLAMA_TIMINGS.values()},
        })


def test_every_reader_reads_what_the_chat_engine_writes() -> None:
    (span,) = received(chat_turn)
    assert is_llm_span(span)
    view = GenAIView.from_span(span)
    assert view is not None
    assert (view.operation, view.provider, view.model) == ("chat", "ollama", "llama3.2:latest")
    assert [(m.role, m.content) for m in view.input] == [("user", "Why blue?")]
    assert [(m.role, m.content) for m in view.output] == [("assistant", "Rayleigh.")]
    assert (view.input_tokens, view.output_tokens, view.finish_reasons) == (26, 5, ["stop"])
    assert view.time_to_first_token_s == pytest.approx(0.25)
    assert view.ollama_timings == {name: pytest.approx(0.5) for name in OLLAMA_TIMINGS}
    assert view.other == {}  # every GenAI key the engine writes has its place in the view
    assert UsageSummary.from_span(span) == UsageSummary("llama3.2:latest", 26, 5)
    (trace_,) = stored([span])
    assert [usage for _, usage in usage_spans(trace_)] == [UsageSummary("llama3.2:latest", 26, 5)]
    printed = [key for key in KEY_ATTRIBUTES if key in span.attributes]
    assert printed == [OPERATION_NAME, REQUEST_MODEL, RESPONSE_MODEL, INPUT_TOKENS, OUTPUT_TOKENS]


@pytest.mark.parametrize("key", [*SUMMARY_MODEL_KEYS, *INPUT_TOKENS_KEYS, *OUTPUT_TOKENS_KEYS])
def test_a_row_summary_finds_every_key_it_reads_past_the_byte_markers(key: str) -> None:
    """The trace list skips spans whose raw bytes carry no usage marker: no key it reads may be skipped."""
    value = "some-model" if key in SUMMARY_MODEL_KEYS else 7

    def one_key(tracer: trace.Tracer) -> None:
        with tracer.start_as_current_span("call") as span:
            span.set_attribute(key, value)

    (trace_,) = stored(received(one_key))
    ((span, usage),) = usage_spans(trace_)
    assert is_llm_span(span)
    assert value in (usage.model, usage.input_tokens, usage.output_tokens)


def two_traces(tracer: trace.Tracer) -> None:
    with tracer.start_as_current_span("first", kind=trace.SpanKind.SERVER):
        chat_turn(tracer)
    with tracer.start_as_current_span("second", attributes={"n": 2}) as span:
        span.add_event("checkpoint", {"ok": True})
        span.set_status(trace.Status(trace.StatusCode.ERROR, "failed"))


def fields(span: Span) -> tuple:
    return (span.trace_id, span.span_id, span.parent_span_id, span.name, span.start_ns, span.end_ns, span.kind,
            span.status_code, span.status_message, dict(span.attributes),
            [(e.name, e.time_ns, dict(e.attributes)) for e in span.events],
            dict(span.resource.attributes), span.scope.name, span.scope.version)


def test_save_traces_writes_what_load_reads(tmp_path: Path) -> None:
    traces = stored(received(two_traces))
    path = tmp_path / "saved.jsonl"
    assert save_traces(path, traces) == (2, 3)
    requests = list(read_requests(path.name, path.read_bytes()))
    assert len(requests) == 2  # one request per trace
    loaded = [s for request in requests for s in spans_from_request(request).spans]
    assert sorted(map(fields, loaded)) == sorted(fields(s) for t in traces for s in t.spans.values())


def test_save_traces_writes_one_compact_line_per_trace(tmp_path: Path) -> None:
    """The Collector file exporter's layout, as ``--save`` writes it: compact JSON, one request a line."""
    traces = stored(received(two_traces))
    path = tmp_path / "saved.jsonl"
    save_traces(path, traces)
    expected = "".join(json.dumps(request_json(t.spans.values()), separators=(",", ":")) + "\n" for t in traces)
    assert path.read_text(encoding="utf-8") == expected


def test_save_traces_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "saved.jsonl"
    path.write_text("left over\n")
    assert save_traces(path, []) == (0, 0)
    assert path.read_bytes() == b""


def test_save_traces_raises_when_it_cannot_write(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        save_traces(tmp_path / "missing" / "saved.jsonl", stored(received(two_traces)))
