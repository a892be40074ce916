"""The SuperPhone sandbox's control endpoints under ``/_sandbox/``. They need no key: this is a
sandbox, and tests and the demo drive it through them.

=======  ======================  =====================================================
GET      /_sandbox/stats         counters (see :meth:`SuperPhoneApp.stats`)
POST     /_sandbox/reset         back to seed data, no faults, zero counters
GET      /_sandbox/records       every contact, note and task
GET      /_sandbox/faults        the active fault rules
POST     /_sandbox/faults        add rules: one rule, a list, or {rules, replace}
DELETE   /_sandbox/faults        drop every rule
POST     /_sandbox/limits        {requests, seconds, daily}: change the rate limit
GET      /_sandbox/webhooks      {urls, deliveries}
POST     /_sandbox/webhooks      {urls: [...]}: where events go
=======  ======================  =====================================================

Fault rules are :class:`connector.sandbox.faults.FaultRule`; their ``route`` is a GraphQL root
field (``createContact``, ``contact``) or ``"*"``.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from connector.sandbox.faults import FaultInjector
from connector.sandbox.ratelimit import RateLimiter
from connector.sandbox.superphone.config import SuperPhoneConfig
from connector.sandbox.superphone.records import Records
from connector.sandbox.superphone.webhooks import WebhookSender
from connector.sandbox.traffic import Traffic
from connector.service.wire import Receive, Scope, Send, read_body, send_json

__all__ = ["Controlled", "add_faults", "serve", "set_limits"]


class Controlled(Protocol):
    """What the control endpoints reach of the SuperPhone sandbox
    (:class:`connector.sandbox.superphone.app.SuperPhoneApp` passes itself in)."""

    config: SuperPhoneConfig
    records: Records
    limiter: RateLimiter
    traffic: Traffic
    faults: FaultInjector
    sender: WebhookSender

    def stats(self) -> dict[str, Any]: ...

    def reset(self) -> None: ...


def add_faults(app: Controlled, data: object) -> list[dict[str, Any]]:
    """Add fault rules from JSON data (see :meth:`connector.sandbox.faults.FaultInjector.load`).

    :raises ValueError: a rule is malformed (then no rule is added)
    """
    return app.faults.load(data)


def set_limits(app: Controlled, data: object) -> dict[str, Any]:
    """Change the rate limits (see :meth:`connector.sandbox.ratelimit.RateLimiter.load`).

    :raises ValueError: a value is not a positive number
    """
    limits = app.limiter.load(data)
    app.traffic.window = float(limits["seconds"])
    return limits


def _dispatch(app: Controlled, method: str, name: str, body: object) -> tuple[int, Any]:
    records = app.records
    if (method, name) == ("GET", "stats"):
        return 200, app.stats()
    if (method, name) == ("GET", "records"):
        return 200, {"contacts": list(records.contacts.values()),
                     "notes": list(records.notes.values()), "tasks": list(records.tasks.values())}
    if (method, name) == ("POST", "reset"):
        app.reset()
        return 200, {"reset": True}
    if (method, name) == ("GET", "faults"):
        return 200, {"rules": [r.as_dict() for r in app.faults.rules]}
    if (method, name) == ("POST", "faults"):
        return 200, {"rules": add_faults(app, body)}
    if (method, name) == ("DELETE", "faults"):
        app.faults.rules.clear()
        return 200, {"rules": []}
    if (method, name) == ("POST", "limits"):
        return 200, set_limits(app, body)
    if (method, name) == ("GET", "webhooks"):
        return 200, {"urls": list(app.sender.urls), "deliveries": list(app.sender.deliveries)}
    if (method, name) == ("POST", "webhooks"):
        urls: object = body.get("urls") if isinstance(body, dict) else None
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise ValueError('webhooks: the body must be {"urls": ["http://...", ...]}')
        app.sender.set_urls(urls)
        return 200, {"urls": list(app.sender.urls)}
    return 404, {"message": f"no control endpoint {method} /_sandbox/{name}"}


async def serve(app: Controlled, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer one control request."""
    raw = await read_body(scope, receive, app.config.max_body_bytes)
    if raw is None:
        await send_json(send, 413, {"message": "request entity too large"})
        return
    name = scope["path"][len("/_sandbox/"):].rstrip("/")
    try:
        body = json.loads(raw) if raw.strip() else {}
        status, answer = _dispatch(app, scope["method"], name, body)
    except ValueError as exc:
        status, answer = 400, {"message": str(exc)}
    await send_json(send, status, answer)
