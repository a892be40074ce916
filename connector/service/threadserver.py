"""A thread-per-connection HTTP/1.1 server: the listener of ``ghl-connector api``.

The API's action calls are synchronous (the runtime's I/O is httpx's blocking client). On
uvicorn each call was read on the event loop, handed to a worker thread, and handed back to
the loop to be answered: two hand-overs between threads per call, which cost about 0.4 ms of
a call on a two-CPU machine (``bench/bench_api.py``). Here the thread that reads a
connection's request runs the call and writes its answer, as gunicorn's sync workers do:

- a request the ``fast`` handler takes (the API's ``POST /v1/actions/{id}``) is answered in
  the connection's thread, with no event loop and no other thread involved;
- every other request (the console, ``/metrics``, the API's other routes) goes to the ASGI
  ``app``, run on one event loop in a thread of its own; its answer, streamed or whole, is
  written by the connection's thread.

Clients are held to :class:`~connector.service.listener.Limits`, as the guarded uvicorn
listener holds them: a deadline for the request line and headers (from the connection's or
the request's first byte; 408) and one for the body (408), the keep-alive idle time, the
size and number of headers (431), the body size (413), and the bytes of unfinished bodies
across connections (503). At most ``max_connections`` connections are served at once; past
them a connection is answered 503 and closed. Each refusal closes its connection.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import socket
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

import httptools

from connector.service.listener import Limits, loop_factory
from connector.service.shutdown import on_stop_signal, restore
from connector.service.wire import Message, Receive, Scope, Send

__all__ = ["Answer", "Request", "ThreadServer"]

_log = logging.getLogger(__name__)

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
_READ = 65536
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_END = object()  # the app returned
_STOP = object()  # the server is stopping: give up a streamed answer
_SHED = "too many unfinished request bodies at once; retry shortly"


@dataclass(slots=True)
class Request:
    """One parsed request: ``path`` percent-decoded, header names lower-case."""

    method: str
    raw_path: bytes
    query: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    http_version: str
    keep_alive: bool

    @property
    def path(self) -> str:
        return unquote(self.raw_path.decode("latin-1"))


@dataclass(frozen=True, slots=True)
class Answer:
    """A whole answer: status, headers (any ``content-length`` is replaced), body."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


Fast = Callable[[Request], Answer | None]
"""Answers a request in the connection's thread, or None to hand it to the ASGI app."""
Refusal = Callable[[int, str], Answer]
"""The answer the server gives for a refusal of its own (status, reason)."""


def text_refusal(status: int, reason: str) -> Answer:
    """A refusal as plain text (the default)."""
    return Answer(status, [(b"content-type", b"text/plain; charset=utf-8")],
                  reason.encode("utf-8"))  # fmt: skip


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request that broke a limit."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class _Budget:
    """Bytes of request bodies held across all connections, from their first byte until
    their request is answered. Past the limit, the connections holding the most are shed
    (answered 503 and closed), so small requests keep being served while large ones wait."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held: dict[_Parse, int] = {}
        self._total = 0
        self._lock = threading.Lock()

    def add(self, holder: _Parse, size: int) -> None:
        """Count ``size`` more bytes for ``holder``; past the limit, shed the largest holders
        (``holder`` included, if it is one of them)."""
        with self._lock:
            self._held[holder] = self._held.get(holder, 0) + size
            self._total += size
            shed = []
            while self._total > self.limit and self._held:
                largest = max(self._held, key=self._held.__getitem__)
                self._total -= self._held.pop(largest)
                shed.append(largest)
        for each in shed:
            each.shed()

    def remove(self, holder: _Parse, size: int) -> None:
        """``size`` bytes of ``holder``'s are answered (or gone)."""
        with self._lock:
            held = self._held.get(holder)
            if held is None:
                return
            size = min(size, held)
            self._total -= size
            if held == size:
                del self._held[holder]
            else:
                self._held[holder] = held - size

    def release(self, holder: _Parse) -> None:
        with self._lock:
            self._total -= self._held.pop(holder, 0)


