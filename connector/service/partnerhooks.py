"""Partner webhooks: checked by the scheme the app's manifest declares, stored as inbox events.

An app whose manifest declares ``webhooks`` (:class:`~connector.hookspecs.Webhooks`) POSTs JSON
envelopes signed with an HMAC of the exact body under the account's webhook secret, in the
header and with the prefix the manifest names. The secret is the environment variable the
manifest names, else ``CONNECTOR_<APP>_WEBHOOK_SECRET`` (:func:`webhook_secret_env`). No app
is known here by name: a plugin's app with ``webhooks`` is taken like the built-in ones.

A verified delivery is stored in the inbox as a :class:`~connector.service.inbox.NewEvent` whose
``webhookId`` is ``<app>:<event id>`` (a redelivery is stored once; the prefix keeps apps apart,
GHL's own ids with a ``:`` are put under ``ghl:`` by :func:`~connector.service.inbox.ghl_key`, and
:func:`partner_of` reads the app back), and whose ``type`` is the id of the app's trigger that
declares the event (``<app>.contacts.updated``), so recipes on partner triggers run from it
like from a poller's events; an event no trigger declares keeps ``<app>:<type>``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from connector.catalog import Catalog
from connector.hookspecs import App, SyncEvents, Webhooks
from connector.service.dispatcher import contact_key, event_payload
from connector.service.inbox import InboxEvent, NewEvent
from connector.service.signatures import PublicKeys, verify

__all__ = [
    "Check",
    "PartnerHook",
    "contact_of",
    "ghl_check",
    "hmac_check",
    "hub_events",
    "ordering",
    "partner_of",
    "webhook_secret_env",
]

Check = Callable[[bytes, Mapping[str, str]], bool]
"""Whether a raw body and its (lower-cased) headers are authentic."""


def webhook_secret_env(app: App) -> str:
    """The environment variable holding an app's webhook secret."""
    declared = app.webhooks.secret_env if app.webhooks else None
    return declared or f"CONNECTOR_{app.id.upper()}_WEBHOOK_SECRET"


def ghl_check(keys: PublicKeys) -> Check:
    """A check of GHL's webhook signatures (``x-ghl-signature``, else ``x-wh-signature``)."""

    def check(body: bytes, headers: Mapping[str, str]) -> bool:
        return verify(body, headers, keys).ok

    return check


def hmac_check(
    secret: str, header: str, *, algorithm: str = "hmac-sha256", prefix: str = "sha256="
) -> Check:
    """A check of ``<header>: <prefix><hex HMAC of the body under secret>``.

    :param algorithm: ``hmac-`` and a hashlib name (``hmac-sha256``, ``hmac-sha512``, ...).
    """
    name = header.lower()
    digest = algorithm.removeprefix("hmac-")
    hashlib.new(digest)  # an unknown hash fails here, when the hook is built

    def check(body: bytes, headers: Mapping[str, str]) -> bool:
        given = headers.get(name)
        if given is None:
            return False
        mac = hmac.new(secret.encode(), body, digest).hexdigest()
        expected = prefix.encode() + mac.encode()
        # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError).
        return hmac.compare_digest(expected, given.strip().encode("utf-8", "surrogatepass"))

    return check


@dataclass(frozen=True, slots=True)
class PartnerHook:
    """How the receiver takes one partner's webhooks at ``/webhooks/<app>``.

    :param webhooks: the app's signature scheme and envelope (its manifest's ``webhooks``).
    :param types: the app's event type -> the id of the trigger declaring it.
    """

    app: str
    secret: str = field(repr=False)
    webhooks: Webhooks
    types: Mapping[str, str] = field(default_factory=dict)

    @property
    def header(self) -> str:
        """The signature header (lower case, as ASGI gives it)."""
        return self.webhooks.header.lower()

    def check(self, body: bytes, headers: Mapping[str, str]) -> bool:
        """Whether the body carries this app's valid signature (fail closed: none is invalid)."""
        scheme = self.webhooks
        checker = hmac_check(self.secret, scheme.header, algorithm=scheme.algorithm,
                             prefix=scheme.prefix)  # fmt: skip
        return checker(body, headers)

    def event(self, body: bytes, payload: Mapping[str, Any], received_at: float) -> NewEvent:
        """The inbox event for a verified, parsed delivery."""
        given = next((payload[k] for k in self.webhooks.id if payload.get(k)), None)
        if not isinstance(given, str) or not given:
            given = "sha256:" + hashlib.sha256(body).hexdigest()
        kind = payload.get(self.webhooks.type)
        name = str(kind) if isinstance(kind, str) else ""
        found = self.types.get(name) or f"{self.app}:{name}"
        return NewEvent(f"{self.app}:{given}", found, None, body, received_at)


def contact_of(webhooks: Webhooks, payload: Mapping[str, Any]) -> str | None:
    """The contact a partner's event is about (for ordering): the record's id when the event
    reports a contact, else the record's first ``contact`` field; None when it names none."""
    record = payload.get(webhooks.record)
    if not isinstance(record, Mapping):
        return None
    noun = str(payload.get(webhooks.type) or "").partition(".")[0]
    if webhooks.objects.get(noun) == "contacts":
        found = record.get("id")
    else:
        found = next((record[k] for k in webhooks.contact if record.get(k)), None)
    return found if isinstance(found, str) and found else None


def hub_events(catalog: Catalog) -> SyncEvents | None:
    """The hub's ``sync_events`` (what :func:`ordering` reads its events by), or None."""
    return catalog.hub_app().sync_events if catalog.hub else None


def ordering(
    hooks: Mapping[str, PartnerHook], hub: SyncEvents | None = None
) -> Callable[[InboxEvent], str | None]:
    """The worker pool's ordering key: the contact an event is about, read by the envelope of
    the partner whose receiver stored it (:func:`contact_of`), else by the hub's
    ``sync_events`` (:func:`~connector.service.dispatcher.contact_key`; keyed per location);
    without ``hub`` such events are not ordered."""

    def key(event: InboxEvent) -> str | None:
        payload = event_payload(event)
        if not isinstance(payload, dict):
            return None
        app = partner_of(event.webhook_id, hooks)
        if app is None:
            found = contact_key(payload, hub) if hub is not None else None
            return f"{event.location_id or ''}/{found}" if found else None
        found = contact_of(hooks[app].webhooks, payload)
        return f"{app}/{found}" if found else None

    return key


def partner_of(webhook_id: str, apps: Collection[str]) -> str | None:
    """The partner app (of ``apps``) whose receiver stored an event, from its ``webhookId``."""
    app, sep, _ = webhook_id.partition(":")
    return app if sep and app in apps else None
