"""OTLP/HTTP receiver on aiohttp: ``/v1/traces``, ``/v1/logs`` and ``/v1/metrics``.

aiohttp's own request decompression is switched off: it inflates a whole chunk at once, so a
small gzip bomb could still allocate a lot. Bodies are read with a byte cap, then inflated here with
``zlib``'s ``max_length`` so the decompressed size is capped too.

Connections are accepted by a :class:`~tui.receiver.connections.ConnectionGuard`, not by aiohttp's
own site: it caps how many are open, closes idle ones and ones whose headers never finish, and
survives running out of file descriptors. The handler bounds the body read; stopping closes every
connection within :data:`~tui.receiver.connections.SHUTDOWN_GRACE_SECONDS` or so, whatever clients do.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tui.receiver.connections import ConnectionGuard, ConnectionLimits
from tui.receiver.decode import (
    BadRequest,
    ExportLogsServiceRequest,
    ExportMetricsServiceRequest,
    ExportTraceServiceRequest,
    parse_json,
    parse_protobuf,
)
from tui.receiver.doctor import Doctor, Problem, sniff
from tui.receiver.errors import PortUnavailable
from tui.receiver.ingest import RETRY_AFTER_SECONDS, ExportResult, Ingest, Outcome
from tui.receiver.security import Security
from tui.receiver.sources import BUSY, SourceTable

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_CONTENT_TYPES = {PROTOBUF: PROTOBUF, "application/protobuf": PROTOBUF, JSON: JSON}
#: The Sources table's transport for each content type; ``http`` when the request's is not one of these.
_TRANSPORTS = {PROTOBUF: "http-protobuf", JSON: "http-json"}
_GRPC_INVALID_ARGUMENT = 3
_GRPC_DEADLINE_EXCEEDED = 4
_GRPC_NOT_FOUND = 5
_GRPC_RESOURCE_EXHAUSTED = 8
_GRPC_UNIMPLEMENTED = 12
_GRPC_UNAVAILABLE = 14
_GRPC_UNAUTHENTICATED = 16


class _TooLarge(Exception):
    pass


class _Unsupported(Exception):
    pass


@dataclass(frozen=True, slots=True)
class _Signal:
    name: str
    request_type: type[Message]
    response_type: type[Message]
    accept: Callable[[str, Any], ExportResult]
    #: Name of the ``partial_success`` counter field in the response (None: never partial).
    rejected_field: str | None


class _QuietClientFaults(logging.Filter):
    """Drops aiohttp's tracebacks for malformed HTTP (a wrong ``Content-Length``, garbage): aiohttp
    has already answered 400, it is the client's fault, and in ``--print`` mode each would print a
    traceback on stderr. Errors raised in our own handlers still get through."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], HttpProcessingError))


_QUIET_CLIENT_FAULTS = _QuietClientFaults()