@dataclass(eq=False)
class _Parse:
    """The parser's callbacks for one connection: its requests, as they complete."""

    limits: Limits
    max_body: int
    budget: _Budget
    conn: socket.socket | None = None
    done: list[Request] = field(default_factory=list)
    in_message: bool = False
    in_body: bool = False
    deadline: float | None = None
    wants_continue: bool = False
    refusal: _Refused | None = None
    shed_by_budget: bool = False
    answering: bool = False
    head_bytes: int = 0
    _parser: httptools.HttpRequestParser | None = None
    _url: bytes = b""
    _headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    _body: list[bytes] = field(default_factory=list)
    _head_size: int = 0
    _size: int = 0

    def __hash__(self) -> int:
        return id(self)

    def shed(self) -> None:
        """Shed by the budget: the connection's thread answers 503 and closes. Its read is
        cut short here (and its write, when it is writing an answer to a client that does
        not read it)."""
        self.shed_by_budget = True
        if self.conn is not None:
            _shut(self.conn, socket.SHUT_RDWR if self.answering else socket.SHUT_RD)

    def on_message_begin(self) -> None:
        self.in_message, self.in_body = True, False
        if self.deadline is None:  # (a new connection's is armed when it opens)
            self.deadline = time.monotonic() + self.limits.header_timeout
        self._url, self._headers, self._body = b"", [], []
        self._head_size = self._size = 0

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)
        if self.in_body:
            return  # a chunked body's trailer: not a header of the request
        if len(self._headers) >= self.limits.max_headers:
            self._refuse(431, f"more than {self.limits.max_headers} request headers")
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.in_body = True
        self.head_bytes = 0
        self.deadline = time.monotonic() + self.limits.body_timeout
        for name, value in self._headers:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body:
                self._refuse(413, f"request body larger than {self.max_body} bytes")
            elif name == b"expect" and value.lower() == b"100-continue":
                self.wants_continue = True

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self.max_body:
            self._refuse(413, f"request body larger than {self.max_body} bytes")
        self.budget.add(self, len(body))
        if self.shed_by_budget:
            self._refuse(503, _SHED)
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.in_message = self.in_body = self.wants_continue = False
        self.deadline = None
        self.head_bytes = 0
        parser = self._parser
        assert parser is not None
        try:
            url = httptools.parse_url(self._url)  # origin-form or absolute-form
        except httptools.HttpParserInvalidURLError:
            self._refuse(400, "malformed request target")
        version = parser.get_http_version()
        self.done.append(Request(
            parser.get_method().decode("ascii", "replace"), url.path or b"/", url.query or b"",
            self._headers, b"".join(self._body), version,
            version == "1.1" and parser.should_keep_alive(),  # HTTP/1.0: the close ends it
        ))  # fmt: skip

    def _count_head(self, size: int) -> None:
        self._head_size += size
        if self._head_size > self.limits.max_header_bytes:
            self._refuse(431, "request headers too large")

    def _refuse(self, status: int, reason: str) -> None:
        self.refusal = _Refused(status, reason)
        raise self.refusal


