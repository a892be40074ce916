"""The HTTP/1.1 transport under httpx: pooled keep-alive connections of ``http.client``.

httpx's default transport (httpcore and h11, written in Python) spends about as much CPU on one
request as everything else the connector does for it. ``http.client`` parses responses in C and
does the same job, for the requests the connector sends, at a third of the cost. So
:class:`KeepAliveTransport` is the transport of every
:class:`~connector.client.httpclient.HttpClient`, unless
the environment names a proxy (then httpx's own transport, which honours ``HTTP(S)_PROXY``, is
used).

What it does and does not do:

- a pool of idle connections per origin (bounded; extra ones are closed), each checked before
  reuse: one the server closed meanwhile (readable at EOF) is dropped, never written to;
- the request's timeouts from httpx: ``connect`` while connecting, ``read`` and ``write`` after;
- the request's total deadline (:data:`~connector.client.limits.DEADLINE_EXTENSION`, a
  ``time.monotonic()`` instant): every socket wait is cut to what is left of it, so a server
  dripping a byte a second cannot hold a call past it;
- HTTPS with httpx's SSL context (certificate verification on);
- the body is streamed: the connection goes back to the pool when the response is closed
  after its last byte (:func:`connector.client.limits.read_limited` reads it under the body cap);
- failures are raised as the httpx exceptions httpcore would raise (``ConnectError``,
  ``ConnectTimeout``, ``ReadTimeout``, ``WriteTimeout``, ``ReadError``, ``WriteError``,
  ``RemoteProtocolError``), with the ``OSError`` as their cause, so callers map them once;
  past the deadline :class:`~connector.client.limits.DeadlineExceeded`.
"""

from __future__ import annotations

import http.client
import io
import re
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, cast

import httpx

from connector.client.limits import DEADLINE_EXTENSION, STEP, DeadlineExceeded

__all__ = ["KeepAliveTransport"]

_Origin = tuple[str, str, int]
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(rb"[\r\n\0]")
_HTTP_VERSION = {"http_version": b"HTTP/1.1"}


class KeepAliveTransport(httpx.BaseTransport):
    """Sends httpx requests over pooled ``http.client`` connections.

    :param max_idle: idle connections kept per origin (more are closed when given back).
    :param ssl_context: for HTTPS (default: httpx's, verifying certificates).
    """

    def __init__(self, *, max_idle: int = 32, ssl_context: ssl.SSLContext | None = None) -> None:
        self.max_idle = max_idle
        self._ssl_context = ssl_context
        self._lock = threading.Lock()
        self._idle: dict[_Origin, list[socket.socket]] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"KeepAliveTransport(max_idle={self.max_idle!r})"

    def __enter__(self) -> KeepAliveTransport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close every idle connection (connections in use close when given back)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for sockets in idle.values():
            for sock in sockets:
                sock.close()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and read the response head; the body streams from the socket."""
        timeouts = cast(dict[str, float | None], request.extensions.get("timeout", {}))
        deadline = cast(float | None, request.extensions.get(DEADLINE_EXTENSION))
        url = request.url
        origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        message = _message(request)
        sock = self._take(origin)
        if sock is None:
            sock = self._connect(request, origin, timeouts.get("connect"), deadline)
        try:
            response = _exchange(sock, request, message, timeouts, deadline)
        except BaseException:
            sock.close()
            raise
        return httpx.Response(
            response.status,
            headers=response.getheaders(),
            stream=_Body(self, origin, sock, response, request),
            request=request,
            extensions={**_HTTP_VERSION, "reason_phrase": response.reason.encode("latin-1")},
        )

    def _done(self, origin: _Origin, sock: socket.socket, reusable: bool) -> None:
        """A response's connection, after its body was read (``reusable``) or abandoned."""
        if reusable:
            self._give_back(origin, sock)
        else:
            sock.close()

    # -- the pool ----------------------------------------------------------------------------

    def _take(self, origin: _Origin) -> socket.socket | None:
        """An idle connection to ``origin`` the server has not closed, or None."""
        while True:
            with self._lock:
                idle = self._idle.get(origin)
                if not idle:
                    return None
                sock = idle.pop()
            if _usable(sock):
                return sock
            sock.close()

    def _give_back(self, origin: _Origin, sock: socket.socket) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if not self._closed and len(idle) < self.max_idle:
                idle.append(sock)
                return
        sock.close()

    def _connect(
        self,
        request: httpx.Request,
        origin: _Origin,
        timeout: float | None,
        deadline: float | None,
    ) -> socket.socket:
        scheme, host, port = origin
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}", request=request)
        try:
            sock = socket.create_connection((host, port), timeout=_left(timeout, deadline, request))
        except TimeoutError as exc:
            _check_deadline(deadline, request)
            raise httpx.ConnectTimeout(str(exc) or "timed out", request=request) from exc
        except OSError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if scheme == "http":
            return sock
        try:
            return self._context().wrap_socket(sock, server_hostname=host)
        except TimeoutError as exc:
            sock.close()
            raise httpx.ConnectTimeout(str(exc) or "timed out", request=request) from exc
        except OSError as exc:  # ssl.SSLError (a bad certificate) included
            sock.close()
            raise httpx.ConnectError(str(exc), request=request) from exc

    def _context(self) -> ssl.SSLContext:
        """The SSL context, made once (loading the CA bundle takes tens of milliseconds)."""
        with self._lock:
            if self._ssl_context is None:
                self._ssl_context = httpx.create_ssl_context()
            return self._ssl_context


