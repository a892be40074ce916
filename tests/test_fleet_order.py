"""One contact's events keep their order when two processes store them at the same moment, on
the real PostgreSQL and Redis (skipped, saying why, when either is absent).

The race: on PostgreSQL an inbox id is drawn at insert, not at commit. Writer A draws the lower
id and holds its transaction open; writer B stores the same contact's next event and commits.
Without the inbox's insert lock the feeder then sees B's event alone, puts it in the lane (a
worker runs it) and moves its cursor past A's id, so A's event, older, reaches its lane only
through the sweeper, after B's. With the lock B waits for A's commit before drawing its id.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connector.fleet.options import FleetOptions
from connector.service.inbox import INSERT_LOCK, Inbox, NewEvent
from connector.store import Store
from tests.fixtures_store import postgres_schema
from tests.fleetprocs import REDIS_URL, cleanup, need, new_queue

LANE = "L/contact-1"


@pytest.fixture
def fleet() -> Iterator[tuple[Store, Store, Any, Any]]:
    """Two stores on one PostgreSQL schema (two processes' writers), the fleet's lanes in Redis
    and a feeder (on a third store, as in its own process) sending to a Redis queue."""
    need(6379)
    from connector.fleet.broker import WorkQueue
    from connector.fleet.feeder import Feeder
    from connector.fleet.lanes import Lanes, connect

    with (postgres_schema() as url, Store(url) as first, Store(url) as second,
          Store(url) as third):
        queue = new_queue()
        options = FleetOptions.parse(REDIS_URL, None, queue, sweep_after=3600)
        lanes = Lanes(connect(options), options)
        work = WorkQueue(options)
        feeder = Feeder(Inbox(third), lanes, work, lambda event: LANE, owner="test")
        try:
            yield first, second, lanes, feeder
        finally:
            work.close()
            lanes.client.close()
            cleanup(queue)


def _event(name: str, at: float) -> NewEvent:
    return NewEvent(name, "ContactUpdate", "L", b'{"id": "contact-1"}', at)


def _waiting_or_done(store: Store, done: threading.Event) -> None:
    """Until the other writer finished, or waits for the inbox's insert lock (bounded)."""
    deadline = time.monotonic() + 20
    while not done.is_set() and time.monotonic() < deadline:
        rows = store.query("SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory'"
                           " AND NOT granted AND classid::bigint = ?", (INSERT_LOCK,))
        if rows[0][0]:
            return
        time.sleep(0.02)


def _run_heads(lanes: Any, inbox: Inbox, ran: list[int]) -> None:
    """What the lane's holder does: run (here: settle) the lane's events from its oldest."""
    while (head := lanes.head(LANE)) is not None:
        claimed = inbox.claim_event(head, "worker", lease=0)
        if claimed is not None:
            ran.append(head)
            inbox.complete(head)
        lanes.remove(LANE, head)


def _race(fleet: tuple[Store, Store, Any, Any],
          second_writer: Callable[[Store], object]) -> tuple[list[int], list[int]]:
    """Writer A stores an event and holds its transaction open while ``second_writer`` stores
    the contact's next one; the feeder feeds (and the lane runs) before and after A commits.

    :returns: the events' ids in inbox order, and the ids in the order the lane ran them.
    """
    first, second, lanes, feeder = fleet
    inbox = feeder.inbox
    ran: list[int] = []
    done = threading.Event()

    def write() -> None:
        second_writer(second)
        done.set()

    other = threading.Thread(target=write)
    with first.transaction() as db:
        Inbox(first).insert(db, [_event("a-older", 100.0)])
        other.start()
        _waiting_or_done(inbox.store, done)
        feeder.feed()  # the feeder's round while A is still open
        _run_heads(lanes, inbox, ran)
    other.join(20)
    assert done.is_set()
    while feeder.feed():
        pass
    _run_heads(lanes, inbox, ran)
    stored = [e.id for e in inbox.unsettled()] + ran
    return sorted(stored), ran


def test_two_receivers_storing_one_contact_at_once_keep_its_order(
        fleet: tuple[Store, Store, Any, Any]) -> None:
    ids, ran = _race(fleet, lambda store: Inbox(store).add_many([_event("b-newer", 101.0)]))
    assert len(ids) == 2
    # Both events reached the lane by the feeder (no sweep needed), the older one first.
    assert ran == ids, f"lane ran {ran}, inbox order {ids}"


def test_a_poller_storing_beside_the_receiver_keeps_the_contacts_order(
        fleet: tuple[Store, Store, Any, Any]) -> None:
    from connector.service.cursor import Found, PollLedger

    def poll(store: Store) -> object:
        found = Found("contact-1", "v2", 101_000, _event("poll:contact-1:v2", 101.0))
        return PollLedger(store, "ghl.contacts.updated", "L").commit([found], value=101_000)

    ids, ran = _race(fleet, poll)
    assert len(ids) == 2
    assert ran == ids, f"lane ran {ran}, inbox order {ids}"