class ThreadServer:
    """Serves ``app`` (and ``fast``) on the listening socket ``sock`` until :meth:`stop`.

    :param fast: answers the requests it takes in the connection's thread (see :data:`Fast`).
    :param refusal: the answer to the server's own refusals (default: plain text).
    :param max_body: the largest request body read (413 past it).
    """

    def __init__(
        self,
        app: ASGIApp,
        sock: socket.socket,
        *,
        fast: Fast | None = None,
        refusal: Refusal = text_refusal,
        limits: Limits | None = None,
        max_body: int = 16 * 1024 * 1024,
        max_connections: int = 256,
        name: str = "http",
    ) -> None:
        self.app = app
        self.sock = sock
        self.fast = fast
        self.refusal = refusal
        self.limits = limits or Limits()
        self.max_body = max_body
        self.max_connections = max_connections
        self.name = name
        self._budget = _Budget(self.limits.max_buffered)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._connections: dict[socket.socket, _Parse] = {}
        self._streams: set[queue.SimpleQueue[object]] = set()
        self._threads: set[threading.Thread] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"ThreadServer({self.name!r}, connections={len(self._connections)})"

    # running

    def serve_forever(self) -> None:
        """Serve until SIGINT or SIGTERM (or :meth:`stop`), then stop, letting requests that
        are under way finish."""
        previous = on_stop_signal(lambda sig: self.stop(), f"{self.name}-stop")
        try:
            self.run()
        finally:
            restore(previous)

    def run(self) -> None:
        """Accept connections in this thread until :meth:`stop` (the socket is closed then)."""
        self._start_loop()
        try:
            self._accept()
        finally:
            self.sock.close()
            self._drain()

    def stop(self) -> None:
        """Stop accepting; close idle connections; the busy ones close after their answer."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept
        except OSError:
            pass
        with self._lock:
            idle = [conn for conn, parse in self._connections.items() if not parse.answering]
            streams = list(self._streams)
        for conn in idle:
            _shut(conn)
        for stream in streams:
            stream.put(_STOP)

    def _start_loop(self) -> None:
        loop = loop_factory()()
        self._loop = loop
        self._loop_thread = threading.Thread(target=loop.run_forever, name=f"{self.name}-asgi",
                                             daemon=True)  # fmt: skip
        self._loop_thread.start()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, address = self.sock.accept()
            except OSError as exc:
                if self._stopping.is_set():
                    return
                _log.warning("%s: accept failed: %s", self.name, exc)
                time.sleep(0.1)  # out of file descriptors: let connections close
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            parse = _Parse(self.limits, self.max_body, self._budget, conn)
            with self._lock:
                full = len(self._connections) >= self.max_connections
                if not full:
                    self._connections[conn] = parse
            if full:
                _log.info("http: 503 too many connections from %s", _peer(address))
                conn.settimeout(1.0)
                self._refuse(conn, 503, "too many connections at once; retry shortly")
                conn.close()
                continue
            thread = threading.Thread(target=self._serve, args=(conn, parse, address),
                                      name=f"{self.name}-conn", daemon=True)  # fmt: skip
            with self._lock:
                self._threads.add(thread)
            thread.start()

    def _drain(self, timeout: float = 10.0) -> None:
        """Wait for the connections' threads (up to ``timeout``), then stop the loop."""
        until = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, until - time.monotonic()))
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
            if self._loop_thread is not None:
                self._loop_thread.join(timeout)
            loop.close()

    # one connection

    def _serve(self, conn: socket.socket, parse: _Parse, address: Any) -> None:  # noqa: ANN401
        client = tuple(address[:2]) if isinstance(address, tuple) else None
        parser = httptools.HttpRequestParser(parse)
        parse._parser = parser
        # A new connection's first request is due in full (headers) from now, whatever
        # arrives meanwhile (blank lines included); after an answer, the next is awaited
        # for the idle time, then its headers are due from its first byte.
        parse.deadline = time.monotonic() + self.limits.header_timeout
        idle_until = parse.deadline
        try:
            while not self._stopping.is_set():
                data = self._receive(conn, parse.deadline or idle_until)
                if parse.shed_by_budget:
                    self._refuse(conn, 503, _SHED, client)
                    return
                if data is None:  # out of time: a request under way is 408, an idle close
                    if parse.deadline is not None:
                        part = "body" if parse.in_body else "headers"
                        self._refuse(conn, 408, f"request {part} not received in time", client)
                    return
                if not data:
                    return
                if not parse.in_body:
                    parse.head_bytes += len(data)
                try:
                    parser.feed_data(data)
                except httptools.HttpParserUpgrade:
                    self._refuse(conn, 400, "protocol upgrades are not served here", client)
                    return
                except httptools.HttpParserError as exc:
                    refused = parse.refusal
                    if refused is None:
                        self._refuse(conn, 400, f"malformed request ({exc})", client)
                    else:
                        self._refuse(conn, refused.status, refused.reason, client)
                    return
                if parse.head_bytes > self.limits.max_header_bytes:
                    self._refuse(conn, 431, "request headers too large", client)
                    return
                answered = False
                while parse.done:
                    request = parse.done.pop(0)
                    parse.answering = True
                    try:
                        keep = self._answer(conn, client, request)
                    finally:
                        parse.answering = False
                        self._budget.remove(parse, len(request.body))
                    if not keep or parse.shed_by_budget:
                        return
                    answered = True
                if answered:
                    now = time.monotonic()
                    idle_until = now + self.limits.idle_timeout
                    if parse.deadline is not None:  # a pipelined request begun meanwhile
                        wait = self.limits.body_timeout if parse.in_body else (
                            self.limits.header_timeout)
                        parse.deadline = now + wait
                if parse.wants_continue and parse.in_body:  # after the answers before it
                    parse.wants_continue = False
                    conn.sendall(_CONTINUE)
        except OSError:
            if parse.shed_by_budget:
                self._refuse(conn, 503, _SHED, client)
            return  # the client reset or went away
        finally:
            self._budget.release(parse)
            with self._lock:
                self._connections.pop(conn, None)
                self._threads.discard(threading.current_thread())
            _shut(conn)
            conn.close()

    def _receive(self, conn: socket.socket, deadline: float) -> bytes | None:
        """The next bytes (b"" at the end), or None when ``deadline`` passes first."""
        wait = deadline - time.monotonic()
        if wait <= 0:
            return None
        conn.settimeout(wait)
        try:
            return conn.recv(_READ)
        except TimeoutError:
            return None

    def _answer(self, conn: socket.socket, client: tuple[Any, ...] | None,
                request: Request) -> bool:
        """Answer one request; whether the connection may serve another."""
        conn.settimeout(self.limits.body_timeout)  # a client that reads nothing is let go
        if self.fast is not None:
            keep = request.keep_alive
            try:
                answer = self.fast(request)
            except Exception:
                _log.exception("%s %s failed", request.method, request.path)
                answer = self.refusal(500, "internal error")
                keep = False
            if answer is not None:
                keep = keep and not self._stopping.is_set()
                conn.sendall(_whole(answer, keep, head=request.method == "HEAD"))
                return keep
        return self._bridge(conn, client, request, request.keep_alive)

    def _refuse(self, conn: socket.socket, status: int, reason: str,
                client: tuple[Any, ...] | None = None) -> None:
        """Answer a refusal of the server's own and leave the connection to close."""
        if client is not None:
            _log.info("http: %d %s from %s", status, reason, _peer(client))
        try:
            conn.sendall(_whole(self.refusal(status, reason), False, head=False))
        except OSError:
            pass

    # the ASGI app

    def _bridge(self, conn: socket.socket, client: tuple[Any, ...] | None,
                request: Request, keep: bool) -> bool:
        """Run the ASGI app for ``request`` on the loop; write what it sends."""
        loop = self._loop
        assert loop is not None
        stream: queue.SimpleQueue[object] = queue.SimpleQueue()
        over = asyncio.Event()  # set on the loop: the answer is written, or the client gone
        scope = self._scope(request, client)
        sent_body = False

        async def receive() -> Message:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": request.body, "more_body": False}
            await over.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if not over.is_set():
                stream.put(message)

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            except Exception as exc:  # noqa: BLE001  # logged by the connection's thread
                stream.put(exc)
            finally:
                stream.put(_END)

        with self._lock:
            self._streams.add(stream)
        asyncio.run_coroutine_threadsafe(run(), loop)
        try:
            return self._relay(conn, request, stream, keep)
        finally:
            with self._lock:
                self._streams.discard(stream)
            loop.call_soon_threadsafe(over.set)

    def _scope(self, request: Request, client: tuple[Any, ...] | None) -> dict[str, Any]:
        """The ASGI scope of ``request`` (as uvicorn makes it, without lifespan state)."""
        server = self.sock.getsockname()
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": request.http_version,
            "server": tuple(server[:2]) if isinstance(server, tuple) else None,
            "client": client,
            "scheme": "http",
            "method": request.method,
            "root_path": "",
            "path": request.path,
            "raw_path": request.raw_path,
            "query_string": request.query,
            "headers": request.headers,
            "state": {},
        }

    def _relay(self, conn: socket.socket, request: Request, stream: queue.SimpleQueue[object],
               keep: bool) -> bool:
        """Write the app's answer as it sends it; whether the connection may go on."""
        head_only = request.method == "HEAD"
        start: Message | None = None
        written = chunked = False
        while True:
            item = stream.get()
            if item is _STOP:
                return False
            if item is _END or isinstance(item, BaseException):
                if isinstance(item, BaseException):
                    _log.error("%s %s failed", request.method, request.path, exc_info=item)
                if not written:  # nothing answered, or a head without its body
                    conn.sendall(_whole(self.refusal(500, "internal error"), False, head=False))
                return False  # (or the app stopped before its answer ended)
            assert isinstance(item, MutableMapping)
            kind = item.get("type")
            if kind == "http.response.start":
                if not _valid_headers(item.get("headers", [])):
                    _log.error("%s %s: the app sent a malformed header", request.method,
                               request.path)  # fmt: skip
                    conn.sendall(_whole(self.refusal(500, "internal error"), False, head=False))
                    return False
                start = item
                continue
            if kind != "http.response.body" or start is None:
                continue
            body = bytes(item.get("body", b""))
            more = bool(item.get("more_body", False))
            if not written:
                written = True
                keep = keep and not self._stopping.is_set()
                if not more:
                    conn.sendall(_whole(_answer_of(start, body), keep, head=head_only))
                    return keep
                headers = list(start.get("headers", []))
                chunked = not _has(headers, b"content-length")
                if chunked and request.http_version == "1.0":
                    keep, chunked = False, False  # the end of the answer is the close
                framing = [(b"transfer-encoding", b"chunked")] if chunked else []
                head = _status_line(int(start["status"]), headers + framing, keep)
            else:
                head = b""
            if head_only:
                body = b""
            elif chunked:
                body = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + (
                    b"" if more else b"0\r\n\r\n")
            if head or body:
                conn.sendall(head + body)  # a streamed answer's head goes with its first part
            if not more:
                return keep


