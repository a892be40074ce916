"""The partner sandboxes ``serve --sandbox`` starts for the syncs of its recipe folder.

Each partner a sync document names (SuperPhone, LinkedPhone) gets its sandbox in this process,
seeded with a few contacts; the service then calls it with its API key, verifies its webhooks
with its secret, and the start-up summary prints its URL, key and secret so a user can make
changes there by hand. Nothing needs credentials and nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from connector.errors import DocumentError
from connector.hookspecs import RateLimit
from connector.service.process import ServeOptions
from connector.sync.syncs import load_syncs

__all__ = ["SEED_CONTACTS", "PartnerSandbox", "start_partners", "with_partners"]

SEED_CONTACTS = 3
"""Contacts each partner sandbox starts with."""


@dataclass(frozen=True, slots=True)
class PartnerSandbox:
    """A running partner sandbox, as the service uses it."""

    app: str
    base_url: str
    api_key: str = field(repr=False)
    webhook_secret: str = field(repr=False)
    limit: RateLimit
    set_webhook_urls: Callable[[Sequence[str]], None] = field(repr=False)


def _superphone(stack: ExitStack) -> PartnerSandbox:
    from connector.sandbox.superphone import SuperPhoneConfig, SuperPhoneSandboxServer

    config = SuperPhoneConfig(seed_contacts=SEED_CONTACTS)
    box = stack.enter_context(SuperPhoneSandboxServer(config))
    limit = RateLimit(config.rate_limit_requests, config.rate_limit_seconds)
    return PartnerSandbox(
        "superphone", box.base_url, box.api_key, box.webhook_secret, limit, box.set_webhook_urls
    )


def _linkedphone(stack: ExitStack) -> PartnerSandbox:
    from connector.sandbox.linkedphone.config import LinkedPhoneConfig
    from connector.sandbox.linkedphone.server import LinkedPhoneSandboxServer

    config = LinkedPhoneConfig(seed_contacts=SEED_CONTACTS)
    box = stack.enter_context(LinkedPhoneSandboxServer(config))
    limit = RateLimit(config.rate_limit_requests, config.rate_limit_seconds)
    return PartnerSandbox(
        "linkedphone", box.base_url, box.api_key, box.webhook_secret, limit, box.set_webhook_urls
    )


_FACTORIES: Mapping[str, Callable[[ExitStack], PartnerSandbox]] = {
    "superphone": _superphone,
    "linkedphone": _linkedphone,
}


def start_partners(recipes: Path, stack: ExitStack) -> dict[str, PartnerSandbox]:
    """Start the sandbox of every partner the folder's sync documents name (stopped with
    ``stack``). A folder that does not load starts none: ``serve`` then reports its problems."""
    try:
        syncs = load_syncs(recipes)
    except DocumentError:
        return {}
    started: dict[str, PartnerSandbox] = {}
    for app in sorted({route.spec.partner for route in syncs}):
        factory = _FACTORIES.get(app)
        if factory is not None:
            started[app] = factory(stack)
    return started


def with_partners(options: ServeOptions, partners: Mapping[str, PartnerSandbox]) -> ServeOptions:
    """The options pointing the service at the partner sandboxes, with banner lines for them."""
    banner = [
        f"{app} sandbox: {box.base_url} (api key {box.api_key}, webhook secret"
        f" {box.webhook_secret})"
        for app, box in partners.items()
    ]
    return dataclasses.replace(
        options,
        app_urls={**options.app_urls, **{app: b.base_url for app, b in partners.items()}},
        app_limits={**options.app_limits, **{app: b.limit for app, b in partners.items()}},
        webhook_secrets={app: b.webhook_secret for app, b in partners.items()},
        api_keys={app: b.api_key for app, b in partners.items()},
        banner=(*options.banner, *banner),
    )
