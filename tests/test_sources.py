"""The Sources table: every exporter that sent something, from real SDK exporters over both transports."""

from __future__ import annotations

import asyncio
import subprocess

from opentelemetry._logs import LogRecord
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.version import __version__ as sdk_version

from support.event_loop import eventually
from support.otlp_bodies import json_body, protobuf_request
from support.receivers import Running, export, make_exporter
from support.sdk_spans import nested_trace, record
from tui.receiver.ingest import ExportResult, Outcome
from tui.receiver.sources import SourceTable, peer_host


async def send(running: Running, transport: str, service: str) -> None:
    exporter = make_exporter(running, transport)  # a new exporter: a new connection from a new port
    try:
        assert await export(exporter, record(nested_trace, service=service)) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()


def emit_log(running: Running, service: str) -> None:
    provider = LoggerProvider(resource=Resource.create({"service.name": service}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(HttpLogExporter(endpoint=f"{running.http_url}/v1/logs")))
    provider.get_logger("tests").emit(LogRecord(body="hello"))
    provider.shutdown()


async def test_sdk_exporters_each_get_a_row(running: Running) -> None:
    for _ in range(2):
        await send(running, "http", "svc-http")
        await send(running, "grpc", "svc-grpc")
    await asyncio.to_thread(emit_log, running, "svc-http")
    await eventually(lambda: sum(r.accepted for r in running.receivers.sources.rows()) == 5)

    rows = {(r.host, r.transport, r.service): r for r in running.receivers.sources.rows()}
    assert set(rows) == {("127.0.0.1", "http-protobuf", "svc-http"), ("127.0.0.1", "grpc", "svc-grpc")}
    http, grpc = rows["127.0.0.1", "http-protobuf", "svc-http"], rows["127.0.0.1", "grpc", "svc-grpc"]
    for row in (http, grpc):
        assert (row.sdk_language, row.sdk_name, row.sdk_version) == ("python", "opentelemetry", sdk_version)
        assert row.spans == 8 and not row.refused
        assert row.first_seen <= row.last_seen
    assert (http.accepted, http.signals) == (3, {"traces", "logs"})
    assert (grpc.accepted, grpc.signals) == (2, {"traces"})
    assert running.receivers.sources.rows()[0] is http  # most recently seen first


async def test_json_and_refusals_from_curl(running: Running) -> None:
    url = f"{running.http_url}/v1/traces"

    def curl(*args: str) -> str:
        return subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", *args, url],
                              capture_output=True, text=True, check=False).stdout

    assert await asyncio.to_thread(curl, "-H", "Content-Type: application/json", "--data-binary",
                                   json_body().decode()) == "200"
    assert await asyncio.to_thread(curl, "-H", "Content-Type: application/json", "--data-binary", "{") == "400"
    assert await asyncio.to_thread(curl, "-X", "GET") == "405"
    rows = {(r.transport, r.service): r for r in running.receivers.sources.rows()}
    accepted = rows["http-json", "js-app"]
    assert (accepted.accepted, accepted.spans, accepted.sdk_language) == (1, 2, "")
    # Refused before (or while) the body was decoded: the service is unknown, the reason is kept.
    assert rows["http-json", ""].refused == {"400 undecodable": 1}
    assert rows["http", ""].refused == {"405 method": 1}


def test_back_pressure_counts_as_refused() -> None:
    table = SourceTable()
    table.record("10.0.0.2", "grpc", "traces", protobuf_request(), ExportResult(Outcome.OVERLOADED), 0)
    (row,) = table.rows()
    assert (row.service, row.accepted, row.spans, dict(row.refused)) == ("js-app", 0, 0, {"busy, retry asked": 1})


def test_sources_are_bounded_least_recently_seen_dropped() -> None:
    table = SourceTable(max_sources=2)
    for host in ("10.0.0.1", "10.0.0.2", "10.0.0.1", "10.0.0.3"):
        table.refused(host, "http", "404 unknown path")
    assert [(r.host, r.refused["404 unknown path"]) for r in table.rows()] == [("10.0.0.3", 1), ("10.0.0.1", 2)]
    assert table.dropped == 1


def test_grpc_peer_hosts() -> None:
    assert peer_host("ipv4:127.0.0.1:51234") == "127.0.0.1"
    assert peer_host("ipv6:[::1]:51234") == "::1"
    assert peer_host("unix:/tmp/socket") == "unix:/tmp/socket"