def _answer_of(start: Message, body: bytes) -> Answer:
    return Answer(int(start["status"]), list(start.get("headers", [])), body)


def _whole(answer: Answer, keep: bool, *, head: bool) -> bytes:
    """A whole answer's bytes: its head with ``content-length``, then its body."""
    bodiless = answer.status in (204, 304) or answer.status < 200
    headers = [(name, value) for name, value in answer.headers
               if name.lower() != b"content-length"]  # fmt: skip
    if not bodiless:
        headers.append((b"content-length", b"%d" % len(answer.body)))
    return _status_line(answer.status, headers, keep) + (
        b"" if head or bodiless else answer.body)


def _status_line(status: int, headers: list[tuple[bytes, bytes]], keep: bool) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase.encode()
    except ValueError:
        phrase = b""
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, phrase)]
    lines.extend(b"%s: %s\r\n" % (name, value) for name, value in headers)
    if not keep:
        lines.append(b"connection: close\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


def _valid_headers(headers: Any) -> bool:  # noqa: ANN401  # what the app sent
    """Whether an app's headers are byte pairs without line breaks (no response splitting)."""
    try:
        return all(isinstance(name, bytes) and isinstance(value, bytes)
                   and not {10, 13}.intersection(name + value) for name, value in headers)
    except (TypeError, ValueError):
        return False


def _has(headers: list[tuple[bytes, bytes]], name: bytes) -> bool:
    return any(key.lower() == name for key, _ in headers)


def _shut(conn: socket.socket, how: int = socket.SHUT_RDWR) -> None:
    try:
        conn.shutdown(how)
    except OSError:
        pass


def _peer(client: Any) -> str:  # noqa: ANN401  # an address tuple, or None
    return f"{client[0]}:{client[1]}" if client else "?"
