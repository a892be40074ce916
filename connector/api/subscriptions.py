"""REST-hook subscriptions: who wants which trigger's events, where, and the key to sign them.

A platform that subscribes (Zapier's REST hooks, Make's and n8n's webhook triggers) gives a
trigger id, a ``target_url`` and an optional filter; :func:`subscribe` answers a
:class:`Subscription` with its id and its signing secret, a Standard Webhooks secret
(``whsec_`` + base64 of 24 random bytes) the platform verifies each delivery with. Rows live
in the state file's ``hook_subscriptions`` table (store migration 9), so they survive
restarts; the secret is stored sealed by the vault (:mod:`connector.auth.vault`, bound to the
row) and registered with the redaction rule whenever it is opened, so it never reaches a log.
Each row also keeps the inbox ``type`` of its trigger's events (a GHL event name, else the
trigger id), which is how :func:`connector.api.delivery.fan_out` finds the subscriptions of an
event; :func:`subscribed_triggers` tells ``serve`` which polling triggers to poll for them.

``target_url`` is checked by the SSRF guard of the generic HTTP action
(:mod:`connector.client.urlguard`): loopback, private, link-local and metadata addresses are
refused unless ``CONNECTOR_HTTP_ALLOW`` (or the process allow-list tests and the demo use)
allows them. The guard runs again before every delivery (:mod:`connector.api.delivery`), so a
host name that later resolves elsewhere is still refused. A host name that does not resolve
at subscribe time is accepted with a warning (:attr:`Subscription.warnings`): its deliveries
are retried until it does, and checked then.

The filter is a JSON object of top-level payload fields, all of which must match:

- ``{"field": value}`` (a string, number, boolean or null): the event's ``field`` equals
  ``value`` (``true`` is not ``1``; a missing field equals only ``null``);
- ``{"field": [v1, v2]}``: the field equals one of the values.

For example ``{"type": "ContactCreate", "country": ["US", "CA"]}``. At most
:data:`MAX_FILTER_FIELDS` fields, each list at most :data:`MAX_FILTER_VALUES` values.

Every bad input is reported at once as a :class:`~connector.errors.DocumentError` whose
problems point at ``/trigger``, ``/target_url`` or ``/filter/<field>`` (the API answers them
with 422).
"""

from __future__ import annotations

import base64
import json
import math
import secrets
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from connector.auth.redaction import register
from connector.auth.vault import Vault
from connector.client.urlguard import UrlGuard
from connector.errors import ConnectorError, DocumentError, Location, Problem, RemoteError
from connector.store import Db, Row, Store

if TYPE_CHECKING:
    from connector.catalog import Catalog
    from connector.hookspecs import Trigger

__all__ = [
    "MAX_FILTER_FIELDS",
    "MAX_FILTER_VALUES",
    "MAX_URL_LENGTH",
    "SECRET_PREFIX",
    "Subscription",
    "check_filter",
    "drop",
    "get_subscription",
    "list_subscriptions",
    "matches",
    "open_secret",
    "public_subscriptions",
    "subscribe",
    "subscribed_triggers",
    "unsubscribe",
]

SECRET_PREFIX = "whsec_"
"""Standard Webhooks' prefix of a signing secret (the base64 key follows it)."""
MAX_URL_LENGTH = 2048
MAX_FILTER_FIELDS = 20
MAX_FILTER_VALUES = 100
_MAX_FILTER_TEXT = 1000
_SECRET_BYTES = 24
_COLUMNS = "id, trigger_id, event_type, target_url, filter, secret, created_at, owner"


