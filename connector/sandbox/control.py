"""The control endpoints under ``/_sandbox/``: stats, reset, faults, limits, webhook URLs and
keys, token expiry, and appointments. They need no token: this is a sandbox.

=======  ===========================  ==============================================
GET      /_sandbox/stats              counters (see :meth:`SandboxApp.stats`)
POST     /_sandbox/reset              back to seed data, no faults, zero counters
GET      /_sandbox/faults             the active fault rules
POST     /_sandbox/faults             add rules: one rule, a list, or {rules, replace}
DELETE   /_sandbox/faults             drop every rule
POST     /_sandbox/limits             {requests, seconds, daily}: change rate limits
GET      /_sandbox/keys               the webhook public keys (PEM): {ed25519, rsa}
GET      /_sandbox/webhooks           {urls, deliveries}
POST     /_sandbox/webhooks           {urls: [...]}: where events go
POST     /_sandbox/tokens/expire      expire every OAuth access token now
POST     /_sandbox/appointments       {contactId, ...fields}: book one (201)
PUT      /_sandbox/appointments/{id}  change one
DELETE   /_sandbox/appointments/{id}  delete one
=======  ===========================  ==============================================
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from connector.sandbox import appointments
from connector.sandbox.config import SandboxConfig
from connector.sandbox.faults import FaultInjector
from connector.sandbox.keys import WebhookKeys
from connector.sandbox.oauth import OAuthProvider
from connector.sandbox.ratelimit import RateLimiter
from connector.sandbox.responses import error_body, not_found
from connector.sandbox.state import Store
from connector.sandbox.traffic import Traffic
from connector.sandbox.webhooks import WebhookSender
from connector.service.wire import Receive, Scope, Send, read_body, send_json

__all__ = ["Controlled", "add_faults", "serve", "set_limits"]

Answer = tuple[int, Any]


class Controlled(Protocol):
    """What the control endpoints reach of the sandbox (:class:`connector.sandbox.app.SandboxApp`
    passes itself in)."""

    config: SandboxConfig
    store: Store
    keys: WebhookKeys
    limiter: RateLimiter
    traffic: Traffic
    faults: FaultInjector
    provider: OAuthProvider
    sender: WebhookSender

    def stats(self) -> dict[str, Any]: ...

    def reset(self) -> None: ...

    def emit(self, events: list[tuple[str, dict[str, Any], str]]) -> None: ...


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


def _appointment(app: Controlled, method: str, rest: str, body: object) -> Answer:
    if not isinstance(body, dict):
        raise ValueError("appointments: the body must be a JSON object")
    if method == "POST" and not rest:
        return 201, {"appointment": appointments.create(
            app.store, app.emit, str(body.get("contactId", "")), body)}
    if method == "PUT" and rest:
        return 200, {"appointment": appointments.update(app.store, app.emit, rest, body)}
    if method == "DELETE" and rest:
        appointments.delete(app.store, app.emit, rest)
        return 200, {"succeded": True}
    return 404, not_found(method, f"/_sandbox/appointments/{rest}").body


def _dispatch(app: Controlled, method: str, path: str, body: object) -> Answer:
    name = path[len("/_sandbox/"):].rstrip("/")
    if name.startswith("appointments"):
        return _appointment(app, method, name[len("appointments/"):], body)
    simple: dict[tuple[str, str], Any] = {
        ("GET", "stats"): app.stats,
        ("GET", "faults"): lambda: {"rules": [r.as_dict() for r in app.faults.rules]},
        ("GET", "keys"): app.keys.public_pem,
        ("GET", "webhooks"): lambda: {"urls": list(app.sender.urls),
                                      "deliveries": list(app.sender.deliveries)},
        ("POST", "tokens/expire"): lambda: {"expired": app.provider.expire_access_tokens()},
    }
    if (method, name) in simple:
        return 200, simple[method, name]()
    if (method, name) == ("POST", "reset"):
        app.reset()
        return 200, {"reset": True}
    if (method, name) == ("DELETE", "faults"):
        app.faults.rules.clear()
        return 200, {"rules": []}
    if (method, name) == ("POST", "faults"):
        return 200, {"rules": add_faults(app, body)}
    if (method, name) == ("POST", "limits"):
        return 200, set_limits(app, body)
    if (method, name) == ("POST", "webhooks"):
        urls: object = body.get("urls") if isinstance(body, dict) else None
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise ValueError("webhooks: the body must be {\"urls\": [\"http://...\", ...]}")
        app.sender.set_urls(urls)
        return 200, {"urls": list(app.sender.urls)}
    return 404, not_found(method, path).body


async def serve(app: Controlled, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer one control request."""
    method, path = scope["method"], scope["path"]
    raw = await read_body(scope, receive, app.config.max_body_bytes)
    if raw is None:
        await send_json(send, 413, error_body(413, "request entity too large"))
        return
    try:
        body = json.loads(raw) if raw.strip() else {}
        status, answer = _dispatch(app, method, path, body)
    except ValueError as exc:
        status, answer = 400, error_body(400, str(exc))
    except KeyError as exc:
        status, answer = 404, error_body(404, str(exc.args[0]) if exc.args else "not found")
    await send_json(send, status, answer)
