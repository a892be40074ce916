"""The executor of the generic HTTP action (``kind: http_request``): one guarded request by URL.

:func:`execute_http_request` builds the request from the action's input (method, url,
headers, query, json, timeout_seconds), checks the URL with :mod:`connector.client.urlguard`, and
connects only to the addresses the guard checked, through a :class:`connector.Exchange` (the
``Host`` header and, for https, the TLS server name stay the URL's host, so certificates are
still verified against it). Redirects
are not followed by httpx: up to :data:`MAX_REDIRECTS` are followed here, each target checked
by the guard first; credentials (``Authorization``, ``Cookie``) are dropped when a redirect
leaves the origin. No retries and no rate limit: a generic request may not be safe to repeat.
The whole call (redirects included) is one :class:`connector.Exchange`: the same total
deadline and decoded-body cap as every other outgoing call.

The output is ``{status, headers, json, text}``. A 4xx/5xx answer raises
:class:`connector.RemoteError` unless the input sets ``accept_errors``. It sends outside the
app's pooled client because it must see redirects and pin addresses; it uses only the public
API of ``connector``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from connector import (
    REDIRECT_STATUSES,
    Action,
    Answer,
    AuthError,
    Call,
    ClientFactory,
    Exchange,
    GuardedUrl,
    InputError,
    Location,
    Problem,
    RateLimitError,
    RemoteError,
    Reply,
    UrlGuard,
    is_secret_name,
    safe_url,
)

if TYPE_CHECKING:
    from connector import Settings

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_REDIRECTS",
    "HttpRequestExecutor",
    "execute_http_request",
    "preview_http_request",
]

DEFAULT_TIMEOUT = 30.0
MAX_REDIRECTS = 5

_CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
_CONNECTOR_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_CUT = 200


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
    :param client_factory: makes the httpx client (default :func:`connector.new_client`).
    :param guard: the URL guard (default: :meth:`UrlGuard.from_config`).
    :raises InputError: a header the connector sets itself is given.
    :raises ConnectorError: the URL or a redirect target is refused.
    :raises ResponseLimitError: a body over the cap, or no complete answer by the deadline.
    :raises RemoteError: no answer, too many redirects, or a 4xx/5xx answer.
    """
    guard = guard or UrlGuard.from_config()
    hop, target = _first_hop(action, data, guard)
    timeout = float(data.get("timeout_seconds") or settings.timeout or DEFAULT_TIMEOUT)
    started = time.perf_counter()
    with Exchange(timeout, client_factory) as exchange:
        for count in range(MAX_REDIRECTS + 1):
            answer = exchange.send(hop.method, hop.url, hop.headers, hop.body, target.addresses)
            location = answer.headers.get("location")
            if answer.status not in REDIRECT_STATUSES or not location:
                elapsed = (time.perf_counter() - started) * 1000
                return _reply(hop, answer, bool(data.get("accept_errors")), elapsed)
            hop = _redirect(hop, answer.status, location)
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
        masked (:func:`connector.is_secret_name`; the runtime masks query values and
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


def _first_hop(action: Action, data: Mapping[str, Any], guard: UrlGuard) -> tuple[_Hop, GuardedUrl]:
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
    return _Hop(method, url, headers, body), GuardedUrl(url, checked.addresses)


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


def _reply(hop: _Hop, answer: Answer, accept_errors: bool, elapsed_ms: float) -> Reply:
    """The output ``{status, headers, json, text}``, or the error for a 4xx/5xx answer."""
    status = answer.status
    text = answer.text
    if status >= 400 and not accept_errors:
        raise _status_error(hop, status, text)
    headers = {name.lower(): value for name, value in answer.headers.items()}
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
