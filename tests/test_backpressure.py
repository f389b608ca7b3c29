"""Back-pressure: a full queue or a late loop answers 503 / UNAVAILABLE; the exporter's own retry gets through."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import grpc
import pytest
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status
from opentelemetry.sdk.trace.export import SpanExportResult

from support.event_loop import eventually, loop_kept_late
from support.otlp_bodies import protobuf_request
from support.receivers import export, make_exporter, running_receivers
from support.sdk_spans import nested_trace, record
from tui.receiver import ReceiverConfig, pump
from tui.receiver.ingest import BACK_PRESSURE

TRACES = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.mark.parametrize("transport", ["grpc", "http"])
async def test_full_queue_pushes_back_and_retry_succeeds(transport: str) -> None:
    config = ReceiverConfig(grpc_port=0, http_port=0, queue_spans=5)
    async with running_receivers(config, pumping=False) as running:
        stats = running.receivers.stats
        first, second = record(nested_trace), record(nested_trace)
        exporter = make_exporter(running, transport, timeout=30)
        try:
            assert await export(exporter, first) is SpanExportResult.SUCCESS  # fits: the queue was empty
            retrying = asyncio.create_task(export(exporter, second))  # 4 + 4 > 5: refused, then retried
            await eventually(lambda: stats.spans_rejected[BACK_PRESSURE] >= len(second))
            assert not retrying.done()
            assert running.store.span_count == 0
            draining = asyncio.create_task(pump(running.receivers.queue, running.store))
            try:
                assert await retrying is SpanExportResult.SUCCESS
                await running.wait_for_spans(len(first) + len(second))
            finally:
                draining.cancel()
        finally:
            exporter.shutdown()
        assert stats.spans_accepted == len(first) + len(second) == running.store.span_count
        refused_attempts = stats.spans_rejected[BACK_PRESSURE] // len(second)
        assert refused_attempts >= 1
        assert stats.requests[f"{transport} traces"] == 2 + refused_attempts


async def test_back_pressure_answers_carry_retry_hints() -> None:
    """HTTP says 503 with Retry-After; gRPC says UNAVAILABLE with a RetryInfo the SDK reads."""
    body = protobuf_request().SerializeToString()  # 2 spans
    filling = protobuf_request()  # 2 other spans: ``body`` sent twice would be a duplicate, acknowledged
    for span in filling.resource_spans[0].scope_spans[0].spans:
        span.trace_id = bytes.fromhex("ab" * 16)
    first_body = filling.SerializeToString()
    config = ReceiverConfig(grpc_port=0, http_port=0, queue_spans=3)
    async with running_receivers(config, pumping=False) as running:
        headers = {"Content-Type": "application/x-protobuf"}
        async with aiohttp.ClientSession() as session:
            async with session.post(running.http_url + "/v1/traces", data=first_body, headers=headers) as first:
                assert first.status == 200
            async with session.post(running.http_url + "/v1/traces", data=body, headers=headers) as refused:
                assert refused.status == 503
                assert refused.headers["Retry-After"] == "1"
        async with grpc.aio.insecure_channel(running.grpc_endpoint) as channel:
            call = channel.unary_unary(TRACES)
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await call(body, timeout=10)
        assert error.value.code() is grpc.StatusCode.UNAVAILABLE
        trailers = dict(error.value.trailing_metadata())
        assert RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"]).retry_delay.seconds == 1
        assert running.receivers.stats.spans_rejected[BACK_PRESSURE] == 4


def _post_in_thread(url: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    """A blocking HTTP client, for use while the loop the receivers share is held."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/x-protobuf"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _grpc_in_thread(endpoint: str, body: bytes, timeout: float = 10) -> grpc.RpcError | None:
    with grpc.insecure_channel(endpoint) as channel:
        try:
            channel.unary_unary(TRACES)(body, timeout=timeout)
        except grpc.RpcError as error:
            return error
    return None


async def test_a_late_loop_refuses_exports_before_decoding_them() -> None:
    """Exporters sending faster than the app can take make its loop late: they are told to retry."""
    body = protobuf_request().SerializeToString()
    async with running_receivers() as running:
        stats = running.receivers.stats
        url = running.http_url + "/v1/traces"
        async with loop_kept_late(running.receivers.loop_lag):
            status, headers, answer = await asyncio.to_thread(_post_in_thread, url, body)
            # Not even read: garbage gets the same answer, not a 400, so refusing costs nothing.
            garbage_status, _, _ = await asyncio.to_thread(_post_in_thread, url, b"\xff" * 64)
            error = await asyncio.to_thread(_grpc_in_thread, running.grpc_endpoint, body)
        assert (status, garbage_status) == (503, 503)
        assert headers["Retry-After"] == "1"
        assert "cannot keep up" in Status.FromString(answer).message
        assert error is not None and error.code() is grpc.StatusCode.UNAVAILABLE
        trailers = dict(error.trailing_metadata())
        assert RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"]).retry_delay.seconds == 1
        assert stats.retries_asked == 3
        assert stats.requests_rejected == {"http traces: busy, retry asked": 2, "grpc traces: busy, retry asked": 1}
        assert stats.spans_accepted == 0 and not stats.spans_rejected  # refused whole, never decoded
        # Once the loop keeps time again, the same export is taken.
        await eventually(lambda: not running.receivers.loop_lag.late_in_a_row)  # until a tick comes on time
        status, _, _ = await asyncio.to_thread(_post_in_thread, url, body)
        assert status == 200
        await running.wait_for_spans(2)


async def test_the_sdk_exporter_retries_through_a_late_loop() -> None:
    async with running_receivers() as running:
        stats = running.receivers.stats
        spans = record(nested_trace)
        exporter = make_exporter(running, "http", timeout=30)
        try:
            async with loop_kept_late(running.receivers.loop_lag):
                exporting = asyncio.create_task(export(exporter, spans))
                await eventually(lambda: stats.retries_asked, poll=0)
            assert await exporting is SpanExportResult.SUCCESS
        finally:
            exporter.shutdown()
        await running.wait_for_spans(len(spans))
        assert stats.spans_accepted == len(spans)


async def test_a_grpc_export_whose_deadline_passes_before_the_loop_gets_to_it_is_not_taken() -> None:
    """gRPC calls wait on their own threads for the loop's decision. If the exporter's deadline passes
    first, it is told so, and the request must not be taken later: the exporter will send it again."""
    body = protobuf_request().SerializeToString()
    async with running_receivers() as running:
        stats = running.receivers.stats
        calling = asyncio.get_running_loop().run_in_executor(None, _grpc_in_thread, running.grpc_endpoint, body, 1.0)
        time.sleep(2.0)  # the loop is held past the exporter's deadline
        error = await calling
        assert error is not None and error.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        await eventually(lambda: stats.requests_rejected)  # the gRPC thread has it counted on the loop
        assert stats.requests_rejected == {"grpc: deadline passed before it was taken": 1}  # counted, shown
        assert stats.spans_accepted == 0 and running.store.span_count == 0
        assert await asyncio.to_thread(_grpc_in_thread, running.grpc_endpoint, body) is None
        await running.wait_for_spans(2)
