"""The executor of the generic HTTP action (``kind: http_request``): one guarded request by URL.

:func:`execute_http_request` builds the request from the action's input (method, url,
headers, query, json, timeout_seconds), checks the URL with :mod:`connector.client.urlguard`, and
connects only to the addresses the guard checked (the ``Host`` header and, for https, the TLS
server name stay the URL's host, so certificates are still verified against it). Redirects
are not followed by httpx: up to :data:`MAX_REDIRECTS` are followed here, each target checked
by the guard first; credentials (``Authorization``, ``Cookie``) are dropped when a redirect
leaves the origin. No retries and no rate limit: a generic request may not be safe to repeat.
The whole call (redirects included) is held to :class:`~connector.client.limits.ResponseLimits`,
the same total deadline and decoded-body cap as every other outgoing call.

The output is ``{status, headers, json, text}``. A 4xx/5xx answer raises
:class:`~connector.errors.RemoteError` unless the input sets ``accept_errors``. This module
sends its own requests, outside :class:`connector.client.httpclient.HttpClient`, because it must
see redirects and pin addresses; httpx exceptions are translated by the same
:func:`~connector.client.failure.mapped_failures`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from connector.auth.redaction import is_secret_name
from connector.client.failure import mapped_failures
from connector.client.limits import (
    MAX_BODY,
    DeadlineExceeded,
    DeadlineWatch,
    ResponseLimits,
    read_limited,
)
from connector.client.request import Reply
from connector.client.urlguard import IPAddress, Target, UrlGuard, safe_url
from connector.errors import (
    AuthError,
    InputError,
    Location,
    Problem,
    RateLimitError,
    RemoteError,
)

if TYPE_CHECKING:
    from connector.client.executor import Call
    from connector.hookspecs import Action
    from connector.runtime import Settings

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_BODY",
    "MAX_REDIRECTS",
    "ClientFactory",
    "HttpRequestExecutor",
    "execute_http_request",
    "new_client",
    "preview_http_request",
]

DEFAULT_TIMEOUT = 30.0
MAX_REDIRECTS = 5

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
_CONNECTOR_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_CUT = 200

ClientFactory = Callable[[float], httpx.Client]
"""Makes the client for one call from its timeout in seconds."""


def new_client(timeout: float) -> httpx.Client:
    """The default client: no automatic redirects, no proxy or ``.netrc`` from the environment."""
    return httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False)


@dataclass(frozen=True, slots=True)
class _Hop:
    """One request of the redirect chain."""

    method: str
    url: httpx.URL
    headers: Mapping[str, str]
    body: bytes | None


def execute_http_request(
    action: Action,
    data: Mapping[str, Any],
    settings: Settings,
    client_factory: ClientFactory | None = None,
    *,
    guard: UrlGuard | None = None,
) -> Reply:
    """Send the request ``data`` describes and return ``{status, headers, json, text}``.

    :param action: the ``http_request`` action (its id prefixes messages).
    :param data: the validated input.
    :param settings: the runtime's settings (``timeout`` is the default timeout).
    :param client_factory: makes the httpx client (default :func:`new_client`).
    :param guard: the URL guard (default: :meth:`UrlGuard.from_config`).
    :raises InputError: a header the connector sets itself is given.
    :raises ConnectorError: the URL or a redirect target is refused.
    :raises ResponseLimitError: a body over the cap, or no complete answer by the deadline.
    :raises RemoteError: no answer, too many redirects, or a 4xx/5xx answer.
    """
    guard = guard or UrlGuard.from_config()
    hop, target = _first_hop(action, data, guard)
    timeout = float(data.get("timeout_seconds") or settings.timeout or DEFAULT_TIMEOUT)
    limits = ResponseLimits.from_env()
    started = time.perf_counter()
    seconds = limits.seconds(timeout)
    watch = DeadlineWatch(time.monotonic() + seconds)
    exchange = _Exchange(timeout, limits, seconds, watch)
    with (client_factory or new_client)(timeout) as client, watch:
        for count in range(MAX_REDIRECTS + 1):
            response, content = _send(client, hop, target, exchange)
            location = response.headers.get("location")
            if response.status_code not in REDIRECT_STATUSES or not location:
                elapsed = (time.perf_counter() - started) * 1000
                return _reply(hop, response, content, bool(data.get("accept_errors")), elapsed)
            hop = _redirect(hop, response.status_code, location)
            where = f"{action.id}: redirect {count + 1} to"
            target = guard.check(hop.url, where=where)
    raise RemoteError(
        f"{hop.method} {safe_url(hop.url)} -> more than {MAX_REDIRECTS} redirects",
        method=hop.method,
        url=safe_url(hop.url),
    )


def preview_http_request(action: Action, data: Mapping[str, Any]) -> dict[str, Any]:
    """What ``--dry-run`` shows for the validated input ``data``; nothing is resolved or sent.

    :returns: ``{action, method, url, headers, json?}`` with secret-named header values
        masked (:func:`connector.auth.redaction.is_secret_name`; the runtime masks query values and
        body fields by the same rule).
    :raises InputError: the URL cannot be parsed.
    """
    try:
        url = httpx.URL(str(data["url"])).copy_merge_params(dict(data.get("query") or {}))
    except httpx.InvalidURL as exc:
        raise InputError(action.id, [Problem(Location(pointer="/url"), str(exc))]) from exc
    headers = {
        name: "****" if is_secret_name(name) else value
        for name, value in dict(data.get("headers") or {}).items()
    }
    out: dict[str, Any] = {
        "action": action.id,
        "method": str(data.get("method", "GET")).upper(),
        "url": str(url),
        "headers": headers,
    }
    if data.get("json") is not None:
        out["json"] = data["json"]
    return out


def _first_hop(action: Action, data: Mapping[str, Any], guard: UrlGuard) -> tuple[_Hop, Target]:
    headers = dict(data.get("headers") or {})
    own = sorted(name for name in headers if name.lower() in _CONNECTOR_HEADERS)
    if own:
        problem = Problem(Location(pointer="/headers"), f"{own[0]!r} is set by the connector")
        raise InputError(action.id, [problem])
    checked = guard.check(str(data["url"]), where=f"{action.id}: url")
    url = checked.url.copy_merge_params(dict(data.get("query") or {}))
    body = None
    if data.get("json") is not None:
        body = json.dumps(data["json"], ensure_ascii=False).encode("utf-8")
        if not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = "application/json"
    method = str(data.get("method", "GET")).upper()
    return _Hop(method, url, headers, body), Target(url, checked.addresses)


@dataclass(frozen=True, slots=True)
class _Exchange:
    """What every hop of one call is held to: timeout, limits, and the deadline's watch."""

    timeout: float
    limits: ResponseLimits
    seconds: float
    watch: DeadlineWatch


