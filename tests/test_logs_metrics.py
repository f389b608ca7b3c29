"""/v1/logs and /v1/metrics (and their gRPC services) answer success and count what arrived."""

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
