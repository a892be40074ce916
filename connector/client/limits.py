"""The limits every answer is read under: a cap on the decoded body and a total deadline.

The same limits for every outgoing call: the REST and GraphQL client
(:class:`~connector.client.httpclient.HttpClient`, on httpx's own transport, with or without a
proxy) and the generic ``http.request`` (``actions.httprequest``, through
:class:`~connector.client.exchange.Exchange`).
:class:`ResponseLimits` says how big (default :data:`MAX_BODY`, decoded) and how slow (default
:data:`DEADLINE_FACTOR` times the timeout, for the whole exchange: connect, send, headers, body)
an answer may be; ``CONNECTOR_HTTP_MAX_BODY`` and ``CONNECTOR_HTTP_DEADLINE`` change them.

- :func:`read_limited` reads a streamed response: the body is decoded here (gzip, deflate) in
  bounded steps and counted as it arrives, so neither an endless body nor a compressed bomb
  grows in memory past the cap.
- The deadline, on pooled connections: :func:`hold_to_deadlines` puts
  :class:`DeadlineBackend` under an ``httpx.HTTPTransport`` (httpcore's network-backend
  interface), and :func:`deadline` sets the instant for the exchanges of the current thread;
  every connect, write and read on any of the pool's connections then waits at most what is
  left of it (a server dripping a byte a second is cut off at the deadline, in the head as in
  the body), and connections stay pooled.
- The deadline, on a client of its own (the generic action's, one per call):
  :class:`DeadlineWatch` shuts the call's new connections down at the deadline.

Past either limit the caller gets :class:`DeadlineExceeded` or :class:`BodyTooLarge` (httpx
exceptions, raised where httpx's are), which the clients turn into
:class:`~connector.errors.ResponseLimitError`.
"""

from __future__ import annotations

import os
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpcore
import httpx

from connector.errors import ConnectorError

__all__ = [
    "DEADLINE_FACTOR",
    "MAX_BODY",
    "STEP",
    "BodyTooLarge",
    "DeadlineBackend",
    "DeadlineExceeded",
    "DeadlineWatch",
    "ResponseLimits",
    "deadline",
    "hold_to_deadlines",
    "read_limited",
]

MAX_BODY = 10 * 1024 * 1024
"""Default cap on a response body, in bytes after decoding (gzip, deflate)."""
DEADLINE_FACTOR = 4.0
"""Default total deadline of one exchange, in multiples of the (per-read) timeout."""
MAX_BODY_ENV = "CONNECTOR_HTTP_MAX_BODY"
DEADLINE_ENV = "CONNECTOR_HTTP_DEADLINE"
STEP = 65_536
"""Largest piece read from a socket or produced by one inflate step."""
_NO_DECODING = frozenset({"", "identity"})
_ZLIB_WBITS = {
    "gzip": 16 + zlib.MAX_WBITS,
    "x-gzip": 16 + zlib.MAX_WBITS,
    "deflate": zlib.MAX_WBITS,
}


class DeadlineExceeded(httpx.TimeoutException):
    """The exchange did not end by its total deadline."""

    def __init__(self, *, request: httpx.Request | None = None) -> None:
        super().__init__("no complete answer by the deadline", request=request)


class BodyTooLarge(httpx.TransportError):
    """The decoded response body passed ``limit`` bytes (``status`` is the answer's)."""

    def __init__(self, limit: int, status: int, *, request: httpx.Request | None = None) -> None:
        self.limit = limit
        self.status = status
        super().__init__(f"response body larger than {limit} bytes", request=request)


@dataclass(frozen=True, slots=True)
class ResponseLimits:
    """How big and how slow an answer may be.

    :param max_body: cap on the decoded body in bytes.
    :param deadline: total seconds for one exchange (connect, send, headers, body); ``None``
        means :data:`DEADLINE_FACTOR` times the client's timeout.
    """

    max_body: int = MAX_BODY
    deadline: float | None = None

    def __post_init__(self) -> None:
        if self.max_body < 1 or (self.deadline is not None and not self.deadline > 0):
            raise ValueError(f"ResponseLimits: positive values needed, not {self!r}")

    def seconds(self, timeout: float | None) -> float:
        """The total deadline in seconds for a client whose per-read timeout is ``timeout``."""
        if self.deadline is not None:
            return self.deadline
        return DEADLINE_FACTOR * (timeout if timeout else 30.0)

    @classmethod
    def from_env(cls) -> ResponseLimits:
        """Limits from ``CONNECTOR_HTTP_MAX_BODY`` (bytes) and ``CONNECTOR_HTTP_DEADLINE``
        (seconds), each defaulting when unset.

        :raises ConnectorError: a value that is not a positive number, naming the variable.
        """
        return cls(
            max_body=int(_positive(MAX_BODY_ENV, whole=True) or MAX_BODY),
            deadline=_positive(DEADLINE_ENV, whole=False),
        )


