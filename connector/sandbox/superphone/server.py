"""Running the SuperPhone sandbox: in a background thread (:class:`SuperPhoneSandboxServer`, for
tests) or in the foreground (:func:`serve`, for ``python -m connector.sandbox.superphone``).

Serving itself (uvicorn, the thread, the loop) is :mod:`connector.sandbox.runner`'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from connector.sandbox.runner import Background, serve_app
from connector.sandbox.superphone import control
from connector.sandbox.superphone.app import ENDPOINT, SuperPhoneApp
from connector.sandbox.superphone.config import SuperPhoneConfig

__all__ = ["SuperPhoneSandboxServer", "banner", "serve"]


def banner(app: SuperPhoneApp) -> str:
    """What :func:`serve` prints: the base URL, then ``name: value`` lines, then a blank line."""
    return (
        "\n".join(
            [
                app.base_url,
                f"graphql_url: {app.base_url}{ENDPOINT}",
                f"api_key: {app.api_key}",
                f"webhook_secret: {app.config.webhook_secret}",
                "",
            ]
        )
        + "\n"
    )


def serve(config: SuperPhoneConfig, out: TextIO) -> None:
    """Run the sandbox in the foreground until interrupted, printing :func:`banner` first."""
    serve_app(SuperPhoneApp, config, out, banner)


class SuperPhoneSandboxServer(Background[SuperPhoneApp, SuperPhoneConfig]):
    """The SuperPhone sandbox on a free 127.0.0.1 port, served from a background thread.

    Use it as a context manager; every method runs on the server's loop, so it is safe to
    call from the test thread::

        with SuperPhoneSandboxServer() as sp:
            httpx.post(sp.graphql_url, json={"query": "{ contacts { totalCount } }"},
                       headers=sp.auth_headers())

    :param config: the settings; keyword ``overrides`` replace single fields of it.
    """

    label = "superphone-sandbox"

    def __init__(self, config: SuperPhoneConfig | None = None, **overrides: Any) -> None:  # noqa: ANN401  # replace() checks them
        super().__init__(config or SuperPhoneConfig(), **overrides)

    def make_app(self, config: SuperPhoneConfig) -> SuperPhoneApp:
        """The app for ``config``."""
        return SuperPhoneApp(config)

    # -- what tests read and change ------------------------------------------------------------

    @property
    def graphql_url(self) -> str:
        """``<base_url>/graphql``."""
        return self.app.base_url + ENDPOINT

    @property
    def api_key(self) -> str:
        """The account's API key."""
        return self.app.api_key

    @property
    def webhook_secret(self) -> str:
        """The shared secret that signs every webhook body."""
        assert self.app.config.webhook_secret is not None
        return self.app.config.webhook_secret

    def auth_headers(self) -> dict[str, str]:
        """``X-Api-Key`` with the account's key."""
        return {"X-Api-Key": self.api_key}

    def stats(self) -> dict[str, Any]:
        """Counters: see :meth:`SuperPhoneApp.stats`."""
        return self.call(self.app.stats)

    def writes(self, operation: str) -> int:
        """How many ``operation`` mutations (``"createContact"``) took effect."""
        return int(self.stats()["writes"].get(operation, 0))

    def requests(self, operation: str) -> int:
        """How many requests for ``operation`` (a root field) arrived with the right key."""
        routes = self.stats()["traffic"]["routes"]
        return int(routes.get(operation, {}).get("requests", 0))

    def reset(self) -> None:
        """Back to seed data: no faults, zero counters, no deliveries."""
        self.call(self.app.reset)

    def set_faults(self, *rules: Mapping[str, Any], replace: bool = True) -> list[dict[str, Any]]:
        """Install fault rules (see :class:`connector.sandbox.faults.FaultRule`)."""
        data = {"rules": [dict(r) for r in rules], "replace": replace}
        return self.call(lambda: control.add_faults(self.app, data))

    def set_limits(self, *, requests: int | None = None, seconds: float | None = None) -> None:
        """Change the rate limit (None keeps a value)."""
        data = {k: v for k, v in (("requests", requests), ("seconds", seconds)) if v is not None}
        self.call(lambda: control.set_limits(self.app, data))

    def set_webhook_urls(self, urls: Sequence[str]) -> None:
        """Send every event to these URLs from now on."""
        self.call(lambda: self.app.sender.set_urls(urls))

    def drain_webhooks(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait for pending deliveries; return every delivery record so far."""
        self.wait(self.app.sender.drain(timeout), timeout + 1)
        return self.call(lambda: list(self.app.sender.deliveries))
