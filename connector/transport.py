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
        self._idle: dict[_Origin, list[http.client.HTTPConnection]] = {}
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
        for connections in idle.values():
            for connection in connections:
                connection.close()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and read the whole response."""
        timeouts = cast(dict[str, float | None], request.extensions.get("timeout", {}))
        url = request.url
        origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        connection = self._take(origin)
        if connection is None:
            connection = self._connect(request, origin, timeouts.get("connect"))
        try:
            answer = self._exchange(connection, request, timeouts)
        except BaseException:
            connection.close()
            raise
        status, reason, headers, body, keep = answer
        if keep:
            self._give_back(origin, connection)
        else:
            connection.close()
        return httpx.Response(
            status,
            headers=headers,
            content=body,
            request=request,
            extensions={**_HTTP_VERSION, "reason_phrase": reason.encode("ascii", "replace")},
        )

    # -- the pool ----------------------------------------------------------------------------

    def _take(self, origin: _Origin) -> http.client.HTTPConnection | None:
        """An idle connection to ``origin`` the server has not closed, or None."""
        while True:
            with self._lock:
                idle = self._idle.get(origin)
                if not idle:
                    return None
                connection = idle.pop()
            if _usable(connection):
                return connection
            connection.close()

    def _give_back(self, origin: _Origin, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if not self._closed and len(idle) < self.max_idle:
                idle.append(connection)
                return
        connection.close()

    def _connect(
        self, request: httpx.Request, origin: _Origin, timeout: float | None
    ) -> http.client.HTTPConnection:
        scheme, host, port = origin
        connection: http.client.HTTPConnection
        if scheme == "https":
            connection = http.client.HTTPSConnection(
                host, port, timeout=timeout, context=self._context()
            )
        elif scheme == "http":
            connection = http.client.HTTPConnection(host, port, timeout=timeout)
        else:
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}", request=request)
        try:
            connection.connect()
        except TimeoutError as exc:
            connection.close()
            raise httpx.ConnectTimeout(str(exc) or "timed out", request=request) from exc
        except OSError as exc:
            connection.close()
            raise httpx.ConnectError(str(exc), request=request) from exc
        if connection.sock is not None:
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection

    def _context(self) -> ssl.SSLContext:
        """The SSL context, made once (loading the CA bundle takes tens of milliseconds)."""
        with self._lock:
            if self._ssl_context is None:
                self._ssl_context = httpx.create_ssl_context()
            return self._ssl_context

    # -- one exchange ------------------------------------------------------------------------

    def _exchange(
        self,
        connection: http.client.HTTPConnection,
        request: httpx.Request,
        timeouts: dict[str, float | None],
    ) -> tuple[int, str, list[tuple[str, str]], bytes, bool]:
        """Write the request, read the response: status, reason, headers, body, reusable."""
        body = request.read()
        target = request.url.raw_path.decode("ascii")
        with _errors(request, "write"):
            _timeout(connection, timeouts.get("write"))
            connection.putrequest(request.method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in request.headers.raw:
                connection.putheader(name, value)
            connection.endheaders(body or None)
        with _errors(request, "read"):
            _timeout(connection, timeouts.get("read"))
            response = connection.getresponse()
            content = response.read()
        keep = not response.will_close and connection.sock is not None
        return response.status, response.reason, response.getheaders(), content, keep


def _timeout(connection: http.client.HTTPConnection, seconds: float | None) -> None:
    if connection.sock is not None:
        connection.sock.settimeout(seconds)


def _usable(connection: http.client.HTTPConnection) -> bool:
    """Whether an idle connection is still open: the server has sent nothing (no EOF)."""
    sock = connection.sock
    if sock is None:
        return False
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