def _positive(name: str, *, whole: bool) -> float | None:
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        value = 0
    if not value > 0 or value == float("inf"):
        unit = "a whole number of bytes" if whole else "a number of seconds"
        raise ConnectorError(f"{name}: {text!r} is not {unit} above 0")
    return value


def read_limited(
    response: httpx.Response, *, max_body: int, deadline: float | None
) -> httpx.Response:
    """Read a streamed ``response`` whole under the limits, close it, and return it complete.

    The body is decoded here (``gzip``, ``deflate``, in :data:`STEP`-sized pieces) and counted
    as it arrives; the returned response holds the decoded body and no ``Content-Encoding``.

    :raises BodyTooLarge: the decoded body passed ``max_body`` bytes.
    :raises DeadlineExceeded: ``deadline`` (a ``time.monotonic()`` instant) passed.
    :raises httpx.DecodingError: a broken or unsupported ``Content-Encoding``.
    """
    request = response.request
    status = response.status_code
    pieces: list[bytes] = []
    size = 0
    try:
        encodings = _encodings(response.headers.get("content-encoding", ""), request)
        declared = response.headers.get("content-length", "")
        if not encodings and declared.isascii() and declared.isdigit() and int(declared) > max_body:
            raise BodyTooLarge(max_body, status, request=request)
        for piece in _decoded(response.iter_raw(STEP), encodings, request):
            size += len(piece)
            if size > max_body:
                raise BodyTooLarge(max_body, status, request=request)
            if deadline is not None and time.monotonic() > deadline:
                raise DeadlineExceeded(request=request)
            pieces.append(piece)
    finally:
        response.close()
    headers = [
        (name, value)
        for name, value in response.headers.raw
        if name.lower() not in (b"content-encoding", b"content-length")
    ]
    return httpx.Response(
        status,
        headers=headers,
        content=b"".join(pieces),
        request=request,
        extensions=response.extensions,
    )


def _encodings(header: str, request: httpx.Request) -> list[str]:
    """The content codings to undo, outermost first; only gzip and deflate are accepted."""
    found = [e.strip().lower() for e in header.split(",") if e.strip().lower() not in _NO_DECODING]
    for encoding in found:
        if encoding not in _ZLIB_WBITS:
            raise httpx.DecodingError(
                f"unsupported Content-Encoding {encoding!r} (gzip and deflate are asked for)",
                request=request,
            )
    return found[::-1]


def _decoded(
    chunks: Iterable[bytes], encodings: list[str], request: httpx.Request
) -> Iterable[bytes]:
    for encoding in encodings:
        chunks = _inflate(chunks, encoding, request)
    return chunks


def _inflate(chunks: Iterable[bytes], encoding: str, request: httpx.Request) -> Iterator[bytes]:
    """Inflate ``chunks`` in steps of at most :data:`STEP` bytes of output each."""
    inflater = zlib.decompressobj(_ZLIB_WBITS[encoding])
    first = True
    try:
        for chunk in chunks:
            if first and encoding == "deflate" and chunk:
                # "deflate" is zlib-wrapped by the standard, raw in some servers (as httpx does).
                if (chunk[0] & 0x0F) != 8 or int.from_bytes(chunk[:2], "big") % 31:
                    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            first = first and not chunk
            data = chunk
            while data:
                out = inflater.decompress(data, STEP)
                if out:
                    yield out
                data = inflater.unconsumed_tail
        tail = inflater.flush()
    except zlib.error as exc:
        raise httpx.DecodingError(f"invalid {encoding} body: {exc}", request=request) from exc
    if tail:
        yield tail


_DEADLINE: ContextVar[float | None] = ContextVar("connector_http_deadline", default=None)


@contextmanager
def deadline(instant: float) -> Iterator[None]:
    """Hold this thread's exchanges inside to ``instant`` (a ``time.monotonic()`` value), on
    every transport :func:`hold_to_deadlines` prepared."""
    token = _DEADLINE.set(instant)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def hold_to_deadlines(transport: httpx.HTTPTransport) -> httpx.HTTPTransport:
    """Put :class:`DeadlineBackend` under ``transport``'s connection pool (or proxy) and return it.

    httpx does not take a network backend itself; its pool (``httpcore``) does, and this sets
    it on the pool httpx made. A new httpx that moves it fails here, at the client's
    construction, not silently at the first slow server.
    """
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if not isinstance(backend, httpcore.NetworkBackend):
        raise TypeError(f"cannot find the network backend of {transport!r} (httpx changed?)")
    if not isinstance(backend, DeadlineBackend):
        pool._network_backend = DeadlineBackend(backend)  # type: ignore[union-attr]
    return transport


