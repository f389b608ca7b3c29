"""Named hostile inputs: each gets the right answer or is stored and shown sanely, and the next valid
export still succeeds."""

from __future__ import annotations

import asyncio
import gzip
import io
import logging
import socket

import aiohttp
import grpc
import pytest
from google.rpc.error_details_pb2 import RetryInfo
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from rich.cells import cell_len

from support.app import SIZE, detail_texts, make_app, screen_text, wait_until
from support.event_loop import eventually
from support.otlp_bodies import protobuf_request
from support.receivers import Running
from tui.app.textual_compat import screen_lines
from tui.console.printer import TreePrinter
from tui.model.store import TraceStore
from tui.receiver.decode import ExportTraceServiceRequest

TRACES = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
PROTOBUF = {"Content-Type": "application/x-protobuf"}


async def post(running: Running, body: bytes, headers: dict[str, str] | None = None) -> int:
    """POST as an exporter does: a 503 is the app pushing back while its loop is late (after drawing
    100 000 attributes on a loaded machine, say), so it is retried after its ``Retry-After``; any other
    status is the answer."""
    async with aiohttp.ClientSession() as session, asyncio.timeout(30):
        while True:
            async with session.post(f"{running.http_url}/v1/traces", data=body,
                                    headers=headers or PROTOBUF) as response:
                await response.read()
                if response.status != 503:
                    return response.status
                await asyncio.sleep(float(response.headers["Retry-After"]))


