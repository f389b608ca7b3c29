"""/v1/logs and /v1/metrics (and their gRPC services) answer success, count what arrived, and hold it within bounds."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from support.receivers import Running
from tui.model.telemetry import CUT_NOTE_KEY, MAX_RECORD_BYTES, MIB, OTHER, LogStore


def _log_exporter(running: Running, transport: str):
    if transport == "grpc":
        return GrpcLogExporter(endpoint=running.grpc_endpoint, insecure=True)
    return HttpLogExporter(endpoint=f"{running.http_url}/v1/logs")


def _metric_exporter(running: Running, transport: str):
    if transport == "grpc":
        return GrpcMetricExporter(endpoint=running.grpc_endpoint, insecure=True)
    return HttpMetricExporter(endpoint=f"{running.http_url}/v1/metrics")


def _emit_logs(exporter, count: int) -> None:
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("tests")
    from opentelemetry._logs import LogRecord

    for i in range(count):
        logger.emit(LogRecord(body=f"line {i}"))
    provider.shutdown()


def _export_metrics(exporter) -> bool:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    meter = provider.get_meter("tests")
    meter.create_counter("requests").add(3, {"route": "/a"})
    meter.create_counter("requests2").add(1, {"route": "/b"})
    meter.create_histogram("latency").record(0.25)
    data = reader.get_metrics_data()
    provider.shutdown()
    result = exporter.export(data)
    exporter.shutdown()
    return result.name == "SUCCESS"


@pytest.mark.parametrize("transport", ["grpc", "http"])
async def test_logs_and_metrics_are_accepted_and_counted(running: Running, transport: str) -> None:
    await asyncio.to_thread(_emit_logs, _log_exporter(running, transport), 3)
    assert await asyncio.to_thread(_export_metrics, _metric_exporter(running, transport))
    stats = running.receivers.stats
    assert stats.log_records == 3
    assert stats.metric_points == 3
    assert stats.requests[f"{transport} logs"] == 3
    assert stats.requests[f"{transport} metrics"] == 1
    assert not stats.requests_rejected


def _emit_large_logs(exporter, count: int, body_bytes: int) -> None:
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("tests")
    from opentelemetry._logs import LogRecord

    for i in range(count):
        logger.emit(LogRecord(body=f"{i} " + "x" * body_bytes, attributes={"n": i}))
    provider.shutdown()


async def test_large_log_records_are_cut_and_the_oldest_dropped_to_stay_within_the_byte_budget(
        running: Running) -> None:
    """Twelve 1 MiB bodies over HTTP: each is cut to the per-record share and says so, and the store drops
    the oldest to stay within its bytes (made small here, so that twelve records overflow it)."""
    store = running.receivers.ingest.log_store = LogStore(max_bytes=MAX_RECORD_BYTES * 3)
    await asyncio.to_thread(_emit_large_logs, _log_exporter(running, "http"), 12, MIB)
    assert running.receivers.stats.log_records == 12
    assert store.cut == 12 and store.evicted >= 9
    assert store.bytes_held <= store.max_bytes
    held = store.latest_unattached(12)
    assert len(held) == 12 - store.evicted and held[0].body.startswith("11 ")  # the newest kept
    assert all(len(record.body) < MAX_RECORD_BYTES and record.cut_bytes > MIB - MAX_RECORD_BYTES for record in held)
    assert "bytes left out to keep the record under 256 KiB" in held[0].as_event().attributes[CUT_NOTE_KEY]
    assert store.losses() == [f"{store.evicted} older log records dropped to stay under 0.75 MiB "
                              "(200,000 records, 10,000 without a trace)", "12 log records cut to 256 KiB"]


def _export_models(exporter, models: int) -> bool:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    duration = provider.get_meter("genai").create_histogram("gen_ai.client.operation.duration")
    for i in range(models):
        duration.record(0.5, {"gen_ai.request.model": f"model-{i:04d}"})
    data = reader.get_metrics_data()
    provider.shutdown()
    result = exporter.export(data)
    exporter.shutdown()
    return result.name == "SUCCESS"


async def test_metrics_of_too_many_models_or_names_are_folded_into_other_and_counted(running: Running) -> None:
    summary = running.receivers.ingest.metrics_summary
    assert await asyncio.to_thread(_export_models, _metric_exporter(running, "grpc"), 1_200)
    assert len(summary.by_model) == 1_001 and summary.by_model[OTHER].operations == 200
    assert summary.folded_model_points == 200
    summary.max_names = 2  # the default's 10,000 names would take as many instruments from the SDK
    assert await asyncio.to_thread(_export_metrics, _metric_exporter(running, "http"))  # three names
    assert summary.other_points == {"requests": 1, "requests2": 1, OTHER: 1} and summary.folded_name_points == 1
    assert summary.losses() == ["200 GenAI metric points of models beyond the first 1,000 summed as (other)",
                                "1 points of metrics beyond the first 2 names counted as (other)"]