def _wait(timeout: float | None) -> tuple[float | None, bool]:
    """The wait for one socket operation, and whether the deadline cut it.

    :raises DeadlineExceeded: nothing is left of the current deadline.
    """
    instant = _DEADLINE.get()
    if instant is None:
        return timeout, False
    left = instant - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded()
    if timeout is None or left < timeout:
        return left, True
    return timeout, False


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's network backend, each socket wait cut to what is left of :func:`deadline`.

    A wait the deadline cut that times out raises :class:`DeadlineExceeded` (an httpx
    exception, which httpx passes through unchanged); otherwise the backend's own timeouts and
    errors stand.
    """

    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def __repr__(self) -> str:
        return f"DeadlineBackend({self._inner!r})"

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        """Connect, by the deadline."""
        wait, cut = _wait(timeout)
        with _cut_off(cut, httpcore.ConnectTimeout):
            stream = self._inner.connect_tcp(host, port, wait, local_address, socket_options)
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        """Connect, by the deadline."""
        wait, cut = _wait(timeout)
        with _cut_off(cut, httpcore.ConnectTimeout):
            stream = self._inner.connect_unix_socket(path, wait, socket_options)
        return _DeadlineStream(stream)

    def sleep(self, seconds: float) -> None:
        """Sleep (httpcore's retries of a failed connect)."""
        self._inner.sleep(seconds)


class _DeadlineStream(httpcore.NetworkStream):
    """One connection's stream; each read and write waits at most what is left."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        wait, cut = _wait(timeout)
        with _cut_off(cut, httpcore.ReadTimeout):
            return self._inner.read(max_bytes, wait)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        wait, cut = _wait(timeout)
        with _cut_off(cut, httpcore.WriteTimeout):
            self._inner.write(buffer, wait)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        wait, cut = _wait(timeout)
        with _cut_off(cut, httpcore.ConnectTimeout):
            return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, wait))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


@contextmanager
def _cut_off(cut: bool, timeout: type[Exception]) -> Iterator[None]:
    """Raise :class:`DeadlineExceeded` for a ``timeout`` of a wait the deadline cut."""
    try:
        yield
    except timeout as exc:
        if cut:
            raise DeadlineExceeded() from exc
        raise


class DeadlineWatch:
    """Holds exchanges through httpx's own transport to a deadline by shutting their sockets.

    httpcore reads with a per-read timeout only, and the connector cannot reach its reads; so
    the watch learns each new connection's socket from httpcore's ``trace`` extension and, at
    the deadline, shuts it down (which wakes a blocked read). Used as a context manager around
    the exchanges; an httpx error raised after the watch fired becomes
    :class:`DeadlineExceeded`. Connections must be new (no keep-alive): a pooled one is never
    announced by the trace.
    """

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.fired = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._timer: threading.Timer | None = None

    def __repr__(self) -> str:
        return f"DeadlineWatch(deadline={self.deadline!r}, fired={self.fired!r})"

    def extensions(self) -> dict[str, Any]:
        """Request extensions for an exchange under this watch."""
        return {"trace": self._trace}

    def __enter__(self) -> DeadlineWatch:
        self._timer = threading.Timer(max(0.0, self.deadline - time.monotonic()), self._fire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if isinstance(exc, httpx.HTTPError):
            explained = self.explain(exc)
            if explained is not exc:
                raise explained from exc

    def explain(self, exc: httpx.HTTPError) -> httpx.HTTPError:
        """``exc``, or :class:`DeadlineExceeded` when it came from the watch's shutdown."""
        if self.fired and not isinstance(exc, BodyTooLarge | DeadlineExceeded):
            return DeadlineExceeded(request=_request_of(exc))
        return exc

    def _trace(self, event: str, info: dict[str, Any]) -> None:
        if event not in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if not isinstance(sock, socket.socket):
            return
        with self._lock:
            self._sockets.append(sock)
            fired = self.fired
        if fired:
            _shut(sock)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _request_of(exc: httpx.HTTPError) -> httpx.Request | None:
    try:
        return exc.request
    except RuntimeError:
        return None
