"""A poller's persisted state: its cursor, the record versions it has seen, and the commit that
saves both together with the events they produced.

Two tables (store migration 5) hold it, keyed by trigger id and *scope* (the location polled):

``poll_cursors``
    the cursor value (epoch milliseconds of the trigger's cursor field, e.g. ``dateUpdated``),
    and the value at the first poll (``started``: what existed before the poller is not news).
``poll_seen``
    for each record id, the version last turned into an event (``dateUpdated``, or a
    fingerprint of the fields that matter) and its position (its cursor value, ``NULL`` for
    records listed per changed contact, which are kept for good).

:meth:`PollLedger.commit` writes the inbox events, the seen versions and the cursor in ONE
transaction: a crash before it commits leaves nothing behind (the next poll finds the same
records again), a crash after leaves everything (the next poll finds them already seen). The
inbox's unique ``webhook_id`` is a second guard: poll events have deterministic ids.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from connector.activity import BUS
from connector.errors import StoreError
from connector.service.inbox import NewEvent, order_inserts
from connector.store import Db, Store

__all__ = [
    "POLL_PREFIX", "Cursor", "Found", "PollLedger", "cursors", "to_ms", "webhook_times",
]

POLL_PREFIX = "poll:"
"""How the ``webhook_id`` of every event a poller makes starts (webhooks never do)."""

_INSERT_EVENT = (
    "INSERT INTO inbox (webhook_id, type, location_id, received_at, body,"
    " available_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
_UPSERT_SEEN = (
    "INSERT INTO poll_seen (trigger_id, scope, record_id, version, position, seen_at)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (trigger_id, scope, record_id) DO UPDATE SET"
    " version = excluded.version, position = excluded.position, seen_at = excluded.seen_at"
)
_UPSERT_CURSOR = (
    "INSERT INTO poll_cursors (trigger_id, scope, value, started, polled_at)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (trigger_id, scope) DO UPDATE SET"
    " value = CASE WHEN excluded.value > poll_cursors.value THEN excluded.value"
    " ELSE poll_cursors.value END, polled_at = excluded.polled_at"
)


def to_ms(value: object) -> int | None:
    """Epoch milliseconds from an ISO 8601 time or a number of ms; None if it is neither."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a poller stands: ``value`` and ``started`` are epoch milliseconds."""

    value: int
    started: int


@dataclass(frozen=True, slots=True)
class Found:
    """A record a poll found, and the event it becomes if its version is new.

    :param record_id: the record's id.
    :param version: what identifies this state of the record (its ``dateUpdated``, or a
        fingerprint); the same id and version never fire twice.
    :param position: the record's cursor value in ms; None keeps its seen row for good.
    :param event: the inbox event (its ``webhook_id`` is deterministic).
    :param when: the record's change time in ms, for matching webhooks (reconciliation).
    :param quiet_if_new: if the record was never seen, remember it without an event (it
        existed before the poller started).
    """

    record_id: str
    version: str
    position: int | None
    event: NewEvent
    when: int | None = None
    quiet_if_new: bool = False


Covered = Callable[[Db, Sequence[Found]], Collection[str]]
"""Given the connection inside the commit and the new records, the ids not to emit."""


