"""Serving ASGI apps on uvicorn: the listening socket, the event loop, and the guarded protocol.

The GHL sandbox, the partner sandboxes, the webhook receiver and ``serve`` all run on uvicorn
with httptools. They bind their socket with :func:`bind_socket` (IPv4, IPv6, or a name such as
``localhost``; so a caller that reads the printed URL can connect before uvicorn takes over,
and port 0 can pick a free port), prefer uvloop, and run either in the foreground
(:func:`serve_forever`) or in a thread with its own loop (:class:`ServerThread`).

Servers that face the internet (the receiver, ``serve``) run through :func:`guarded_server`:
its HTTP protocol bounds what a client without any credential can hold (:class:`Limits`):

- a deadline for the request line and headers (from the connection's or the request's first
  byte; 408) and one for the body (from the end of the headers; 408, and the connection
  closes), and uvicorn's keep-alive timeout for idle connections;
- the size (request line included) and the number of headers (431);
- the bytes of unfinished request bodies across all connections: past the budget, the
  connections holding the most are answered 503 and closed, so small deliveries (GHL's
  webhooks are a few KiB) keep being answered while large unfinished ones are shed.

It also sends a response's head and its first body chunk in one write (:class:`_Coalescing`):
one system call and one TCP segment per small answer instead of two, so the client reads the
whole answer at once.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import socket
import threading
from asyncio import TimerHandle
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from connector.errors import ConnectorError

__all__ = [
    "GuardedProtocol",
    "Limits",
    "ServerThread",
    "bind_socket",
    "guarded_server",
    "loop_factory",
    "serve_forever",
    "socket_url",
]

_log = logging.getLogger(__name__)
# Unfinished bodies that peaked above this give their memory back once they are all gone.
_TRIM_AFTER = 4 * 1024 * 1024
_TRIM_DELAY = 0.5
START_TIMEOUT = 10.0


def bind_socket(host: str, port: int, *, backlog: int = 2048,
                option: str = "--port") -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one), inheritable by workers.

    ``host`` is an IPv4 or IPv6 literal (``::1``, also in brackets) or a name such as
    ``localhost``, which listens on the first address the name resolves to.

    :param option: the command's option that gave ``port``, named in the hint.
    :raises ConnectorError: the address cannot be listened on (in use, not this machine's,
        a name that does not resolve).
    """
    literal = host.removeprefix("[").removesuffix("]")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            literal, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConnectorError(
            f"{host}:{port}: cannot listen: {exc.strerror or exc} [give an IP address or a"
            " name of this machine]"
        ) from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        # Listen now, so clients that read the banner can connect before uvicorn takes over.
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise ConnectorError(
            f"{host}:{port}: cannot listen: {exc.strerror or exc} [use another {option}]"
        ) from exc
    sock.set_inheritable(True)
    return sock


def socket_url(sock: socket.socket, path: str = "") -> str:
    """``http://<address>:<port><path>`` of a bound socket (an IPv6 address in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}{path}" if ":" in host else f"http://{host}:{port}{path}"


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop's event loop when installed (faster), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def serve_forever(
    server: uvicorn.Server,
    sock: socket.socket,
    *,
    on_exit: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Serve on ``sock`` in this thread until the server exits (SIGINT/SIGTERM: uvicorn's);
    then await ``on_exit`` (pending webhook deliveries, say) on the same loop."""

    async def main() -> None:
        try:
            await server.serve(sockets=[sock])
        finally:
            if on_exit is not None:
                await on_exit()

    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(main())


