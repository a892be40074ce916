"""Partner webhooks: how each partner app signs them, and how a verified one becomes an inbox event.

SuperPhone and LinkedPhone POST JSON envelopes (``{"id" | "eventId", "type": "contact.updated",
"timestamp", "data": {record}}``) signed with ``<header>: sha256=<hex>``, the HMAC-SHA256 of
the exact body under the account's webhook secret (the header per app is
:data:`SIGNATURE_HEADERS`, as the manifest's assumptions and the partner sandboxes say). The
secret is ``CONNECTOR_<APP>_WEBHOOK_SECRET`` (:func:`webhook_secret_env`).

A verified delivery is stored in the inbox as a :class:`~connector.service.inbox.NewEvent` whose
``webhookId`` is ``<app>:<event id>`` (a redelivery is stored once; the prefix keeps apps apart,
GHL's own ids with a ``:`` are put under ``ghl:`` by :func:`~connector.service.inbox.ghl_key`, and
:func:`partner_of` reads the app back), and whose ``type`` is the id of the app's trigger that
declares the event (``superphone.contacts.updated``), so recipes on partner triggers run from
it like from a poller's events; an event no trigger declares keeps ``<app>:<type>``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from connector.service.inbox import NewEvent
from connector.service.signatures import PublicKeys, verify

__all__ = [
    "SIGNATURE_HEADERS",
    "Check",
    "PartnerHook",
    "ghl_check",
    "hmac_check",
    "partner_of",
    "webhook_secret_env",
]

Check = Callable[[bytes, Mapping[str, str]], bool]
"""Whether a raw body and its (lower-cased) headers are authentic."""

SIGNATURE_HEADERS: Mapping[str, str] = {
    "superphone": "X-SuperPhone-Signature",
    "linkedphone": "X-LinkedPhone-Signature",
}
"""Partner app id -> the header carrying ``sha256=<hex HMAC-SHA256 of the body>``."""


def webhook_secret_env(app: str) -> str:
    """The environment variable holding a partner's webhook secret."""
    return f"CONNECTOR_{app.upper()}_WEBHOOK_SECRET"


def ghl_check(keys: PublicKeys) -> Check:
    """A check of GHL's webhook signatures (``x-ghl-signature``, else ``x-wh-signature``)."""

    def check(body: bytes, headers: Mapping[str, str]) -> bool:
        return verify(body, headers, keys).ok

    return check


def hmac_check(secret: str, header: str) -> Check:
    """A check of ``<header>: sha256=<hex HMAC-SHA256 of the body under secret>``."""
    name = header.lower()

    def check(body: bytes, headers: Mapping[str, str]) -> bool:
        given = headers.get(name)
        if given is None:
            return False
        expected = b"sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
        # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError).
        return hmac.compare_digest(expected, given.strip().encode("utf-8", "surrogatepass"))

    return check


@dataclass(frozen=True, slots=True)
class PartnerHook:
    """How the receiver takes one partner's webhooks at ``/webhooks/<app>``.

    :param types: the app's event type -> the id of the trigger declaring it.
    """

    app: str
    secret: str = field(repr=False)
    types: Mapping[str, str] = field(default_factory=dict)

    @property
    def header(self) -> str:
        """The signature header (lower case, as ASGI gives it)."""
        return SIGNATURE_HEADERS[self.app].lower()

    def check(self, body: bytes, headers: Mapping[str, str]) -> bool:
        """Whether the body carries this app's valid signature (fail closed: none is invalid)."""
        return hmac_check(self.secret, self.header)(body, headers)

    def event(self, body: bytes, payload: Mapping[str, Any], received_at: float) -> NewEvent:
        """The inbox event for a verified, parsed delivery."""
        given = payload.get("eventId") or payload.get("id")
        if not isinstance(given, str) or not given:
            given = "sha256:" + hashlib.sha256(body).hexdigest()
        kind = payload.get("type")
        name = str(kind) if isinstance(kind, str) else ""
        found = self.types.get(name) or f"{self.app}:{name}"
        return NewEvent(f"{self.app}:{given}", found, None, body, received_at)


def partner_of(webhook_id: str, apps: Collection[str]) -> str | None:
    """The partner app (of ``apps``) whose receiver stored an event, from its ``webhookId``."""
    app, sep, _ = webhook_id.partition(":")
    return app if sep and app in apps else None
