"""``--forward URL``: send every accepted request on to another OTLP receiver.

ollama-tui can then sit in front of the real pipeline (a Collector, Jaeger, Phoenix, a vendor)
during development. Each upstream gets a buffer bounded in bytes and a task of its own: requests are
retried with exponential backoff (and the upstream's own Retry-After / RetryInfo), a full buffer
drops its oldest requests, and every failure and drop is counted for the header. Nothing here can
slow the receivers or the UI: accepting a request only appends its serialised bytes to the buffer.

The buffer is bounded by bytes, not requests: a count lets a few large requests (long prompts, big
batches) hold gigabytes while the upstream is down. The oldest request is the one dropped, because
once the upstream is back the traces still being looked at are the recent ones.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, deque
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp
import grpc
from google.rpc.error_details_pb2 import RetryInfo

from tui.receiver.errors import ReceiverConfigError

TRACES_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
#: Bytes of requests held per upstream while it is slow or down, the one in flight included.
DEFAULT_BUFFER_BYTES = 64 * 1024 * 1024
#: What holding one request costs beside its body, so that tiny requests cannot escape the bound.
REQUEST_OVERHEAD = 128
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0
TIMEOUT = 10.0
_RETRYABLE_HTTP = {429, 502, 503, 504}
_RETRYABLE_GRPC = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED,
                   grpc.StatusCode.ABORTED, grpc.StatusCode.CANCELLED, grpc.StatusCode.OUT_OF_RANGE,
                   grpc.StatusCode.DATA_LOSS}


@dataclass(slots=True)
class ForwardStats:
    sent_requests: int = 0
    sent_spans: int = 0
    #: Requests given up on, by reason (rejected by the upstream, or dropped from a full buffer).
    lost: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    last_error: str = ""


class _Retry(Exception):
    def __init__(self, message: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class Forwarder:
    """One upstream: ``grpc://host:port`` (``grpcs://`` for TLS) or ``http(s)://host:port[/path]``."""

    def __init__(self, url: str, buffer_bytes: int = DEFAULT_BUFFER_BYTES) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("grpc", "grpcs", "http", "https") or not parts.hostname:
            raise ReceiverConfigError(f"--forward {url!r}: use grpc://host:port, grpcs://, http:// or https://")
        self.url = url
        self.scheme = parts.scheme
        if parts.scheme.startswith("http"):
            path = parts.path if parts.path not in ("", "/") else "/v1/traces"
            self.target = f"{parts.scheme}://{parts.netloc}{path}"
        else:
            self.target = f"{parts.hostname}:{parts.port or 4317}"
        self.stats = ForwardStats()
        self._pending: deque[tuple[bytes, int]] = deque()
        #: The request being sent (and retried); a full buffer never drops it.
        self._inflight: tuple[bytes, int] | None = None
        self.buffer_bytes = buffer_bytes
        #: Bytes held (see :func:`_cost`), the request in flight included; never above ``buffer_bytes``.
        self.buffered = 0
        self.buffer_full = f"buffer full ({buffer_bytes / 2**20:g} MiB)"
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Requests not yet delivered, the one in flight included."""
        return len(self._pending) + (self._inflight is not None)

    def offer(self, body: bytes, spans: int) -> None:
        """Queue a serialised request of ``spans`` spans (the ingest calls this for every accepted
        one); never waits. The oldest waiting requests make room for it; a request that cannot fit
        even then (beside the one in flight, which is never dropped mid-send) is itself dropped."""
        cost = _cost(body)
        held = _cost(self._inflight[0]) if self._inflight else 0
        if held + cost > self.buffer_bytes:
            self.stats.lost[self.buffer_full] += 1
            return
        while self.buffered + cost > self.buffer_bytes:
            self.buffered -= _cost(self._pending.popleft()[0])
            self.stats.lost[self.buffer_full] += 1
        self._pending.append((body, spans))
        self.buffered += cost
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"forward {self.url}")

    async def stop(self, drain_seconds: float = 2.0) -> None:
        """Give the buffer a moment to drain (quitting should not lose what can still be sent)."""
        if self._task is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + drain_seconds
        while self.pending and loop.time() < deadline:
            await asyncio.sleep(0.05)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        if self.pending:
            self.stats.lost["not sent before exit"] += self.pending

    async def _run(self) -> None:
        async with contextlib.AsyncExitStack() as stack:
            send = await self._sender(stack)
            backoff = FIRST_BACKOFF
            while True:
                if self._inflight is None:
                    if not self._pending:
                        self._wake.clear()
                        await self._wake.wait()
                        continue
                    self._inflight = self._pending.popleft()
                body, spans = self._inflight
                try:
                    await send(body)
                except _Retry as exc:
                    self.stats.retries += 1
                    self.stats.last_error = str(exc)
                    await asyncio.sleep(exc.delay if exc.delay is not None else backoff)
                    backoff = min(MAX_BACKOFF, backoff * 2)
                    continue
                except _Rejected as exc:
                    self.stats.lost[f"rejected: {exc}"] += 1
                    self.stats.last_error = str(exc)
                else:
                    self.stats.sent_requests += 1
                    self.stats.sent_spans += spans
                    self.stats.last_error = ""
                self._inflight = None
                self.buffered -= _cost(body)
                backoff = FIRST_BACKOFF

    async def _sender(self, stack: contextlib.AsyncExitStack):  # -> Callable[[bytes], Awaitable[None]]
        if self.scheme.startswith("http"):
            session = await stack.enter_async_context(aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=TIMEOUT)))

            async def send_http(body: bytes) -> None:
                try:
                    async with session.post(self.target, data=body,
                                            headers={"Content-Type": "application/x-protobuf"}) as response:
                        await response.read()
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                    raise _Retry(f"{self.url}: {type(exc).__name__}: {exc}") from None
                if response.status in _RETRYABLE_HTTP:
                    raise _Retry(f"{self.url} answered {response.status}", _retry_after(response.headers))
                if response.status >= 300:
                    raise _Rejected(f"HTTP {response.status}")

            return send_http

        channel = (grpc.aio.secure_channel(self.target, grpc.ssl_channel_credentials())
                   if self.scheme == "grpcs" else grpc.aio.insecure_channel(self.target))
        stack.push_async_callback(channel.close)
        # No serializers: the request is already serialised and the response is not read.
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(TRACES_METHOD)

        async def send_grpc(body: bytes) -> None:
            try:
                await call(body, timeout=TIMEOUT)
            except grpc.aio.AioRpcError as exc:
                if exc.code() in _RETRYABLE_GRPC:
                    raise _Retry(f"{self.url}: {exc.code().name}", _retry_info(exc)) from None
                raise _Rejected(exc.code().name) from None

        return send_grpc


def _cost(body: bytes) -> int:
    return len(body) + REQUEST_OVERHEAD


class _Rejected(Exception):
    """The upstream refused the request for good (bad data, auth): retrying would not help."""


def _retry_after(headers: object) -> float | None:
    value = getattr(headers, "get", lambda _k: None)("Retry-After")
    try:
        return min(MAX_BACKOFF, float(value)) if value is not None else None
    except ValueError:
        return None


def _retry_info(error: grpc.aio.AioRpcError) -> float | None:
    for key, value in error.trailing_metadata() or ():
        if key == "google.rpc.retryinfo-bin" and isinstance(value, bytes):  # "-bin" values arrive as bytes
            delay = RetryInfo.FromString(value).retry_delay
            return min(MAX_BACKOFF, delay.seconds + delay.nanos / 1e9)
    return None
