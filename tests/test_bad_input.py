"""Bad input gets the status code the OTLP spec gives, and the very next valid export succeeds."""

from __future__ import annotations

import gzip
import zlib

import aiohttp
import grpc
import pytest
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace.export import SpanExportResult

from support.otlp_bodies import protobuf_request
from support.receivers import Running, export, make_exporter, running_receivers
from support.sdk_spans import nested_trace, record
from tui.receiver import ReceiverConfig

LIMIT = 1024 * 1024
GARBAGE = b"\xff\xff\xff\xff\xff\xff"  # an invalid tag: never parses, unlike most random bytes
TRACES = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.fixture
async def small() -> Running:
    async with running_receivers(ReceiverConfig(grpc_port=0, http_port=0, max_message_bytes=LIMIT)) as r:
        yield r


async def _valid_export_succeeds(running: Running, transport: str) -> None:
    spans = record(nested_trace)
    before = running.store.span_count
    exporter = make_exporter(running, transport)
    try:
        assert await export(exporter, spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    await running.wait_for_spans(before + len(spans))


def _truncated() -> bytes:
    body = protobuf_request().SerializeToString()
    return body[: len(body) // 2]


HTTP_CASES = {
    "random-bytes": ("POST", "/v1/traces", {"Content-Type": "application/x-protobuf"}, GARBAGE, 400),
    "truncated-protobuf": ("POST", "/v1/traces", {"Content-Type": "application/x-protobuf"}, _truncated(), 400),
    "invalid-json": ("POST", "/v1/traces", {"Content-Type": "application/json"}, b'{"resourceSpans": [', 400),
    "json-not-object": ("POST", "/v1/traces", {"Content-Type": "application/json"}, b"[1, 2]", 400),
    "bad-gzip": ("POST", "/v1/traces", {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
                 b"not gzip at all", 400),
    "truncated-gzip": ("POST", "/v1/traces", {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
                       gzip.compress(protobuf_request().SerializeToString())[:-12], 400),
    "wrong-content-type": ("POST", "/v1/traces", {"Content-Type": "text/plain"}, b"hello", 415),
    "unknown-encoding": ("POST", "/v1/traces", {"Content-Type": "application/x-protobuf", "Content-Encoding": "br"},
                         b"\x00", 415),
    "oversized-body": ("POST", "/v1/traces", {"Content-Type": "application/x-protobuf"}, b"\x00" * (LIMIT + 1), 413),
    "gzip-bomb": ("POST", "/v1/traces", {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
                  gzip.compress(b"\x00" * (64 * LIMIT), 9), 413),
    "deflate-bomb": ("POST", "/v1/logs", {"Content-Type": "application/x-protobuf", "Content-Encoding": "deflate"},
                     zlib.compress(b"\x00" * (64 * LIMIT), 9), 413),
    "get": ("GET", "/v1/traces", {}, b"", 405),
    "put-metrics": ("PUT", "/v1/metrics", {"Content-Type": "application/x-protobuf"}, b"", 405),
    "unknown-path": ("POST", "/v2/traces", {"Content-Type": "application/x-protobuf"}, b"", 404),
}


@pytest.mark.parametrize("case", list(HTTP_CASES))
async def test_http_bad_input(small: Running, case: str) -> None:
    method, path, headers, body, expected = HTTP_CASES[case]
    async with aiohttp.ClientSession() as session:
        async with session.request(method, small.http_url + path, data=body, headers=headers) as response:
            assert response.status == expected, await response.text()
            payload = await response.read()
    status = Status.FromString(payload) if response.content_type == "application/x-protobuf" else None
    if status is not None:
        assert status.message, "every failure carries a google.rpc.Status with a message"
    if expected == 405:
        assert response.headers["Allow"] == "POST"
    assert sum(small.receivers.stats.requests_rejected.values()) == 1
    assert small.store.span_count == 0
    await _valid_export_succeeds(small, "http")


def test_gzip_bomb_is_small_on_the_wire() -> None:
    """The bomb above really is a bomb: tiny compressed, 64 MiB inflated."""
    assert len(HTTP_CASES["gzip-bomb"][3]) < 100 * 1024


async def test_json_errors_answer_in_json(small: Running) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(small.http_url + "/v1/traces", data=b"{oops",
                                headers={"Content-Type": "application/json"}) as response:
            assert response.status == 400
            assert response.content_type == "application/json"
            assert "not valid JSON" in (await response.json())["message"]


GRPC_CASES = {
    "random-bytes": (GARBAGE, grpc.StatusCode.INVALID_ARGUMENT),
    "truncated-protobuf": (_truncated(), grpc.StatusCode.INVALID_ARGUMENT),
    "oversized": (protobuf_request().SerializeToString() + b"\x0a\x00" * LIMIT, grpc.StatusCode.RESOURCE_EXHAUSTED),
}


@pytest.mark.parametrize("case", list(GRPC_CASES))
async def test_grpc_bad_input(small: Running, case: str) -> None:
    body, expected = GRPC_CASES[case]
    async with grpc.aio.insecure_channel(small.grpc_endpoint) as channel:
        call = channel.unary_unary(TRACES, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await call(body, timeout=10)
    assert error.value.code() is expected
    assert small.store.span_count == 0
    await _valid_export_succeeds(small, "grpc")


async def test_invalid_ids_are_a_counted_partial_success(small: Running) -> None:
    request = protobuf_request()
    bad = request.resource_spans[0].scope_spans[0].spans.add()
    bad.trace_id = b"\x00" * 16
    bad.span_id = b"\x01" * 8
    async with aiohttp.ClientSession() as session:
        async with session.post(small.http_url + "/v1/traces", data=request.SerializeToString(),
                                headers={"Content-Type": "application/x-protobuf"}) as response:
            assert response.status == 200
            answer = ExportTraceServiceResponse.FromString(await response.read())
    assert answer.partial_success.rejected_spans == 1
    assert "all zeros" in answer.partial_success.error_message
    await small.wait_for_spans(2)
    assert small.receivers.stats.spans_rejected["invalid id"] == 1
