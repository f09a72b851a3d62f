"""The engine's HTTP server: uvicorn with httptools, plus the bounds that uvicorn lacks there.

uvicorn's httptools protocol has no limit on the size or number of request headers, no time
limit for receiving them and no cap on open connections: a client could hold memory and sockets
for as long as it liked without ever completing a request. `GuardedHttpToolsProtocol` adds
each bound; `serve` runs uvicorn with it, in one process or several workers. Several workers
each listen on a socket of their own, over which the kernel spreads new connections
(`WorkerSockets`), and keep their counts of open connections even (`ConnectionShares`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
import os
import resource
import socket
import time
from asyncio.events import TimerHandle
from dataclasses import dataclass
from typing import Any, cast

import httptools
import uvicorn
from uvicorn._types import ASGISendEvent
from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.server import ServerState
from uvicorn.supervisors.multiprocess import Multiprocess

from energy_ingest.config import Settings
from energy_ingest.web.http import encode_json
from energy_ingest.web.security import raw_security_headers

logger = logging.getLogger(__name__)

# Descriptors kept free of client connections: the database pools, log files, the embedded
# PostgreSQL's pipes, and the short-lived sockets of connections being refused.
FILE_DESCRIPTOR_RESERVE = 256
# A refused connection stays open this long (reading and discarding) after its answer, so that
# the client reads the answer instead of a reset caused by request bytes left unread.
_REFUSAL_LINGER_SECONDS = 1.0
_REFUSAL_LOG_INTERVAL_SECONDS = 10.0
# Workers compare their connection counts this often (ConnectionShares), and tolerate this much
# above an even share (plus one connection) before ending any.
_SHARE_CHECK_SECONDS = 0.1
_SHARE_SLACK = 0.02
_MAX_WORKERS = 64  # the most Settings.workers allows


@dataclass(frozen=True)
class ServerLimits:
    """The bounds one server process applies to each connection (see Settings)."""

    max_header_bytes: int
    max_headers: int
    header_timeout_seconds: float
    max_connections: int
    retry_after_seconds: int


class _HeadRefused(Exception):
    """Raised from a parser callback to stop parsing a request head that is refused."""


_SECURITY_HEADERS = raw_security_headers()


def _answer(status: int, code: str, message: str, extra: bytes = b"") -> bytes:
    """A whole HTTP/1.1 answer that closes the connection, shaped like the engine's errors."""
    body = encode_json({"error": code, "message": message})
    return b"".join(
        [
            STATUS_LINE[status],
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n",
            b"cache-control: no-store\r\n",
            _SECURITY_HEADERS,
            extra,
            b"\r\n",
            body,
        ]
    )


