"""The partner sandboxes by app id, started the same way wherever a caller needs one.

``serve --sandbox`` starts, for each partner its sync documents name, the sandbox registered
here under that app's id (seeded with a few contacts); the service only sees a
:class:`PartnerSandbox`: where it listens, its API key, its webhook secret and rate limit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field

from connector.hookspecs import RateLimit

__all__ = ["PARTNER_SANDBOXES", "SEED_CONTACTS", "PartnerSandbox"]

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


def _superphone(stack: ExitStack, seed: int) -> PartnerSandbox:
    from connector.sandbox.superphone import SuperPhoneConfig, SuperPhoneSandboxServer

    config = SuperPhoneConfig(seed_contacts=SEED_CONTACTS, seed=seed)
    box = stack.enter_context(SuperPhoneSandboxServer(config))
    limit = RateLimit(config.rate_limit_requests, config.rate_limit_seconds)
    return PartnerSandbox(
        "superphone", box.base_url, box.api_key, box.webhook_secret, limit, box.set_webhook_urls
    )


def _linkedphone(stack: ExitStack, seed: int) -> PartnerSandbox:
    from connector.sandbox.linkedphone.config import LinkedPhoneConfig
    from connector.sandbox.linkedphone.server import LinkedPhoneSandboxServer

    config = LinkedPhoneConfig(seed_contacts=SEED_CONTACTS, seed=seed)
    box = stack.enter_context(LinkedPhoneSandboxServer(config))
    limit = RateLimit(config.rate_limit_requests, config.rate_limit_seconds)
    return PartnerSandbox(
        "linkedphone", box.base_url, box.api_key, box.webhook_secret, limit, box.set_webhook_urls
    )


PARTNER_SANDBOXES: Mapping[str, Callable[[ExitStack, int], PartnerSandbox]] = {
    # (stack, seed): the sandbox stopped with the stack, its ids drawn from the seed
    "superphone": _superphone,
    "linkedphone": _linkedphone,
}
