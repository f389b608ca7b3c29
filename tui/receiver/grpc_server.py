"""OTLP/gRPC receiver: ``TraceService``, ``LogsService`` and ``MetricsService`` on a gRPC server of its own.

The server is ``grpc.aio`` on an event loop of its own, in a thread of its own (``otlp-grpc``), not on
the app's loop. Every call is a coroutine there, so a call waiting for its request message holds no
thread, and the app's loop never takes calls: only the decision about each request (admit, decode,
accept) runs on it, as one callback.

Both choices were measured. On ``grpc.aio`` on the app's loop, new calls were taken one at a time
through that loop: with the loop busy under an HTTP flood, 16 gRPC exporters got 37 requests through
in 20 s while 48 HTTP exporters got 2 444. grpcio's threaded server then fixed that, but each call held
one of its 32 handler threads from its headers to its answer, waiting for its message included: one
connection opening 40 streams that sent headers and never a message held every thread, before the
token was even checked, and every exporter's call ran into its deadline.

So each call here, before it costs anything but a coroutine, must:

- carry the ``--auth-token``, checked from its headers before anything waits for its message;
- deliver its message within :data:`RECEIVE_TIMEOUT_SECONDS`, or be ended with ``DEADLINE_EXCEEDED``;
- be one of at most :data:`MAX_STREAMS_PER_CONNECTION` calls open on its connection (HTTP/2
  ``SETTINGS_MAX_CONCURRENT_STREAMS``: gRPC core resets the streams past it, which never reach us).

Connections are bounded as the HTTP receiver's are, by gRPC core itself: one with no call open for
:data:`IDLE_TIMEOUT_SECONDS` is closed, and at most :func:`connection_cap` are open at once. Past that
cap gRPC core closes each *new* connection as soon as it is accepted (it cannot close the oldest
instead, as the HTTP receiver does), until the idle timeout or their clients free a place; those
connections never reach us, so they are not counted.

Every call ended here is counted with the receivers' other rejections.

Handlers take the raw request bytes (no deserializer) and decode them with :mod:`tui.receiver.decode`,
so an undecodable message gets ``INVALID_ARGUMENT`` as the OTLP spec asks, not gRPC's generic
``INTERNAL``. Service and method names come from the descriptors shipped in opentelemetry-proto.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc.error_details_pb2 import RetryInfo
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from tui.receiver.connections import DEFAULT_MAX_CONNECTIONS, connection_cap
from tui.receiver.decode import BadRequest, parse_protobuf
from tui.receiver.doctor import Doctor, Problem
from tui.receiver.errors import PortUnavailable
from tui.receiver.ingest import RETRY_AFTER_SECONDS, ExportResult, Ingest, Outcome
from tui.receiver.security import Security
from tui.receiver.sources import BUSY, SourceTable, peer_host

_RETRY_METADATA = (
    ("google.rpc.retryinfo-bin", RetryInfo(retry_delay=Duration(seconds=RETRY_AFTER_SECONDS)).SerializeToString()),
)

#: The signal each service carries, named as OTLP/HTTP's paths name it.
_SIGNALS = {"TraceService": "traces", "LogsService": "logs", "MetricsService": "metrics"}

#: Seconds a call has, from its headers, to deliver its whole request message. An exporter sends its
#: message with its headers, and the SDK exporters' own deadline is 10 s, so a call still without its
#: message after this long is stalled (or a client that meant to stall it).
RECEIVE_TIMEOUT_SECONDS = 10.0
#: Calls one connection may have open at once. An exporter has one in flight, and gRPC clients in one
#: process share a connection: its trace, log and metric exporters, or the 16 exporters of the overload
#: test's load generator (twice that leaves room). gRPC core resets the streams past this
#: (``REFUSED_STREAM``, or ``ENHANCE_YOUR_CALM`` before the client acknowledged the settings); a
#: client that has the server's settings queues them instead.
MAX_STREAMS_PER_CONNECTION = 32
#: A connection with no call open for this long is closed (HTTP/2 ``GOAWAY``). gRPC clients open a new
#: one on their next call by themselves, so an exporter does not notice; a socket opened and left by
#: anyone else stops holding a file descriptor.
IDLE_TIMEOUT_SECONDS = 300.0

UNAUTHENTICATED_MESSAGE = "missing or wrong bearer token: send metadata authorization: Bearer <token>"
#: Reasons counted in ``ReceiverStats.requests_rejected`` (prefixed ``grpc: ``).
UNAUTHENTICATED = "unauthenticated"
NO_MESSAGE = "no request message"
DEADLINE_PASSED = "deadline passed before it was taken"


def stalled_reason(timeout: float) -> str:
    """The reason counted for a call ended because its message did not come in time."""
    return f"no request message within {timeout:g} s"


class _Answer(NamedTuple):
    """The event loop's decision about one call: a status to end it with, or the response to send."""

    code: grpc.StatusCode
    message: str = ""
    response: Any = None
    retry: bool = False


