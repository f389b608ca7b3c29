"""The connection doctor: each mistake provoked by a real client misconfigured as a user would, and the
one-sentence diagnosis (what was seen, the fix) asserted."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from support.event_loop import eventually
from support.otlp_bodies import json_body
from support.receivers import Running, export, running_receivers
from support.sdk_spans import nested_trace, record
from tui.receiver import ReceiverConfig, Security
from tui.receiver.doctor import Diagnosis, Doctor, Problem, sniff

TOKEN = "s3cret"


async def exported(exporter: SpanExporter, spans: list[ReadableSpan] | None = None) -> SpanExportResult:
    try:
        return await export(exporter, spans or record(nested_trace))
    finally:
        exporter.shutdown()


async def diagnosed(running: Running, kind: Problem) -> Diagnosis:
    """The one diagnosis of ``kind``, once the receiver has made it."""
    doctor = running.receivers.doctor
    await eventually(lambda: any(d.kind is kind for d in doctor.problems()))
    (found,) = [d for d in doctor.problems() if d.kind is kind]
    assert found.source == "127.0.0.1"
    return found


async def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(subprocess.run, ["curl", "-sS", "--max-time", "10", *args],
                                   capture_output=True, text=True, check=False)


def tls_handshake(port: int) -> None:
    """What an https:// exporter does first: a TLS handshake, which the plain port cannot answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with pytest.raises(ssl.SSLError):
            ssl.create_default_context().wrap_socket(raw, server_hostname="localhost")


async def test_tls_handshake_on_the_plain_port_is_diagnosed_once(running: Running) -> None:
    assert running.receivers.http is not None
    port = running.receivers.http.port
    for _ in range(2):
        await asyncio.to_thread(tls_handshake, port)
    await eventually(lambda: sum(d.count for d in running.receivers.doctor.problems()) == 2)
    found = await diagnosed(running, Problem.TLS_ON_PLAIN_PORT)
    assert found.count == 2
    assert f"speaks TLS (an https:// endpoint, as in Ollama's documented default) to the plain OTLP/HTTP port {port}" \
        in found.text
    assert found.fix == ("use an http:// endpoint and set OTEL_EXPORTER_OTLP_TRACES_INSECURE=true, or start "
                         "ollama-tui with --tls-cert and --tls-key")
    # One notification for the two attempts, and none the next time it is asked.
    assert running.receivers.doctor.take_new() == [found]
    assert running.receivers.doctor.take_new() == []
    assert running.receivers.stats.requests_rejected["http: TLS handshake on the plain HTTP port"] == 2


async def test_sdk_exporter_with_an_https_endpoint_on_the_plain_port(running: Running) -> None:
    exporter = HttpSpanExporter(endpoint=running.http_url.replace("http://", "https://") + "/v1/traces", timeout=5)
    assert await exported(exporter) is SpanExportResult.FAILURE
    found = await diagnosed(running, Problem.TLS_ON_PLAIN_PORT)
    assert "OTEL_EXPORTER_OTLP_TRACES_INSECURE=true" in found.fix
    (row,) = running.receivers.sources.rows()
    assert (row.host, row.transport, row.service) == ("127.0.0.1", "tls", "")
    assert row.refused[Problem.TLS_ON_PLAIN_PORT.value] >= 1 and row.accepted == 0


async def test_grpc_exporter_on_the_http_port(running: Running) -> None:
    assert running.receivers.http is not None
    exporter = GrpcSpanExporter(endpoint=f"127.0.0.1:{running.receivers.http.port}", insecure=True, timeout=5)
    assert await exported(exporter) is SpanExportResult.FAILURE
    found = await diagnosed(running, Problem.GRPC_ON_HTTP_PORT)
    assert found.message == f"127.0.0.1 is a gRPC (HTTP/2) client on the OTLP/HTTP port {running.receivers.http.port}"
    assert found.fix == (f"point it at the gRPC port ({running.grpc_endpoint}) or set "
                         "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf to use this port")
    assert running.receivers.sources.rows()[0].transport == "grpc"