def _send(
    client: httpx.Client, hop: _Hop, target: Target, exchange: _Exchange
) -> tuple[httpx.Response, bytes]:
    """Send ``hop`` to the first checked address that accepts a connection; read the body."""
    failure: httpx.ConnectError | None = None
    for address in target.addresses:
        with _map_httpx_errors(hop, exchange):
            if exchange.watch.fired:
                raise DeadlineExceeded()
            try:
                request = _build(client, hop, address, exchange.watch)
                response = client.send(request, stream=True)
            except httpx.ConnectError as exc:
                failure = exc
                continue
            if response.status_code in REDIRECT_STATUSES:
                response.close()
                return response, b""
            deadline = exchange.watch.deadline
            full = read_limited(response, max_body=exchange.limits.max_body, deadline=deadline)
            return full, full.content
    addresses = ", ".join(str(a) for a in target.addresses)
    reason = " ".join(str(failure).split())[:_CUT] or type(failure).__name__
    raise RemoteError(
        f"{hop.method} {safe_url(hop.url)} -> cannot connect to {addresses} ({reason})",
        method=hop.method,
        url=safe_url(hop.url),
    ) from failure


def _build(
    client: httpx.Client, hop: _Hop, address: IPAddress, watch: DeadlineWatch
) -> httpx.Request:
    """The request to ``address``, still naming the URL's host (Host header, TLS server name)."""
    pinned = hop.url.copy_with(host=str(address))
    headers = {**hop.headers, "Host": hop.url.netloc.decode("ascii")}
    extensions = watch.extensions()
    if hop.url.scheme == "https":
        extensions["sni_hostname"] = hop.url.raw_host.decode("ascii")
    return client.build_request(
        hop.method, pinned, headers=headers, content=hop.body, extensions=extensions
    )


