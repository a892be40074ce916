"""The HTTP client of the connector: sends a RequestSpec with limits and retries, maps httpx errors.

One :class:`HttpClient` (one pooled ``httpx.Client``) serves one app. :meth:`HttpClient.send`
waits on the rate limiter before every attempt, retries what is safe to retry, and turns every
failure into a :class:`~connector.errors.RemoteError` whose message never holds a header or a
token. httpx exceptions are translated here, in :func:`_map_httpx_errors`, and nowhere else.

What is retried (with the backoff of :class:`~connector.client.retry.RetryPolicy`):

- 429 and 5xx (500, 502, 503, 504), timeouts and connection failures, for idempotent methods;
- for POST/PATCH only what provably did not reach the server (connect error, connect or pool
  timeout) and 429 (GHL refuses a rate-limited request before doing anything), unless the
  caller says a retry is safe (``retry_unsafe=True``, e.g. an upsert).

Every attempt is held to :class:`~connector.client.limits.ResponseLimits`: a total deadline (by
default four times the timeout) and a cap on the decoded body (10 MiB). Past either, the call
fails with :class:`~connector.errors.ResponseLimitError`, never retried (the same server would
answer the same way).
"""

from __future__ import annotations

import errno
import json
import logging
import socket
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from types import TracebackType

import httpx

from connector.client.limits import (
    DEADLINE_EXTENSION,
    BodyTooLarge,
    DeadlineExceeded,
    DeadlineWatch,
    ResponseLimits,
    read_limited,
)
from connector.client.ratelimiter import RateLimiter
from connector.client.request import Reply, RequestSpec
from connector.client.retry import Backoff, RetryPolicy, parse_retry_after
from connector.client.transport import KeepAliveTransport
from connector.errors import AuthError, RateLimitError, RemoteError, ResponseLimitError

__all__ = ["BODY_CUT", "IDEMPOTENT_METHODS", "RETRY_STATUSES", "HttpClient"]

log = logging.getLogger("connector.client.httpclient")

_DEFAULT_HEADERS = {
    "Accept": "*/*",
    "Accept-Encoding": "gzip, deflate",
    "User-Agent": f"ghl-connector (python-httpx/{httpx.__version__})",
}
"""Sent with every request, before the app's headers (which may replace them)."""

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
BODY_CUT = 200
"""Characters of an error body (or of the server's message) kept in an error message."""

_ERRNO_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "timed out",
}


class _NoResponse(RemoteError):
    """An attempt that got no response; ``sent`` says whether it may have reached the server."""

    def __init__(self, what: str, *, method: str, url: str, sent: bool) -> None:
        self.what = what
        self.sent = sent
        super().__init__(f"{method} {url} -> {what}", method=method, url=url)


