"""The webhook inbox: durable, deduplicated events waiting for the dispatcher, and their writer.

Each verified webhook becomes one row of the ``inbox`` table (store migration 2): its
``webhookId`` (unique, so a redelivery is stored once), type, location, the exact body bytes,
and a status that moves ``pending -> processing -> done``, or back to ``pending`` with a later
``available_at`` after a failure, or to ``dead`` when the dispatcher gives up.

The dispatcher's side is :class:`Inbox`: :meth:`~Inbox.claim` hands out a batch of ready
events under a lease (an event claimed by a worker that died becomes claimable again when the
lease runs out), :meth:`~Inbox.complete`, :meth:`~Inbox.fail` and :meth:`~Inbox.release`
settle them, and :meth:`~Inbox.purge` drops old finished ones. Delivery is at least once: a
recipe may see an event twice, never zero times.

The receiver's side is :class:`InboxWriter`, a group commit: one thread takes every event that
arrived while the previous transaction was committing and writes them in one transaction (one
fsync for the whole batch), then tells each waiting request its outcome. A request is answered
only after the transaction holding its event committed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from connector.auth.redaction import redact
from connector.errors import StoreError
from connector.hookspecs import EventMatch
from connector.store import Db, Row, Store

if TYPE_CHECKING:
    from connector.catalog import Catalog

__all__ = [
    "DEFAULT_LEASE",
    "GHL_PREFIX",
    "INSERT_LOCK",
    "EventTypes",
    "Inbox",
    "InboxEvent",
    "InboxWriter",
    "NewEvent",
    "Status",
    "ghl_key",
    "order_inserts",
]

Status = Literal["pending", "processing", "done", "dead"]
DEFAULT_LEASE = 300.0
_MAX_ERROR_CHARS = 500
_log = logging.getLogger(__name__)


GHL_PREFIX = "ghl:"


@dataclass(frozen=True, slots=True)
class EventTypes:
    """What type a hub webhook body is stored (and routed) under: the string at ``key``, unless
    the body fits the ``match`` of one of the hub's webhook triggers (manifest data: GHL's
    ProviderOutboundMessage arrives typed ``SMS`` or ``Email`` with a ``messageId``), which
    makes it that trigger's event. Without matches (the default) every body keeps its type.

    :param matches: (event, how its bodies are known), in catalog order; the first fitting wins.
    :param key: where a body holds its type (the hub's ``sync_events.type``, else ``type``).
    """

    matches: tuple[tuple[str, EventMatch], ...] = ()
    key: str = "type"

    @classmethod
    def of_catalog(cls, catalog: Catalog) -> EventTypes:
        """The hub's: its webhook triggers' ``match`` data (none without a hub)."""
        hub = catalog.apps.get(catalog.hub) if catalog.hub else None
        if hub is None:
            return cls()
        matches = tuple(
            (t.event, t.match)
            for t in catalog.triggers.values()
            if t.app == hub.id and t.kind == "webhook" and t.event and t.match
        )
        return cls(matches, hub.sync_events.type if hub.sync_events else "type")

    def of(self, payload: Mapping[str, Any]) -> str | None:
        """The stored type of a parsed body (None when it has no string type)."""
        kind = payload.get(self.key)
        if not isinstance(kind, str):
            return None
        for event, match in self.matches:
            if kind in match.types and all(isinstance(payload.get(f), str) for f in match.has):
                return event
        return kind


_PLAIN = EventTypes()


def ghl_key(webhook_id: str) -> str:
    """The inbox key of a GHL ``webhookId``: the id itself, or ``ghl:<id>`` when it holds a ``:``.

    Every other source's keys are ``<source>:<id>`` (``<partner>:evt_1``, ``poll:...``,
    ``sha256:...``), so a GHL id that looks like one is put in GHL's own namespace: it can
    neither drop nor be dropped as a duplicate of another source's event. GHL's ids are UUIDs,
    which stay as they always were stored.
    """
    return GHL_PREFIX + webhook_id if ":" in webhook_id else webhook_id


@dataclass(frozen=True, slots=True)
class NewEvent:
    """A verified webhook about to be stored.

    :param webhook_id: the inbox key (unique); see :meth:`from_payload` for GHL's.
    :param body: the request body, byte for byte.
    :param legacy_id: the key this event had before GHL ids were namespaced (:func:`ghl_key`):
        a row stored under it from a GHL delivery of the same ``webhookId`` is a duplicate.
    """

    webhook_id: str
    type: str | None
    location_id: str | None
    body: bytes
    received_at: float
    legacy_id: str | None = None

    def __repr__(self) -> str:
        return f"NewEvent({self.webhook_id!r}, type={self.type!r}, bytes={len(self.body)})"

    @classmethod
    def from_payload(cls, body: bytes, payload: dict[str, Any], received_at: float,
                     types: EventTypes | None = None) -> NewEvent:
        """Build from a parsed GHL body: the key is :func:`ghl_key` of its ``webhookId``, or
        without a string one the body's SHA-256 (``sha256:<hex>``), so a redelivery of the same
        bytes is still stored once; its type is read by ``types`` (default: its ``type``)."""
        given = payload.get("webhookId")
        if isinstance(given, str) and given:
            key = ghl_key(given)
        else:
            given = key = "sha256:" + hashlib.sha256(body).hexdigest()
        location = payload.get("locationId")
        return cls(
            key,
            (types or _PLAIN).of(payload),
            location if isinstance(location, str) else None,
            body,
            received_at,
            given if key != given else None,
        )


@dataclass(frozen=True, slots=True)
class InboxEvent:
    """One stored event as the dispatcher sees it."""

    id: int
    webhook_id: str
    type: str | None
    location_id: str | None
    received_at: float
    body: bytes
    status: Status
    attempts: int
    available_at: float
    claimed_by: str | None
    claimed_at: float | None
    last_error: str | None

    def __repr__(self) -> str:
        return (
            f"InboxEvent(id={self.id}, {self.webhook_id!r}, type={self.type!r},"
            f" status={self.status!r}, attempts={self.attempts})"
        )

    @classmethod
    def from_row(cls, row: Row) -> InboxEvent:
        """Build from an ``inbox`` row with the columns of ``_COLUMNS``, in order."""
        (id_, webhook_id, type_, location_id, received_at, body, status, attempts, available_at,
         claimed_by, claimed_at, last_error) = row
        return cls(
            id_, webhook_id, type_, location_id, received_at, bytes(body), status, attempts,
            available_at, claimed_by, claimed_at, last_error,
        )


_INSERT = (
    "INSERT INTO inbox (webhook_id, type, location_id, received_at, body,"
    " available_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
_COLUMNS = (
    "id, webhook_id, type, location_id, received_at, body, status, attempts, available_at,"
    " claimed_by, claimed_at, last_error"
)


INSERT_LOCK = 1734896745  # "ghli": the advisory lock class of the inbox's writers on PostgreSQL


def order_inserts(store: Store, db: Db) -> None:
    """Make ``db``'s inbox ids follow commit order: call it in the transaction, before its
    first ``INSERT INTO inbox``.

    On PostgreSQL an id is drawn at insert, not at commit, so two writers' events (two
    ``serve`` processes, a poller beside the receiver) could commit in the other order than
    their ids, and a reader of new ids (the fleet's feeder) would pass the lower one. Here each
    writer takes a transaction-scoped advisory lock (one per schema) before drawing its ids and
    keeps it until its commit: the next writer's ids are drawn after that commit, so whoever
    sees an id sees every lower one. SQLite needs nothing (its writers already take turns).
    """
    if store.dialect == "postgresql":
        db.execute(f"SELECT pg_advisory_xact_lock({INSERT_LOCK}, hashtext(current_schema()))")


class Inbox:
    """The ``inbox`` table of a :class:`~connector.store.Store`. Thread-safe, like the store.

    Every method raises :class:`~connector.errors.StoreError` when SQLite fails.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def __repr__(self) -> str:
        return f"Inbox({self.store!r})"

    def add(self, event: NewEvent) -> bool:
        """Store one event; returns False if its ``webhook_id`` was already stored."""
        return self.add_many([event])[0]

    def add_many(self, events: Sequence[NewEvent]) -> list[bool]:
        """Store events in one transaction; for each, whether it was new (not a duplicate)."""
        with self.store.transaction() as db:
            return self.insert(db, events)

    def insert(self, db: Db, events: Sequence[NewEvent]) -> list[bool]:
        """Store events inside the caller's transaction ``db`` (of this inbox's store); for
        each, whether it was new. Visible to others once that transaction commits; on
        PostgreSQL, other writers of the inbox wait for that commit (:func:`order_inserts`)."""
        order_inserts(self.store, db)
        return [
            not (e.legacy_id is not None and _stored_as(db, e.legacy_id))
            and db.execute(
                _INSERT,
                (e.webhook_id, e.type, e.location_id, e.received_at, e.body, e.received_at),
            ).rowcount
            == 1
            for e in events
        ]

    def claim(
        self, limit: int, worker: str, *, lease: float = DEFAULT_LEASE, now: float | None = None
    ) -> list[InboxEvent]:
        """Take up to ``limit`` ready events, oldest first, and mark them ``processing``.

        Ready means ``pending`` with ``available_at`` reached, or ``processing`` under a claim
        older than ``lease`` seconds (its worker died). Each claim counts one attempt.

        :param worker: who claims (recorded in ``claimed_by``).
        :param lease: seconds after which another worker may take the events over.
        :param now: the current time (tests); defaults to ``time.time()``.
        """
        moment = time.time() if now is None else now
        with self.store.transaction() as db:
            cursor = db.execute(
                "UPDATE inbox SET status = 'processing', claimed_by = ?, claimed_at = ?,"
                " attempts = attempts + 1 WHERE id IN (SELECT id FROM inbox WHERE"
                " (status = 'pending' AND available_at <= ?)"
                " OR (status = 'processing' AND claimed_at <= ?) ORDER BY id LIMIT ?"
                # PostgreSQL: rows another process is claiming are passed over, not waited for.
                f"{self.store.skip_locked}) RETURNING {_COLUMNS}",
                (worker, moment, moment, moment - lease, limit),
            )
            rows = cursor.fetchall()
        return sorted((InboxEvent.from_row(r) for r in rows), key=lambda e: e.id)

    def claim_event(
        self, event_id: int, worker: str, *, lease: float = DEFAULT_LEASE,
        now: float | None = None,
    ) -> InboxEvent | None:
        """Claim one event by id, as :meth:`claim` would (ready, or under a claim older than
        ``lease`` seconds); None when it is not ready (settled, waiting for a retry, or held).

        A queue worker that holds the event's contact lane passes ``lease=0``: the lane's
        holder is the only one that may run it, so any other claim on it is a dead holder's.
        """
        moment = time.time() if now is None else now
        with self.store.transaction() as db:
            cursor = db.execute(
                "UPDATE inbox SET status = 'processing', claimed_by = ?, claimed_at = ?,"
                " attempts = attempts + 1 WHERE id = ? AND ((status = 'pending' AND"
                " available_at <= ?) OR (status = 'processing' AND claimed_at <= ?))"
                f" RETURNING {_COLUMNS}",
                (worker, moment, event_id, moment, moment - lease),
            )
            row = cursor.fetchone()
        return None if row is None else InboxEvent.from_row(row)

    def unsettled(
        self, *, after: int = 0, received_before: float | None = None, limit: int = 500
    ) -> list[InboxEvent]:
        """Events not settled yet (``pending`` or ``processing``), oldest first: those with an
        id above ``after`` and, if given, received before ``received_before`` (what a queue's
        feeder enqueues, and its sweeper finds again)."""
        sql = f"SELECT {_COLUMNS} FROM inbox WHERE status IN ('pending', 'processing') AND id > ?"
        params: list[Any] = [after]
        if received_before is not None:
            sql += " AND received_at < ?"
            params.append(received_before)
        rows = self.store.query(sql + " ORDER BY id LIMIT ?", [*params, limit])
        return [InboxEvent.from_row(r) for r in rows]

    def complete(self, event_id: int) -> bool:
        """Mark a claimed event ``done``; False if it was not ``processing``."""
        return self._settle(event_id, "done", None, None)

    def fail(self, event_id: int, error: str, retry_at: float | None) -> bool:
        """Record a failed attempt: back to ``pending`` from ``retry_at`` on, or ``dead`` if
        ``retry_at`` is None. The error is redacted and cut to 500 characters.

        :returns: False if the event was not ``processing``.
        """
        status: Status = "dead" if retry_at is None else "pending"
        return self._settle(event_id, status, redact(error)[:_MAX_ERROR_CHARS], retry_at)

    def release(self, worker: str, event_ids: Sequence[int] | None = None) -> int:
        """Give claims back untouched (a worker shutting down): ``pending`` again, and the
        attempt the claim counted is taken back.

        :param worker: whose claims.
        :param event_ids: only these events; all of the worker's claims when None.
        :returns: how many events were released.
        """
        sql = (
            "UPDATE inbox SET status = 'pending', claimed_by = NULL, claimed_at = NULL,"
            " attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END"
            " WHERE status = 'processing' AND claimed_by = ?"
        )
        params: list[Any] = [worker]
        if event_ids is not None:
            sql += f" AND id IN ({', '.join('?' * len(event_ids))})"
            params.extend(event_ids)
        with self.store.transaction() as db:
            return int(db.execute(sql, params).rowcount)

    def purge(self, finished_before: float, *, batch: int = 500) -> int:
        """Delete ``done`` events finished before a time; ``dead`` ones stay until replayed
        or discarded.

        One short transaction per ``batch`` events, so the receiver's writer and the workers
        wait for at most one batch. A purged ``webhookId`` is no longer recognised as a
        duplicate, so keep events for longer than the receiver's timestamp window
        (``max_age``).

        :returns: how many events were deleted.
        """
        total = 0
        while True:
            with self.store.transaction() as db:
                deleted = int(db.execute(
                    "DELETE FROM inbox WHERE id IN (SELECT id FROM inbox WHERE status = 'done'"
                    " AND finished_at < ? ORDER BY id LIMIT ?)", (finished_before, batch),
                ).rowcount)
            total += deleted
            if deleted < batch:
                return total

    def counts(self) -> dict[str, int]:
        """How many events have each status (statuses with none are left out)."""
        rows = self.store.query("SELECT status, COUNT(*) AS n FROM inbox GROUP BY status")
        return {str(r["status"]): int(r["n"]) for r in rows}

    def oldest_pending(self) -> float | None:
        """When the oldest ``pending`` event was received (epoch seconds), or None."""
        rows = self.store.query(
            "SELECT MIN(received_at) AS t FROM inbox WHERE status = 'pending'"
        )
        return None if not rows or rows[0]["t"] is None else float(rows[0]["t"])

    def received_since(self, since: float, limit: int = 100_000) -> list[float]:
        """When each event received at or after ``since`` was received, newest first (at
        most ``limit``): the console's events-per-minute chart."""
        rows = self.store.query(
            "SELECT received_at FROM inbox WHERE received_at >= ?"
            " ORDER BY received_at DESC LIMIT ?", (since, limit),
        )
        return [float(r["received_at"]) for r in rows]

    def get(self, event_id: int) -> InboxEvent | None:
        """One event by its id."""
        rows = self.store.query(f"SELECT {_COLUMNS} FROM inbox WHERE id = ?", (event_id,))
        return InboxEvent.from_row(rows[0]) if rows else None

    def _settle(
        self, event_id: int, status: Status, error: str | None, retry_at: float | None
    ) -> bool:
        now = time.time()
        with self.store.transaction() as db:
            changed = db.execute(
                "UPDATE inbox SET status = ?, last_error = COALESCE(?, last_error),"
                " available_at = COALESCE(?, available_at), claimed_by = NULL,"
                " claimed_at = NULL, finished_at = ? WHERE id = ? AND status = 'processing'",
                (status, error, retry_at, now if status in ("done", "dead") else None, event_id),
            ).rowcount
        return bool(changed)


def _stored_as(db: Db, legacy_id: str) -> bool:
    """Whether a GHL delivery with ``webhookId`` = ``legacy_id`` was stored under that key
    (before :func:`ghl_key`); another source's row with that key is not it."""
    row = db.execute("SELECT body FROM inbox WHERE webhook_id = ?", (legacy_id,)).fetchone()
    if row is None:
        return False
    try:
        stored = json.loads(bytes(row[0]))
    except (ValueError, RecursionError):
        return False
    return isinstance(stored, dict) and stored.get("webhookId") == legacy_id


Outcome = bool | StoreError
"""What the writer reports per event: True stored, False duplicate, or why it failed."""

_Done = Callable[[Outcome], object]
_STOP = object()


class InboxWriter:
    """Group commit into an :class:`Inbox` from one background thread.

    Events submitted while a transaction commits wait in a queue; the thread then writes all
    of them (up to ``max_batch``) in the next transaction. Nothing is reported before its
    transaction committed. Use it as a context manager, or call :meth:`start` and :meth:`close`.

    :param inbox: where events go.
    :param max_batch: the most events in one transaction.
    """

    def __init__(self, inbox: Inbox, *, max_batch: int = 1000) -> None:
        self.inbox = inbox
        self.max_batch = max_batch
        self.healthy = True
        """False while the last transaction failed (the store cannot be written)."""
        self._queue: queue.SimpleQueue[tuple[NewEvent, _Done] | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"InboxWriter({self.inbox!r}, healthy={self.healthy})"

    def __enter__(self) -> InboxWriter:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the writer thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="inbox-writer", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the thread. Later submissions fail at once."""
        self._closed = True
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout)
            self._thread = None

    @property
    def alive(self) -> bool:
        """Whether the writer thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def submit(self, event: NewEvent, done: _Done) -> None:
        """Queue an event; ``done`` is called from the writer thread with its :data:`Outcome`."""
        if self._closed or not self.alive:
            done(StoreError(f"{self.inbox.store.where}: the inbox writer is not running"))
            return
        self._queue.put((event, done))

    async def add(self, event: NewEvent) -> bool:
        """Store an event from an event loop; returns once its transaction committed.

        :returns: True if stored, False if its ``webhook_id`` was already there.
        :raises StoreError: the transaction failed; the event is not stored.
        """
        waiter = _Waiter(asyncio.get_running_loop())
        self.submit(event, waiter)
        return await waiter.future

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: list[tuple[NewEvent, _Done]] = []
            item = self._queue.get()
            while True:
                if item is _STOP:
                    stopping = True
                elif isinstance(item, tuple):
                    batch.append(item)
                if len(batch) >= self.max_batch:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._write(batch)

    def _write(self, batch: list[tuple[NewEvent, _Done]]) -> None:
        outcomes: Sequence[Outcome]
        try:
            outcomes = self.inbox.add_many([event for event, _ in batch])
            self.healthy = True
        except StoreError as exc:
            _log.warning("inbox: %d events not stored: %s", len(batch), exc)
            outcomes = [exc] * len(batch)
            self.healthy = False
        except Exception as exc:  # noqa: BLE001  # thread top level: the writer must not die
            _log.exception("inbox: writing %d events failed", len(batch))
            failure = StoreError(f"{self.inbox.store.where}: cannot store events: {exc!r}")
            outcomes = [failure] * len(batch)
            self.healthy = False
        # One wake-up per event loop per batch, not one per event.
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Waiter, Outcome]]] = {}
        for (_, done), outcome in zip(batch, outcomes, strict=True):
            if isinstance(done, _Waiter):
                by_loop.setdefault(done.loop, []).append((done, outcome))
            else:
                done(outcome)
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_Waiter.settle_all, settled)
            except RuntimeError:
                _log.warning("inbox: %d answers lost: their event loop is closed", len(settled))


class _Waiter:
    """A request waiting on an event loop for its event's :data:`Outcome`."""

    __slots__ = ("future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[bool] = loop.create_future()

    def __call__(self, outcome: Outcome) -> None:
        self.loop.call_soon_threadsafe(_Waiter.settle_all, [(self, outcome)])

    @staticmethod
    def settle_all(settled: Sequence[tuple[_Waiter, Outcome]]) -> None:
        """Resolve futures on their loop (a request that went away has a cancelled one)."""
        for waiter, outcome in settled:
            if waiter.future.done():
                continue
            if isinstance(outcome, StoreError):
                waiter.future.set_exception(outcome)
            else:
                waiter.future.set_result(outcome)