async def test_http1_on_the_grpc_port_is_answered_by_grpcio_alone(running: Running) -> None:
    """grpcio owns the gRPC socket: it answers an HTTP/1 request with its HTTP/2 settings and closes. Seeing
    it here would take a proxy in front of every gRPC byte, so the doctor does not (the README says so)."""
    assert running.receivers.grpc is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", running.receivers.grpc.port)
    writer.write(b"POST /v1/traces HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert answer[3] == 0x04 and not answer.startswith(b"HTTP/")  # an HTTP/2 SETTINGS frame, then EOF
    result = await curl("-X", "POST", f"http://{running.grpc_endpoint}/v1/traces")
    assert result.returncode != 0 and "HTTP/0.9" in result.stderr  # what the user sees instead
    assert running.receivers.doctor.problems() == []


@pytest.mark.parametrize(
    ("variable", "value", "path", "fix"),
    [
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "", "/", "the URL lacks /v1/traces"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "/v1/trace", "/v1/trace", "the path is /v1/traces"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "/v1/traces", "/v1/traces/v1/traces", "the signal path is in the URL twice"),
    ],
    ids=["full-url-var-given-a-base", "singular", "base-url-var-given-a-full-one"],
)
async def test_wrong_paths_from_the_sdk_exporter(running: Running, monkeypatch: pytest.MonkeyPatch,
                                                 variable: str, value: str, path: str, fix: str) -> None:
    monkeypatch.setenv(variable, running.http_url + value)
    assert await exported(HttpSpanExporter(timeout=5)) is SpanExportResult.FAILURE
    found = await diagnosed(running, Problem.WRONG_PATH)
    assert found.message == f"127.0.0.1 sent an export to {path}, which is not an OTLP path"
    assert found.fix == (f"{fix}: OTEL_EXPORTER_OTLP_ENDPOINT takes the base URL ({running.http_url}) and the SDK "
                         "appends /v1/traces, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT takes the full URL "
                         f"({running.http_url}/v1/traces) and is used as it is")
    # Taking the fix: the variable that wants a full URL gets one, or the base-URL one a base.
    monkeypatch.setenv(variable, running.http_url + ("/v1/traces" if "TRACES" in variable else ""))
    assert await exported(HttpSpanExporter(timeout=5)) is SpanExportResult.SUCCESS


async def test_wrong_log_path_with_curl_and_a_get_is_only_counted(running: Running) -> None:
    result = await curl("-X", "POST", "-H", "Content-Type: application/json", "--data-binary", "{}",
                        "-o", "/dev/null", "-w", "%{http_code}", f"{running.http_url}/v1/logs/")
    assert result.stdout == "404"
    found = await diagnosed(running, Problem.WRONG_PATH)
    assert found.message == "127.0.0.1 sent an export to /v1/logs/, which is not an OTLP path"
    assert found.fix.startswith("the path is /v1/logs: OTEL_EXPORTER_OTLP_ENDPOINT takes the base URL")
    # A browser or a health check GETs: counted like every 404, not diagnosed as an exporter's mistake.
    assert (await curl("-o", "/dev/null", "-w", "%{http_code}", f"{running.http_url}/")).stdout == "404"
    await eventually(lambda: running.receivers.stats.requests_rejected["http: 404 unknown path"] == 2)
    assert len(running.receivers.doctor.problems()) == 1


async def test_missing_and_wrong_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    config = ReceiverConfig(grpc_port=0, http_port=0, security=Security(auth_token=TOKEN))
    async with running_receivers(config) as running:
        assert await exported(HttpSpanExporter(endpoint=f"{running.http_url}/v1/traces", timeout=5)) \
            is SpanExportResult.FAILURE
        missing = await diagnosed(running, Problem.MISSING_TOKEN)
        assert missing.text == ("127.0.0.1 sent an export without the bearer token ollama-tui requires: set "
                                "OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer%20<token> with the --auth-token value")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20wrong")
        assert await exported(GrpcSpanExporter(endpoint=running.grpc_endpoint, insecure=True, timeout=5)) \
            is SpanExportResult.FAILURE
        wrong = await diagnosed(running, Problem.WRONG_TOKEN)
        assert wrong.message == "127.0.0.1 sent an export with a wrong bearer token" and wrong.fix == missing.fix
        grpc_row = next(r for r in running.receivers.sources.rows() if r.transport == "grpc")
        assert grpc_row.refused["unauthenticated"] == 1
        # The fix, as written, works.
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"authorization=Bearer%20{TOKEN}")
        assert await exported(HttpSpanExporter(endpoint=f"{running.http_url}/v1/traces", timeout=5)) \
            is SpanExportResult.SUCCESS


