"""Running the LinkedPhone sandbox: in a background thread (:class:`LinkedPhoneSandboxServer`,
for tests) or in the foreground (:func:`serve`, for ``python -m connector.sandbox.linkedphone``).

It runs on uvicorn like the GHL sandbox, with the same coalescing transport lent to each request
so a fault can cut the connection (:func:`connector.service.wire.cut`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from connector.sandbox.linkedphone import control
from connector.sandbox.linkedphone.app import LinkedPhoneApp
from connector.sandbox.linkedphone.config import LinkedPhoneConfig
from connector.sandbox.runner import Background, serve_app

__all__ = ["LinkedPhoneSandboxServer", "banner", "serve"]


def banner(app: LinkedPhoneApp) -> str:
    """What :func:`serve` prints: the base URL, then ``name: value`` lines, then a blank line."""
    lines = [
        app.base_url,
        f"api_key: {app.api_key}",
        "api_key_header: X-Api-Key",
        f"webhook_secret: {app.webhook_secret}",
        "signature_header: X-LinkedPhone-Signature",
        "",
    ]
    return "\n".join(lines) + "\n"


def serve(config: LinkedPhoneConfig, out: TextIO) -> None:
    """Run the sandbox in the foreground until SIGINT/SIGTERM, printing :func:`banner` first."""
    serve_app(LinkedPhoneApp, config, out, banner)


class LinkedPhoneSandboxServer(Background[LinkedPhoneApp, LinkedPhoneConfig]):
    """The sandbox on a free 127.0.0.1 port, served from a background thread with its own loop.

    Use it as a context manager; every method runs on the server's loop, so it is safe to call
    from the test thread::

        with LinkedPhoneSandboxServer(seed_contacts=3) as lp:
            httpx.get(f"{lp.base_url}/contacts", headers={"X-Api-Key": lp.api_key})

    :param config: the settings; keyword ``overrides`` replace single fields of it.
    """

    label = "linkedphone-sandbox"

    def __init__(self, config: LinkedPhoneConfig | None = None, **overrides: Any) -> None:  # noqa: ANN401  # replace() checks them
        super().__init__(config or LinkedPhoneConfig(), **overrides)

    def make_app(self, config: LinkedPhoneConfig) -> LinkedPhoneApp:
        """The app for ``config``."""
        return LinkedPhoneApp(config)

    # -- what tests read and set ----------------------------------------------------------------

    @property
    def api_key(self) -> str:
        """The account's API key (send it in ``X-Api-Key``)."""
        return self.app.api_key

    @property
    def webhook_secret(self) -> str:
        """The shared secret that signs every webhook body."""
        return self.app.webhook_secret

    def headers(self) -> dict[str, str]:
        """The auth header for raw requests: ``{"X-Api-Key": <key>}``."""
        return {"X-Api-Key": self.api_key}

    def stats(self) -> dict[str, Any]:
        """Counters: see :meth:`LinkedPhoneApp.stats`."""
        return self.call(self.app.stats)

    def writes(self, route: str) -> int:
        """How many writes to ``route`` (``"POST /tasks"``) changed state."""
        routes = self.stats()["traffic"]["routes"]
        return int(routes.get(route, {}).get("writes", 0))

    def requests(self, route: str) -> int:
        """How many requests ``route`` received (admitted or not)."""
        return int(self.stats()["traffic"]["routes"].get(route, {}).get("requests", 0))

    def statuses(self, route: str) -> dict[str, int]:
        """The answers ``route`` gave, by status (``"0"``: connection cut)."""
        return dict(self.stats()["traffic"]["routes"].get(route, {}).get("statuses", {}))

    def record(self, kind: str, record_id: str) -> dict[str, Any] | None:
        """A copy of one stored record (``kind``: contacts, tasks or notes), or None."""

        def read() -> dict[str, Any] | None:
            found = getattr(self.app.store, kind).get(record_id)
            return dict(found) if found is not None else None

        return self.call(read)

    def reset(self) -> None:
        """Back to seed data: no faults, zero counters, configured limit, no deliveries."""
        self.call(self.app.reset)

    def set_faults(self, *rules: Mapping[str, Any], replace: bool = True) -> list[dict[str, Any]]:
        """Install fault rules (see :class:`connector.sandbox.faults.FaultRule`)."""
        data = {"rules": [dict(r) for r in rules], "replace": replace}
        return self.call(lambda: control.add_faults(self.app, data))

    def set_limits(
        self, *, requests: int | None = None, seconds: float | None = None
    ) -> dict[str, Any]:
        """Change the rate limit (None keeps a value)."""
        data = {k: v for k, v in (("requests", requests), ("seconds", seconds)) if v is not None}
        return self.call(lambda: control.set_limits(self.app, data))

    def set_webhook_urls(self, urls: Sequence[str]) -> None:
        """Send every event to these URLs from now on."""
        self.call(lambda: self.app.sender.set_urls(urls))

    def drain_webhooks(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait for pending deliveries; return every delivery record so far."""
        self.wait(self.app.sender.drain(timeout), timeout + 1)
        return self.call(lambda: list(self.app.sender.deliveries))

    def sent_bodies(self) -> list[bytes]:
        """The raw webhook bodies sent so far, in order."""
        return self.call(lambda: list(self.app.sender.sent))
