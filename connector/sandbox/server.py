"""Running the sandbox in-process: in a background thread (:class:`SandboxServer`, for tests) or
in the foreground (:func:`serve`, for the CLI and ``python -m connector.sandbox``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from connector.sandbox import appointments, control
from connector.sandbox.app import SandboxApp
from connector.sandbox.config import SandboxConfig
from connector.sandbox.runner import Background, serve_app

__all__ = ["SandboxServer", "banner", "serve"]


def banner(app: SandboxApp) -> str:
    """What :func:`serve` prints: the base URL first, then credentials and keys, then a blank
    line. Each credential is a ``name: value`` line."""
    config = app.config
    keys = app.keys.public_pem()
    lines = [
        app.base_url,
        f"client_id: {config.client_id}",
        f"client_secret: {config.client_secret}",
        f"redirect_uris: {' '.join(config.redirect_uris)}",
        f"company_id: {config.company_id}",
        f"location_id: {config.location_id}",
        f"private_token: {app.private_token}",
        "webhook_public_key_ed25519:",
        keys["ed25519"].strip(),
        "webhook_public_key_rsa:",
        keys["rsa"].strip(),
        "",
    ]
    return "\n".join(lines) + "\n"


def serve(config: SandboxConfig, out: TextIO) -> None:
    """Run the sandbox in the foreground until SIGINT/SIGTERM, printing :func:`banner` to ``out``.

    :param config: the settings (``port`` 0 picks a free port).
    :param out: where the banner goes (flushed before serving).
    """
    serve_app(SandboxApp, config, out, banner)


class SandboxServer(Background[SandboxApp, SandboxConfig]):
    """The sandbox on a free 127.0.0.1 port, served from a background thread with its own loop.

    Use it as a context manager. Every Python API method runs on the server's loop, so it is
    safe to call from the test thread::

        with SandboxServer(seed_contacts=5) as ghl:
            httpx.get(f"{ghl.base_url}/contacts/{id}", headers=ghl.auth_headers())

    :param config: the settings; keyword ``overrides`` replace single fields of it.
    """

    label = "ghl-sandbox"

    def __init__(self, config: SandboxConfig | None = None, **overrides: Any) -> None:  # noqa: ANN401  # replace() checks them
        super().__init__(config or SandboxConfig(), **overrides)

    def make_app(self, config: SandboxConfig) -> SandboxApp:
        """The app for ``config``."""
        return SandboxApp(config)

    # -- what tests read ----------------------------------------------------------------------

    @property
    def config(self) -> SandboxConfig:
        """The settings in force (with the real port)."""
        return self.app.config

    @property
    def private_token(self) -> str:
        """A private integration token for the default location (contacts read and write)."""
        return self.app.private_token

    @property
    def location_id(self) -> str:
        """The default location."""
        return self.app.config.location_id

    @property
    def client_id(self) -> str:
        """The test OAuth client's id."""
        return self.app.config.client_id

    @property
    def client_secret(self) -> str:
        """The test OAuth client's secret."""
        return self.app.config.client_secret

    @property
    def redirect_uris(self) -> tuple[str, ...]:
        """The test OAuth client's redirect URIs."""
        return self.app.config.redirect_uris

    @property
    def public_keys(self) -> dict[str, str]:
        """The webhook public keys as PEM: ``{"ed25519": ..., "rsa": ...}``."""
        return self.app.keys.public_pem()

    def auth_headers(self, token: str | None = None) -> dict[str, str]:
        """``Authorization`` (the private token unless given) and ``Version`` headers."""
        return {"Authorization": f"Bearer {token or self.private_token}", "Version": "2021-07-28"}

    def stats(self) -> dict[str, Any]:
        """Counters: see :meth:`SandboxApp.stats`."""
        return self.call(self.app.stats)

    def location_stats(self, location_id: str | None = None) -> dict[str, Any]:
        """The traffic counters of one location (the default one unless given)."""
        empty: dict[str, Any] = {"requests": 0, "max_window": 0, "throttled": 0, "routes": {}}
        return dict(self.stats()["locations"].get(location_id or self.location_id, empty))

    def within_limits(self, location_id: str | None = None) -> bool:
        """Whether a location's traffic never exceeded the burst window and drew no 429."""
        seen = self.location_stats(location_id)
        return bool(seen["max_window"] <= self.app.limiter.requests and seen["throttled"] == 0)

    def writes(self, route: str, location_id: str | None = None) -> int:
        """How many writes to ``route`` (``"POST /contacts/"``) took effect."""
        routes = self.location_stats(location_id)["routes"]
        return int(routes.get(route, {}).get("writes", 0))

    def reset(self) -> None:
        """Back to seed data: no faults, zero counters, no OAuth grants, no deliveries."""
        self.call(self.app.reset)

    def set_faults(self, *rules: Mapping[str, Any], replace: bool = True) -> list[dict[str, Any]]:
        """Install fault rules (see :class:`connector.sandbox.faults.FaultRule`)."""
        data = {"rules": [dict(r) for r in rules], "replace": replace}
        return self.call(lambda: control.add_faults(self.app, data))

    def clear_faults(self) -> None:
        """Drop every fault rule."""
        self.call(self.app.faults.rules.clear)

    def set_limits(
        self, *, requests: int | None = None, seconds: float | None = None, daily: int | None = None
    ) -> dict[str, Any]:
        """Change the rate limits (None keeps a value)."""
        data = {
            k: v
            for k, v in (("requests", requests), ("seconds", seconds), ("daily", daily))
            if v is not None
        }
        return self.call(lambda: control.set_limits(self.app, data))

    def set_webhook_urls(self, urls: Sequence[str]) -> None:
        """Send every event to these URLs from now on."""
        self.call(lambda: self.app.sender.set_urls(urls))

    def drain_webhooks(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait for pending webhook deliveries; return every delivery record so far."""
        self.wait(self.app.sender.drain(timeout), timeout + 1)
        return self.call(lambda: list(self.app.sender.deliveries))

    def sent_bodies(self) -> list[bytes]:
        """The raw webhook bodies sent so far (most recent last)."""
        return self.call(lambda: list(self.app.sender.sent_bodies))

    def add_appointment(self, contact_id: str, **fields: object) -> dict[str, Any]:
        """Book an appointment for a contact (emits ``AppointmentCreate``)."""
        return self.call(
            lambda: dict(appointments.create(self.app.store, self.app.emit, contact_id, fields))
        )

    def update_appointment(self, appointment_id: str, **fields: object) -> dict[str, Any]:
        """Change an appointment (emits ``AppointmentUpdate``)."""
        return self.call(
            lambda: dict(appointments.update(self.app.store, self.app.emit, appointment_id, fields))
        )

    def delete_appointment(self, appointment_id: str) -> None:
        """Delete an appointment (emits ``AppointmentDelete``)."""
        self.call(lambda: appointments.delete(self.app.store, self.app.emit, appointment_id))

    def expire_tokens(self) -> int:
        """Expire every OAuth access token now; return how many there were."""
        return self.call(self.app.provider.expire_access_tokens)