class PollLedger:
    """The state of one poller: one trigger in one scope. Thread-safe, like the store.

    Every method raises :class:`~connector.errors.StoreError` when SQLite fails.

    :param store: the state file (migrated to include the polling tables).
    :param trigger_id: the trigger polled (or reconciled).
    :param scope: what is polled, usually the location id.
    """

    def __init__(self, store: Store, trigger_id: str, scope: str) -> None:
        self.store = store
        self.trigger_id = trigger_id
        self.scope = scope
        self.lease: tuple[str, str] | None = None
        """(lease name, holder) a commit must still hold (set by a leading poller), or None."""

    def __repr__(self) -> str:
        return f"PollLedger({self.trigger_id!r}, scope={self.scope!r})"

    def cursor(self) -> Cursor | None:
        """The saved cursor, or None before the first poll committed."""
        rows = self.store.query(
            "SELECT value, started FROM poll_cursors WHERE trigger_id = ? AND scope = ?",
            (self.trigger_id, self.scope),
        )
        return Cursor(int(rows[0]["value"]), int(rows[0]["started"])) if rows else None

    def seen(self, record_id: str) -> str | None:
        """The version of a record last seen (turned into an event, or baselined)."""
        rows = self.store.query(
            "SELECT version FROM poll_seen WHERE trigger_id = ? AND scope = ? AND record_id = ?",
            (self.trigger_id, self.scope, record_id),
        )
        return str(rows[0]["version"]) if rows else None

    def commit(
        self,
        found: Sequence[Found],
        *,
        value: int,
        started: int | None = None,
        keep_from: int | None = None,
        emit: bool = True,
        covered: Covered | None = None,
    ) -> list[Found]:
        """In one transaction: store an event for each record whose version is new, remember
        those versions, move the cursor up to ``value`` and forget old seen rows.

        :param found: the records of this poll, in cursor order.
        :param value: the new cursor (it never moves back).
        :param started: on the first commit, when polling started (ms); default ``value``.
        :param keep_from: forget seen rows positioned before this (ms); None keeps them all.
        :param emit: False remembers the versions without storing events (the first poll).
        :param covered: says which new records a webhook already announced: they are
            remembered without an event (reconciliation).
        :returns: the records whose events were stored, in order.
        """
        now = time.time()
        key = (self.trigger_id, self.scope)
        with self.store.transaction() as db:
            if self.lease is not None:
                self._check_lease(db, now)
            fresh: list[Found] = []
            quiet: set[str] = set()
            for item in _latest(found):
                before = _version(db, key, item.record_id)
                if before != item.version:
                    fresh.append(item)
                    if before is None and item.quiet_if_new:
                        quiet.add(item.record_id)
            loud = [f for f in fresh if f.record_id not in quiet]
            skip = covered(db, loud) if covered is not None and emit and loud else ()
            stored: list[Found] = []
            if emit and fresh:
                order_inserts(self.store, db)  # before its events' ids are drawn
            for item in fresh:
                if emit and item.record_id not in skip and item.record_id not in quiet:
                    e = item.event
                    row = (e.webhook_id, e.type, e.location_id, e.received_at, e.body, now)
                    if db.execute(_INSERT_EVENT, row).rowcount == 1:
                        stored.append(item)
                db.execute(_UPSERT_SEEN, (*key, item.record_id, item.version, item.position, now))
            begun = value if started is None else started
            db.execute(_UPSERT_CURSOR, (*key, value, begun, now))
            if keep_from is not None:
                db.execute(
                    "DELETE FROM poll_seen WHERE trigger_id = ? AND scope = ? AND position < ?",
                    (*key, keep_from),
                )
        if stored:
            BUS.publish("poll", status="found", trigger=self.trigger_id, location=self.scope,
                        found=len(stored), type=stored[0].event.type)
        return stored

    def _check_lease(self, db: Db, now: float) -> None:
        """Fencing: refuse the commit when the poller's lease passed to another process (on
        PostgreSQL the row stays locked until the commit, so it cannot pass meanwhile)."""
        if self.lease is None:
            return
        lock = " FOR UPDATE" if self.store.dialect == "postgresql" else ""
        held = db.execute(
            f"SELECT 1 FROM leases WHERE name = ? AND holder = ? AND expires > ?{lock}",
            (*self.lease, now),
        ).fetchone()
        if held is None:
            raise StoreError(
                f"poller {self.trigger_id} @ {self.scope}: its lease passed to another"
                " process; nothing was saved (that process polls now)"
            )

    def reset(self) -> None:
        """Forget the cursor and every seen version: the next poll starts afresh."""
        with self.store.transaction() as db:
            for table in ("poll_cursors", "poll_seen"):
                db.execute(
                    f"DELETE FROM {table} WHERE trigger_id = ? AND scope = ?",
                    (self.trigger_id, self.scope),
                )


def _latest(found: Sequence[Found]) -> list[Found]:
    """One entry per record id: the last one (a record moved while the pages were read)."""
    by_id = {f.record_id: f for f in found}
    return [f for f in found if by_id[f.record_id] is f]


def _version(db: Db, key: tuple[str, str], record_id: str) -> str | None:
    row = db.execute(
        "SELECT version FROM poll_seen WHERE trigger_id = ? AND scope = ? AND record_id = ?",
        (*key, record_id),
    ).fetchone()
    return None if row is None else str(row[0])


def cursors(store: Store) -> list[dict[str, object]]:
    """Every poller's saved cursor: ``trigger``, ``scope``, ``value`` and ``started`` (epoch
    ms) and ``polled_at`` (epoch seconds of its last commit), by trigger and scope."""
    rows = store.query(
        "SELECT trigger_id, scope, value, started, polled_at FROM poll_cursors"
        " ORDER BY trigger_id, scope"
    )
    return [{"trigger": str(r["trigger_id"]), "scope": str(r["scope"]), "value": int(r["value"]),
             "started": int(r["started"]), "polled_at": float(r["polled_at"])} for r in rows]


def webhook_times(db: Db, types: Sequence[str], since: float) -> dict[str, int]:
    """For each record id, the latest time (ms) a webhook of these types announced it.

    A webhook's time is its payload's ``timestamp`` (GHL's clock, like ``dateUpdated``), or
    when it was received if it has none. Events a poller made are left out.

    :param db: a connection (inside the caller's transaction).
    :param types: webhook event types, e.g. ``["ContactUpdate"]``.
    :param since: only webhooks received from this epoch time (seconds) on.
    """
    marks = ", ".join("?" * len(types))
    rows = db.execute(
        f"SELECT body, received_at FROM inbox WHERE type IN ({marks}) AND received_at >= ?"
        " AND webhook_id NOT LIKE ?",
        (*types, since, POLL_PREFIX + "%"),
    ).fetchall()
    latest: dict[str, int] = {}
    for body, received_at in rows:
        try:
            payload = json.loads(bytes(body))
        except (ValueError, UnicodeDecodeError):
            continue
        record_id = payload.get("id") if isinstance(payload, dict) else None
        if not isinstance(record_id, str):
            continue
        moment = to_ms(payload.get("timestamp")) or int(float(received_at) * 1000)
        latest[record_id] = max(latest.get(record_id, moment), moment)
    return latest
