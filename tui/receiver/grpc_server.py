"""OTLP/gRPC receiver: ``TraceService``, ``LogsService`` and ``MetricsService`` on ``grpc.aio``.

Handlers take the raw request bytes (no deserializer) and decode them with :mod:`tui.receiver.decode`,
so an undecodable message gets ``INVALID_ARGUMENT`` as the OTLP spec asks, not gRPC's generic
``INTERNAL``. Service and method names come from the descriptors shipped in opentelemetry-proto.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc.error_details_pb2 import RetryInfo
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from tui.receiver.decode import BadRequest, parse_protobuf
from tui.receiver.errors import PortUnavailable
from tui.receiver.ingest import RETRY_AFTER_SECONDS, ExportResult, Ingest, Outcome
from tui.receiver.security import Security

_RETRY_METADATA = (
    ("google.rpc.retryinfo-bin", RetryInfo(retry_delay=Duration(seconds=RETRY_AFTER_SECONDS)).SerializeToString()),
)

#: The signal each service carries, named as OTLP/HTTP's paths name it.
_SIGNALS = {"TraceService": "traces", "LogsService": "logs", "MetricsService": "metrics"}


def _format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class OtlpGrpcReceiver:
    """Serves the three OTLP collector services on one ``grpc.aio`` server."""

    def __init__(self, ingest: Ingest, host: str, port: int, max_message_bytes: int,
                 security: Security | None = None) -> None:
        self.ingest = ingest
        self.security = security or Security()
        self.host = host
        self.port = port
        self.max_message_bytes = max_message_bytes
        self._server: grpc.aio.Server | None = None

    async def start(self) -> int:
        """Bind and start serving; returns the port actually bound (useful with port 0)."""
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", self.max_message_bytes),
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
        self._server = server
        self.port = bound
        return bound

    async def stop(self, grace: float = 0.5) -> None:
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None

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

        async def export(body: bytes, context: grpc.aio.ServicerContext) -> Any:
            if not self.security.authorized(_metadata(context, "authorization")):
                self.ingest.bad_request("grpc", "unauthenticated")
                await context.abort(grpc.StatusCode.UNAUTHENTICATED,
                                    "missing or wrong bearer token: send metadata authorization: Bearer <token>")
            busy = self.ingest.admit("grpc", signal)
            if busy is not None:
                await context.abort(grpc.StatusCode.UNAVAILABLE, busy, trailing_metadata=_RETRY_METADATA)
            try:
                request = parse_protobuf(request_type, body)
            except BadRequest as exc:
                self.ingest.bad_request("grpc", "undecodable protobuf")
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            result = accept("grpc", request)
            if result.outcome is Outcome.OVERLOADED:
                await context.abort(grpc.StatusCode.UNAVAILABLE, result.message, trailing_metadata=_RETRY_METADATA)
            return make_response(result) if make_response else response_type()

        handler: Callable[[bytes, grpc.aio.ServicerContext], Awaitable[Any]] = export
        return grpc.method_handlers_generic_handler(
            full_name,
            {
                "Export": grpc.unary_unary_rpc_method_handler(
                    handler, request_deserializer=None, response_serializer=response_type.SerializeToString
                )
            },
        )


def _metadata(context: grpc.aio.ServicerContext, key: str) -> str | None:
    for name, value in context.invocation_metadata() or ():
        if name == key:
            return value if isinstance(value, str) else value.decode("latin-1")
    return None


def _bind_reason(exc: RuntimeError) -> str:
    text = str(exc)
    return "address already in use" if "bind" in text.lower() else text
