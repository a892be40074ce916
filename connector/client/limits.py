"""The limits every answer is read under: a cap on the decoded body and a total deadline.

One mechanism for every outgoing call: the REST and GraphQL client
(:class:`~connector.client.httpclient.HttpClient`, over
:class:`~connector.client.transport.KeepAliveTransport` or,
with a proxy, httpx's own transport) and the generic ``http.request``
(:mod:`connector.client.httpaction`). :class:`ResponseLimits` says how big (default
:data:`MAX_BODY`, decoded) and how slow (default :data:`DEADLINE_FACTOR` times the timeout, for
the whole exchange: connect, send, headers, body) an answer may be; ``CONNECTOR_HTTP_MAX_BODY``
and ``CONNECTOR_HTTP_DEADLINE`` change them.

- :func:`read_limited` reads a streamed response: the body is decoded here (gzip, deflate) in
  bounded steps and counted as it arrives, so neither an endless body nor a compressed bomb
  grows in memory past the cap.
- The deadline travels with the request (the :data:`DEADLINE_EXTENSION` extension): the
  keep-alive transport cuts every socket wait to what is left of it; where the connector cannot
  reach the socket reads (httpx's own transport), :class:`DeadlineWatch` shuts the connection
  down at the deadline.

Past either limit the caller gets :class:`DeadlineExceeded` or :class:`BodyTooLarge` (httpx
exceptions, raised where httpx's are), which the clients turn into
:class:`~connector.errors.ResponseLimitError`.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from connector.errors import ConnectorError

__all__ = [
    "DEADLINE_EXTENSION",
    "DEADLINE_FACTOR",
    "MAX_BODY",
    "STEP",
    "BodyTooLarge",
    "DeadlineExceeded",
    "DeadlineWatch",
    "ResponseLimits",
    "read_limited",
]

MAX_BODY = 10 * 1024 * 1024
"""Default cap on a response body, in bytes after decoding (gzip, deflate)."""
DEADLINE_FACTOR = 4.0
"""Default total deadline of one exchange, in multiples of the (per-read) timeout."""
DEADLINE_EXTENSION = "connector.deadline"
"""Request extension: the ``time.monotonic()`` instant by which the whole exchange must end."""
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
        if not encodings and declared.isdigit() and int(declared) > max_body:
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
        return {"trace": self._trace, DEADLINE_EXTENSION: self.deadline}

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