class HttpClient:
    """Sends :class:`RequestSpec` s to one app's base URL.

    :param base_url: the app's API root, e.g. ``https://services.leadconnectorhq.com``.
    :param headers: headers sent with every request (e.g. ``Version``); never credentials.
    :param timeout: seconds for connecting, and for each read or write.
    :param limiter: the app's rate limiter, or ``None`` for no client-side limit.
    :param retry: the retry policy (default: :class:`RetryPolicy` defaults).
    :param transport: an httpx transport (default:
    :class:`~connector.client.transport.KeepAliveTransport`,
        or httpx's own when the environment names a proxy).
    :param limits: body cap and total deadline (default: from the environment,
        :meth:`ResponseLimits.from_env`).
    """

    def __init__(
        self,
        *,
        base_url: str,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        limits: ResponseLimits | None = None,
    ) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.limits = limits or ResponseLimits.from_env()
        self._deadline_seconds = self.limits.seconds(timeout)
        self.limiter = limiter
        self.retry = retry or RetryPolicy()
        self._backoff = Backoff(self.retry)
        self._timeouts = httpx.Timeout(timeout).as_dict()
        self._base = base_url.rstrip("/")
        self._headers = httpx.Headers(_DEFAULT_HEADERS)
        self._headers.update(headers or {})
        transport = transport or _default_transport()
        # Without a proxy, requests go straight to the transport (httpx.Client's URL merging,
        # cookie jar and hooks cost as much CPU as the exchange itself); with one, through a
        # Client, which picks the proxy per URL and honours NO_PROXY. Its connections are not
        # kept alive: the deadline watch can only stop connections it saw open.
        self._client = httpx.Client(
            transport=transport,
            timeout=timeout,
            follow_redirects=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        )
        self._transport = transport

    def __repr__(self) -> str:
        return f"HttpClient(base_url={self.base_url!r})"

    def close(self) -> None:
        """Close the pooled connections."""
        self._client.close()
        if self._transport is not None:
            self._transport.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def send(
        self,
        request: RequestSpec,
        *,
        auth: httpx.Auth | None = None,
        limiter_key: str = "default",
        retry_unsafe: bool = False,
    ) -> Reply:
        """Send ``request``, retrying what is safe to retry, and return the 2xx reply.

        :param request: what to send; the app headers are added, then ``request.headers``.
        :param auth: an httpx auth flow applied on every attempt (adds the credentials).
        :param limiter_key: whose quota the request uses (a location id).
        :param retry_unsafe: the action declares retrying a non-idempotent call is safe.
        :returns: the reply: status, lower-cased headers, parsed JSON (or text, or ``None``).
        :raises RateLimitError: on 429 after all retries, or when the daily quota is used up.
        :raises AuthError: on 401 or 403.
        :raises RemoteError: on any other error status, a timeout or a connection failure.
        """
        method = request.method.upper()
        may_repeat = retry_unsafe or method in IDEMPOTENT_METHODS
        attempts = self.retry.attempts
        for attempt in range(1, attempts + 1):
            try:
                with self._slot(limiter_key):
                    started = time.perf_counter()
                    response = self._attempt(request, auth)
            except _NoResponse as exc:
                if attempt == attempts or not (may_repeat or not exc.sent):
                    raise RemoteError(
                        str(exc), method=exc.method, url=exc.url, status=None
                    ) from exc.__cause__
                self._pause(method, request.path, exc.what, attempt, None)
                continue
            elapsed_ms = (time.perf_counter() - started) * 1000
            if self.limiter is not None:
                self.limiter.observe(limiter_key, response.headers)
            status = response.status_code
            if 200 <= status < 300:
                data = _parse(request, response)
                return Reply(status, _lower(response.headers), data, elapsed_ms)
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            retryable = status in RETRY_STATUSES and (may_repeat or status == 429)
            if not retryable or attempt == attempts or self._backoff.too_long(retry_after):
                raise _status_error(request, response, retry_after)
            self._pause(method, request.path, str(status), attempt, retry_after)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _slot(self, key: str) -> AbstractContextManager[None]:
        """The limiter's slot for one attempt (nothing to hold without a limiter)."""
        return nullcontext() if self.limiter is None else self.limiter.slot(key)

    def _attempt(self, request: RequestSpec, auth: httpx.Auth | None) -> httpx.Response:
        """One try: build, authenticate, send and read the whole body, by the deadline."""
        deadline = time.monotonic() + self._deadline_seconds
        with _map_httpx_errors(request, self.timeout, self._deadline_seconds, self.limits):
            built = self._build(request)
            if auth is None:
                return self._exchange(built, deadline)
            return self._authenticated(built, auth, deadline)

    def _exchange(self, request: httpx.Request, deadline: float) -> httpx.Response:
        """Send one httpx request and read its body under the limits."""
        if self._transport is not None:
            request.extensions[DEADLINE_EXTENSION] = deadline
            response = self._transport.handle_request(request)
            return read_limited(response, max_body=self.limits.max_body, deadline=deadline)
        with DeadlineWatch(deadline) as watch:
            request.extensions.update(watch.extensions())
            response = self._client.send(request, stream=True)
            return read_limited(response, max_body=self.limits.max_body, deadline=deadline)

    def _build(self, request: RequestSpec) -> httpx.Request:
        """The httpx request: the app's headers, then the request's; the JSON body encoded."""
        headers = self._headers.copy()
        if request.headers:
            headers.update(request.headers)
        content, kind = request.body()
        if kind is not None:
            headers["Content-Type"] = kind
        return httpx.Request(
            request.method.upper(),
            request.wire_url(self._base),
            headers=headers,
            content=content,
            extensions={"timeout": self._timeouts},
        )

    def _authenticated(
        self, request: httpx.Request, auth: httpx.Auth, deadline: float
    ) -> httpx.Response:
        """Run ``auth``'s flow: send what it yields, hand it each response, until it stops
        (httpx.Client's loop, without the client)."""
        flow = auth.sync_auth_flow(request)
        try:
            request = next(flow)
            while True:
                response = self._exchange(request, deadline)
                try:
                    request = flow.send(response)
                except StopIteration:
                    return response
        finally:
            flow.close()

    def _pause(
        self, method: str, path: str, outcome: str, attempt: int, retry_after: float | None
    ) -> None:
        wait = self._backoff.delay(attempt, retry_after=retry_after)
        log.debug(
            "retrying %s %s (attempt %d of %d) after %s; waiting %.2fs",
            method, path, attempt, self.retry.attempts, outcome, wait,
        )  # fmt: skip
        time.sleep(wait)