class ServerThread:
    """A uvicorn server on a bound socket, run in a thread with its own event loop.

    The thread, not uvicorn, is what the caller owns: signals stay the caller's (uvicorn
    installs handlers only on the main thread), :meth:`call_soon` runs code on the server's
    loop, and :meth:`stop` ends it. The socket is closed when the thread ends.

    :param on_exit: awaited on the server's loop once it stopped serving.
    """

    def __init__(
        self,
        server: uvicorn.Server,
        sock: socket.socket,
        *,
        name: str,
        on_exit: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.server = server
        self.sock = sock
        self.loop: asyncio.AbstractEventLoop | None = None
        self.failure: BaseException | None = None
        self._on_exit = on_exit
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __repr__(self) -> str:
        return f"ServerThread({self._thread.name!r}, alive={self.alive})"

    @property
    def alive(self) -> bool:
        """Whether the thread still runs (the server serves, or is shutting down)."""
        return self._thread.is_alive()

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the thread and wait until the server accepts connections.

        :raises ConnectorError: it did not start within ``timeout`` (the cause is logged).
        """
        self._thread.start()
        if not self._ready.wait(timeout) or not self.server.started:
            self.stop()
            raise ConnectorError(
                f"{self._thread.name}: the HTTP server did not start: {self.failure!r}"
            )

    def stop(self, timeout: float = START_TIMEOUT) -> None:
        """Ask the server to exit and wait (up to ``timeout``) for its thread."""
        self.server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        server = self.server

        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            task = asyncio.create_task(server.serve(sockets=[self.sock]))
            while not server.started and not task.done():
                await asyncio.sleep(0.005)
            self._ready.set()
            try:
                await task
            finally:
                if self._on_exit is not None:
                    await self._on_exit()

        try:
            with asyncio.Runner(loop_factory=loop_factory()) as runner:
                runner.run(main())
        except BaseException as exc:  # noqa: BLE001  # thread top level: report, never die loudly
            _log.exception("%s: the HTTP server failed", self._thread.name)
            self.failure = exc
        finally:
            self.sock.close()
            self._ready.set()


@dataclass(frozen=True, slots=True)
class Limits:
    """What one client may hold of a guarded server.

    :param header_timeout: seconds from a connection's (or a request's) first byte to the end
        of its headers.
    :param body_timeout: seconds from the end of the headers to the end of the body.
    :param idle_timeout: seconds a keep-alive connection may wait for its next request.
    :param max_header_bytes: bytes of request line and headers.
    :param max_headers: header lines per request.
    :param max_buffered: bytes of unfinished request bodies across all connections.
    """

    header_timeout: float = 10.0
    body_timeout: float = 20.0
    idle_timeout: int = 5
    max_header_bytes: int = 16 * 1024
    max_headers: int = 100
    max_buffered: int = 32 * 1024 * 1024

    def __post_init__(self) -> None:
        if min(self.header_timeout, self.body_timeout, self.idle_timeout) <= 0 or min(
            self.max_header_bytes, self.max_headers, self.max_buffered
        ) < 1:
            raise ValueError(f"{self!r}: every limit must be positive")


class _Budget:
    """Bytes of unfinished request bodies, per connection and in total, for one server."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.high = 0
        self.held: dict[GuardedProtocol, int] = {}

    def __repr__(self) -> str:
        return f"_Budget(used={self.used}, limit={self.limit}, holders={len(self.held)})"

    def add(self, holder: GuardedProtocol, size: int) -> None:
        self.held[holder] = self.held.get(holder, 0) + size
        self.used += size
        self.high = max(self.high, self.used)

    def release(self, holder: GuardedProtocol) -> None:
        self.used -= self.held.pop(holder, 0)
        if not self.used and self.high >= _TRIM_AFTER:
            # Later: the apps still hold the bodies of the requests that just ended.
            self.high = 0
            asyncio.get_running_loop().call_later(_TRIM_DELAY, self._trim_if_idle)

    def _trim_if_idle(self) -> None:
        if not self.used:
            _trim()

    def shed(self) -> None:
        """Refuse the largest holders until the total is within the limit again."""
        while self.used > self.limit and self.held:
            victim = max(self.held, key=self.held.__getitem__)
            self.release(victim)
            victim.abort(503, "too many unfinished request bodies; retry later")


