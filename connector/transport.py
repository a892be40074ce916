"""The HTTP/1.1 transport under httpx: pooled keep-alive connections of ``http.client``.

httpx's default transport (httpcore and h11, written in Python) spends about as much CPU on one
request as everything else the connector does for it. ``http.client`` parses responses in C and
does the same job, for the requests the connector sends, at a third of the cost. So
:class:`KeepAliveTransport` is the transport of every :class:`~connector.http.HttpClient`, unless
the environment names a proxy (then httpx's own transport, which honours ``HTTP(S)_PROXY``, is
used).

What it does and does not do:

- a pool of idle connections per origin (bounded; extra ones are closed), each checked before
  reuse: one the server closed meanwhile (readable at EOF) is dropped, never written to;
- the request's timeouts from httpx: ``connect`` while connecting, ``read`` and ``write`` after;
- HTTPS with httpx's SSL context (certificate verification on);
- whole bodies only: the response is read before it is handed back (the connector never
  streams); ``Content-Encoding`` is decoded by httpx as usual;
- failures are raised as the httpx exceptions httpcore would raise (``ConnectError``,
  ``ConnectTimeout``, ``ReadTimeout``, ``WriteTimeout``, ``ReadError``, ``WriteError``,
  ``RemoteProtocolError``), with the ``OSError`` as their cause, so callers map them once.
"""

from __future__ import annotations

import http.client
import re
import select
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import cast

import httpx

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
        """Send ``request`` and read the whole response."""
        timeouts = cast(dict[str, float | None], request.extensions.get("timeout", {}))
        url = request.url
        origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        message = _message(request)
        sock = self._take(origin)
        if sock is None:
            sock = self._connect(request, origin, timeouts.get("connect"))
        try:
            response, content = _exchange(sock, request, message, timeouts)
        except BaseException:
            sock.close()
            raise
        if response.will_close:
            sock.close()
        else:
            self._give_back(origin, sock)
        return httpx.Response(
            response.status,
            headers=response.getheaders(),
            content=content,
            request=request,
            extensions={**_HTTP_VERSION, "reason_phrase": response.reason.encode("latin-1")},
        )

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
        self, request: httpx.Request, origin: _Origin, timeout: float | None
    ) -> socket.socket:
        scheme, host, port = origin
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}", request=request)
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except TimeoutError as exc:
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
) -> tuple[http.client.HTTPResponse, bytes]:
    """Write ``message``; read the response whole (``http.client`` parses it)."""
    with _errors(request, "write"):
        sock.settimeout(timeouts.get("write"))
        sock.sendall(message)
    with _errors(request, "read"):
        sock.settimeout(timeouts.get("read"))
        response = http.client.HTTPResponse(sock, method=request.method)
        try:
            response.begin()
            content = response.read()
        finally:
            response.close()  # its file object only: the socket stays open
    return response, content


def _usable(sock: socket.socket) -> bool:
    """Whether an idle connection is still open: the server has sent nothing (no EOF)."""
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False


@contextmanager
def _errors(request: httpx.Request, phase: str) -> Iterator[None]:
    """Raise what happens in ``phase`` (write or read) as the httpx exception httpcore would."""
    try:
        yield
    except TimeoutError as exc:
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
