"""The LinkedPhone sandbox's control endpoints under ``/_sandbox/``; they need no API key.

=======  ====================  ===================================================
GET      /_sandbox/stats       counters (see :meth:`LinkedPhoneApp.stats`)
POST     /_sandbox/reset       back to seed data, no faults, zero counters
GET      /_sandbox/routes      the served routes: ``[{action, method, path}]``
GET      /_sandbox/faults      the active fault rules
POST     /_sandbox/faults      add rules: one rule, a list, or ``{rules, replace}``
DELETE   /_sandbox/faults      drop every rule
POST     /_sandbox/limits      ``{requests, seconds}``: change the rate limit
GET      /_sandbox/webhooks    ``{urls, deliveries}``
POST     /_sandbox/webhooks    ``{urls: [...]}``: where events go
=======  ====================  ===================================================
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from connector.sandbox.faults import FaultInjector
from connector.sandbox.linkedphone.answers import error_body
from connector.sandbox.linkedphone.config import LinkedPhoneConfig
from connector.sandbox.linkedphone.limits import RateLimit
from connector.sandbox.linkedphone.routes import Router
from connector.sandbox.linkedphone.webhooks import WebhookSender
from connector.sandbox.traffic import Traffic
from connector.service.wire import Receive, Scope, Send, read_body, send_json

__all__ = ["Controlled", "add_faults", "serve", "set_limits", "set_webhooks"]


class Controlled(Protocol):
    """What the control endpoints reach of the LinkedPhone sandbox
    (:class:`connector.sandbox.linkedphone.app.LinkedPhoneApp` passes itself in)."""

    config: LinkedPhoneConfig
    router: Router
    limiter: RateLimit
    traffic: Traffic
    faults: FaultInjector
    sender: WebhookSender

    def stats(self) -> dict[str, Any]: ...

    def reset(self) -> None: ...

Answer = tuple[int, Any]


def add_faults(app: Controlled, data: object) -> list[dict[str, Any]]:
    """Add fault rules from JSON data (see :meth:`connector.sandbox.faults.FaultInjector.load`).

    :raises ValueError: a rule is malformed (then no rule is added)
    """
    return app.faults.load(data)


def set_limits(app: Controlled, data: object) -> dict[str, Any]:
    """Change the rate limit from ``{requests, seconds}`` (each optional).

    :raises ValueError: unknown keys or a value that is not positive.
    """
    if not isinstance(data, dict) or set(data) - {"requests", "seconds"}:
        raise ValueError(f"limits: {data!r} must be an object with requests and/or seconds")
    app.limiter.configure(requests=data.get("requests"), seconds=data.get("seconds"))
    if "seconds" in data:
        app.traffic.window = float(data["seconds"])
    return {"requests": app.limiter.requests, "seconds": app.limiter.seconds}


def set_webhooks(app: Controlled, data: object) -> dict[str, Any]:
    """Replace the webhook URLs from ``{"urls": [...]}``.

    :raises ValueError: not a list of http(s) URLs.
    """
    urls: object = data.get("urls") if isinstance(data, dict) else None
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise ValueError('webhooks: the body must be {"urls": ["http://...", ...]}')
    app.sender.set_urls(urls)
    return {"urls": list(app.sender.urls)}


def _dispatch(app: Controlled, method: str, name: str, body: object) -> Answer:
    readers: dict[tuple[str, str], Any] = {
        ("GET", "stats"): app.stats,
        ("GET", "routes"): lambda: [
            {"action": r.action.id, "method": r.action.method, "path": r.action.path}
            for r in app.router.routes
        ],
        ("GET", "faults"): lambda: {"rules": [r.as_dict() for r in app.faults.rules]},
        ("GET", "webhooks"): lambda: {"urls": list(app.sender.urls),
                                      "deliveries": list(app.sender.deliveries)},
    }
    if (method, name) in readers:
        return 200, readers[method, name]()
    if (method, name) == ("POST", "reset"):
        app.reset()
        return 200, {"reset": True}
    if (method, name) == ("POST", "faults"):
        return 200, {"rules": add_faults(app, body)}
    if (method, name) == ("DELETE", "faults"):
        app.faults.rules.clear()
        return 200, {"rules": []}
    if (method, name) == ("POST", "limits"):
        return 200, set_limits(app, body)
    if (method, name) == ("POST", "webhooks"):
        return 200, set_webhooks(app, body)
    return 404, error_body("not_found", f"no control endpoint {method} /_sandbox/{name}")


async def serve(app: Controlled, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer one control request."""
    raw = await read_body(scope, receive, app.config.max_body_bytes)
    if raw is None:
        await send_json(send, 413, error_body("too_large", "request body too large"))
        return
    name = scope["path"][len("/_sandbox/"):].strip("/")
    try:
        body = json.loads(raw) if raw.strip() else {}
        status, answer = _dispatch(app, scope["method"], name, body)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError too
        status, answer = 400, error_body("invalid_request", str(exc))
    await send_json(send, status, answer)
