"""httpx's exceptions as the connector's errors: one mapping for every outgoing call.

:func:`mapped_failures` wraps one exchange (of :class:`~connector.client.httpclient.HttpClient`
and of the generic ``http.request``, :mod:`connector.client.httpaction`) and turns what httpx
raises into :class:`NoResponse` (a :class:`~connector.errors.RemoteError` that says whether the
request may have reached the server, which decides retries), or
:class:`~connector.errors.ResponseLimitError` past the body cap or the total deadline. Messages
name the method, the URL (as the caller gives it: a path, or a URL without secrets) and a short
reason; never a header or a token.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from connector.client.limits import BodyTooLarge, DeadlineExceeded
from connector.errors import RemoteError, ResponseLimitError

__all__ = ["NoResponse", "mapped_failures"]

_ERRNO_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "timed out",
}


class NoResponse(RemoteError):
    """An exchange that got no response; ``sent`` says whether it may have reached the server."""

    def __init__(self, what: str, *, method: str, url: str, sent: bool) -> None:
        self.what = what
        self.sent = sent
        super().__init__(f"{method} {url} -> {what}", method=method, url=url)


@contextmanager
def mapped_failures(
    method: str, url: str, *, timeout: float, max_body: int, deadline_seconds: float
) -> Iterator[None]:
    """Translate the httpx exceptions raised inside.

    :param method: the request's method, for messages.
    :param url: the request's path or redacted URL, for messages.
    :param timeout: the per-read timeout in seconds, for messages.
    :param max_body: the body cap in bytes, for messages.
    :param deadline_seconds: the total deadline in seconds, for messages.
    :raises ResponseLimitError: the body passed the cap, or the deadline passed.
    :raises NoResponse: a timeout, a refused or lost connection.
    :raises RemoteError: a request httpx will not send (a line break in the method or a header,
        say), or any other httpx error (an invalid URL).
    """

    def failed(what: str, *, sent: bool) -> NoResponse:
        return NoResponse(what, method=method, url=url, sent=sent)

    try:
        yield
    except BodyTooLarge as exc:
        raise ResponseLimitError.too_large(method, url, exc.status, max_body) from None
    except DeadlineExceeded:
        raise ResponseLimitError.too_slow(method, url, deadline_seconds) from None
    except httpx.ConnectTimeout as exc:
        what = f"timed out after {timeout:g}s [while connecting to {_host(exc)}]"
        raise failed(what, sent=False) from exc
    except httpx.PoolTimeout as exc:
        what = f"timed out after {timeout:g}s [waiting for a free connection]"
        raise failed(what, sent=False) from exc
    except httpx.TimeoutException as exc:
        raise failed(f"timed out after {timeout:g}s", sent=True) from exc
    except httpx.ConnectError as exc:
        raise failed(f"cannot connect to {_host(exc)} ({_reason(exc)})", sent=False) from exc
    except httpx.LocalProtocolError as exc:
        # A message httpx will not write: the same request would fail the same way again.
        raise RemoteError(f"{method} {url} -> cannot send ({exc})", method=method, url=url) from exc
    except httpx.TransportError as exc:
        # Read/write and protocol errors: the request may have reached the server.
        raise failed(f"connection lost ({_reason(exc)})", sent=True) from exc
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise RemoteError(
            f"{method} {url} -> {type(exc).__name__}: {exc}", method=method, url=url
        ) from exc


def _host(exc: httpx.HTTPError) -> str:
    """``host:port`` of the request that failed."""
    try:
        url = exc.request.url
    except RuntimeError:
        return "the server"
    port = url.port or (443 if url.scheme == "https" else 80)
    return f"{url.host}:{port}"


def _reason(exc: BaseException) -> str:
    """A short lower-case reason from the OSError behind an httpx error, if any."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, socket.gaierror):
            return "name not resolved"
        if isinstance(cause, OSError) and cause.errno in _ERRNO_REASONS:
            return _ERRNO_REASONS[cause.errno]
        cause = cause.__cause__ or cause.__context__
    text = str(exc).strip().rstrip(".")
    return (text[:1].lower() + text[1:]) if text else type(exc).__name__