def inflate(body: bytes, encoding: str, limit: int) -> bytes:
    """Undo ``Content-Encoding``, never producing more than ``limit`` bytes (gzip bomb guard)."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip"):
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        # HTTP's "deflate" is meant to be zlib-wrapped, but raw deflate is common in the wild.
        inflater = zlib.decompressobj(zlib.MAX_WBITS if body[:1] == b"\x78" else -zlib.MAX_WBITS)
    else:
        raise _Unsupported(f"unsupported Content-Encoding {encoding!r}; send gzip, deflate or none")
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BadRequest(f"body is not valid {encoding} data: {exc}") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise _TooLarge(f"decompressed body is larger than the {limit}-byte limit")
    if not inflater.eof:
        raise BadRequest(f"{encoding} body is truncated")
    return data


class OtlpHttpReceiver:
    """Serves OTLP/HTTP (protobuf and JSON) on an aiohttp server sharing the app's event loop."""

    def __init__(self, ingest: Ingest, host: str, port: int, max_body_bytes: int,
                 security: Security | None = None, limits: ConnectionLimits | None = None,
                 sources: SourceTable | None = None, doctor: Doctor | None = None) -> None:
        self.ingest = ingest
        self.sources = sources or SourceTable()
        self.doctor = doctor or Doctor()
        self.security = security or Security()
        self.host = host
        self.port = port
        self.max_body_bytes = max_body_bytes
        self._limits = limits or ConnectionLimits()
        #: Accepts and bounds the connections; its ``stats`` count what happened to them. None until started.
        self.connections: ConnectionGuard | None = None
        self._runner: web.AppRunner | None = None
        self._signals = {
            "/v1/traces": _Signal("traces", ExportTraceServiceRequest, ExportTraceServiceResponse, ingest.traces,
                                  "rejected_spans"),
            "/v1/logs": _Signal("logs", ExportLogsServiceRequest, ExportLogsServiceResponse, ingest.logs, None),
            "/v1/metrics": _Signal("metrics", ExportMetricsServiceRequest, ExportMetricsServiceResponse,
                                   ingest.metrics, None),
        }

    @property
    def limits(self) -> ConnectionLimits:
        """Connection cap and timeouts. New limits set on a running receiver apply to what happens from
        then on (aiohttp's own keep-alive and shutdown backstops keep the values it started with)."""
        return self._limits

    @limits.setter
    def limits(self, limits: ConnectionLimits) -> None:
        self._limits = limits
        if self.connections is not None:
            self.connections.limits = limits

    def application(self) -> web.Application:
        @web.middleware
        async def busy_while_handled(request: web.Request, handler: Handler) -> web.StreamResponse:
            """Tells the connection guard a request is being handled: no idle or header deadline meanwhile."""
            guard = self.connections
            if guard is None:
                return await handler(request)
            with guard.serving(request.protocol, request.content.is_eof):
                return await handler(request)

        app = web.Application(middlewares=[busy_while_handled])
        for path in self._signals:
            app.router.add_route("*", path, self._handle)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    async def start(self) -> int:
        """Bind and start serving; returns the port actually bound (useful with port 0)."""
        server_log = logging.getLogger("aiohttp.server")
        if _QUIET_CLIENT_FAULTS not in server_log.filters:
            server_log.addFilter(_QUIET_CLIENT_FAULTS)
        ssl_context = self.security.ssl_context()
        limits = self.limits
        # aiohttp's own keep-alive timeout backs the guard's idle timeout up; its shutdown timeout bounds
        # the wait for handlers still running after the guard has closed their connections.
        runner = web.AppRunner(self.application(), auto_decompress=False, access_log=None, handle_signals=False,
                               keepalive_timeout=limits.idle_timeout, shutdown_timeout=limits.shutdown_grace)
        await runner.setup()
        assert runner.server is not None  # set by setup()
        guard = ConnectionGuard(runner.server, limits, lambda reason: self.ingest.bad_request("http", reason),
                                on_first_bytes=self._first_bytes)
        try:
            self.port = await guard.listen(self.host, self.port, ssl_context)
        except OSError as exc:
            await runner.cleanup()
            reason = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise PortUnavailable("HTTP", self.host, self.port, reason) from None
        self._runner, self.connections = runner, guard
        return self.port

    async def stop(self) -> None:
        """Stop accepting and close every connection: requests in progress get ``limits.shutdown_grace``
        seconds to finish, then their connections are closed too, so this returns in about that long
        whatever clients do (a body that never ends, a client that never reads)."""
        runner, self._runner = self._runner, None
        if self.connections is not None:
            await self.connections.close(self.limits.shutdown_grace)
        if runner is not None:
            await runner.cleanup()

    def _first_bytes(self, host: str, data: bytes) -> None:
        """A TLS or gRPC client on this plain port: aiohttp answers it 400 (what the client then reports is
        its own puzzle), and the doctor says why."""
        if self.security.tls:
            return  # the bytes seen here are already decrypted
        problem = sniff(data)
        if problem is not None:
            self._refuse(host, "tls" if problem is Problem.TLS_ON_PLAIN_PORT else "grpc", problem.value, problem)

    def _refuse(self, host: str, transport: str, reason: str, problem: Problem | None = None,
                detail: str = "") -> None:
        """Count a refusal in the receivers' totals and on its source's row; diagnose it if it is a
        mistake the doctor knows."""
        self.ingest.bad_request("http", reason)
        self.sources.refused(host, transport, reason)
        if problem is not None:
            self.doctor.report(host, problem, detail)

    async def _not_found(self, request: web.Request) -> web.Response:
        # Only a POST is an exporter's (a browser or a health check GETs); every 404 is counted.
        problem = Problem.WRONG_PATH if request.method == "POST" else None
        self._refuse(request.remote or "", _transport(request), Problem.WRONG_PATH.value, problem, request.path)
        paths = ", ".join(self._signals)
        return _status_response(404, _GRPC_NOT_FOUND, f"no OTLP endpoint at {request.path}; use {paths}", PROTOBUF)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        signal = self._signals[request.path]
        content_type = _CONTENT_TYPES.get(request.content_type, PROTOBUF)
        transport, remote = _transport(request), request.remote or ""
        authorization = request.headers.get("Authorization")
        if not self.security.authorized(authorization):
            problem = Problem.MISSING_TOKEN if authorization is None else Problem.WRONG_TOKEN
            self._refuse(remote, transport, "401 unauthenticated", problem)
            response = _status_response(401, _GRPC_UNAUTHENTICATED,
                                        "missing or wrong bearer token: send Authorization: Bearer <token>",
                                        content_type)
            response.headers["WWW-Authenticate"] = 'Bearer realm="ollama-tui"'
            return response
        if request.method != "POST":
            self._refuse(remote, transport, "405 method")
            response = _status_response(
                405, _GRPC_UNIMPLEMENTED, f"{request.method} is not allowed; OTLP exports are POSTed", content_type
            )
            response.headers["Allow"] = "POST"
            return response
        if request.content_type not in _CONTENT_TYPES:
            self._refuse(remote, transport, Problem.CONTENT_TYPE.value, Problem.CONTENT_TYPE,
                         request.content_type)
            return _status_response(
                415,
                _GRPC_INVALID_ARGUMENT,
                f"unsupported Content-Type {request.content_type!r}; send {PROTOBUF} or {JSON}",
                PROTOBUF,
            )
        busy = self.ingest.admit("http", signal.name)
        if busy is not None:
            self.sources.refused(remote, transport, BUSY)
            return _busy_response(busy, content_type)
        body_timeout = self.limits.body_timeout
        try:
            raw = await asyncio.wait_for(self._read_capped(request), body_timeout)
            body = inflate(raw, request.headers.get("Content-Encoding", ""), self.max_body_bytes)
            parse = parse_json if content_type == JSON else parse_protobuf
            message = parse(signal.request_type, body)
        except asyncio.TimeoutError:
            # A body sent slowly (or stopped halfway) would hold the connection and this handler for as long
            # as the client likes. The exporter has given up on it long before (its own timeout is 10 s).
            self._refuse(remote, transport, f"408 body not complete within {body_timeout:g} s")
            response = _status_response(408, _GRPC_DEADLINE_EXCEEDED,
                                        f"the request body did not arrive within {body_timeout:g} s", content_type)
            response.force_close()
            return response
        except _TooLarge as exc:
            self._refuse(remote, transport, Problem.TOO_LARGE.value, Problem.TOO_LARGE,
                         f"{self.max_body_bytes / (1 << 20):g} MiB")
            return _status_response(413, _GRPC_RESOURCE_EXHAUSTED, str(exc), content_type)
        except _Unsupported as exc:
            self._refuse(remote, transport, Problem.CONTENT_ENCODING.value,
                         Problem.CONTENT_ENCODING, request.headers.get("Content-Encoding", ""))
            return _status_response(415, _GRPC_INVALID_ARGUMENT, str(exc), content_type)
        except BadRequest as exc:
            self._refuse(remote, transport, "400 undecodable")
            return _status_response(400, _GRPC_INVALID_ARGUMENT, str(exc), content_type)
        except ConnectionResetError:
            # The exporter went away mid-body (its timeout, a crash, or our shutdown). Counted, not
            # logged as a server error: aiohttp would print a traceback for it on stderr. Nobody
            # reads the answer; aiohttp drops it quietly on the closed connection.
            self._refuse(remote, transport, "connection closed mid-body")
            return _status_response(400, _GRPC_INVALID_ARGUMENT, "the connection closed before the body ended",
                                    content_type)

        stats, spans_before = self.ingest.stats, self.ingest.stats.spans_accepted
        result = signal.accept("http", message)
        self.sources.record(remote, transport, signal.name, message, result, stats.spans_accepted - spans_before)
        if result.outcome is Outcome.OVERLOADED:
            return _busy_response(result.message, content_type)
        answer = signal.response_type()
        if signal.rejected_field and result.rejected:
            # Typed as Message: only OTLP responses with a rejected_field reach here, and all have partial_success.
            partial = answer.partial_success  # type: ignore[attr-defined]
            setattr(partial, signal.rejected_field, result.rejected)
            partial.error_message = result.message
        return _message_response(200, answer, content_type)

    async def _read_capped(self, request: web.Request) -> bytes:
        """Read the (possibly chunked) body, refusing as soon as it passes the byte limit."""
        limit = self.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise _TooLarge(f"body of {request.content_length} bytes is larger than the {limit}-byte limit")
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.content.iter_chunked(1 << 16):
                size += len(chunk)
                if size > limit:
                    raise _TooLarge(f"body is larger than the {limit}-byte limit")
                chunks.append(chunk)
        except RuntimeError as exc:  # aiohttp's word for a connection that closed while we waited for more
            raise ConnectionResetError(str(exc)) from None
        return b"".join(chunks)


def _transport(request: web.Request) -> str:
    """The Sources table's transport, from the request's content type (``http`` when it is not OTLP's)."""
    return _TRANSPORTS.get(_CONTENT_TYPES.get(request.content_type, ""), "http")


def _message_response(status: int, message: Message, content_type: str) -> web.Response:
    if content_type == JSON:
        body = json_format.MessageToJson(message, indent=None).encode()
    else:
        body = message.SerializeToString()
    return web.Response(status=status, body=body, content_type=content_type)


def _busy_response(text: str, content_type: str) -> web.Response:
    """Back-pressure: 503 with ``Retry-After``, which OTLP exporters retry after that many seconds."""
    response = _status_response(503, _GRPC_UNAVAILABLE, text, content_type)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _status_response(status: int, code: int, text: str, content_type: str) -> web.Response:
    """A failure answer: the ``google.rpc.Status`` body the OTLP spec asks for, in the request's encoding."""
    return _message_response(status, Status(code=code, message=text), content_type)