def _default_transport() -> httpx.BaseTransport | None:
    """Our keep-alive transport; None (httpx's, which honours them) when a proxy is set."""
    proxies = urllib.request.getproxies()
    if any(proxies.get(scheme) for scheme in ("http", "https", "all")):
        return None
    return KeepAliveTransport()


@contextmanager
def _map_httpx_errors(
    request: RequestSpec, timeout: float, deadline_seconds: float, limits: ResponseLimits
) -> Iterator[None]:
    """Translate httpx exceptions raised inside into :class:`_NoResponse` (a RemoteError), or
    :class:`ResponseLimitError` past the deadline or the body cap."""
    method, path = request.method.upper(), request.path

    def failed(what: str, *, sent: bool) -> _NoResponse:
        return _NoResponse(what, method=method, url=path, sent=sent)

    try:
        yield
    except BodyTooLarge as exc:
        raise ResponseLimitError.too_large(method, path, exc.status, limits.max_body) from None
    except DeadlineExceeded:
        raise ResponseLimitError.too_slow(method, path, deadline_seconds) from None
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
        raise failed(f"cannot send ({exc})", sent=False) from exc
    except httpx.TransportError as exc:
        # Read/write and protocol errors: the request may have reached the server.
        raise failed(f"connection lost ({_reason(exc)})", sent=True) from exc
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise RemoteError(
            f"{method} {path} -> {type(exc).__name__}: {exc}", method=method, url=path
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


def _lower(headers: httpx.Headers) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _parse(request: RequestSpec, response: httpx.Response) -> object:
    """The body as JSON (if it says or looks so), text, or ``None`` when empty."""
    raw = response.content
    is_json = "json" in response.headers.get("content-type", "")
    if is_json:
        # json.loads detects UTF-8/16/32 in bytes itself: no charset sniffing on the hot path.
        try:
            return json.loads(raw) if raw.strip() else None
        except ValueError as exc:
            text = response.text
            where = f"{request.method.upper()} {request.path}"
            raise RemoteError(
                f"{where} -> {response.status_code}: invalid JSON body: {_cut(text)}",
                method=request.method.upper(),
                url=request.path,
                status=response.status_code,
                body=text,
            ) from exc
    text = response.text
    if not text.strip():
        return None
    if text.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _status_error(
    request: RequestSpec, response: httpx.Response, retry_after: float | None
) -> RemoteError:
    """The error for a final non-2xx response: message ``METHOD /path -> 422 Reason: detail``."""
    method, status = request.method.upper(), response.status_code
    reason = httpx.codes.get_reason_phrase(status)
    text = response.text
    detail = _cut(_server_message(text) or text.strip() or "(empty body)")
    message = f"{method} {request.path} -> {status} {reason}".rstrip() + f": {detail}"
    if status == 429 and retry_after is not None:
        message += f" [the server asks to retry after {retry_after:g}s]"
    cls = RateLimitError if status == 429 else AuthError if status in (401, 403) else RemoteError
    return cls(message, method=method, url=request.path, status=status, body=text)


def _server_message(text: str) -> str | None:
    """GHL's ``message`` (a string, or a list of strings on 422) from an error body."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    message = data.get("message") if isinstance(data, dict) else None
    if isinstance(message, list) and all(isinstance(m, str) for m in message):
        return "; ".join(message) or None
    return message if isinstance(message, str) and message else None


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= BODY_CUT else text[: BODY_CUT - 1] + "…"