def _format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class OtlpGrpcReceiver:
    """Serves the three OTLP collector services on one ``grpc.aio`` server in a thread of its own."""

    def __init__(self, ingest: Ingest, host: str, port: int, max_message_bytes: int,
                 security: Security | None = None, sources: SourceTable | None = None,
                 doctor: Doctor | None = None, idle_timeout: float = IDLE_TIMEOUT_SECONDS,
                 max_connections: int | None = None) -> None:
        self.ingest = ingest
        self.sources = sources or SourceTable()
        self.doctor = doctor or Doctor()
        self.security = security or Security()
        self.host = host
        self.port = port
        self.max_message_bytes = max_message_bytes
        #: Read on every call, so a test may shorten it on a running receiver.
        self.receive_timeout = RECEIVE_TIMEOUT_SECONDS
        self.max_streams_per_connection = MAX_STREAMS_PER_CONNECTION
        self.idle_timeout = idle_timeout
        #: None: :func:`connection_cap`'s, from the open-files limit when the server starts.
        self.max_connections = max_connections
        self._loop: asyncio.AbstractEventLoop | None = None  # the app's: decisions and counters
        self._grpc_loop: asyncio.AbstractEventLoop | None = None  # the server's own, in its thread
        self._server: grpc.aio.Server | None = None
        self._thread: threading.Thread | None = None

    async def start(self) -> int:
        """Bind and start serving; returns the port actually bound (useful with port 0)."""
        self._loop = asyncio.get_running_loop()
        started: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._serve, args=(started,), name="otlp-grpc", daemon=True)
        self._thread.start()
        try:
            self.port = await asyncio.wrap_future(started)
        except asyncio.CancelledError:  # Ctrl+C during start-up: stop the server once it is up
            started.add_done_callback(lambda _: self._halt())
            raise
        except BaseException:
            await asyncio.to_thread(self._thread.join)
            self._thread = None
            raise
        return self.port

    async def stop(self, grace: float = 0.5) -> None:
        """Stop taking calls and finish those in progress (cancelling any still running after
        ``grace``). The app's loop keeps running meanwhile: the calls still waiting for its decision get it."""
        loop, server, thread = self._grpc_loop, self._server, self._thread
        self._grpc_loop = self._server = self._thread = None
        if loop is not None and server is not None:
            with contextlib.suppress(RuntimeError):  # its loop has already gone
                await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(server.stop(grace), loop))
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            await asyncio.to_thread(thread.join)

    def _halt(self) -> None:
        """Stop the server's loop without waiting (start-up was interrupted)."""
        loop, server = self._grpc_loop, self._server
        if loop is not None and server is not None:
            with contextlib.suppress(RuntimeError):
                asyncio.run_coroutine_threadsafe(server.stop(0), loop).add_done_callback(
                    lambda _: loop.call_soon_threadsafe(loop.stop))

    def _serve(self, started: concurrent.futures.Future[int]) -> None:
        """The ``otlp-grpc`` thread: the server's event loop, from start until :meth:`stop`."""
        if not started.set_running_or_notify_cancel():
            return
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            try:
                server, bound = loop.run_until_complete(self._start_server())
            except BaseException as exc:  # noqa: BLE001 - handed to start(), on the app's loop
                started.set_exception(exc)
                return
            self._grpc_loop, self._server = loop, server
            started.set_result(bound)
            loop.run_forever()
        finally:
            leftover = asyncio.all_tasks(loop)
            for task in leftover:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
            loop.close()

    async def _start_server(self) -> tuple[grpc.aio.Server, int]:
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", self.max_message_bytes),
                ("grpc.max_concurrent_streams", self.max_streams_per_connection),
                ("grpc.max_connection_idle_ms", round(self.idle_timeout * 1000)),
                ("grpc.max_allowed_incoming_connections",
                 self.max_connections or connection_cap(DEFAULT_MAX_CONNECTIONS)),
                # Without this, gRPC on Linux shares a port already served by another process
                # (SO_REUSEPORT) and the exporter's spans silently go to whichever one the kernel picks.
                ("grpc.so_reuseport", 0),
            ]
        )
        server.add_generic_rpc_handlers(
            [
                self._service(trace_service_pb2, "TraceService", trace_service_pb2.ExportTraceServiceRequest,
                              trace_service_pb2.ExportTraceServiceResponse, self._traces_response, self.ingest.traces),
                self._service(logs_service_pb2, "LogsService", logs_service_pb2.ExportLogsServiceRequest,
                              logs_service_pb2.ExportLogsServiceResponse, None, self.ingest.logs),
                self._service(metrics_service_pb2, "MetricsService", metrics_service_pb2.ExportMetricsServiceRequest,
                              metrics_service_pb2.ExportMetricsServiceResponse, None, self.ingest.metrics),
            ]
        )
        address = _format_address(self.host, self.port)
        key_pair = self.security.key_pair()
        try:
            if key_pair is None:
                bound = server.add_insecure_port(address)
            else:
                bound = server.add_secure_port(address, grpc.ssl_server_credentials([key_pair]))
        except RuntimeError as exc:
            raise PortUnavailable("gRPC", self.host, self.port, _bind_reason(exc)) from None
        if bound == 0:
            raise PortUnavailable("gRPC", self.host, self.port, "address already in use")
        await server.start()
        return server, bound

    @staticmethod
    def _traces_response(result: ExportResult) -> trace_service_pb2.ExportTraceServiceResponse:
        response = trace_service_pb2.ExportTraceServiceResponse()
        if result.rejected:
            response.partial_success.rejected_spans = result.rejected
            response.partial_success.error_message = result.message
        return response

    def _service(
        self,
        module: Any,
        service: str,
        request_type: Any,
        response_type: Any,
        make_response: Callable[[ExportResult], Any] | None,
        accept: Callable[[str, Any], ExportResult],
    ) -> grpc.GenericRpcHandler:
        full_name = module.DESCRIPTOR.services_by_name[service].full_name
        signal = _SIGNALS[service]

        def decide(body: bytes, host: str) -> _Answer:
            """On the app's event loop: everything that touches the queue and the counters."""
            busy = self.ingest.admit("grpc", signal)
            if busy is not None:
                self.sources.refused(host, "grpc", BUSY)
                return _Answer(grpc.StatusCode.UNAVAILABLE, busy, retry=True)
            try:
                request = parse_protobuf(request_type, body)
            except BadRequest as exc:
                self._refused("undecodable protobuf", host)
                return _Answer(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            stats, spans_before = self.ingest.stats, self.ingest.stats.spans_accepted
            result = accept("grpc", request)
            self.sources.record(host, "grpc", signal, request, result, stats.spans_accepted - spans_before)
            if result.outcome is Outcome.OVERLOADED:
                return _Answer(grpc.StatusCode.UNAVAILABLE, result.message, retry=True)
            return _Answer(grpc.StatusCode.OK, response=make_response(result) if make_response else response_type())

        async def export(_requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            """On the server's loop. Registered as request-streaming, so that it runs on the call's
            headers, before its message: an unauthorised call is answered without waiting for one, and
            the wait for it is bounded."""
            host = peer_host(context.peer())
            authorization = _metadata(context, "authorization")
            if not self.security.authorized(authorization):
                self._count(UNAUTHENTICATED, host,
                            Problem.MISSING_TOKEN if authorization is None else Problem.WRONG_TOKEN)
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)
            timeout = self.receive_timeout
            try:
                body = await asyncio.wait_for(context.read(), timeout)
            except asyncio.TimeoutError:
                self._count(stalled_reason(timeout), host)
                await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED,
                                    f"no request message within {timeout:g} s of the call's headers")
            if not isinstance(body, bytes):  # EOF: no message came, and none will
                try:
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "an Export call carries one request message")
                except grpc.aio.AbortError:  # answered: the client ended its side without sending one
                    self._count(NO_MESSAGE, host)
                    raise
                except Exception:  # noqa: BLE001 - the call had ended already (gRPC itself answered
                    # a message over the size limit, or the client left): there is no one to tell
                    return None
            answer = await self._on_loop(lambda: decide(body, host), context.time_remaining())
            if answer.code is grpc.StatusCode.OK:
                return answer.response
            await context.abort(answer.code, answer.message, _RETRY_METADATA if answer.retry else ())

        return grpc.method_handlers_generic_handler(
            full_name,
            {
                "Export": grpc.stream_unary_rpc_method_handler(
                    export, request_deserializer=None, response_serializer=response_type.SerializeToString
                )
            },
        )

    def _count(self, reason: str, host: str = "", problem: Problem | None = None) -> None:
        """Count a refused call, on the app's loop (where every counter lives)."""
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop has closed: the app is exiting
            self._loop.call_soon_threadsafe(self._refused, reason, host, problem)

    def _refused(self, reason: str, host: str, problem: Problem | None = None) -> None:
        """On the app's loop: the receivers' totals, the source's row (when its peer is known), the doctor."""
        self.ingest.bad_request("grpc", reason)
        if host:
            self.sources.refused(host, "grpc", reason)
        if problem is not None:
            self.doctor.report(host, problem)

    async def _on_loop(self, decide: Callable[[], _Answer], deadline: float | None) -> _Answer:
        """Run ``decide`` on the app's event loop as a plain callback (no task: that would cost another
        turn of a busy loop) and wait for it, at most until the exporter's own deadline (seconds left)."""
        assert self._loop is not None
        decided: concurrent.futures.Future[_Answer] = concurrent.futures.Future()

        def run() -> None:
            if decided.set_running_or_notify_cancel():
                try:
                    decided.set_result(decide())
                except BaseException as exc:  # noqa: BLE001 - handed to the waiting call
                    decided.set_exception(exc)

        try:
            self._loop.call_soon_threadsafe(run)
        except RuntimeError:  # the loop has closed: the app is exiting
            return _Answer(grpc.StatusCode.UNAVAILABLE, "ollama-tui is shutting down", retry=True)
        waiting = asyncio.wrap_future(decided)
        try:
            await asyncio.wait((waiting,), timeout=deadline)
        except asyncio.CancelledError:  # gRPC ended the call: its deadline passed, or the exporter left
            if decided.cancel():
                self._count(DEADLINE_PASSED)
            raise
        if waiting.done():
            return waiting.result()
        if not decided.cancel():  # the loop is deciding right now: take its answer
            return await waiting
        # Never started, so never taken: the exporter sends it again, and it must not arrive twice.
        self._count(DEADLINE_PASSED)
        return _Answer(grpc.StatusCode.DEADLINE_EXCEEDED, "ollama-tui did not get to the request in time")


def _metadata(context: grpc.aio.ServicerContext[Any, Any], key: str) -> str | None:
    for name, value in context.invocation_metadata() or ():
        if name == key:
            return value if isinstance(value, str) else value.decode("latin-1")
    return None


def _bind_reason(exc: RuntimeError) -> str:
    text = str(exc)
    return "address already in use" if "bind" in text.lower() else text