@contextmanager
def _map_httpx_errors(hop: _Hop, exchange: _Exchange) -> Iterator[None]:
    """Translate httpx exceptions (:func:`~connector.client.failure.mapped_failures`), those
    raised after the deadline's watch fired as the deadline."""
    with mapped_failures(
        hop.method,
        safe_url(hop.url),
        timeout=exchange.timeout,
        max_body=exchange.limits.max_body,
        deadline_seconds=exchange.seconds,
    ):
        try:
            yield
        except httpx.HTTPError as exc:
            explained = exchange.watch.explain(exc)
            if explained is exc:
                raise
            raise explained from exc


def _redirect(hop: _Hop, status: int, location: str) -> _Hop:
    """The next hop: 303 (and 301/302 after POST) become GET without a body, as browsers do."""
    try:
        url = hop.url.join(location)
    except httpx.InvalidURL as exc:
        raise RemoteError(
            f"{hop.method} {safe_url(hop.url)} -> {status}: invalid redirect location",
            method=hop.method,
            url=safe_url(hop.url),
            status=status,
        ) from exc
    method, body, headers = hop.method, hop.body, dict(hop.headers)
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, body = "GET", None
        headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    if (url.scheme, url.host, url.port) != (hop.url.scheme, hop.url.host, hop.url.port):
        headers = {k: v for k, v in headers.items() if k.lower() not in _CREDENTIAL_HEADERS}
    return _Hop(method, url, headers, body)


def _reply(
    hop: _Hop, response: httpx.Response, content: bytes, accept_errors: bool, elapsed_ms: float
) -> Reply:
    """The output ``{status, headers, json, text}``, or the error for a 4xx/5xx answer."""
    status = response.status_code
    text = content.decode(response.encoding or "utf-8", errors="replace")
    if status >= 400 and not accept_errors:
        raise _status_error(hop, status, text)
    headers = {name.lower(): value for name, value in response.headers.items()}
    parsed: Any = None
    if "json" in headers.get("content-type", "") and text.strip():
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
    output = {"status": status, "headers": headers, "json": parsed, "text": text}
    return Reply(status, headers, output, elapsed_ms)


def _status_error(hop: _Hop, status: int, text: str) -> RemoteError:
    url = safe_url(hop.url)
    reason = httpx.codes.get_reason_phrase(status)
    detail = " ".join(text.split()) or "(empty body)"
    if len(detail) > _CUT:
        detail = detail[: _CUT - 1] + "…"
    message = f"{hop.method} {url} -> {status} {reason}".rstrip() + f": {detail}"
    cls = RateLimitError if status == 429 else AuthError if status in (401, 403) else RemoteError
    return cls(message, method=hop.method, url=url, status=status, body=text)


class HttpRequestExecutor:
    """The ``http_request`` kind: one guarded request to the URL the input names."""

    def execute(self, call: Call) -> Reply:
        """Check the URL (and every redirect) with the guard, then send; never retried."""
        return execute_http_request(call.action, call.input, call.settings)

    def preview(self, call: Call) -> dict[str, Any]:
        """Method, URL, headers (credential-like values masked) and body."""
        return preview_http_request(call.action, call.input)
