"""Chat spans go through the same OTLP decode path as everyone else's — without the network.

An in-process exporter encodes finished spans with the SDK's own OTLP encoder, serialises them to
the protobuf bytes an exporter would send, and hands them to the receiver's decoder and queue.
Why not a real exporter to our own port: the receivers may be disabled, on another port or behind
a token; an in-process hand-off cannot fail on the network, costs no retry delays, and still
exercises exactly the decode path a remote exporter's request takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ollama
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.instrumentation.ollama import _dispatch_awrap
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Tracer

from tui import __version__
from tui.model.conventions import CHAT_SERVICE
from tui.receiver.decode import ExportTraceServiceRequest, parse_protobuf
from tui.receiver.ingest import Ingest, Outcome


class InProcessExporter(SpanExporter):
    """Hands finished spans to the receiver's ingest as an OTLP protobuf request."""

    def __init__(self, ingest: Ingest) -> None:
        self.ingest = ingest

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        body = encode_spans(spans).SerializeToString()
        result = self.ingest.traces("chat", parse_protobuf(ExportTraceServiceRequest, body))
        # A full queue is counted by the ingest like any refused export.
        return SpanExportResult.SUCCESS if result.outcome is Outcome.ACCEPTED else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        pass


def chat_tracer_provider(ingest: Ingest) -> TracerProvider:
    """A provider of our own (not the global one), exporting synchronously on the event loop thread.

    Spans end on the loop (the chat runs there), and ``SimpleSpanProcessor`` exports in the thread
    that ends the span, so the asyncio queue is only ever touched from its own loop.
    """
    provider = TracerProvider(resource=Resource.create({"service.name": CHAT_SERVICE,
                                                        "service.version": __version__}))
    provider.add_span_processor(SimpleSpanProcessor(InProcessExporter(ingest)))
    return provider


class TracedAsyncClient(ollama.AsyncClient):
    """``ollama.AsyncClient`` whose requests are recorded by opentelemetry-instrumentation-ollama.

    The instrumentation normally patches ``AsyncClient._request`` for the whole process and binds
    one tracer at import time. Wrapping this subclass's ``_request`` with the instrumentation's own
    wrapper records exactly the span an instrumented app would send, with our tracer, and leaves
    every other ``ollama`` client in the process alone.
    """

    def __init__(self, host: str, tracer: Tracer, **kwargs: Any) -> None:
        super().__init__(host=host, **kwargs)
        self._instrumented = _dispatch_awrap(tracer, None, None, None, None, None)

    async def _request(self, *args: Any, **kwargs: Any) -> Any:
        return await self._instrumented(super()._request, self, args, kwargs)
