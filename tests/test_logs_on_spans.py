"""OTLP logs that name a span show on it (Events tab) and feed the LLM tab; GenAI metrics summed per model, and the
`L` screen that shows them, bounded however many models arrive."""

from __future__ import annotations

import asyncio

import aiohttp
from opentelemetry._logs import LogRecord
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from textual.widgets import DataTable

from support.app import SIZE, detail_texts, make_app, screen_text, wait_until
from support.otlp_bodies import many_models
from support.receivers import Running, send
from support.sdk_spans import record
from tui.app.screens.telemetry import SHOWN_MODELS, TelemetryScreen
from tui.model.telemetry import OTHER


def chat_span(tracer) -> None:
    with tracer.start_as_current_span("chat llama3.2") as span:
        span.set_attribute("gen_ai.request.model", "llama3.2")


def emit_logs(endpoint: str, trace_id: int, span_id: int) -> None:
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True)))
    logger = provider.get_logger("genai")
    logger.emit(LogRecord(trace_id=trace_id, span_id=span_id, event_name="gen_ai.user.message",
                          body={"content": "Why is the sky blue?"}, attributes={"gen_ai.system": "ollama"}))
    logger.emit(LogRecord(trace_id=trace_id, span_id=span_id, event_name="gen_ai.choice",
                          body={"index": 0, "finish_reason": "stop",
                                "message": {"role": "assistant", "content": "Rayleigh scattering."}}))
    logger.emit(LogRecord(body="a log line with no trace", severity_text="WARN"))
    provider.shutdown()


def export_metrics(endpoint: str) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    meter = provider.get_meter("genai")
    tokens = meter.create_histogram("gen_ai.client.token.usage")
    tokens.record(26, {"gen_ai.request.model": "llama3.2", "gen_ai.token.type": "input"})
    tokens.record(5, {"gen_ai.request.model": "llama3.2", "gen_ai.token.type": "output"})
    meter.create_histogram("gen_ai.client.operation.duration").record(0.5, {"gen_ai.request.model": "llama3.2"})
    meter.create_counter("http.requests").add(3)
    OTLPMetricExporter(endpoint=endpoint).export(reader.get_metrics_data())
    provider.shutdown()


async def test_logs_on_their_span_feed_the_events_and_llm_tabs(app_receivers: Running) -> None:
    spans = record(chat_span, "svc")
    (span,) = spans
    app = make_app(app_receivers)
    async with app.run_test(size=SIZE) as pilot:
        await send(app_receivers, spans)
        await asyncio.to_thread(emit_logs, f"127.0.0.1:{app_receivers.receivers.grpc.port}", span.context.trace_id,
                                span.context.span_id)
        await asyncio.to_thread(export_metrics, f"http://127.0.0.1:{app_receivers.receivers.http.port}/v1/metrics")
        await wait_until(pilot, lambda: app.traces.trace_list.index.trace_count == 1)
        await pilot.press("enter", "l")
        llm = "\n".join(detail_texts(app, "llm"))
        assert "Why is the sky blue?" in llm and "Rayleigh scattering." in llm and "finish stop" in llm
        await pilot.press("t", "t")  # LLM → Attributes → Events, which is built when it is opened
        events = "\n".join(detail_texts(app, "events"))
        assert "Logs (2)" in events and "gen_ai.user.message" in events and "gen_ai.choice" in events

        await pilot.press("L")
        text = screen_text(app)
        assert "3 log records received: 2 name a span" in text and "a log line with no trace" in text
        assert "llama3.2" in text and "26" in text and "0.500s" in text
        assert "http.requests (1)" in text



async def test_the_L_screen_opens_over_twenty_thousand_models_with_the_rows_bounded(app_receivers: Running) -> None:
    app = make_app(app_receivers)
    async with app.run_test(size=SIZE) as pilot, aiohttp.ClientSession() as session:
        body = many_models(20_000).SerializeToString()
        async with session.post(f"{app_receivers.http_url}/v1/metrics", data=body,
                                headers={"Content-Type": "application/x-protobuf"}) as response:
            assert response.status == 200
        await asyncio.to_thread(emit_logs, app_receivers.grpc_endpoint, 1, 1)
        await pilot.press("L")
        await wait_until(pilot, lambda: isinstance(app.screen, TelemetryScreen))
        models = app.screen.query_one("#models", DataTable)
        assert models.row_count == SHOWN_MODELS
        assert models.get_row_at(SHOWN_MODELS - 1)[0].plain == OTHER  # the 19,000 folded ones, last
        text = screen_text(app)
        assert "… and 901 more models" in text
        assert "19,000 GenAI metric points of models beyond the first 1,000 summed as (other)" in text
        assert "a log line with no trace" in text
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, TelemetryScreen))
