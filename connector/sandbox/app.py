"""The sandbox's ASGI application: one request's path through routing, OAuth, rate limits,
fault injection, body checks and the handler, plus the OAuth and control endpoints.

All state lives on the server's event loop; nothing here is thread-safe, and nothing needs to
be: the server runs the app on one loop, and the thread runner hops onto it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from connector.sandbox import control, validator
from connector.sandbox.call import Call
from connector.sandbox.config import SandboxConfig
from connector.sandbox.events import build_event
from connector.sandbox.faults import Fault, FaultInjector
from connector.sandbox.keys import WebhookKeys
from connector.sandbox.oauth import OAuthClient, OAuthError, OAuthProvider, Principal
from connector.sandbox.ratelimit import RateLimiter
from connector.sandbox.responses import ApiError, error_body, not_found
from connector.sandbox.routes import Operation, Router
from connector.sandbox.state import Store
from connector.sandbox.traffic import Traffic
from connector.sandbox.webhooks import WebhookSender
from connector.service.wire import (
    Disconnected,
    Receive,
    Scope,
    Send,
    cut,
    header,
    parse_query,
    read_body,
    send_json,
)

__all__ = ["PRIVATE_TOKEN_SCOPES", "SandboxApp"]

PRIVATE_TOKEN_SCOPES = ("contacts.readonly", "contacts.write")
"""The Contacts scopes; the sandbox's own private token has every scope its routes need, so any
action can be tried with it."""
_log = logging.getLogger(__name__)
_ANONYMOUS = "anonymous"
_OAUTH_KEY = "oauth"
_VERSION = "Version header was not found"
_Outcome = tuple[int, dict[str, Any], bool]


class SandboxApp:
    """The ASGI callable, and the Python API over its state (stats, faults, reset).

    :param config: the settings.
    :param keys: the webhook signing keys; fresh ones when omitted.
    """

    def __init__(self, config: SandboxConfig, *, keys: WebhookKeys | None = None) -> None:
        self.config = config
        self.base_url = f"http://{config.host}:{config.port}"
        self.keys = keys or WebhookKeys()
        self.store = Store(seed=config.seed)
        self.router = Router()
        self.limiter = RateLimiter(config.rate_limit_requests, config.rate_limit_seconds,
                                   config.daily_quota)
        self.traffic = Traffic(config.rate_limit_seconds)
        self.faults = FaultInjector(config.seed)
        client = OAuthClient(config.client_id, config.client_secret, config.redirect_uris)
        self.provider = OAuthProvider(
            clients=[client], company_id=config.company_id, location_ids=config.location_ids,
            access_token_lifetime=config.access_token_lifetime,
        )
        self.private_token = self.provider.add_private_token(
            location_id=config.location_id, scopes=self.router.scopes(),
            token=config.private_token,
        )
        self.sender = WebhookSender(self.keys, config.webhook_urls,
                                    max_retries=config.webhook_max_retries,
                                    backoff=config.webhook_backoff)
        self.store.seed_contacts(config.location_id, config.seed_contacts)

    def __repr__(self) -> str:
        return f"SandboxApp(base_url={self.base_url!r}, contacts={len(self.store.contacts)})"

    def set_clock(self, clock: Callable[[], float] | None) -> None:
        """Stamp records by ``clock`` (epoch seconds) from now on; None: the wall clock again.
        Tests order two moments with it instead of sleeping; :meth:`reset` restores the wall
        clock."""
        self.store.clock = clock or time.time

    def reset(self) -> None:
        """Back to the start: seed data only, no faults, zero counters, no OAuth grants, the
        configured limits and webhook URLs, the wall clock."""
        self.set_clock(None)
        self.store.clear()
        self.store.seed_contacts(self.config.location_id, self.config.seed_contacts)
        config = self.config
        self.limiter.configure(requests=config.rate_limit_requests,
                               seconds=config.rate_limit_seconds, daily=config.daily_quota)
        self.limiter.reset()
        self.traffic.window = config.rate_limit_seconds
        self.traffic.reset()
        self.sender.set_urls(config.webhook_urls)
        self.faults.reset()
        self.provider.reset()
        self.sender.deliveries.clear()
        self.sender.sent_bodies.clear()

    def stats(self) -> dict[str, Any]:
        """Counters as plain data: per location traffic, limits, OAuth and webhook counts."""
        return {
            "locations": self.traffic.snapshot(),
            "rate_limit": {"requests": self.limiter.requests, "seconds": self.limiter.seconds,
                           "daily": self.limiter.daily},
            "oauth": self.provider.stats,
            "webhooks": {"urls": list(self.sender.urls),
                         "deliveries": list(self.sender.deliveries)},
            "faults": [rule.as_dict() for rule in self.faults.rules],
            "contacts": len(self.store.contacts),
        }

    def emit(self, events: list[tuple[str, dict[str, Any], str]]) -> None:
        """Send a webhook for each ``(type, record, location)`` (needs the running loop)."""
        for event_type, record, location_id in events:
            self.sender.emit(build_event(event_type, record, location_id=location_id))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        try:
            await self._route(scope, receive, send)
        except Disconnected:
            return  # the client left mid-body: no one to answer

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if path.startswith("/_sandbox/"):
            self.store.changed()  # a control request may change records behind the handlers
            await control.serve(self, scope, receive, send)
        elif path.startswith(("/oauth/", "/v2/oauth/")) and path not in _SPEC_OAUTH_PATHS:
            await self._oauth(scope, receive, send)
        else:
            await self._api(scope, receive, send)

    def _principal(self, scope: Scope, op: Operation) -> tuple[Principal | None, ApiError | None]:
        try:
            return self.provider.authenticate(header(scope, b"authorization"), op.scopes), None
        except OAuthError as exc:
            return None, ApiError(exc.status, dict(exc.body))

    async def _api(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        found = self.router.match(method, path)
        if found is None:
            await send_json(send, 404, not_found(method, path).body, self.limiter.peek(_ANONYMOUS))
            return
        op, params = found
        query = parse_query(scope["query_string"])
        raw = b""
        if op.dto is not None or op.form is not None:
            got = await read_body(scope, receive, self.config.max_body_bytes)
            if got is None:
                too_large = error_body(413, "request entity too large")
                await send_json(send, 413, too_large, self.limiter.peek(_ANONYMOUS))
                return
            raw = got
        body, parse_error = _decode(raw) if op.form in (None, "json") else ({}, None)
        principal, denied = self._principal(scope, op)
        key = _location_key(principal, query, body)
        route = op.route
        self.traffic.saw(key, route)
        fault = self.faults.plan(route) if self.faults.rules else None
        if fault is not None and await self._fault_first(scope, send, fault, key, route):
            return
        allowed, limits = self.limiter.admit(key)
        if not allowed:
            outcome: _Outcome = (429, error_body(429, "Too Many Requests"), False)
        elif denied is not None:
            outcome = (denied.status, denied.body, False)
        elif parse_error is not None:
            outcome = (400, error_body(400, parse_error), False)
        else:
            outcome = self._run(scope, op, params, query, body, principal, raw)
        status, answer, wrote = outcome
        self.traffic.answered(key, route, status, wrote=wrote)
        if fault is not None and fault.ambiguous and wrote:
            if fault.ambiguous == "reset" and await cut(scope):
                return
            status = fault.status
            answer = error_body(status, _FAULT_MESSAGES.get(status, "Error"))
        await send_json(send, status, answer, limits)

    def _run(self, scope: Scope, op: Operation, params: dict[str, str], query: dict[str, str],
             body: object, principal: Principal | None, raw: bytes = b"") -> _Outcome:
        if header(scope, b"version") is None:
            return 400, error_body(400, _VERSION), False
        if op.dto is not None:
            problems = validator.problems(op.dto, body)
            if problems:
                if op.error_status == 422:
                    return 422, error_body(422, problems), False
                return 400, error_body(400, "; ".join(problems)), False
        call = Call(self.store, principal.location_id if principal else None, params, query,
                    body, self.base_url, self.config.allow_duplicate_contact)
        if op.form is not None:
            call.query_pairs = parse_qsl(scope["query_string"].decode("latin-1"),
                                         keep_blank_values=True)
            call.raw_body, call.content_type = raw, header(scope, b"content-type") or ""
        try:
            status, answer = op.handler(call)
        except ApiError as exc:
            return exc.status, exc.body, False
        except Exception:  # the server must answer and keep its state; the bug is logged
            _log.exception("sandbox: %s failed", op.route)
            return 500, error_body(500, "Internal server error"), False
        finally:
            if op.writes:  # whatever the handler changed, derived answers are stale now
                self.store.changed()
        wrote = status < 300 and op.writes
        if wrote:
            self.emit(call.events)
            for body in call.payloads:
                self.sender.emit(body)
        return status, answer, wrote

    async def _fault_first(self, scope: Scope, send: Send, fault: Fault, key: str,
                           route: str) -> bool:
        """Apply the part of a fault that comes before the handler; True when it answered."""
        if fault.latency:
            await asyncio.sleep(fault.latency)
        if fault.action is None:
            return False
        if fault.action == "reset" and await cut(scope):
            self.traffic.answered(key, route, 0, wrote=False)
            return True
        status = {"429": 429, "hang": 504}.get(fault.action, fault.status)
        generation = self.traffic.generation
        if fault.action == "hang":
            await asyncio.sleep(fault.hang)
        self.traffic.answered(key, route, status, wrote=False, generation=generation)
        await send_json(send, status, error_body(status, _FAULT_MESSAGES.get(status, "Error")),
                        self.limiter.peek(key))
        return True

    async def _oauth(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        route = f"{method} {path}"
        self.traffic.saw(_OAUTH_KEY, route)
        fault = self.faults.plan(route) if self.faults.rules else None
        if fault is not None and await self._fault_first(scope, send, fault, _OAUTH_KEY, route):
            return
        raw = await read_body(scope, receive, self.config.max_body_bytes) or b""
        form = dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))
        headers: list[tuple[bytes, bytes]] = []
        if method == "GET" and path in ("/oauth/chooselocation", "/v2/oauth/chooselocation"):
            status, extra, answer = self.provider.authorize(parse_query(scope["query_string"]))
            headers = [(k.encode(), v.encode()) for k, v in extra.items()]
        elif method == "POST" and path == "/oauth/token":
            status, answer = self.provider.token(form)
        elif method == "POST" and path == "/oauth/locationToken":
            status, answer = self.provider.location_token(header(scope, b"authorization"), form)
        else:
            status, answer = 404, not_found(method, path).body
        self.traffic.answered(_OAUTH_KEY, route, status, wrote=False)
        await send_json(send, status, answer, headers)


_SPEC_OAUTH_PATHS = frozenset({"/oauth/installedLocations"})
"""OAuth API paths answered from the spec; the provider answers the rest of ``/oauth/``."""

_FAULT_MESSAGES = {
    429: "Too Many Requests",
    500: "Internal server error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def _decode(raw: bytes) -> tuple[object, str | None]:
    """The JSON body ({} when empty) and, when it is not JSON, NestJS's parse message."""
    if not raw.strip():
        return {}, None
    try:
        return json.loads(raw), None
    except (ValueError, UnicodeDecodeError) as exc:
        position = getattr(exc, "pos", 0)
        return None, f"Unexpected token in JSON at position {position}"


def _location_key(principal: Principal | None, query: dict[str, str], body: object) -> str:
    """Whose budget a request uses: the token's location, else the one the request names."""
    if principal is not None and principal.location_id:
        return principal.location_id
    named = query.get("locationId") or (body.get("locationId") if isinstance(body, dict) else None)
    if isinstance(named, str) and named:
        return named
    return f"company:{principal.company_id}" if principal is not None else _ANONYMOUS