class _HeldHead:
    """A connection's transport as one answer's cycle sees it between the answer's start and its
    next message: the head written at the start is held, and goes out with the next write."""

    __slots__ = ("_head", "transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self._head: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._head is None:
            self._head = bytes(data)  # the status line and headers
            return
        head, self._head = self._head, b""
        self.transport.write(head + data)

    def release(self, *, write: bool) -> asyncio.Transport:
        """The connection's transport, after writing the head if it is still held."""
        head, self._head = self._head, b""
        if head and write:
            self.transport.write(head)
        return self.transport

    def close(self) -> None:
        self.release(write=not self.transport.is_closing()).close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class OneWriteCycle(RequestResponseCycle):
    """uvicorn's request/response cycle, writing an answer's head together with its body.

    uvicorn writes the head (status line and headers) as soon as the app starts its answer, and
    the body when it comes: two system calls and two TCP segments for every small JSON answer,
    each waking the client (a tenth of a single-reading request's CPU was these writes). Here
    the head is held until the answer's next message and written with its bytes: the same bytes
    in the same order, in one write. A head is never held past that message, nor past a close.
    """

    async def send(self, message: ASGISendEvent) -> None:
        transport: Any = self.transport
        if isinstance(transport, _HeldHead):
            try:
                await super().send(message)
            finally:
                self.transport = transport.release(write=not self.disconnected)
            return
        if (
            message["type"] == "http.response.start"
            and not self.response_started
            and not self.disconnected
            and not self.flow.write_paused  # nothing awaited before the head is written
        ):
            self.transport = cast(asyncio.Transport, _HeldHead(transport))
            try:
                await super().send(message)
            except BaseException:
                self.transport = cast(_HeldHead, self.transport).release(write=True)
                raise
            return
        await super().send(message)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with bounded request heads and a connection cap.

    - A request head (request line and headers) larger than `max_header_bytes`, or with more
      than `max_headers` headers: 431, and the connection is closed; the server never holds more
      than the limit plus one socket read of it.
    - A head not complete within `header_timeout_seconds` of the connection opening (or of its
      first byte on a kept-alive connection): 408 and close; a connection that sent nothing is
      closed silently.
    - Beyond `max_connections` open connections, a new one is answered 503 with Retry-After at
      once and closed (an answer, not a reset).

    The body keeps its own limits (size and 30 s timeout) in the application.
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: ServerLimits,
        shares: ConnectionShares | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self.shares = shares
        self._in_head = True
        self._head_bytes = 0
        self._head_tail = b""
        self._header_count = 0
        self._head_refusal: tuple[int, str, str] | None = None
        self._header_timer: TimerHandle | None = None
        self._refusing = False
        self._linger_timer: TimerHandle | None = None

    # --- connection cap ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self.transport = transport
            _refusals.note(
                "connection_limit",
                f"connection limit ({self.limits.max_connections}) reached, answered 503",
            )
            retry = f"retry-after: {self.limits.retry_after_seconds}\r\n".encode()
            self._close_after(
                _answer(
                    503,
                    "overloaded",
                    "the engine holds as many connections as it may; retry shortly",
                    retry,
                )
            )
            return
        super().connection_made(transport)
        self._start_header_timer()
        if self.shares is not None:
            self.shares.watch(self.loop, self.connections)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        if self._refusing and self.flow is None:
            return  # refused at the door: never counted, nothing else to release
        super().connection_lost(exc)

    # --- request heads -------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._refusing:
            return  # the answer is written; what the client still sends is discarded
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_header_bytes and not self._head_fits(data):
                self._refuse_head(*self._too_large())
                return
            self._head_tail = data[-3:]
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            if self._head_refusal is not None:
                self._refuse_head(*self._head_refusal)
                return
            _refusals.note("malformed_request", "refused requests that are not valid HTTP")
            self.send_400_response("Invalid HTTP request received.")
            return
        if self._in_head and self._head_bytes and self._header_timer is None:
            # A head that did not arrive in one read (rare: a device sends it in one packet)
            # gets its deadline now; whole heads cost no timer at all on kept-alive connections.
            self._start_header_timer()

    def _head_fits(self, data: bytes) -> bool:
        """Whether the head ends in `data` within the limit (the rest of `data` is body)."""
        before = self._head_bytes - len(data)
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            return before + end + 4 <= self.limits.max_header_bytes
        # The blank line may straddle the previous read and this one.
        joined = self._head_tail + data[:3]
        end = joined.find(b"\r\n\r\n")
        if end < 0:
            return False
        return before - len(self._head_tail) + end + 4 <= self.limits.max_header_bytes

    def _too_large(self) -> tuple[int, str, str]:
        return (
            431,
            "headers_too_large",
            f"the request line and headers exceed {self.limits.max_header_bytes} bytes",
        )

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            self._head_refusal = (
                431,
                "too_many_headers",
                f"a request may carry at most {self.limits.max_headers} headers",
            )
            raise _HeadRefused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_header_timer()
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.scope is self.scope and type(cycle) is RequestResponseCycle:
            # Made by uvicorn just now; its task has not run yet, so it sends as OneWriteCycle.
            cycle.__class__ = OneWriteCycle
        if (
            self.shares is not None
            and self.cycle is not None
            and self.cycle.scope is self.scope  # a request answered now (not an upgrade)
            and not self.pipeline  # nor one queued behind another: closing would drop it
            and self.shares.take_one()
        ):
            # This worker holds more than its share: the answer ends the connection (as any
            # HTTP/1.1 answer may) and the client's next one lands where the kernel puts it.
            self.cycle.keep_alive = False

    def on_message_complete(self) -> None:
        # The next bytes on this connection start a new head, counted from zero.
        self._in_head = True
        self._head_bytes = 0
        self._head_tail = b""
        self._header_count = 0
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        self._close_after(_answer(400, "malformed_request", msg))

    # --- header timeout ------------------------------------------------------------------------
    def _start_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(
            self.limits.header_timeout_seconds, self._header_timed_out
        )

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if not self._in_head or self._refusing or self.transport.is_closing():
            return
        answering = self.cycle is not None and not self.cycle.response_complete
        if self._head_bytes == 0 or answering:
            # Nothing asked (an idle socket), or an answer is still being written: no 408
            # can be put on the wire, the connection just ends.
            self.transport.close()
            return
        self._refuse_head(
            408,
            "request_timeout",
            f"the request headers did not arrive within {self.limits.header_timeout_seconds:g} s",
        )

    # --- refusals ------------------------------------------------------------------------------
    def _refuse_head(self, status: int, code: str, message: str) -> None:
        _refusals.note(code, f"refused request heads ({code}, {status})")
        self._close_after(_answer(status, code, message))

    def _close_after(self, answer: bytes) -> None:
        """Write the answer, end our side, discard what the client still sends, then close."""
        self._refusing = True
        self._cancel_header_timer()
        transport = self.transport
        transport.write(answer)
        if transport.can_write_eof():
            transport.write_eof()
            self._linger_timer = self.loop.call_later(_REFUSAL_LINGER_SECONDS, transport.close)
        else:
            transport.close()


class ConnectionShares:
    """How many connections each worker holds, in memory the workers share; several workers.

    The kernel spreads new connections over the workers' sockets (`WorkerSockets`) by a hash:
    even over thousands of clients, uneven over a few dozen long-lived ones (a load balancer's
    pool; the bench's 64 clients: one of two workers served up to 59 % of the requests). Each
    worker publishes its count every `_SHARE_CHECK_SECONDS`; one holding more than its share
    (plus 2 % and one) ends that many connections after their next answer (`Connection:
    close`), and their clients' reconnections are spread again, until the counts even out.
    Made by the supervisor before the workers start, it reaches them pickled with the protocol.
    """

    def __init__(self) -> None:
        spawn = multiprocessing.get_context("spawn")  # uvicorn spawns its workers
        self._slots = spawn.RawArray("q", 2 * _MAX_WORKERS)  # (pid, open connections) each
        self._lock = spawn.Lock()
        self._index: int | None = None
        self._connections: set[Any] | None = None
        self._excess = 0

    def watch(self, loop: asyncio.AbstractEventLoop, connections: set[Any]) -> None:
        """In a worker, on its first connection: start publishing and comparing its count."""
        if self._connections is None:
            self._connections = connections
            self._check(loop)

    def take_one(self) -> bool:
        """Whether the request just received should end its connection with its answer."""
        if self._excess > 0:
            self._excess -= 1
            return True
        return False

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        assert self._connections is not None
        own = len(self._connections)
        if self._index is None:
            self._index = self._claim()
        if self._index is not None:
            self._slots[2 * self._index + 1] = own
            total = workers = 0
            for slot in range(_MAX_WORKERS):
                pid = self._slots[2 * slot]
                if pid and _alive(pid):
                    workers += 1
                    total += self._slots[2 * slot + 1]
            fair = total / workers
            self._excess = max(0, int(own - fair - 1 - fair * _SHARE_SLACK))
        loop.call_later(_SHARE_CHECK_SECONDS, self._check, loop)

    def _claim(self) -> int | None:
        """This worker's slot: a free one, or that of a worker that has died."""
        with self._lock:
            for slot in range(_MAX_WORKERS):
                pid = self._slots[2 * slot]
                if pid == 0 or not _alive(pid):
                    self._slots[2 * slot] = os.getpid()
                    return slot
        return None  # more workers than slots: this one only serves


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _RefusalLog:
    """At most one warning per kind of refusal every few seconds, with the count since the last:
    a flood of bad requests must not become a flood of log lines."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._counts: dict[str, int] = {}

    def note(self, kind: str, message: str) -> None:
        self._counts[kind] = self._counts.get(kind, 0) + 1
        now = time.monotonic()
        if (
            now - self._last.get(kind, -_REFUSAL_LOG_INTERVAL_SECONDS)
            >= _REFUSAL_LOG_INTERVAL_SECONDS
        ):
            self._last[kind] = now
            logger.warning("%s: %d since the last such line", message, self._counts.pop(kind))


_refusals = _RefusalLog()


def raise_file_limit() -> int:
    """Raise this process's open-file limit to its hard limit; the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def server_limits(settings: Settings) -> ServerLimits:
    """The settings' bounds, with the connection cap kept below the file-descriptor limit."""
    files = raise_file_limit()
    connections = settings.max_connections
    fits = max(1, files - FILE_DESCRIPTOR_RESERVE)
    if connections > fits:
        logger.warning(
            "max_connections lowered from %d to %d: the open-file limit is %d (raise it, e.g. "
            "`ulimit -n` or the container's nofile limit, to serve more connections)",
            connections,
            fits,
            files,
        )
        connections = fits
    logger.info("serving at most %d connections per process", connections)
    return ServerLimits(
        max_header_bytes=settings.max_header_bytes,
        max_headers=settings.max_headers,
        header_timeout_seconds=settings.header_timeout_seconds,
        max_connections=connections,
        retry_after_seconds=settings.retry_after_seconds,
    )


class WorkerSockets(list[socket.socket]):
    """The listening sockets uvicorn's supervisor hands to each worker: a socket of its own each.

    uvicorn binds one socket and lets every worker accept from it: whichever worker wakes first
    takes a whole burst of new connections, so keep-alive clients pile onto one worker and what
    several workers serve swings from one start to the next. This list holds the supervisor's
    socket, bound with SO_REUSEPORT but never listening (it holds the port and gives its
    number); pickled into a spawned worker it becomes a new socket bound to the same port, so
    each worker listens on its own and the kernel spreads new connections over them by a hash
    of the client's address and port. A worker that dies takes its socket along; the one that
    replaces it binds a new one.
    """

    def __init__(self, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # The port must be free of other listeners: a plain bind says so (an engine already
        # listening there with SO_REUSEPORT would otherwise silently share it with this one).
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
            if port == 0:
                port = probe.getsockname()[1]
        held = _reuse_port_socket(family, (host, port))
        super().__init__([held])
        self.family = family
        self.address: tuple[Any, ...] = held.getsockname()

    def __reduce__(self) -> tuple[Any, ...]:
        return (_worker_sockets, (self.family, self.address))


def _reuse_port_socket(family: socket.AddressFamily, address: tuple[Any, ...]) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def _worker_sockets(family: socket.AddressFamily, address: tuple[Any, ...]) -> list[socket.socket]:
    """In a worker: its own socket on the supervisor's port (uvicorn makes it listen)."""
    return [_reuse_port_socket(family, address)]


def serve(app: Any, settings: Settings, **options: Any) -> None:
    """uvicorn with the guarded protocol, our logging and no `server` banner; with several
    workers, each listens on a socket of its own (`WorkerSockets`) and they keep their
    connection counts even (`ConnectionShares`).

    The protocol is handed over as a picklable partial, so spawned workers get the same limits
    and the same shared counts.
    """
    workers = options.get("workers", 1)
    protocol = functools.partial(
        GuardedHttpToolsProtocol,
        limits=server_limits(settings),
        shares=ConnectionShares() if workers > 1 else None,
    )
    arguments: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "http": protocol,
        "server_header": False,
        "log_config": None,  # keep our handlers: JSON lines with request ids
        "access_log": False,  # the engine logs each request itself, with its id
        **options,
    }
    if workers == 1:
        uvicorn.run(app, **arguments)
        return
    # What uvicorn.run does with several workers, but a listening socket for each.
    config = Config(app, **arguments)
    try:
        sockets = WorkerSockets(settings.host, settings.port)
    except OSError as exc:
        logger.error("cannot bind %s port %d: %s", settings.host, settings.port, exc)
        raise SystemExit(STARTUP_FAILURE) from exc
    logger.info(
        "listening on %s port %d: %d workers, each on a socket of its own",
        settings.host,
        sockets.address[1],
        config.workers,
    )
    try:
        Multiprocess(config, sockets=sockets).run()
    finally:
        for sock in sockets:
            sock.close()
