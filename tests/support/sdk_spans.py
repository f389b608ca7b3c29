"""Spans recorded by the real OpenTelemetry SDK, for feeding the receivers in tests."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def record(build, service: str = "test-service") -> list[ReadableSpan]:
    """Run ``build(tracer)`` under a fresh SDK provider and return the finished spans."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service, "deployment.environment": "test"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    build(provider.get_tracer("tests.instrumentation", "1.2.3"))
    provider.shutdown()
    return list(memory.get_finished_spans())


EVERY_TYPE = {
    "str": "hello",
    "int": 42,
    "big_int": 2**62,
    "float": 3.25,
    "bool": True,
    "str_array": ["a", "b"],
    "int_array": [1, 2, 3],
    "float_array": [0.5, 1.5],
    "bool_array": [True, False],
}


def nested_trace(tracer: trace.Tracer) -> None:
    """A root with two children, a grandchild, events, a link and an error status."""
    with tracer.start_as_current_span("root", kind=trace.SpanKind.SERVER, attributes=EVERY_TYPE) as root:
        root.add_event("started", {"step": 1})
        with tracer.start_as_current_span("child-a", kind=trace.SpanKind.CLIENT):
            with tracer.start_as_current_span("grandchild") as grand:
                grand.set_attribute("gen_ai.request.model", "llama3.2")
        link = trace.Link(root.get_span_context(), {"link.kind": "follows"})
        with tracer.start_as_current_span("child-b", links=[link]) as child:
            child.set_status(trace.Status(trace.StatusCode.ERROR, "boom"))
            child.record_exception(ValueError("bad value"))