@dataclass(frozen=True, slots=True)
class Subscription:
    """One REST-hook subscription.

    :param id: ``sub_`` + 24 hex digits.
    :param trigger_id: the catalog trigger whose events are delivered.
    :param event_type: the inbox ``type`` of those events (a GHL event name, or the trigger id
        for pollers' and partners' events; see
        :func:`~connector.service.dispatcher.trigger_types`).
    :param target_url: where each event is POSTed.
    :param filter: the filter (see the module doc), or None for every event.
    :param secret: the signing secret, ``whsec_...`` (left out of ``repr``).
    :param existing: True when :func:`subscribe` answered a subscription that was already
        there (same trigger, target URL and filter) instead of making a new one.
    :param warnings: what :func:`subscribe` accepted but the caller should know (a target
        host that does not resolve right now).
    :param owner: the id of the API key that subscribed (None: ``ghl-connector hooks add``);
        through the API a key sees, repeats and deletes only its own subscriptions.
    """

    id: str
    trigger_id: str
    event_type: str
    target_url: str
    filter: Mapping[str, Any] | None
    created_at: float
    secret: str = field(repr=False)
    existing: bool = field(default=False, compare=False)
    warnings: tuple[str, ...] = field(default=(), compare=False)
    owner: str | None = None

    def public(self) -> dict[str, Any]:
        """The subscription as JSON for listings: everything but the secret."""
        return {"id": self.id, "trigger": self.trigger_id, "target_url": self.target_url,
                "filter": dict(self.filter) if self.filter is not None else None,
                "created_at": self.created_at}


def subscribe(
    store: Store,
    trigger_id: str,
    target_url: str,
    filter: Mapping[str, Any] | None = None,  # noqa: A002  # the API's field name
    *,
    catalog: Catalog | None = None,
    vault: Vault | None = None,
    guard: UrlGuard | None = None,
    owner: str | None = None,
) -> Subscription:
    """Store a new subscription and answer it with its fresh secret.

    Idempotent, as REST-hook platforms expect (they subscribe again after a timeout): when a
    subscription with the same trigger, target URL, filter (its JSON text with sorted keys;
    ``true`` is not ``1``) and owner exists already, that one is answered, with its id and
    secret, and :attr:`Subscription.existing` set; nothing is stored, so no event is delivered
    twice.

    :param catalog: where ``trigger_id`` is looked up (default: the pack's, with plugins).
    :param vault: seals the secret (default: the vault beside the state file).
    :param guard: checks ``target_url`` (default: :meth:`UrlGuard.from_config`).
    :param owner: the subscribing API key's id (None: the CLI).
    :raises DocumentError: every problem of the trigger, the target URL and the filter.
    :raises StoreError: the state file cannot be written.
    """
    if catalog is None:
        from connector.catalog import build_catalog

        catalog = build_catalog()
    problems: list[Problem] = []
    event_type = _event_type(catalog, trigger_id, problems)
    warnings = _check_target(target_url, guard or UrlGuard.from_config(), problems)
    problems.extend(check_filter(filter))
    if problems:
        raise DocumentError(problems)
    sub_id = "sub_" + secrets.token_hex(12)
    secret = SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode()
    register(secret)
    opener = vault or Vault.beside(store.path)
    sealed = opener.seal(secret, context=_context(sub_id))
    now = time.time()
    stored_filter = json.dumps(dict(filter), sort_keys=True) if filter is not None else None
    with store.transaction() as db:  # look and insert in one transaction: no twin by a race
        for row in db.execute(
            "SELECT id, event_type, filter, secret, created_at, owner FROM hook_subscriptions"
            " WHERE trigger_id = ? AND target_url = ? ORDER BY created_at, id",
            (trigger_id, target_url),
        ).fetchall():
            # both json.dumps(sort_keys=True): the same text; another key's twin is not ours
            if row[2] == stored_filter and row[5] == owner:
                return Subscription(
                    str(row[0]), trigger_id, str(row[1]), target_url,
                    dict(filter) if filter is not None else None, float(row[4]),
                    open_secret(opener, str(row[0]), row[3]), existing=True,
                    warnings=warnings, owner=owner,
                )
        db.execute(
            f"INSERT INTO hook_subscriptions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (sub_id, trigger_id, event_type, target_url, stored_filter, sealed, now, owner),
        )
    return Subscription(sub_id, trigger_id, event_type, target_url,
                        dict(filter) if filter is not None else None, now, secret,
                        warnings=warnings, owner=owner)


def unsubscribe(store: Store, subscription_id: str) -> bool:
    """Delete a subscription; its deliveries not sent yet are ``cancelled``.

    :returns: False if there was no such subscription.
    """
    with store.transaction() as db:
        return drop(db, subscription_id, "unsubscribed")


