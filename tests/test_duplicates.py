"""A span received again after it was taken (an exporter retrying after its gRPC deadline, though its first
attempt got through) is acknowledged and dropped at the ingest, so the store, ``--save``, ``--forward`` and
``--print --json`` all have it once, and it is counted."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import urllib.request
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export import SpanExportResult

from support.otlp_bodies import CHILD_ID, ROOT_ID, TRACE_ID, protobuf_request
from support.processes import COMMAND, started
from support.receivers import Running, export, make_exporter
from support.sdk_spans import nested_trace, record
from tui.console.run import summary
from tui.receiver.ingest import RecentSpans

TRACES = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.mark.parametrize("transport", ["grpc", "http"])
async def test_the_same_export_twice_is_acknowledged_and_kept_once(running: Running, transport: str) -> None:
    spans = record(nested_trace)
    exporter = make_exporter(running, transport, timeout=10)
    try:
        assert await export(exporter, spans) is SpanExportResult.SUCCESS
        assert await export(exporter, spans) is SpanExportResult.SUCCESS  # the exporter did nothing wrong
    finally:
        exporter.shutdown()
    await running.wait_for_spans(len(spans))
    stats, store = running.receivers.stats, running.store
    assert (stats.spans_accepted, stats.duplicate_spans, stats.duplicate_requests) == (len(spans), len(spans), 1)
    assert (store.span_count, store.spans_added, store.spans_replaced) == (len(spans), len(spans), 0)
    assert f"{len(spans)} duplicate spans ignored (sent again in 1 requests" in summary(stats, store)


async def test_a_request_partly_sent_before_passes_on_only_its_new_spans(running: Running) -> None:
    """The listeners (``--save``, ``--forward``) get the request without the spans they already had; a span
    twice in one request is kept once too."""
    passed_on: list[tuple[ExportTraceServiceRequest, int]] = []
    running.receivers.ingest.listeners.append(
        lambda body, count: passed_on.append((ExportTraceServiceRequest.FromString(body), count)))
    first = protobuf_request()  # the root and its child
    again = protobuf_request()
    spans = again.resource_spans[0].scope_spans[0].spans
    third = spans.add()
    third.CopyFrom(spans[1])
    third.span_id = bytes.fromhex("00000000000000aa")
    spans.append(third)  # and the new span a second time, in the same request
    for request in (first, again):  # from a thread: the receivers answer on this loop
        await asyncio.to_thread(_post, running.http_url, request.SerializeToString())
    await running.wait_for_spans(3)
    assert [count for _, count in passed_on] == [2, 1]
    (resent,) = [s for rs in passed_on[1][0].resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert resent.span_id.hex() == "00000000000000aa"
    assert passed_on[1][0].resource_spans[0].resource == first.resource_spans[0].resource
    stats = running.receivers.stats
    assert (stats.spans_accepted, stats.duplicate_spans, stats.duplicate_requests) == (3, 3, 1)


def test_print_json_and_save_have_each_span_once(tmp_path: Path) -> None:
    """The whole command: the same request over HTTP, then over gRPC; stdout and the --save file each hold
    the two spans once, and the summary says what was ignored."""
    saved = tmp_path / "saved.jsonl"
    body = protobuf_request().SerializeToString()
    with started([*COMMAND, "--print", "--json", "--save", str(saved), "--grpc-port", "0", "--http-port", "0"],
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stderr is not None
        banner = proc.stderr.readline()
        ports = re.search(r"grpc 127\.0\.0\.1:(\d+) · http 127\.0\.0\.1:(\d+)", banner)
        assert ports, banner
        _post(f"http://127.0.0.1:{ports.group(2)}", body)
        _post(f"http://127.0.0.1:{ports.group(2)}", body)
        with grpc.insecure_channel(f"127.0.0.1:{ports.group(1)}") as channel:
            channel.unary_unary(TRACES)(body, timeout=10)  # acknowledged: no error raised
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    printed = [(line["traceId"], line["spanId"]) for line in map(json.loads, out.splitlines())]
    assert printed == [(TRACE_ID, ROOT_ID), (TRACE_ID, CHILD_ID)]
    requests = [json.loads(line) for line in saved.read_text().splitlines()]
    assert [s["spanId"] for r in requests for rs in r["resourceSpans"] for ss in rs["scopeSpans"]
            for s in ss["spans"]] == [ROOT_ID, CHILD_ID]
    assert "2 spans accepted" in err and "4 duplicate spans ignored (sent again in 2 requests" in err


def test_the_recent_window_is_bounded_and_remembers_at_least_a_generation() -> None:
    recent = RecentSpans(generation=4)
    for i in range(4):  # fills the first generation, which then becomes the previous one
        recent.remember({("t", f"{i}")})
    for i in range(4, 7):
        recent.remember({("t", f"{i}")})
    assert recent.split([_Span("t", "0")])[0] == []  # still remembered: two generations are held
    recent.remember({("t", "7")})  # a second rotation drops the first generation
    assert [s.span_id for s in recent.split([_Span("t", "0"), _Span("t", "7")])[0]] == ["0"]


class _Span:
    """What :class:`RecentSpans` reads of a span."""

    def __init__(self, trace_id: str, span_id: str) -> None:
        self.trace_id, self.span_id = trace_id, span_id


def _post(base_url: str, body: bytes) -> None:
    request = urllib.request.Request(f"{base_url}/v1/traces", data=body,
                                     headers={"Content-Type": "application/x-protobuf"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
