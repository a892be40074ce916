"""The HTTP client of the connector: sends a RequestSpec with limits and retries, maps httpx errors.

One :class:`HttpClient` (one pooled ``httpx.HTTPTransport``, httpx's own, through the proxy the
environment names for the app's URL if any) serves one app. It builds each ``httpx.Request``
itself and hands it to the transport (``httpx.Client``'s URL merging, cookie jar, hooks and
redirect loop are not needed for one base URL).
:meth:`HttpClient.send` waits on the rate limiter before every attempt, retries what is safe to
retry, and turns every failure into a :class:`~connector.errors.RemoteError` whose message never
holds a header or a token (httpx exceptions through
:func:`~connector.client.failure.mapped_failures`, shared with the generic action). Cookies a
server sets are not kept, redirects not followed.

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

import importlib.util
import json
import logging
import os
import ssl
import threading
import time
import urllib.request
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from types import TracebackType

import httpx

from connector.activity import BUS
from connector.client.failure import NoResponse, mapped_failures
from connector.client.limits import ResponseLimits, deadline, hold_to_deadlines, read_limited
from connector.client.ratelimiter import Limiter
from connector.client.request import Reply, RequestSpec
from connector.client.retry import Backoff, RetryPolicy, parse_retry_after
from connector.client.transcript import note_request, recording
from connector.errors import AuthError, ConnectorError, RateLimitError, RemoteError

__all__ = ["BODY_CUT", "IDEMPOTENT_METHODS", "RETRY_STATUSES", "HttpClient", "ssl_context"]

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
POOL = httpx.Limits(max_connections=100, max_keepalive_connections=32, keepalive_expiry=5.0)
"""Connections of one app's client: at most 100 open, 32 kept idle for 5 s."""


class HttpClient:
    """Sends :class:`RequestSpec` s to one app's base URL.

    :param base_url: the app's API root, e.g. ``https://services.leadconnectorhq.com``.
    :param headers: headers sent with every request (e.g. ``Version``); never credentials.
    :param timeout: seconds for connecting, and for each read or write.
    :param limiter: the app's rate limiter, or ``None`` for no client-side limit.
    :param retry: the retry policy (default: :class:`RetryPolicy` defaults).
    :param limits: body cap and total deadline (default: from the environment,
        :meth:`ResponseLimits.from_env`).
    """

    def __init__(
        self,
        *,
        base_url: str,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        limiter: Limiter | None = None,
        retry: RetryPolicy | None = None,
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
        own = _framing(headers or {})
        if own is not None:
            raise ConnectorError(f"{base_url}: the app's headers set {own!r} {_FRAMING_WHY}")
        self._headers = httpx.Headers(_DEFAULT_HEADERS)
        self._headers.update(headers or {})
        self._transport = _transport(base_url)

    def __repr__(self) -> str:
        return f"HttpClient(base_url={self.base_url!r})"

    def close(self) -> None:
        """Close the pooled connections."""
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
        noting = recording()
        for attempt in range(1, attempts + 1):
            try:
                with self._slot(limiter_key):
                    started = time.perf_counter()
                    # Noted here, not around the slot: a limiter's refusal sends nothing.
                    try:
                        response = self._attempt(request, auth)
                    except ConnectorError as exc:
                        if noting:
                            self._note(request, _status(exc), _outcome(exc), attempt, started)
                        raise
            except NoResponse as exc:
                if attempt == attempts or not (may_repeat or not exc.sent):
                    raise
                self._pause(method, request.path, exc.what, attempt, None)
                continue
            elapsed_ms = (time.perf_counter() - started) * 1000
            if noting:
                self._note(request, response.status_code, None, attempt, started)
            if self.limiter is not None:
                self.limiter.observe(limiter_key, response.headers)
            status = response.status_code
            if 200 <= status < 300:
                data = _parse(request, response)
                return Reply(status, _lower(response.headers), data, elapsed_ms)
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            retryable = status in RETRY_STATUSES and (may_repeat or status == 429)
            if status == 429:
                BUS.publish("http", status="429", base=self.base_url, method=method,
                            path=request.path, attempt=attempt)
            if not retryable or attempt == attempts or self._backoff.too_long(retry_after):
                raise _status_error(request, response, retry_after)
            self._pause(method, request.path, str(status), attempt, retry_after)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _note(self, request: RequestSpec, status: int | None, outcome: str | None,
              attempt: int, started: float) -> None:
        """Note one attempt in the open transcript (:mod:`connector.client.transcript`)."""
        note_request(
            request.method, request.wire_url(self._base), status, outcome=outcome,
            attempt=attempt, elapsed_ms=(time.perf_counter() - started) * 1000,
        )  # fmt: skip

    def _slot(self, key: str) -> AbstractContextManager[None]:
        """The limiter's slot for one attempt (nothing to hold without a limiter)."""
        return nullcontext() if self.limiter is None else self.limiter.slot(key)

    def _attempt(self, request: RequestSpec, auth: httpx.Auth | None) -> httpx.Response:
        """One try: build, authenticate, send and read the whole body, by the deadline."""
        seconds = self._deadline_seconds
        instant = time.monotonic() + seconds
        with (
            mapped_failures(
                request.method.upper(),
                request.path,
                timeout=self.timeout,
                max_body=self.limits.max_body,
                deadline_seconds=seconds,
            ),
            deadline(instant),
        ):
            built = self._build(request)
            if auth is None:
                return self._exchange(built, instant)
            return self._authenticated(built, auth, instant)

    def _exchange(self, request: httpx.Request, instant: float) -> httpx.Response:
        """Send one httpx request and read its body under the limits.

        Straight to the transport: ``httpx.Client.send`` would add its cookie jar, auth and
        redirect loops and hooks, none of which one app's client needs (redirects are not
        followed, cookies not kept, auth runs in :meth:`_authenticated`); they cost about a
        quarter of a call's CPU (see ``bench/bench_runtime.py`` in ``docs/architecture.md``).
        """
        try:
            response = self._transport.handle_request(request)
        except httpx.HTTPError as exc:
            exc.request = request  # as httpx.Client does: errors name their host
            raise
        response.request = request
        return read_limited(response, max_body=self.limits.max_body, deadline=instant)

    def _build(self, request: RequestSpec) -> httpx.Request:
        """The httpx request: the app's headers, then the request's; the JSON body encoded."""
        headers = self._headers.copy()
        if request.headers:
            own = _framing(request.headers)
            if own is not None:
                raise httpx.LocalProtocolError(f"{own!r} {_FRAMING_WHY}")
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
        self, request: httpx.Request, auth: httpx.Auth, instant: float
    ) -> httpx.Response:
        """Run ``auth``'s flow: send what it yields, hand it each response, until it stops
        (httpx.Client's loop, without the client)."""
        flow = auth.sync_auth_flow(request)
        try:
            request = next(flow)
            while True:
                response = self._exchange(request, instant)
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
        BUS.publish("http", status="retry", base=self.base_url, method=method, path=path,
                    attempt=attempt, reason=outcome, wait=round(wait, 3))
        log.debug(
            "retrying %s %s (attempt %d of %d) after %s; waiting %.2fs",
            method, path, attempt, self.retry.attempts, outcome, wait,
        )  # fmt: skip
        time.sleep(wait)