def drop(db: Db, subscription_id: str, reason: str) -> bool:
    """Delete one subscription and cancel its pending deliveries (``reason`` recorded on
    them), inside the caller's transaction; False if there was no such subscription."""
    gone = db.execute("DELETE FROM hook_subscriptions WHERE id = ?", (subscription_id,)).rowcount
    db.execute(
        "UPDATE hook_deliveries SET status = 'cancelled', last_error = ?, finished_at = ?"
        " WHERE subscription_id = ? AND status = 'pending'",
        (reason, time.time(), subscription_id),
    )
    return bool(gone)


def list_subscriptions(store: Store, *, vault: Vault | None = None) -> list[Subscription]:
    """Every subscription, oldest first, with its secret opened.

    :raises StoreError: the state file cannot be read, or the key does not open a secret.
    """
    rows = store.query(f"SELECT {_COLUMNS} FROM hook_subscriptions ORDER BY created_at, id")
    opener = vault or Vault.beside(store.path)
    return [_from_row(row, opener) for row in rows]


def public_subscriptions(store: Store, *, owner: str | None = None) -> list[dict[str, Any]]:
    """The subscriptions as :meth:`Subscription.public` shows them, oldest first, without
    opening a secret: listing needs no key (a state file moved without its key still lists).

    :param owner: only the subscriptions of this API key's id (None: every subscription,
        each with its ``owner``, as ``ghl-connector hooks list`` shows them).
    :raises StoreError: the state file cannot be read.
    """
    sql = "SELECT id, trigger_id, target_url, filter, created_at, owner FROM hook_subscriptions"
    rows = (store.query(f"{sql} WHERE owner = ? ORDER BY created_at, id", (owner,))
            if owner is not None else store.query(f"{sql} ORDER BY created_at, id"))
    listed = [{"id": str(r["id"]), "trigger": str(r["trigger_id"]),
               "target_url": str(r["target_url"]),
               "filter": json.loads(r["filter"]) if r["filter"] is not None else None,
               "created_at": float(r["created_at"])} for r in rows]
    if owner is None:
        for item, row in zip(listed, rows, strict=True):
            item["owner"] = row["owner"]
    return listed


def get_subscription(
    store: Store, subscription_id: str, *, vault: Vault | None = None
) -> Subscription | None:
    """One subscription by id (None if there is none)."""
    rows = store.query(f"SELECT {_COLUMNS} FROM hook_subscriptions WHERE id = ?",
                       (subscription_id,))
    return _from_row(rows[0], vault or Vault.beside(store.path)) if rows else None


def subscribed_triggers(store: Store, catalog: Catalog) -> list[Trigger]:
    """The catalog's triggers some subscription names (ids the catalog lost are skipped)."""
    rows = store.query("SELECT DISTINCT trigger_id FROM hook_subscriptions ORDER BY trigger_id")
    return [catalog.triggers[i] for i in (str(r["trigger_id"]) for r in rows)
            if i in catalog.triggers]


def open_secret(vault: Vault, subscription_id: str, sealed: bytes) -> str:
    """A subscription's secret from its sealed form, registered with the redaction rule."""
    secret = vault.open(bytes(sealed), context=_context(subscription_id))
    register(secret)
    return secret


def _from_row(row: Row, vault: Vault) -> Subscription:
    stored = row["filter"]
    return Subscription(
        str(row["id"]), str(row["trigger_id"]), str(row["event_type"]), str(row["target_url"]),
        json.loads(stored) if stored is not None else None, float(row["created_at"]),
        open_secret(vault, str(row["id"]), row["secret"]), owner=row["owner"],
    )


def _context(subscription_id: str) -> str:
    return f"hook_subscriptions/{subscription_id}/secret"


def _event_type(catalog: Catalog, trigger_id: object, problems: list[Problem]) -> str:
    """The inbox type of a trigger's events ("" after recording a problem)."""
    from connector.service.dispatcher import trigger_types

    where = Location(pointer="/trigger")
    if not isinstance(trigger_id, str) or not trigger_id:
        problems.append(Problem(where, "must be a trigger id, e.g. ghl.contacts.created"))
        return ""
    if trigger_id in catalog.actions:
        problems.append(Problem(where, f"{trigger_id!r} is an action, not a trigger: a hook"
                                " delivers a trigger's events", "list the triggers with"
                                " `ghl-connector catalog`"))
        return ""
    try:
        trigger = catalog.trigger(trigger_id)
    except ConnectorError as exc:
        message = str(exc)  # it may hold the hint already: do not say it twice
        hint = "list them with `ghl-connector catalog`"
        problems.append(Problem(where, message, None if hint[-23:] in message else hint))
        return ""
    types = trigger_types(trigger, catalog.hub)
    if not types:
        problems.append(Problem(where, f"trigger {trigger_id!r} names no event to deliver"))
        return ""
    return types[0]