def _message(request: httpx.Request) -> bytes:
    """The request line, headers and body as one buffer: one write, one packet.

    :raises httpx.LocalProtocolError: a header name or value that would break the message
        (a line break smuggling a header, say).
    """
    lines = [b"%s %s HTTP/1.1" % (request.method.encode("ascii"), request.url.raw_path)]
    for name, value in request.headers.raw:
        if not _TOKEN.fullmatch(name) or _BAD_VALUE.search(value):
            raise httpx.LocalProtocolError(
                f"illegal header {name.decode('latin-1')!r}", request=request
            )
        lines.append(name + b": " + value)
    lines.append(b"\r\n")
    return b"\r\n".join(lines) + request.read()


def _exchange(
    sock: socket.socket,
    request: httpx.Request,
    message: bytes,
    timeouts: dict[str, float | None],
    deadline: float | None,
) -> http.client.HTTPResponse:
    """Write ``message``; read the response head (``http.client`` parses it)."""
    with _errors(request, "write", deadline):
        sock.settimeout(_left(timeouts.get("write"), deadline, request))
        sock.sendall(message)
    reader = _SocketReader(sock, timeouts.get("read"), deadline, request)
    with _errors(request, "read", deadline):
        response = http.client.HTTPResponse(cast(socket.socket, reader), method=request.method)
        try:
            response.begin()
        except BaseException:
            response.close()
            raise
    return response


class _SocketReader(io.RawIOBase):
    """A socket's reading side, each wait cut to the deadline; it never closes the socket.

    ``http.client`` reads through :meth:`makefile`, so the status line, the headers and every
    chunk of the body are held to the deadline, however slowly the server sends them.
    """

    def __init__(
        self,
        sock: socket.socket,
        timeout: float | None,
        deadline: float | None,
        request: httpx.Request,
    ) -> None:
        self._sock = sock
        self._timeout = timeout
        self._deadline = deadline
        self._request = request

    def makefile(self, mode: str, *args: object) -> io.BufferedReader:
        """What ``http.client.HTTPResponse`` reads from."""
        return io.BufferedReader(self)

    def readable(self) -> bool:
        """Yes."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Receive into ``buffer``, waiting at most the read timeout and what is left."""
        self._sock.settimeout(_left(self._timeout, self._deadline, self._request))
        try:
            return self._sock.recv_into(buffer)
        except TimeoutError:
            _check_deadline(self._deadline, self._request)
            raise


class _Body(httpx.SyncByteStream):
    """A response body streamed from its pooled connection, given back when read to the end."""

    def __init__(
        self,
        transport: KeepAliveTransport,
        origin: _Origin,
        sock: socket.socket,
        response: http.client.HTTPResponse,
        request: httpx.Request,
    ) -> None:
        self._transport = transport
        self._origin = origin
        self._sock: socket.socket | None = sock
        self._response = response
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        response = self._response
        with _errors(self._request, "read", None):
            while chunk := response.read1(STEP):
                yield chunk
            response.read()  # at the end: marks it closed (a HEAD answer too)

    def close(self) -> None:
        """Give the connection back if the body was read whole, else close it."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        response = self._response
        reusable = response.isclosed() and not response.will_close
        response.close()  # its file object only: the socket stays open
        self._transport._done(self._origin, sock, reusable)


def _left(timeout: float | None, deadline: float | None, request: httpx.Request) -> float | None:
    """The wait for one socket operation: the timeout, cut to what is left of the deadline.

    :raises DeadlineExceeded: nothing is left.
    """
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded(request=request)
    return left if timeout is None else min(timeout, left)


def _check_deadline(deadline: float | None, request: httpx.Request) -> None:
    """Raise :class:`DeadlineExceeded` if ``deadline`` has passed (after a socket timeout)."""
    if deadline is not None and time.monotonic() >= deadline:
        raise DeadlineExceeded(request=request)


def _usable(sock: socket.socket) -> bool:
    """Whether an idle connection is still open: the server has sent nothing (no EOF)."""
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False


@contextmanager
def _errors(request: httpx.Request, phase: str, deadline: float | None) -> Iterator[None]:
    """Raise what happens in ``phase`` (write or read) as the httpx exception httpcore would."""
    try:
        yield
    except TimeoutError as exc:
        _check_deadline(deadline, request)
        timeout = httpx.WriteTimeout if phase == "write" else httpx.ReadTimeout
        raise timeout(str(exc) or "timed out", request=request) from exc
    except http.client.RemoteDisconnected as exc:
        raise httpx.RemoteProtocolError(
            "Server disconnected without sending a response.", request=request
        ) from exc
    except http.client.HTTPException as exc:
        raise httpx.RemoteProtocolError(f"{type(exc).__name__}: {exc}", request=request) from exc
    except OSError as exc:
        error = httpx.WriteError if phase == "write" else httpx.ReadError
        raise error(str(exc) or type(exc).__name__, request=request) from exc