def big_batch(tracer: trace.Tracer) -> None:
    for i in range(600):
        with tracer.start_as_current_span(f"span {i}", attributes={"gen_ai.prompt": "x" * 2000}):
            pass


async def test_oversized_batch() -> None:
    async with running_receivers(ReceiverConfig(grpc_port=0, http_port=0, max_message_bytes=1 << 20)) as running:
        exporter = HttpSpanExporter(endpoint=f"{running.http_url}/v1/traces", timeout=5)
        assert await exported(exporter, record(big_batch)) is SpanExportResult.FAILURE
        found = await diagnosed(running, Problem.TOO_LARGE)
        assert found.text == ("127.0.0.1 sent a request larger than the 1 MiB limit: start ollama-tui with a larger "
                              "--max-request-mib, or make the exporter's batches smaller with "
                              "OTEL_BSP_MAX_EXPORT_BATCH_SIZE (default 512)")


async def test_unsupported_content_type_and_encoding(running: Running) -> None:
    url = f"{running.http_url}/v1/traces"
    wrong_type = await curl("-H", "Content-Type: text/plain", "--data-binary", "hello", "-o", "/dev/null",
                            "-w", "%{http_code}", url)
    assert wrong_type.stdout == "415"
    found = await diagnosed(running, Problem.CONTENT_TYPE)
    assert found.text == ("127.0.0.1 sent Content-Type 'text/plain', which OTLP/HTTP does not use: send "
                          "application/x-protobuf or application/json: set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf "
                          "(or http/json)")
    wrong_encoding = await curl("-H", "Content-Type: application/json", "-H", "Content-Encoding: br",
                                "--data-binary", json_body().decode(), "-o", "/dev/null", "-w", "%{http_code}", url)
    assert wrong_encoding.stdout == "415"
    found = await diagnosed(running, Problem.CONTENT_ENCODING)
    assert found.text == ("127.0.0.1 sent Content-Encoding 'br', which ollama-tui cannot decode: set "
                          "OTEL_EXPORTER_OTLP_COMPRESSION=gzip (or none)")


def test_first_bytes_recognised() -> None:
    assert sniff(b"\x16\x03\x01\x02\x00\x01") is Problem.TLS_ON_PLAIN_PORT
    assert sniff(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") is Problem.GRPC_ON_HTTP_PORT
    assert sniff(b"POST /v1/traces HTTP/1.1\r\n") is None


def test_diagnoses_are_bounded_and_keep_the_recent() -> None:
    doctor = Doctor(max_diagnoses=2)
    for path in ("/a", "/b", "/a", "/c"):
        doctor.report("10.0.0.1", Problem.WRONG_PATH, path)
    assert [(d.detail, d.count) for d in doctor.problems()] == [("/c", 1), ("/a", 2)]
    assert doctor.dropped == 1
    assert [d.detail for d in doctor.take_new()] == ["/a", "/b", "/c"]
    long_path = "/" + "x" * 1000
    doctor.report("10.0.0.1", Problem.WRONG_PATH, long_path)
    assert len(doctor.problems()[0].message) < 200


def test_a_path_or_peer_from_the_network_is_made_safe_once_for_every_reader() -> None:
    """aiohttp hands the path over percent-decoded: ``POST /%1b%5d0;pwned%07`` would set a terminal's title."""
    doctor = Doctor()
    doctor.report("10.0.0.9\x1b[2J", Problem.WRONG_PATH, "/\x1b]0;pwned\x07")
    (found,) = doctor.take_new()
    assert "\x1b" not in found.text and "\x07" not in found.text
    assert found.source == "10.0.0.9\\e[2J" and found.detail == "/\\e]0;pwned\\x07"
