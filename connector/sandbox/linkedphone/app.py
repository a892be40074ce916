"""The LinkedPhone sandbox's ASGI application: one request's path through routing, API-key auth,
fault injection, the rate limit, input checks against the catalog and the handler, plus the
``/_sandbox/`` control endpoints.

All state lives on the server's event loop; nothing here is thread-safe, and nothing needs to
be: the server runs the app on one loop and the thread runner hops onto it.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

from connector.hookspecs import Action
from connector.sandbox.faults import Fault, FaultInjector
from connector.sandbox.linkedphone import control
from connector.sandbox.linkedphone.answers import ApiError, error_body
from connector.sandbox.linkedphone.config import LinkedPhoneConfig
from connector.sandbox.linkedphone.limits import RateLimit
from connector.sandbox.linkedphone.operations import HANDLERS, Outcome
from connector.sandbox.linkedphone.routes import Route, Router, build_routes
from connector.sandbox.linkedphone.seed import seed_contacts
from connector.sandbox.linkedphone.store import Store
from connector.sandbox.linkedphone.webhooks import WebhookSender, envelope
from connector.sandbox.traffic import Traffic
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

__all__ = ["ACCOUNT", "API_KEY_HEADER", "APP_ID", "LinkedPhoneApp", "catalog_actions"]

APP_ID = "linkedphone"
API_KEY_HEADER = "X-Api-Key"
ACCOUNT = "account"
"""The traffic key: the sandbox has one account, so one API key and one budget."""
_log = logging.getLogger(__name__)
_FAULT_MESSAGES = {429: "rate limit exceeded", 500: "internal error", 502: "bad gateway",
                   503: "service unavailable", 504: "gateway timeout"}


def catalog_actions() -> list[Action]:
    """The LinkedPhone actions of the pack's catalog: what the sandbox serves."""
    from connector.documents.manifest import pack_manifest

    return [a for a in pack_manifest().actions.values() if a.app == APP_ID]


