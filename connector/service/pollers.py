"""Polling: turning records that changed at GHL into inbox events, once each, on an interval.

A :class:`Poller` serves one trigger in one location, in one of three modes, chosen by the
trigger it is given and its app's ``polling`` data (:class:`~connector.hookspecs.Polling`, in
the app's manifest: the contact search, the contact's time fields, the reconcilable events):

``records``
    a polling trigger with a cursor whose action is the app's search (``ghl.contacts.changed``,
    ``ghl.contacts.added``): searches for records whose cursor field (``dateUpdated``,
    ``dateAdded``) reached the saved cursor, oldest first, and fires once per record id and
    version (the ``dedupe`` fields after the id).
``children``
    a polling trigger without a cursor (``ghl.tasks.changed``, ``ghl.notes.changed``): finds
    the contacts whose update time reached the cursor, lists each one's records with the
    trigger's action, and fires for each record that is new or whose ``dedupe`` fields changed.
``reconcile``
    a webhook trigger whose event the app's ``polling.reconcile`` names
    (``ghl.contacts.created``, ``ghl.contacts.updated``): polls the same data and fires,
    shaped like the webhook, only for changes no stored webhook announced.

Events go into the same inbox as webhooks: ``webhook_id`` is ``poll:<trigger>:<id>[:<version>]``
(deterministic, so a repeat is stored once), ``type`` is the trigger id (or, reconciling, the
webhook's event type, so it is routed like the webhook) and the body is the record as JSON. The
events and the cursor are saved in one transaction (:class:`~connector.service.cursor.PollLedger`).
Every request goes through the runtime, so the per-location rate limiter paces polls together
with everything else; :class:`PollSettings` caps the pages one poll may read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from connector.client.retry import RetryPolicy
from connector.errors import ConnectorError, RemoteError
from connector.hookspecs import Action, Gone, Polling, Trigger
from connector.runtime import Runtime
from connector.service.cursor import POLL_PREFIX, Found, PollLedger, to_ms, webhook_times
from connector.service.inbox import NewEvent
from connector.storage.leases import Leases, holder_name
from connector.store import Db, Store

__all__ = ["Mode", "PollSettings", "Poller"]

Mode = Literal["records", "children", "reconcile"]

_CLOCK_MARGIN = 600.0
"""Seconds a webhook may seem to arrive before the change it announces (clock skew)."""
_MAX_BACKOFF = 900.0
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PollSettings:
    """How often and how much a poller reads.

    :param interval: seconds between polls (:meth:`Poller.run_forever`).
    :param page_size: records per search page (1..500).
    :param max_pages: search pages one poll reads at most; the rest waits for the next poll.
    :param overlap: seconds below the cursor read again each poll, for records GHL's search
        index shows late; what was already seen does not fire again.
    :param backfill: the first poll fires for the records that already exist; by default it
        only notes where they end.
    :param settle: reconciling, changes younger than this many seconds are left to their
        webhooks (GHL retries deliveries).
    :param skew: reconciling, a webhook stamped up to this many seconds before a change still
        counts as announcing it (GHL stamps a change and its webhook separately).
    :param lease: seconds the poller's lease lasts after each renewal (0: twice the interval
        plus 30 s); another process takes the poller over when its holder stops renewing.
    """

    interval: float = 60.0
    page_size: int = 100
    max_pages: int = 10
    overlap: float = 0.0
    backfill: bool = False
    settle: float = 120.0
    skew: float = 1.0
    lease: float = 0.0

    def __post_init__(self) -> None:
        if not self.interval > 0:
            raise ValueError(f"PollSettings: interval {self.interval!r} must be above 0")
        if not 1 <= self.page_size <= 500:
            raise ValueError(f"PollSettings: page_size {self.page_size!r} must be 1..500")
        if self.max_pages < 1:
            raise ValueError(f"PollSettings: max_pages {self.max_pages!r} must be at least 1")
        for name in ("overlap", "settle", "skew", "lease"):
            if getattr(self, name) < 0:
                raise ValueError(f"PollSettings: {name} must not be negative")


class Poller:
    """Polls one trigger for one location and stores what it finds in the inbox.

    :param trigger: a polling trigger, or a webhook trigger to reconcile (see the module doc).
    :param runtime: calls GHL (its settings give the base URL, location and rate limit).
    :param store: the state file holding the inbox and the poll tables.
    :param settings: interval and limits; defaults to :class:`PollSettings`.
    :param location_id: the location polled; defaults to the runtime's.
    :param clock: the time source (epoch seconds) for the poller's start, the settle window,
        event times and ``last_poll``; tests pass their own to order moments without sleeping.
    :raises ConnectorError: the trigger cannot be polled or reconciled.
    :raises ValueError: no location is given.
    """

    def __init__(
        self,
        trigger: Trigger,
        runtime: Runtime,
        store: Store,
        settings: PollSettings | None = None,
        *,
        location_id: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.trigger = trigger
        self.clock = clock
        self.runtime = runtime
        self.settings = settings or PollSettings()
        self.location_id = location_id or runtime.settings.location_id or ""
        if not self.location_id:
            raise ValueError(f"Poller({trigger.id!r}): no location_id [set it or the runtime's]")
        app = runtime.catalog.apps.get(trigger.app)
        self.polling: Polling = _polling(trigger, app.polling if app else None)
        self.mode, self.field = _mode(trigger, self.polling)
        self.ledger = PollLedger(store, trigger.id, self.location_id)
        self._paging = _paging_fields(runtime.catalog.actions.get(self.polling.search))
        self.child: Action | None = None
        if self.mode == "children":
            self.child = runtime.catalog.action(str(trigger.action))
            contact = self.polling.contact_input
            if contact not in self.child.input_schema.get("properties", {}):
                raise ConnectorError(
                    f"poller: trigger {trigger.id!r} lists with {self.child.id!r}, which takes"
                    f" no {contact} [a trigger without cursor lists per changed contact]"
                )
        self.last_poll: float | None = None
        """When the last poll ended (epoch seconds), successful or not."""
        self.last_error: str | None = None
        """Why the last poll failed; None after a successful one."""
        self.leases = Leases(store)
        self.lease_name = f"poll:{trigger.id}:{self.location_id}"
        self.holder = holder_name("poller")
        self.leading = False
        """Whether this poller held its lease at its last try (:meth:`run_forever`)."""

    def __repr__(self) -> str:
        return f"Poller({self.trigger.id!r}, mode={self.mode!r}, location={self.location_id!r})"

    # -- running ---------------------------------------------------------------------------

    def run_once(self) -> int:
        """Poll once: read what changed since the cursor and store it with the new cursor.

        The first poll (no saved cursor) only notes where the records end, unless
        ``backfill`` is set.

        :returns: how many new events were stored.
        :raises ConnectorError: GHL or the store failed; nothing was saved, and the next
            poll reads the same records again.
        """
        try:
            count = self._poll()
        except ConnectorError as exc:
            self.last_error = str(exc)
            raise
        finally:
            self.last_poll = self.clock()
        self.last_error = None
        return count

    def run_forever(self, stop: threading.Event) -> None:
        """Poll every ``interval`` seconds until ``stop`` is set; never raises.

        Each round first takes or renews the poller's lease (``poll:<trigger>:<location>``):
        of all the processes sharing a store, only the holder polls; the others check again
        every interval and take over once the holder's lease expires. The lease is released
        when ``stop`` is set.

        A failed poll is logged and the wait doubles (up to 15 minutes, or the interval if
        longer) until a poll succeeds again (the pack's one backoff,
        :class:`~connector.client.retry.RetryPolicy`, without jitter).
        """
        interval = self.settings.interval
        backoff = RetryPolicy(
            base=2 * interval, cap=max(_MAX_BACKOFF, interval), jitter="none"
        ).backoff()
        failures = 0
        while not stop.is_set():
            try:
                if self._lead():
                    self.run_once()
                failures = 0
            except ConnectorError as exc:
                failures += 1
                _log.warning("poller %s: %s", self.trigger.id, exc)
            except Exception:  # thread top level: the poller must not die
                failures += 1
                self.last_error = "internal error (see the log)"
                _log.exception("poller %s: poll failed", self.trigger.id)
            stop.wait(backoff.delay(min(failures, 20)) if failures else interval)
        if self.leading:
            try:
                self.leases.release(self.lease_name, self.holder)
            except ConnectorError as exc:  # it expires on its own
                _log.warning("poller %s: %s", self.trigger.id, exc)

    def _lead(self) -> bool:
        """Take or renew this poller's lease; whether this process is the one to poll."""
        ttl = self.settings.lease or self.settings.interval * 2 + 30
        was = self.leading
        self.leading = self.leases.acquire(self.lease_name, self.holder, ttl)
        self.ledger.lease = (self.lease_name, self.holder) if self.leading else None
        if self.leading != was:
            _log.info("poller %s @ %s: %s", self.trigger.id, self.location_id,
                      "polling (lease taken)" if self.leading else "another process polls")
        return self.leading

    # -- one poll --------------------------------------------------------------------------

    def _poll(self) -> int:
        cursor = self.ledger.cursor()
        if cursor is None and not self.settings.backfill:
            return self._baseline()
        lower = None if cursor is None else cursor.value - int(self.settings.overlap * 1000)
        started = 0 if cursor is None else cursor.started
        upper = None
        if self.mode == "reconcile":
            upper = int((self.clock() - self.settings.settle) * 1000)
        contacts = list(self._search(lower, upper))
        value = max([0 if cursor is None else cursor.value, *(p for p, _ in contacts)])
        if self.mode == "children":
            found = [f for p, c in contacts for f in self._children(c, p, started)]
            return len(self.ledger.commit(found, value=value))
        stored = self.ledger.commit(
            self._candidates(contacts),
            value=value,
            keep_from=value - int(self.settings.overlap * 1000),
            covered=self._announced if self.mode == "reconcile" else None,
        )
        return len(stored)

    def _baseline(self) -> int:
        """First poll: save the newest cursor value; remember the records at it, no events.

        The records read are those at that value only: one made after the first search is
        new, and the next poll fires for it."""
        newest = self._search(None, None, newest=True)
        value = next((p for p, _ in newest), 0)
        if self.mode == "children":
            # Records listed later are dated by their own clock: what is older than now existed.
            self.ledger.commit([], value=value, started=int(self.clock() * 1000), emit=False)
        else:
            found = self._candidates(list(self._search(value, value)))
            self.ledger.commit(found, value=value, emit=False)
        return 0

    def _candidates(self, contacts: Sequence[tuple[int, dict[str, Any]]]) -> list[Found]:
        """What found contacts become: records, or (reconciling) webhook-shaped changes."""
        if self.mode == "reconcile":
            return [self._reconciled(c, p) for p, c in contacts if self._is_change(c)]
        return [self._found(c, p) for p, c in contacts]

    def _search(
        self, lower: int | None, upper: int | None, *, newest: bool = False
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """Contacts with the cursor field in [lower, upper], oldest first (newest: one, last)."""
        polling = self.polling
        values: dict[str, object] = {
            "$location": self.location_id,
            "$limit": 1 if newest else self.settings.page_size,
            "$field": self.field,
            "$direction": "desc" if newest else "asc",
        }
        body = _filled(polling.search_input, values)
        if lower is not None or upper is not None:
            bounds = {"$from": None if lower is None else _iso(lower),
                      "$to": None if upper is None else _iso(upper)}
            body.update(_filled(polling.search_range, {**values, **bounds}))
        most = 1 if newest else self.settings.page_size * self.settings.max_pages
        for record in self.runtime.iterate(self.polling.search, body, max_items=most):
            position = to_ms(record.get(self.field)) if isinstance(record, dict) else None
            if position is None or not isinstance(record.get("id"), str):
                _log.warning(
                    "poller %s: skipped a record without id or %s", self.trigger.id, self.field
                )
                continue
            yield position, record

    # -- what a record becomes ---------------------------------------------------------------

    def _found(self, record: dict[str, Any], position: int) -> Found:
        record_id = str(record["id"])
        version = _version(record, self.trigger.dedupe[1:])
        key = f"{POLL_PREFIX}{self.trigger.id}:{record_id}" + (f":{version}" if version else "")
        location = record.get("locationId")
        body = {k: v for k, v in record.items() if k not in self._paging}
        event = self._event(key, self.trigger.id, body, location)
        return Found(record_id, version, position, event)

    def _children(self, contact: dict[str, Any], position: int, started: int) -> list[Found]:
        """The records of one changed contact (tasks, notes) as candidate events."""
        assert self.child is not None
        try:
            data = self.runtime.call(self.child.id, {self.polling.contact_input: contact["id"]})
        except RemoteError as exc:
            # Deleted since the search (the app's `polling.gone`): nothing left to list.
            if _gone(exc, self.polling.gone):
                _log.info("poller %s: contact %s is gone: %s", self.trigger.id, contact["id"], exc)
                return []
            raise
        location = contact.get("locationId") or self.location_id
        found = []
        for record in _list_records(self.child, data):
            record_id = str(record["id"])
            version = _version(record, self.trigger.dedupe[1:])
            key = f"{POLL_PREFIX}{self.trigger.id}:{record_id}:{version}:{position}"
            event = self._event(key, self.trigger.id, {"locationId": location, **record}, location)
            polling = self.polling
            dated = to_ms(record.get(polling.changed)) or to_ms(record.get(polling.created))
            # A record never seen but dated before the poller started existed before it.
            old = dated is not None and dated < started
            found.append(Found(record_id, version, None, event, quiet_if_new=old))
        return found

    @property
    def _updates(self) -> bool:
        """Reconciling: the event reports updates (it is dated by another field than the
        creation time), so each change of a contact is one event."""
        return self.field != self.polling.created

    def _is_change(self, contact: Mapping[str, Any]) -> bool:
        """Reconciling updates, a contact never changed since its creation is not an update."""
        if not self._updates:
            return True
        return bool(contact.get(self.field) != contact.get(self.polling.created))

    def _reconciled(self, contact: dict[str, Any], position: int) -> Found:
        """A contact as the webhook the trigger expects (only the payload's fields)."""
        event_type = str(self.trigger.event)
        record_id = str(contact["id"])
        version = str(contact[self.field]) if self._updates else ""
        key = f"{POLL_PREFIX}{self.trigger.id}:{record_id}" + (f":{version}" if version else "")
        known = self.trigger.payload_schema.get("properties", {})
        payload = {k: v for k, v in contact.items() if k in known}
        location = contact.get("locationId") or self.location_id
        payload.update(
            type=event_type,
            locationId=location,
            webhookId=key,
            timestamp=_iso(int(self.clock() * 1000)),
        )
        return Found(
            record_id,
            version,
            position,
            self._event(key, event_type, payload, location),
            when=position,
        )

    def _announced(self, db: Db, fresh: Sequence[Found]) -> set[str]:
        """The ids among ``fresh`` whose change a stored webhook already announced."""
        times = [f.when for f in fresh if f.when is not None]
        since = min(times) / 1000 - _CLOCK_MARGIN if times else 0.0
        seen = webhook_times(db, [str(self.trigger.event)], since)
        skew = int(self.settings.skew * 1000)
        # A creation is announced by any ContactCreate; a change by a webhook sent after it.
        return {
            f.record_id
            for f in fresh
            if f.record_id in seen and (not f.version or seen[f.record_id] >= (f.when or 0) - skew)
        }

    def _event(self, key: str, kind: str, body: Mapping[str, Any], location: object) -> NewEvent:
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        where = location if isinstance(location, str) else self.location_id
        return NewEvent(key, kind, where, text.encode(), self.clock())


def _polling(trigger: Trigger, polling: Polling | None) -> Polling:
    """The trigger's app's polling data; an app without it cannot be polled."""
    if polling is None:
        raise ConnectorError(
            f"poller: trigger {trigger.id!r} {_what(trigger)}, which cannot be polled: app"
            f" {trigger.app!r} declares no `polling` [only apps whose manifest entry has"
            " `polling` are polled]"
        )
    return polling


def _mode(trigger: Trigger, polling: Polling) -> tuple[Mode, str]:
    """The mode for a trigger and the contact field its cursor follows."""
    if trigger.kind == "polling" and trigger.cursor and trigger.action == polling.search:
        return "records", trigger.cursor
    if trigger.kind == "polling" and not trigger.cursor:
        return "children", polling.changed
    if trigger.kind == "webhook" and (field := polling.reconcile.get(str(trigger.event))):
        return "reconcile", field
    raise ConnectorError(
        f"poller: trigger {trigger.id!r} {_what(trigger)}, which cannot be polled [pollable:"
        f" {polling.search} records, per-contact lists, webhooks {sorted(polling.reconcile)}]"
    )


def _filled(template: Mapping[str, Any], values: Mapping[str, object]) -> dict[str, Any]:
    """``template`` with each whole-string ``$name`` of ``values`` replaced; a key whose value
    is ``None`` (an unset bound) is left out."""

    def fill(node: object) -> object:
        if isinstance(node, str):
            return values.get(node, node)
        if isinstance(node, list):
            return [fill(item) for item in node]
        if isinstance(node, Mapping):
            filled = {key: fill(value) for key, value in node.items()}
            return {key: value for key, value in filled.items() if value is not None}
        return node

    filled = fill(template)
    assert isinstance(filled, dict)
    return filled


def _paging_fields(search: Action | None) -> frozenset[str]:
    """The record fields the search's paging reads (``$last.searchAfter``): paging state, not
    record data, so they are left out of the events."""
    follow = (search.pagination or {}).get("next", {}) if search else {}
    return frozenset(v.removeprefix("$last.") for v in follow.values()
                     if isinstance(v, str) and v.startswith("$last."))


def _gone(exc: RemoteError, answers: Sequence[Gone]) -> bool:
    """Whether a listing's error is one of the answers meaning its contact was deleted."""
    body = (exc.body or "").lower()
    return any(exc.status == g.status and (g.says is None or g.says.lower() in body)
               for g in answers)


def _what(trigger: Trigger) -> str:
    return f"polls {trigger.action!r}" if trigger.kind == "polling" else f"is {trigger.event!r}"


def _version(record: Mapping[str, Any], fields: tuple[str, ...]) -> str:
    """What identifies this state of a record: one short field as it is, else a fingerprint."""
    if not fields:
        return ""
    if len(fields) == 1:
        value = record.get(fields[0])
        if isinstance(value, str | int) and not isinstance(value, bool) and len(str(value)) <= 64:
            return str(value)
    values = json.dumps([record.get(f) for f in fields], sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(values.encode()).hexdigest()[:16]


def _list_records(action: Action, data: object) -> list[dict[str, Any]]:
    """The records of a list action's answer: its one array property (``tasks``, ``notes``)."""
    if not isinstance(data, dict):
        return []
    props = action.output_schema.get("properties", {})
    names = [n for n, s in props.items() if isinstance(s, dict) and s.get("type") == "array"]
    items = data.get(names[0]) if len(names) == 1 else None
    if not isinstance(items, list):
        raise ConnectorError(f"poller: {action.id} answered without its list of records")
    return [r for r in items if isinstance(r, dict) and isinstance(r.get("id"), str)]


def _iso(millis: int) -> str:
    """Epoch milliseconds as GHL writes times: ``2024-05-01T10:00:00.000Z``."""
    seconds, ms = divmod(millis, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ms:03d}Z"
