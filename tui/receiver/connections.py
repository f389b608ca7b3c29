"""Bounds on the OTLP/HTTP receiver's connections, and the process's open-files limit.

Left to itself, an asyncio server keeps every connection for as long as its client likes: a
thousand idle sockets use up the open-files limit and then nothing can be accepted, on either
receiver; a client sending its headers one byte at a time is held forever. :class:`ConnectionGuard`
accepts the receiver's connections itself and hands each one to aiohttp through a thin protocol
that watches what the connection is doing:

- **waiting** — accepted (or, on a kept-alive connection, the next request begun) but its request
  headers are not all in: closed after :data:`HEADER_TIMEOUT_SECONDS` (slowloris);
- **busy** — a request handler is running; the handler bounds its own body read
  (:data:`BODY_TIMEOUT_SECONDS`);
- **idle** — kept alive after a request: closed after :data:`IDLE_TIMEOUT_SECONDS`;
- **draining** — answered before its body was read (a 401, a 413): aiohttp reads and drops the rest
  for up to 10 s, then closes; the guard closes it after :data:`HEADER_TIMEOUT_SECONDS` in any case.

At most :func:`connection_cap` connections are open at once; a new one closes the oldest waiting
connection, else the oldest idle one, and is refused only when every connection is busy. A failed
``accept()`` (out of file descriptors) pauses accepting for a second, is counted, and logs one line
at most every ten seconds — asyncio's own loop logs a traceback per attempt, up to 128 a second.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import math
import os
import socket
import ssl
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Any, cast

try:
    import resource
except ImportError:  # pragma: no cover - Windows has no rlimits
    resource = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

#: Connections one HTTP receiver holds at once (further bounded by the open-files limit, see
#: :func:`connection_cap`). Exporters keep one connection each, so this is room for a crowd.
DEFAULT_MAX_CONNECTIONS = 1000
#: A kept-alive connection with no request for this long is closed. Longer than the SDK's metric
#: reader's 60 s interval, so a metrics exporter keeps its connection (nginx's default, too).
IDLE_TIMEOUT_SECONDS = 75.0
#: From accepting a connection (or the first byte of the next request on a kept-alive one) to the end
#: of its request headers, TLS handshake included. An OTLP request's headers fit in one packet.
HEADER_TIMEOUT_SECONDS = 10.0
#: From the end of the headers to the end of the body. The SDK exporters give up on a request after
#: 10 s (``OTEL_EXPORTER_OTLP_TIMEOUT``), so a body still arriving after 30 s has no one waiting for it.
BODY_TIMEOUT_SECONDS = 30.0
#: On stop, requests in progress get this long to finish before their connections are closed.
SHUTDOWN_GRACE_SECONDS = 1.0

#: Open files left to everything else when the HTTP cap is derived from the limit: the gRPC receiver's
#: connections, the ``--save`` file, forwarders, the terminal. HTTP takes at most half of the rest.
_FILES_KEPT_FOR_THE_REST = 128
_MIN_CAP = 16
#: After a failed accept(), wait this long before trying again (what asyncio itself does).
_ACCEPT_RETRY_SECONDS = 1.0
#: At most one log line about failed accepts per this many seconds.
_ACCEPT_LOG_INTERVAL = 10.0
#: Connections accepted per readiness event, so a connect flood cannot hold the loop.
_ACCEPT_BATCH = 64
#: A TLS close waits at most this long for the client's close_notify (Python 3.11+; asyncio's default is 30 s).
_SSL_SHUTDOWN_SECONDS = 2.0
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """The HTTP receiver's connection bounds; the defaults are the constants above."""

    max_connections: int = DEFAULT_MAX_CONNECTIONS
    idle_timeout: float = IDLE_TIMEOUT_SECONDS
    header_timeout: float = HEADER_TIMEOUT_SECONDS
    body_timeout: float = BODY_TIMEOUT_SECONDS
    shutdown_grace: float = SHUTDOWN_GRACE_SECONDS

    def __post_init__(self) -> None:
        if self.max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        for name in ("idle_timeout", "header_timeout", "body_timeout", "shutdown_grace"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")


def open_files_limit() -> int | None:
    """The soft ``RLIMIT_NOFILE``, or None where there is none (Windows) or it is unlimited."""
    if resource is None:
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def raise_open_files_limit() -> tuple[int, int] | None:
    """Raise the soft open-files limit to the hard one; returns (before, after), None without rlimits.

    The soft limit is often 1 024 while the hard one is far higher; a receiver holding many
    connections needs the room. Never fails: a limit that cannot be raised is left as it is.
    """
    if resource is None:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return soft, soft
    # An unlimited hard limit cannot be the soft one (Linux caps it at fs.nr_open, macOS at
    # kern.maxfilesperproc): try large finite values instead.
    targets = [hard] if hard != resource.RLIM_INFINITY else [1 << 20, 1 << 16, 10240]
    for target in targets:
        if target <= soft:
            break
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            continue
        return soft, target
    return soft, soft


def connection_cap(max_connections: int) -> int:
    """``max_connections``, lowered so that HTTP alone can never use up the open-files limit: at most
    half of what the soft limit leaves after 128 descriptors kept for everything else (16 at least)."""
    limit = open_files_limit()
    if limit is None:
        return max_connections
    return min(max_connections, max(_MIN_CAP, (limit - _FILES_KEPT_FOR_THE_REST) // 2))


@dataclass(slots=True)
class ConnectionStats:
    """What happened to one receiver's connections. Refusals are also counted by the receiver's
    ``on_refused`` callback (the ``--print`` summary); closing idle connections is routine and is not."""

    accepted: int = 0
    #: The most open at once.
    peak: int = 0
    #: Accepted but no request begun within the header timeout.
    closed_silent: int = 0
    #: A request's headers not complete within the header timeout (slowloris).
    closed_slow_headers: int = 0
    #: Kept alive with no request for the idle timeout.
    closed_idle: int = 0
    #: Closed, oldest waiting or idle first, to make room at the cap (or when out of file descriptors).
    evicted: int = 0
    #: Refused at the cap because every open connection was busy with a request.
    refused_busy: int = 0
    #: accept() failures (out of file descriptors, say); accepting paused each time.
    accept_failures: int = 0


class _State(Enum):
    WAITING = "waiting for request headers"
    BUSY = "busy"
    IDLE = "idle"
    #: After a request whose body was not read to its end (refused early): aiohttp reads and drops the
    #: rest for a while, then closes. Evictable like an idle connection.
    DRAINING = "draining an unread body"
    CLOSED = "closed"


class _Connection:
    __slots__ = ("state", "fresh", "deadline", "timer", "sock", "transport", "inner", "attach", "attached")

    def __init__(self, sock: socket.socket | None) -> None:
        self.state = _State.CLOSED
        #: No request begun yet on this connection.
        self.fresh = True
        self.deadline: float | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.sock = sock
        self.transport: asyncio.Transport | None = None
        self.inner: asyncio.Protocol | None = None
        self.attach: asyncio.Task[None] | None = None
        #: The attach task has started: asyncio owns the socket from then on.
        self.attached = False


class _Guarded(asyncio.Protocol):
    """Passes everything to aiohttp's protocol, telling the guard when a request begins."""

    __slots__ = ("_conn", "_guard", "_inner")

    def __init__(self, guard: ConnectionGuard, conn: _Connection, inner: asyncio.Protocol) -> None:
        self._guard, self._conn, self._inner = guard, conn, inner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._guard._connected(self._conn, transport, self._inner):
            return
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        conn = self._conn
        if conn.fresh:
            conn.fresh = False
            self._guard._first_bytes(conn, data)
        elif conn.state is _State.IDLE:
            self._guard._request_begun(conn)
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._guard._forget(self._conn)
        if self._conn.inner is not None:
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class ConnectionGuard:
    """Listens for one receiver, bounding its connections (see the module's docstring).

    ``protocol_factory`` makes the protocol that serves a connection (aiohttp's server);
    ``on_refused(reason)`` counts a refusal where the user sees it; ``on_first_bytes(peer_host, data)``
    sees the first bytes of each connection (a client speaking the wrong protocol shows there).
    """

    def __init__(self, protocol_factory: Callable[[], asyncio.Protocol], limits: ConnectionLimits,
                 on_refused: Callable[[str], None], name: str = "HTTP",
                 on_first_bytes: Callable[[str, bytes], None] | None = None) -> None:
        #: Read whenever a connection or timer needs them: setting new limits applies from then on.
        self.limits = limits
        self.stats = ConnectionStats()
        self._files_cap = sys.maxsize
        self._factory = protocol_factory
        self._on_refused = on_refused
        self._on_first_bytes = on_first_bytes
        self._name = name
        self._loop = asyncio.get_running_loop()
        self._ssl: ssl.SSLContext | None = None
        # Insertion-ordered, oldest first: the eviction order.
        self._waiting: dict[_Connection, None] = {}
        self._idle: dict[_Connection, None] = {}
        self._busy: set[_Connection] = set()
        self._by_protocol: dict[object, _Connection] = {}
        self._listeners: list[socket.socket] = []
        self._servers: list[asyncio.AbstractServer] = []
        self._retries: dict[socket.socket, asyncio.TimerHandle] = {}
        self._attaching: set[asyncio.Task[None]] = set()
        self._closing = False
        self._last_logged = -math.inf
        self._unlogged_failures = 0

    @property
    def cap(self) -> int:
        """Connections open at once: ``limits.max_connections``, or fewer if the open-files limit is low."""
        return min(self.limits.max_connections, self._files_cap)

    @property
    def open_connections(self) -> int:
        return len(self._waiting) + len(self._idle) + len(self._busy)

    @property
    def requests_in_progress(self) -> int:
        """Connections whose request is being handled (its body read, decoded, answered)."""
        return len(self._busy)

    async def listen(self, host: str, port: int, ssl_context: ssl.SSLContext | None, backlog: int = 128) -> int:
        """Bind every address ``host`` resolves to and start accepting; returns the first bound port.

        Raises ``OSError`` (a busy port, an unknown host) with nothing left open.
        """
        self._ssl = ssl_context
        self._files_cap = connection_cap(sys.maxsize)
        infos = await self._loop.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        bound = port
        try:
            for family, kind, proto, _canonical, address in dict.fromkeys(infos):
                sock = socket.socket(family, kind, proto)
                self._listeners.append(sock)
                if os.name == "posix":
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
                sock.listen(backlog)
                sock.setblocking(False)
                if bound == 0:
                    bound = sock.getsockname()[1]
            for sock in list(self._listeners):
                await self._serve(sock)
        except BaseException:
            await self.close(0)
            raise
        return bound

    async def _serve(self, sock: socket.socket) -> None:
        try:
            self._loop.add_reader(sock.fileno(), self._accept, sock)
        except NotImplementedError:
            # Windows' proactor loop has no add_reader: asyncio accepts (and logs accept failures its
            # own way); the cap and the timeouts still hold, applied as each connection is made.
            server = await self._loop.create_server(lambda: self._protocol(_Connection(None)), sock=sock,
                                                    ssl=self._ssl, **self._ssl_options())
            self._listeners.remove(sock)  # the server owns it now
            self._servers.append(server)

    def _ssl_options(self) -> dict[str, Any]:
        if self._ssl is None:
            return {}
        options: dict[str, Any] = {"ssl_handshake_timeout": self.limits.header_timeout}
        if sys.version_info >= (3, 11):
            options["ssl_shutdown_timeout"] = _SSL_SHUTDOWN_SECONDS
        return options

    def _protocol(self, conn: _Connection) -> _Guarded:
        return _Guarded(self, conn, self._factory())

    # -- accepting ---------------------------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        for _ in range(_ACCEPT_BATCH):
            try:
                sock, _address = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                self._accept_failed(listener, exc)
                return
            self._admit(sock)

    def _accept_failed(self, listener: socket.socket, exc: OSError) -> None:
        """Count it, say so (one line, rate-limited), free a descriptor if we can, and retry in a second."""
        self.stats.accept_failures += 1
        reason = exc.strerror or str(exc)
        self._on_refused(f"accept failed ({reason.lower()}), paused {_ACCEPT_RETRY_SECONDS:g} s")
        if exc.errno in _OUT_OF_RESOURCES:
            self._evict()
        self._loop.remove_reader(listener.fileno())
        self._retries[listener] = self._loop.call_later(_ACCEPT_RETRY_SECONDS, self._resume_accepting, listener)
        self._unlogged_failures += 1
        now = self._loop.time()
        if now - self._last_logged >= _ACCEPT_LOG_INTERVAL:
            failures = self._unlogged_failures
            since = f" ({failures} failures since the last message)" if failures > 1 else ""
            log.warning("ollama-tui: the %s receiver cannot accept connections: %s; retrying every %g s%s",
                        self._name, reason, _ACCEPT_RETRY_SECONDS, since)
            self._last_logged, self._unlogged_failures = now, 0

    def _resume_accepting(self, listener: socket.socket) -> None:
        self._retries.pop(listener, None)
        if not self._closing and listener.fileno() != -1:
            self._loop.add_reader(listener.fileno(), self._accept, listener)

    def _admit(self, sock: socket.socket) -> None:
        if self._closing or not self._make_room():
            sock.close()
            return
        conn = _Connection(sock)
        self._register(conn)
        task = self._loop.create_task(self._attach(conn, sock))
        conn.attach = task
        self._attaching.add(task)
        task.add_done_callback(self._attaching.discard)

    def _make_room(self) -> bool:
        """True when a new connection may open: under the cap, or the oldest waiting or idle one closed."""
        if self.open_connections < self.cap or self._evict():
            return True
        self.stats.refused_busy += 1
        self._on_refused(f"connection refused, all {self.cap} connections busy")
        return False

    def _evict(self) -> bool:
        for pool in (self._waiting, self._idle):
            for conn in pool:
                self.stats.evicted += 1
                self._close(conn)
                return True
        return False

    async def _attach(self, conn: _Connection, sock: socket.socket) -> None:
        if conn.state is _State.CLOSED:  # evicted or shut down before this task ran
            sock.close()
            return
        conn.attached = True
        try:
            await self._loop.connect_accepted_socket(lambda: self._protocol(conn), sock, ssl=self._ssl,
                                                     **self._ssl_options())
        except asyncio.CancelledError:
            self._forget(conn)  # asyncio closed the socket
            raise
        except Exception:  # noqa: BLE001 - a failed TLS handshake, a client gone already: this connection ends, quietly
            self._forget(conn)
            sock.close()
        finally:
            conn.attach = None

    def _register(self, conn: _Connection) -> None:
        self.stats.accepted += 1
        self._enter(conn, _State.WAITING, self._loop.time() + self.limits.header_timeout)
        self.stats.peak = max(self.stats.peak, self.open_connections)

    def _connected(self, conn: _Connection, transport: asyncio.BaseTransport, inner: asyncio.Protocol) -> bool:
        """The connection is set up (after the TLS handshake, if any); False if it was closed meanwhile."""
        if conn.sock is None and conn.state is _State.CLOSED and not self._closing and self._make_room():
            self._register(conn)  # made by create_server (no add_reader): counted now
        real = cast(asyncio.Transport, transport)
        if conn.state is _State.CLOSED:
            real.abort()
            return False
        conn.transport = real
        conn.inner = inner
        self._by_protocol[inner] = conn
        return True

    # -- states --------------------------------------------------------------------------------------------

    def _first_bytes(self, conn: _Connection, data: bytes) -> None:
        if self._on_first_bytes is not None and conn.transport is not None:
            peer = conn.transport.get_extra_info("peername")
            self._on_first_bytes(str(peer[0]) if peer else "", data)

    def _request_begun(self, conn: _Connection) -> None:
        """The first bytes of a new request on a kept-alive connection: its headers now have a deadline."""
        self._enter(conn, _State.WAITING, self._loop.time() + self.limits.header_timeout)

    @contextmanager
    def serving(self, protocol: object, body_read: Callable[[], bool]) -> Iterator[None]:
        """Around a request handler: the connection is busy (no header or idle deadline) until it returns.

        ``body_read()`` says afterwards whether the request's body was read to its end; if not, the
        client may still be sending it, and the connection is draining rather than idle.
        """
        conn = self._by_protocol.get(protocol)
        if conn is None or conn.state is _State.CLOSED:
            yield
            return
        self._enter(conn, _State.BUSY, None)
        try:
            yield
        finally:
            if conn.state is _State.BUSY:
                now = self._loop.time()
                if body_read():
                    self._enter(conn, _State.IDLE, now + self.limits.idle_timeout)
                else:
                    self._enter(conn, _State.DRAINING, now + self.limits.header_timeout)

    def _enter(self, conn: _Connection, state: _State, deadline: float | None) -> None:
        self._leave(conn)
        conn.state, conn.deadline = state, deadline
        if state is _State.WAITING:
            self._waiting[conn] = None
        elif state in (_State.IDLE, _State.DRAINING):
            self._idle[conn] = None
        elif state is _State.BUSY:
            self._busy.add(conn)
        if deadline is not None and (conn.timer is None or conn.timer.when() > deadline):
            if conn.timer is not None:
                conn.timer.cancel()
            conn.timer = self._loop.call_at(deadline, self._expire, conn)

    def _leave(self, conn: _Connection) -> None:
        self._waiting.pop(conn, None)
        self._idle.pop(conn, None)
        self._busy.discard(conn)

    def _expire(self, conn: _Connection) -> None:
        conn.timer = None
        if conn.deadline is None or conn.state in (_State.BUSY, _State.CLOSED):
            return
        if self._loop.time() < conn.deadline:  # the deadline moved on since this timer was set
            conn.timer = self._loop.call_at(conn.deadline, self._expire, conn)
            return
        if conn.state in (_State.IDLE, _State.DRAINING):
            self.stats.closed_idle += 1
        elif conn.fresh:
            self.stats.closed_silent += 1
        else:
            self.stats.closed_slow_headers += 1
            self._on_refused(f"connection closed, headers not complete within {self.limits.header_timeout:g} s")
        self._close(conn)

    def _forget(self, conn: _Connection) -> None:
        self._leave(conn)
        conn.state = _State.CLOSED
        if conn.timer is not None:
            conn.timer.cancel()
            conn.timer = None
        if conn.inner is not None:
            self._by_protocol.pop(conn.inner, None)

    def _close(self, conn: _Connection) -> None:
        """Close now (abort: no TLS goodbye, no lingering), freeing its descriptor."""
        self._forget(conn)
        if conn.transport is not None:
            conn.transport.abort()
        elif conn.attach is not None and conn.attached:
            conn.attach.cancel()  # asyncio owns the socket: cancelling closes it
        # Otherwise the attach task has not run yet and closes the socket when it does.

    # -- stopping ------------------------------------------------------------------------------------------

    async def close(self, grace: float) -> None:
        """Stop accepting; close waiting and idle connections now, give busy ones ``grace`` seconds to
        finish their request, then close whatever is left. Every descriptor is closed on return."""
        self._closing = True
        for handle in self._retries.values():
            handle.cancel()
        self._retries.clear()
        for sock in self._listeners:
            if sock.fileno() != -1:
                self._loop.remove_reader(sock.fileno())
                sock.close()
        self._listeners.clear()
        for server in self._servers:
            server.close()
        self._servers.clear()
        for conn in [*self._waiting, *self._idle]:
            self._close(conn)
        deadline = self._loop.time() + grace
        while self._busy and self._loop.time() < deadline:
            await asyncio.sleep(0.02)
        for conn in list(self._busy):
            self._close(conn)
        if self._attaching:
            await asyncio.gather(*self._attaching, return_exceptions=True)
        await asyncio.sleep(0)  # let the transports' connection_lost callbacks run