class LinkedPhoneApp:
    """The ASGI callable and the Python API over its state.

    :param config: the settings.
    :param actions: the actions to serve (default: the catalog's, see :func:`catalog_actions`).
    :raises ValueError: an action has no handler or a handler no action.
    """

    def __init__(self, config: LinkedPhoneConfig, actions: Iterable[Action] | None = None) -> None:
        self.config = config
        self.base_url = f"http://{config.host}:{config.port}"
        self.api_key = config.api_key or f"lp_test_{secrets.token_hex(16)}"
        self.webhook_secret = config.webhook_secret or f"whsec_{secrets.token_hex(16)}"
        self.router = Router(build_routes(
            catalog_actions() if actions is None else actions, HANDLERS))
        self.store = Store(seed=config.seed)
        self.limiter = RateLimit(config.rate_limit_requests, config.rate_limit_seconds)
        self.traffic = Traffic(config.rate_limit_seconds)
        self.faults = FaultInjector(config.seed)
        self.sender = WebhookSender(self.webhook_secret, config.webhook_urls,
                                    max_retries=config.webhook_max_retries,
                                    backoff=config.webhook_backoff)
        seed_contacts(self.store, config.seed_contacts)

    def __repr__(self) -> str:
        return f"LinkedPhoneApp(base_url={self.base_url!r}, records={self.store.counts()})"

    def set_clock(self, clock: Callable[[], float] | None) -> None:
        """Stamp records by ``clock`` (epoch seconds) from now on; None: the wall clock again.
        Tests order two moments with it instead of sleeping; :meth:`reset` restores the wall
        clock."""
        self.store.clock = clock or time.time

    def reset(self) -> None:
        """Back to the start: seed data only, no faults, zero counters, the configured limit
        and webhook URLs, no delivery records, the wall clock."""
        config = self.config
        self.set_clock(None)
        self.store.clear()
        seed_contacts(self.store, config.seed_contacts)
        self.limiter.configure(requests=config.rate_limit_requests,
                               seconds=config.rate_limit_seconds)
        self.limiter.reset()
        self.traffic.window = config.rate_limit_seconds
        self.traffic.reset()
        self.faults.reset()
        self.sender.set_urls(config.webhook_urls)
        self.sender.clear()

    def stats(self) -> dict[str, Any]:
        """Counters as plain data: traffic (per route: requests, writes, statuses), the rate
        limit, record counts, webhook URLs and deliveries, active faults."""
        traffic = self.traffic.snapshot().get(
            ACCOUNT, {"requests": 0, "max_window": 0, "throttled": 0, "routes": {}})
        return {
            "traffic": traffic,
            "rate_limit": {"requests": self.limiter.requests, "seconds": self.limiter.seconds},
            "records": self.store.counts(),
            "webhooks": {"urls": list(self.sender.urls),
                         "deliveries": list(self.sender.deliveries)},
            "faults": [rule.as_dict() for rule in self.faults.rules],
        }

    def emit(self, outcome: Outcome) -> None:
        """Send a webhook for each event of ``outcome`` (needs the running loop)."""
        if not self.sender.urls:
            return  # nowhere to send: skip copying each record into an envelope
        for event_type, record in outcome.events:
            self.sender.emit(envelope(event_type, record, str(record["updated_at"])))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        try:
            await self._route(scope, receive, send)
        except Disconnected:
            return  # the client left mid-body: no one to answer

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"].startswith("/_sandbox/"):
            await control.serve(self, scope, receive, send)
        else:
            await self._api(scope, receive, send)

    async def _api(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        found = self.router.match(method, path)
        if found is None:
            status = 405 if self.router.allows(path) else 404
            code = "method_not_allowed" if status == 405 else "not_found"
            await send_json(send, status, error_body(code, f"no route {method} {path}"))
            return
        route, values = found
        self.traffic.saw(ACCOUNT, route.name)
        fault = self.faults.plan(route.name) if self.faults.rules else None
        if fault is not None and await self._fault_first(scope, send, fault, route.name):
            return
        given = header(scope, API_KEY_HEADER.lower().encode())
        if given is None or not hmac.compare_digest(given.encode(), self.api_key.encode()):
            outcome = Outcome(401, error_body(
                "unauthorized", f"missing or invalid {API_KEY_HEADER} header"))
            limits = self.limiter.peek(ACCOUNT)
        else:
            allowed, limits = self.limiter.admit(ACCOUNT)
            if allowed:
                outcome = await self._run(scope, receive, route, values)
            else:
                outcome = Outcome(429, error_body("rate_limited", "rate limit exceeded"))
        self.traffic.answered(ACCOUNT, route.name, outcome.status, wrote=outcome.wrote)
        if outcome.wrote:
            self.emit(outcome)
        if fault is not None and fault.ambiguous and outcome.wrote:
            if fault.ambiguous == "reset" and await cut(scope):
                return
            outcome = Outcome(fault.status, error_body(
                "server_error", _FAULT_MESSAGES.get(fault.status, "error")))
        await send_json(send, outcome.status, outcome.body, limits)

    async def _run(self, scope: Scope, receive: Receive, route: Route,
                   values: dict[str, str]) -> Outcome:
        body: object = None
        if route.reads_body:
            raw = await read_body(scope, receive, self.config.max_body_bytes)
            if raw is None:
                return Outcome(413, error_body("too_large", "request body too large"))
            try:
                body = json.loads(raw) if raw.strip() else {}
            except (ValueError, UnicodeDecodeError):
                return Outcome(400, error_body("invalid_json", "the body is not JSON"))
        try:
            data = route.flat_input(values, parse_query(scope["query_string"]), body)
            return route.handler(self.store, data)
        except ApiError as exc:
            return Outcome(exc.status, exc.body)
        except Exception:  # the server must answer and keep its state; the bug is logged
            _log.exception("linkedphone sandbox: %s failed", route.name)
            return Outcome(500, error_body("server_error", "internal error"))

    async def _fault_first(self, scope: Scope, send: Send, fault: Fault, route: str) -> bool:
        """Apply the part of a fault that comes before the handler; True when it answered."""
        if fault.latency:
            await asyncio.sleep(fault.latency)
        if fault.action is None:
            return False
        if fault.action == "reset":
            # Count it before cutting: the cut yields to the loop, where stats may be read.
            self.traffic.answered(ACCOUNT, route, 0, wrote=False)
            if not await cut(scope):
                await send_json(send, 502, error_body("server_error", "bad gateway"))
            return True
        status = {"429": 429, "hang": 504}.get(fault.action, fault.status)
        if fault.action == "hang":
            await asyncio.sleep(fault.hang)
        self.traffic.answered(ACCOUNT, route, status, wrote=False)
        headers = self.limiter.peek(ACCOUNT)
        if status == 429:
            headers.append((b"retry-after", b"1"))
        code = "rate_limited" if status == 429 else "server_error"
        await send_json(send, status, error_body(code, _FAULT_MESSAGES.get(status, "error")),
                        headers)
        return True
