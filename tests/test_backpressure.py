"""A full queue answers with OTLP back-pressure; the exporter's own retry then gets through."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry.sdk.trace.export import SpanExportResult

from conftest import export, make_exporter, running_receivers
from sdk_spans import nested_trace, record
from tui.receiver import ReceiverConfig, pump
from tui.receiver.ingest import BACK_PRESSURE


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
            async with asyncio.timeout(10):
                while stats.spans_rejected[BACK_PRESSURE] < len(second):
                    await asyncio.sleep(0.01)
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
    import aiohttp
    import grpc
    from google.rpc.error_details_pb2 import RetryInfo

    from otlp_bodies import protobuf_request

    body = protobuf_request().SerializeToString()  # 2 spans
    config = ReceiverConfig(grpc_port=0, http_port=0, queue_spans=3)
    async with running_receivers(config, pumping=False) as running:
        headers = {"Content-Type": "application/x-protobuf"}
        async with aiohttp.ClientSession() as session:
            async with session.post(running.http_url + "/v1/traces", data=body, headers=headers) as first:
                assert first.status == 200
            async with session.post(running.http_url + "/v1/traces", data=body, headers=headers) as refused:
                assert refused.status == 503
                assert refused.headers["Retry-After"] == "1"
        async with grpc.aio.insecure_channel(running.grpc_endpoint) as channel:
            call = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await call(body, timeout=10)
        assert error.value.code() is grpc.StatusCode.UNAVAILABLE
        trailers = dict(error.value.trailing_metadata())
        assert RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"]).retry_delay.seconds == 1
        assert running.receivers.stats.spans_rejected[BACK_PRESSURE] == 4