def _trim() -> None:
    """Give freed heap memory back to the OS (glibc keeps it otherwise; elsewhere a no-op)."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


class _Coalescing:
    """The transport a request's cycle writes to: the response head (uvicorn writes it alone)
    is held until the next write, which the app makes in the same turn of the loop for any
    answer built at once; a head still held at the end of the turn (a streamed answer that
    waits for its first chunk) is written then. Every other call goes to the transport."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._held is not None:
            data, self._held = self._held + data, None
        elif data.startswith(b"HTTP/") and data.endswith(b"\r\n\r\n"):
            self._held = data
            self._loop.call_soon(self.flush)
            return
        self._transport.write(data)

    def flush(self) -> None:
        """Write the held head, if any."""
        if self._held is not None:
            held, self._held = self._held, None
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401  # the transport's own
        return getattr(self._transport, name)


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request that broke a limit."""


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with deadlines, header limits and a shared body budget.

    Subclasses made by :func:`guarded_server` set :attr:`limits` and :attr:`budget` (one
    budget per server).
    """

    limits: ClassVar[Limits]
    budget: ClassVar[_Budget]

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401  # uvicorn's own
        super().__init__(*args, **kwargs)
        self._deadline: TimerHandle | None = None
        self._in_head = True
        self._head_bytes = 0
        self._head_count = self._head_size = 0
        self._refusal: tuple[int, str] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.budget.release(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > self.limits.max_header_bytes:
            self.abort(431, "request headers too large")

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a parser error, which is how a limit stops the parser too."""
        self._send_error(*(self._refusal or (400, msg)))

    # parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_count = self._head_size = 0
        if self._deadline is None:
            self._arm(self.limits.header_timeout)

    def on_url(self, url: bytes) -> None:
        self._count_head(0, len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(1, len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._arm(self.limits.body_timeout)
        super().on_headers_complete()
        self.cycle.transport = _Coalescing(self.transport, self.loop)  # type: ignore[assignment]

    def on_body(self, body: bytes) -> None:
        if not self.cycle.response_complete:  # uvicorn drops a body its app already answered
            self.budget.add(self, len(body))
        super().on_body(body)
        self.budget.shed()

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_head = True
        self.budget.release(self)
        super().on_message_complete()

    def on_response_complete(self) -> None:
        self.budget.release(self)
        super().on_response_complete()

    # refusing

    def _count_head(self, lines: int, size: int) -> None:
        """Count parsed header lines and bytes; past a limit, stop the parser (431)."""
        self._head_count += lines
        self._head_size += size
        if self._head_count > self.limits.max_headers:
            self._refusal = (431, f"more than {self.limits.max_headers} request headers")
        elif self._head_size > self.limits.max_header_bytes:
            self._refusal = (431, "request headers too large")
        else:
            return
        raise _Refused

    def abort(self, status: int, reason: str) -> None:
        """Answer ``status`` (unless a response is under way) and close the connection; the
        request's app sees a disconnect and its own answer is dropped."""
        if self.transport.is_closing():
            return
        _log.info("http: %d %s from %s", status, reason, _peer(self.client))
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
            if cycle.response_started:
                self.transport.close()
                return
        self._send_error(status, reason)

    def _send_error(self, status: int, reason: str) -> None:
        body = reason.encode("ascii", "replace")
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d"
            b"\r\nconnection: close\r\n\r\n%s"
            % (status, HTTPStatus(status).phrase.encode(), len(body), body)
        )
        self.transport.close()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        part = "headers" if self._in_head else "body"
        self.abort(408, f"request {part} not received in time")


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "?"


def guarded_server(app: Any, limits: Limits | None = None, **config: Any) -> uvicorn.Server:  # noqa: ANN401
    """A uvicorn server for ``app`` on httptools with :class:`GuardedProtocol` under ``limits``.

    :param config: more :class:`uvicorn.Config` arguments (logging, graceful shutdown).
    """
    chosen = limits or Limits()

    class Protocol(GuardedProtocol):
        limits = chosen
        budget = _Budget(chosen.max_buffered)

    # proxy_headers off: uvicorn would otherwise take X-Forwarded-For from any client on
    # 127.0.0.1 as the client's address (the console's per-address login throttle reads it).
    settings: dict[str, Any] = {"lifespan": "off", "access_log": False, "server_header": False,
                                "ws": "none", "proxy_headers": False, **config}
    return uvicorn.Server(uvicorn.Config(app, http=Protocol,
                                         timeout_keep_alive=chosen.idle_timeout, **settings))