def _check_target(target_url: object, guard: UrlGuard, problems: list[Problem]) -> tuple[str, ...]:
    """Record the target URL's problems; answer the warnings of one that is accepted.

    A host name that does not resolve right now (DNS down, a name not published yet) is
    accepted with a warning: the guard runs again before every delivery, which retries while
    the name does not resolve and connects only to the addresses it checked. Its form, a
    literal address and a name that does resolve are checked now.
    """
    where = Location(pointer="/target_url")
    if not isinstance(target_url, str) or not target_url:
        problems.append(Problem(where, "must be an http:// or https:// URL"))
        return ()
    if len(target_url) > MAX_URL_LENGTH:
        problems.append(Problem(where, f"longer than {MAX_URL_LENGTH} characters"))
        return ()
    try:
        guard.check(target_url, where="target_url")
    except RemoteError as exc:
        if not isinstance(exc.__cause__, socket.gaierror):  # a name no resolver can take
            problems.append(Problem(where, str(exc)))
            return ()
        return (f"{exc}: subscribed anyway; each delivery checks the host again and is"
                " retried while it does not resolve",)
    except ConnectorError as exc:
        problems.append(Problem(where, str(exc)))
    return ()


def check_filter(value: object) -> list[Problem]:
    """Every problem of a filter (see the module doc); ``[]`` when it is good or None."""
    if value is None:
        return []
    root = Location(pointer="/filter")
    if not isinstance(value, Mapping):
        return [Problem(root, "must be an object of field: value (or [values])",
                        'e.g. {"country": ["US", "CA"]}')]
    if len(value) > MAX_FILTER_FIELDS:
        return [Problem(root, f"more than {MAX_FILTER_FIELDS} fields")]
    problems: list[Problem] = []
    for name, wanted in value.items():
        where = Location(pointer=f"/filter/{_escape(str(name))}")
        if not isinstance(name, str) or not name or len(name) > 100:
            problems.append(Problem(where, "a field name must be 1 to 100 characters"))
        elif isinstance(wanted, list):
            if not wanted or len(wanted) > MAX_FILTER_VALUES:
                problems.append(Problem(where, f"a list must hold 1 to {MAX_FILTER_VALUES}"
                                        " values"))
            elif not all(_scalar(v) for v in wanted):
                problems.append(Problem(where, "list values must be strings (at most"
                                        f" {_MAX_FILTER_TEXT} characters), finite numbers,"
                                        " booleans or null"))
        elif not _scalar(wanted):
            problems.append(Problem(where, "must be a string (at most"
                                    f" {_MAX_FILTER_TEXT} characters), finite number, boolean,"
                                    " null or a list of them"))
    return problems


def _scalar(value: object) -> bool:
    if isinstance(value, str):
        return len(value) <= _MAX_FILTER_TEXT
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, bool | int)


def _escape(name: str) -> str:
    """A JSON pointer token (RFC 6901)."""
    return name.replace("~", "~0").replace("/", "~1")


def matches(filter: Mapping[str, Any] | None, payload: Mapping[str, Any]) -> bool:  # noqa: A002
    """Whether an event's payload passes a subscription's filter (None passes everything)."""
    if not filter:
        return True
    for name, wanted in filter.items():
        have = payload.get(name)
        options: Sequence[Any] = wanted if isinstance(wanted, list) else [wanted]
        if not any(_same(have, option) for option in options):
            return False
    return True


def _same(have: object, wanted: object) -> bool:
    """JSON equality: booleans equal only booleans; numbers by value; the rest by ``==``."""
    if isinstance(have, bool) or isinstance(wanted, bool):
        return type(have) is type(wanted) and have == wanted
    if isinstance(have, int | float) and isinstance(wanted, int | float):
        return have == wanted
    return type(have) is type(wanted) and have == wanted