async def grpc_call(running: Running, body: bytes) -> grpc.StatusCode:
    """Call Export as an exporter does: ``UNAVAILABLE`` is retried after its ``RetryInfo`` delay."""
    async with grpc.aio.insecure_channel(running.grpc_endpoint,
                                         options=[("grpc.max_send_message_length", 64 << 20)]) as channel:
        async with asyncio.timeout(60):
            while True:
                try:
                    await channel.unary_unary(TRACES)(body, timeout=30)
                except grpc.aio.AioRpcError as exc:
                    if exc.code() is not grpc.StatusCode.UNAVAILABLE:
                        return exc.code()
                    trailers = dict(exc.trailing_metadata() or ())
                    await asyncio.sleep(RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"]).retry_delay.seconds)
                else:
                    return grpc.StatusCode.OK


async def next_export_works(running: Running) -> None:
    before = running.store.span_count
    assert await post(running, protobuf_request().SerializeToString()) == 200
    await running.wait_for_spans(before + 2 if before + 2 <= running.store.max_spans else 1)


def request_with(span: PbSpan) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.append(span)
    return request


def base_span(**fields) -> PbSpan:
    return PbSpan(**{"trace_id": b"\x01" * 16, "span_id": b"\x02" * 8, "name": "hostile",
                     "start_time_unix_nano": 10, "end_time_unix_nano": 20, **fields})


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def nested_any_value(depth: int) -> bytes:
    """An AnyValue holding an array holding an AnyValue … ``depth`` times, encoded by hand."""
    inner = b"\x0a\x01x"  # string_value "x"
    for _ in range(depth):
        array = b"\x0a" + _varint(len(inner)) + inner  # ArrayValue.values (field 1)
        inner = b"\x2a" + _varint(len(array)) + array  # AnyValue.array_value (field 5)
    return inner


@pytest.mark.parametrize("transport", ["http", "grpc"])
async def test_invalid_utf8_in_a_string_field(running: Running, transport: str) -> None:
    body = request_with(base_span()).SerializeToString().replace(b"hostile", b"host\xffle")
    if transport == "http":
        assert await post(running, body) == 400
    else:
        assert await grpc_call(running, body) is grpc.StatusCode.INVALID_ARGUMENT
    await next_export_works(running)


@pytest.mark.parametrize("transport", ["http", "grpc"])
async def test_any_value_nested_10_000_deep(running: Running, transport: str) -> None:
    value = nested_any_value(10_000)
    key_value = b"\x0a\x04deep" + b"\x12" + _varint(len(value)) + value  # KeyValue key=1, value=2
    span = base_span().SerializeToString() + b"\x4a" + _varint(len(key_value)) + key_value  # Span.attributes = 9
    scope_spans = b"\x12" + _varint(len(span)) + span  # ScopeSpans.spans = 2
    resource_spans = b"\x12" + _varint(len(scope_spans)) + scope_spans  # ResourceSpans.scope_spans = 2
    body = b"\x0a" + _varint(len(resource_spans)) + resource_spans  # request.resource_spans = 1
    if transport == "http":
        assert await post(running, body) == 400
    else:
        assert await grpc_call(running, body) is grpc.StatusCode.INVALID_ARGUMENT
    await next_export_works(running)


async def test_timestamps_zero_reversed_and_far_future_are_stored_and_shown(running: Running) -> None:
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    for i, (start, end) in enumerate([(0, 0), (2_000_000_000, 1_000_000_000), (2**64 - 2, 2**64 - 1)]):
        spans.append(PbSpan(trace_id=bytes([i + 1]) * 16, span_id=b"\x02" * 8, name=f"t{i}",
                            start_time_unix_nano=start, end_time_unix_nano=end))
    app = make_app(running)
    async with app.run_test(size=SIZE) as pilot:
        assert await post(running, request.SerializeToString()) == 200
        await wait_until(pilot, lambda: app.traces.trace_list.index.trace_count == 3)
        for _ in range(3):
            await pilot.press("enter", "l", "h", "h", "j")
        text = screen_text(app)
        assert all(name in text for name in ("t0", "t1", "t2"))
        assert all(t.duration_ns >= 0 for t in running.store)


async def test_100_000_attributes_and_a_10_mb_value(running: Running) -> None:
    many = base_span()
    many.attributes.extend(KeyValue(key=f"k{i}", value=AnyValue(int_value=i)) for i in range(100_000))
    big = PbSpan(trace_id=b"\x03" * 16, span_id=b"\x04" * 8, name="big", start_time_unix_nano=1,
                 end_time_unix_nano=2, attributes=[KeyValue(key="huge", value=AnyValue(string_value="x" * 10_000_000))])
    app = make_app(running)
    async with app.run_test(size=SIZE) as pilot:
        assert await post(running, request_with(many).SerializeToString()) == 200
        assert await post(running, gzip.compress(request_with(big).SerializeToString()),
                          {**PROTOBUF, "Content-Encoding": "gzip"}) == 200
        await wait_until(pilot, lambda: app.traces.trace_list.index.trace_count == 2)
        await pilot.press("g", "enter", "l")  # the 100 000-attribute span (the newest start)
        attributes = "\n".join(detail_texts(app, "attributes"))
        assert "Attributes (100000)" in attributes and "98,000 more attributes not listed" in attributes
        await pilot.press("h", "h", "G", "enter", "l", "tab")  # the 10 MB value (started at 1 ns)
        item = next(i for i in app.traces.detail.list("attributes").items if i.title == "huge")
        assert len(item.body) == 10_000_000
        rendered = "\n".join(detail_texts(app, "attributes"))
        assert "9,996,000 more characters (o opens it all)" in rendered
    await next_export_works(running)


async def test_a_parent_chain_10_000_deep_renders_and_prints(running: Running) -> None:
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    for i in range(10_000):
        span = PbSpan(trace_id=b"\x05" * 16, span_id=(i + 1).to_bytes(8, "big"), name=f"level {i}",
                      start_time_unix_nano=1000 + i, end_time_unix_nano=100_000)
        if i:
            span.parent_span_id = i.to_bytes(8, "big")
        spans.append(span)
    app = make_app(running)
    async with app.run_test(size=SIZE) as pilot:
        assert await post(running, request.SerializeToString()) == 200
        await wait_until(pilot, lambda: running.store.span_count == 10_000
                         and app.traces.trace_list.index.trace_count == 1)
        await pilot.press("enter", "G")
        assert app.traces.trace_list.current.span_row.depth == 9_999
        await pilot.press("t", "t", "t")  # the timeline of the whole chain
        await pilot.pause()
    store = TraceStore()  # --print's own store (the app above drained the shared one's changes)
    store.add_spans([s for t in running.store for s in t.spans.values()])
    out = io.StringIO()
    TreePrinter(store, out, color=False).poll(flush=True)
    assert out.getvalue().count("\n") == 10_001


async def test_100_000_spans_in_one_request(running: Running) -> None:
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    for i in range(100_000):
        spans.append(PbSpan(trace_id=(i // 10 + 1).to_bytes(16, "big"), span_id=(i + 1).to_bytes(8, "big"),
                            name="s", start_time_unix_nano=1, end_time_unix_nano=2))
    assert await grpc_call(running, request.SerializeToString()) is grpc.StatusCode.OK
    await running.wait_for_spans(100_000, timeout=30)
    await next_export_works(running)


async def test_slow_sender_idle_connections_and_wrong_content_length(running: Running,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    host, port = "127.0.0.1", running.receivers.http.port
    body = protobuf_request().SerializeToString()

    def misbehave() -> tuple[list[socket.socket], bytes, bytes]:
        # In a thread: connecting 200 sockets from the loop's own thread would stop it accepting them.
        idle = [socket.create_connection((host, port), timeout=10) for _ in range(200)]
        slow = socket.create_connection((host, port), timeout=10)
        slow.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                     b"Content-Length: 1000000\r\n\r\n" + b"\x0a" * 10)  # and never the rest
        answers = []
        for length, payload in ((len(body) // 2, body[: len(body) // 2]), (len(body) // 2, body)):
            # Content-Length shorter than the protobuf; then shorter than the bytes actually sent.
            wrong = socket.create_connection((host, port), timeout=10)
            wrong.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                          + f"Content-Length: {length}\r\nConnection: close\r\n\r\n".encode() + payload)
            answers.append(wrong.recv(4096))
            wrong.close()
        return [*idle, slow], answers[0], answers[1]

    sockets, truncated, overlong = await asyncio.to_thread(misbehave)
    try:
        assert truncated.startswith(b"HTTP/1.1 400") and b"not a valid ExportTraceServiceRequest" in truncated
        assert b" 400 " in overlong.split(b"\r\n", 1)[0]  # aiohttp refuses bytes after the declared body
        await next_export_works(running)  # all of that at once does not stop a real exporter
    finally:
        for sock in sockets:
            sock.close()
    # The slow sender left mid-body: counted, and no server-error traceback on stderr for it.
    stats = running.receivers.stats
    await eventually(lambda: stats.requests_rejected["http: connection closed mid-body"])
    assert not [r for r in caplog.records if r.name.startswith("aiohttp") and r.levelno >= logging.ERROR]


EVIL = "[bold]x[/] \x1b[2J\x1b]0;t\x07\r\u202e ﷽ 漢字 e\u0301\u0301 \x00\x9b"


async def test_terminal_safety_in_every_displayed_field(running: Running) -> None:
    span = base_span(name=EVIL, attributes=[KeyValue(key=EVIL, value=AnyValue(string_value=EVIL)),
                                            KeyValue(key="gen_ai.prompt.0.content", value=AnyValue(string_value=EVIL)),
                                            KeyValue(key="gen_ai.prompt.0.role", value=AnyValue(string_value=EVIL))])
    span.events.add(name=EVIL, time_unix_nano=15, attributes=[KeyValue(key=EVIL, value=AnyValue(string_value=EVIL))])
    span.status.code, span.status.message = 2, EVIL
    request = request_with(span)
    request.resource_spans[0].resource.attributes.append(KeyValue(key="service.name",
                                                                  value=AnyValue(string_value=EVIL)))
    app = make_app(running)
    async with app.run_test(size=SIZE) as pilot:
        assert await post(running, request.SerializeToString()) == 200
        await wait_until(pilot, lambda: app.traces.trace_list.index.trace_count == 1)
        await pilot.press("enter", "l")
        for tab in ("llm", "attributes", "events", "timeline"):
            app.query_one("TabbedContent").active = f"tab-{tab}"
            await pilot.pause()
            lines = screen_lines(app.screen)
            text = "\n".join(lines)
            assert not any(c in text for c in "\x1b\x07\r\x00\x9b"), tab
            assert "[bold]x[/]" in text and "\\e[2J" in text, tab
            assert all(cell_len(line) == SIZE[0] for line in lines), tab  # wide text never breaks lines


async def test_grpc_calls_that_never_send_their_message_hold_nothing() -> None:
    """40 calls on one connection send their headers and never their message (issue 12): with a token
    required, those without it are refused from their headers alone, those with it are ended with
    DEADLINE_EXCEEDED once the wait for the message runs out, each is counted, and a real exporter is
    served all along. The calls come from grpcio's own client, from a request iterator that never yields.
    Before the client has the server's settings it sends all 40 at once: those past the connection's
    stream cap are refused by gRPC core (UNAVAILABLE, "RST_STREAM"), and only those let in are counted."""
    import threading

    from opentelemetry.sdk.trace.export import SpanExportResult

    from support.receivers import export, make_exporter, running_receivers
    from support.sdk_spans import nested_trace, record
    from tui.receiver import ReceiverConfig
    from tui.receiver.grpc_server import UNAUTHENTICATED, stalled_reason
    from tui.receiver.security import Security

    token = "hostile-test-token"
    spans = record(nested_trace)
    release = threading.Event()

    def never_a_message():
        release.wait(60)  # bounded: the test releases it when it ends
        yield from ()

    def stall(channel: grpc.Channel, metadata: tuple[tuple[str, str], ...] = ()) -> list[grpc.StatusCode]:
        calls = [channel.stream_unary(TRACES).future(never_a_message(), timeout=30, metadata=metadata)
                 for _ in range(40)]
        return [call.exception(timeout=30).code() for call in calls]

    config = ReceiverConfig(grpc_port=0, http_port=0, security=Security(auth_token=token))
    async with running_receivers(config) as running:
        receiver = running.receivers.grpc
        rejected = running.receivers.stats.requests_rejected
        # A connection of its own, as an attacker's would be (not shared with the exporter's channel).
        channel = grpc.insecure_channel(running.grpc_endpoint, options=[("grpc.use_local_subchannel_pool", 1)])
        try:
            receiver.receive_timeout = 60.0  # longer than the calls' own 30 s: only refusing at once passes
            codes = await asyncio.to_thread(stall, channel)
            assert set(codes) <= {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNAVAILABLE}
            refused = codes.count(grpc.StatusCode.UNAUTHENTICATED)
            assert refused >= 1
            await eventually(lambda: rejected[f"grpc: {UNAUTHENTICATED}"] == refused)

            receiver.receive_timeout = 1.0
            stalling = asyncio.create_task(asyncio.to_thread(stall, channel, (("authorization", f"Bearer {token}"),)))
            exporter = make_exporter(running, "grpc", timeout=5, headers={"authorization": f"Bearer {token}"})
            try:
                assert await export(exporter, spans) is SpanExportResult.SUCCESS
            finally:
                exporter.shutdown()
            codes = await stalling
            assert set(codes) <= {grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE}
            ended = codes.count(grpc.StatusCode.DEADLINE_EXCEEDED)
            assert ended >= 1
            await eventually(lambda: rejected[f"grpc: {stalled_reason(1.0)}"] == ended)
        finally:
            release.set()
            channel.close()
        await running.wait_for_spans(len(spans))