def _transport(base_url: str) -> httpx.HTTPTransport:
    """httpx's transport for ``base_url``: through the proxy the environment names for it
    (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``, unless ``NO_PROXY`` lists the host), HTTP/2
    offered when ``h2`` is installed, held to each exchange's deadline."""
    url = httpx.URL(base_url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(url.scheme) or proxies.get("all")
    hostport = url.host if url.port is None else f"{url.host}:{url.port}"
    if proxy and urllib.request.proxy_bypass(hostport):
        proxy = None
    transport = httpx.HTTPTransport(
        verify=ssl_context(), http2=_HTTP2, limits=POOL, proxy=proxy or None
    )
    return hold_to_deadlines(transport)


_SSL_CONTEXTS: dict[tuple[str, str], ssl.SSLContext] = {}
_SSL_LOCK = threading.Lock()


def ssl_context() -> ssl.SSLContext:
    """httpx's SSL context (certificates verified; ``SSL_CERT_FILE`` and ``SSL_CERT_DIR``
    honoured), made once per process and shared: loading the CA bundle takes tens of
    milliseconds and most of a megabyte, too much for every app's client."""
    key = (os.environ.get("SSL_CERT_FILE", ""), os.environ.get("SSL_CERT_DIR", ""))
    with _SSL_LOCK:
        context = _SSL_CONTEXTS.get(key)
        if context is None:
            context = _SSL_CONTEXTS[key] = httpx.create_ssl_context()
        return context


_HTTP2 = importlib.util.find_spec("h2") is not None
"""Whether to offer HTTP/2 (TLS with ALPN; plain-text servers are spoken to in HTTP/1.1)."""


_FRAMING = frozenset({"host", "content-length", "transfer-encoding"})
_FRAMING_WHY = "(httpx sets it from the URL and the body)"


def _framing(headers: Mapping[str, str]) -> str | None:
    """The first header in ``headers`` that only httpx may set, or None.

    httpx itself would send a caller's ``Transfer-Encoding`` beside the ``Content-Length`` it
    computes (a message two servers may split differently), and a caller's ``Content-Length``
    or ``Host`` in place of the true ones; so the client refuses them before sending.
    """
    for name in headers:
        if name.lower() in _FRAMING:
            return name
    return None


def _status(exc: ConnectorError) -> int | None:
    return exc.status if isinstance(exc, RemoteError) else None


def _outcome(exc: ConnectorError) -> str:
    """Why an attempt got no usable answer, for its transcript note (the error's own words,
    after the ``METHOD /path ->`` its message starts with)."""
    text = str(exc)
    return text.partition(" -> ")[2] or text or type(exc).__name__


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
