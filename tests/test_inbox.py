"""The inbox on a real SQLite file: dedupe, the dispatcher's claim/complete/fail/release cycle,
and the group-commit writer (outcomes only after commit, 429-worthy errors when locked)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_store import sqlite_only
from inboxes import find, webhook_ids
from serveproc import wait_for

from connector.errors import StoreError
from connector.service.inbox import Inbox, InboxWriter, NewEvent
from connector.service.options import ServeOptions
from connector.service.process import start_purger
from connector.store import Store


def event(webhook_id: str, received_at: float = 1000.0, **extra: object) -> NewEvent:
    body = json.dumps({"type": "ContactCreate", "locationId": "L1", "webhookId": webhook_id,
                       **extra}).encode()
    return NewEvent.from_payload(body, json.loads(body), received_at)


@pytest.fixture
def store(store_location: Path | str) -> Iterator[Store]:
    with Store(store_location) as opened:
        opened.set_busy_timeout(0.1)
        yield opened


@pytest.fixture
def inbox(store: Store) -> Inbox:
    return Inbox(store)


def test_inbox_add_stores_exact_bytes_once(inbox: Inbox) -> None:
    """An event is stored with its exact body; the same webhookId again is a duplicate."""
    first = event("w-1")
    assert inbox.add(first) is True
    assert inbox.add(event("w-1", extra="different bytes")) is False
    assert inbox.add_many([event("w-2"), event("w-2"), event("w-3")]) == [True, False, True]
    stored = find(inbox, "w-1")
    assert stored is not None
    assert (stored.body, stored.type, stored.location_id) == (first.body, "ContactCreate", "L1")
    assert (stored.status, stored.attempts) == ("pending", 0)
    with Store(inbox.store.url) as other:
        assert webhook_ids(Inbox(other)) == {"w-1", "w-2", "w-3"}


def test_new_event_without_webhook_id_is_keyed_by_body_hash() -> None:
    """A payload without webhookId gets sha256 of the body as its key; odd fields are dropped."""
    body = b'{"type": 5, "locationId": null}'
    made = NewEvent.from_payload(body, json.loads(body), 1.0)
    assert made.webhook_id == "sha256:" + hashlib.sha256(body).hexdigest()
    assert (made.type, made.location_id) == (None, None)


def test_inbox_claim_takes_oldest_ready_events(inbox: Inbox) -> None:
    """claim() hands out pending events in arrival order, marks them processing, counts a try."""
    inbox.add_many([event(f"w-{i}") for i in range(5)])
    claimed = inbox.claim(3, "worker-a", now=2000.0)
    assert [e.webhook_id for e in claimed] == ["w-0", "w-1", "w-2"]
    assert all(e.status == "processing" and e.attempts == 1 and e.claimed_by == "worker-a"
               for e in claimed)
    assert [e.webhook_id for e in inbox.claim(10, "worker-b", now=2000.0)] == ["w-3", "w-4"]
    assert inbox.claim(10, "worker-c", now=2000.0) == []
    assert inbox.counts().get("pending", 0) == 0
    assert inbox.counts() == {"processing": 5}


def test_inbox_complete_and_fail(inbox: Inbox) -> None:
    """complete() ends an event; fail() reschedules it (redacted error) or makes it dead."""
    inbox.add_many([event("w-ok"), event("w-retry"), event("w-dead")])
    ok, retry, dead = inbox.claim(3, "w", now=2000.0)
    assert inbox.complete(ok.id) is True
    assert inbox.complete(ok.id) is False
    assert inbox.fail(retry.id, "POST /x -> 500: Authorization: Bearer sekrit-token-123", 2500.0)
    assert inbox.fail(dead.id, "gave up", None)
    assert inbox.counts() == {"done": 1, "pending": 1, "dead": 1}
    again = inbox.get(retry.id)
    assert again is not None and again.last_error is not None
    assert "sekrit-token-123" not in again.last_error and "500" in again.last_error
    assert inbox.claim(5, "w", now=2499.0) == []
    reclaimed = inbox.claim(5, "w", now=2500.0)
    assert [(e.id, e.attempts) for e in reclaimed] == [(retry.id, 2)]


def test_inbox_release_gives_claims_back(inbox: Inbox) -> None:
    """release() returns a worker's claims to pending without counting the attempt."""
    inbox.add_many([event(f"w-{i}") for i in range(3)])
    mine = inbox.claim(2, "me", now=2000.0)
    theirs = inbox.claim(1, "them", now=2000.0)
    assert inbox.release("me", [mine[0].id]) == 1
    assert inbox.release("me") == 1
    assert inbox.release("me") == 0
    assert inbox.counts().get("pending", 0) == 2
    back = inbox.get(mine[0].id)
    assert back is not None and (back.status, back.attempts, back.claimed_by) == \
        ("pending", 0, None)
    assert inbox.get(theirs[0].id).status == "processing"  # type: ignore[union-attr]


def test_inbox_expired_lease_is_claimable_again(inbox: Inbox) -> None:
    """An event whose worker died is handed out again once its lease ran out."""
    inbox.add(event("w-1"))
    [first] = inbox.claim(1, "dead-worker", lease=60, now=2000.0)
    assert inbox.claim(1, "next", lease=60, now=2059.0) == []
    [again] = inbox.claim(1, "next", lease=60, now=2060.0)
    assert (again.id, again.claimed_by, again.attempts) == (first.id, "next", 2)


def test_inbox_purge_deletes_only_old_done_events(inbox: Inbox) -> None:
    """purge() removes finished events older than the cut-off and keeps dead and open ones."""
    inbox.add_many([event("w-done"), event("w-dead"), event("w-open")])
    done, dead = inbox.claim(2, "w", now=2000.0)
    inbox.complete(done.id)
    inbox.fail(dead.id, "no", None)
    assert inbox.purge(finished_before=0.0) == 0
    assert inbox.purge(finished_before=time.time() + 1) == 1
    assert webhook_ids(inbox) == {"w-dead", "w-open"}
    assert inbox.add(event("w-done")) is True


def finish(inbox: Inbox, ids: list[str], *, status: str = "done", at: float) -> None:
    """Store events and settle them (done or dead), finished at ``at``."""
    inbox.add_many([event(w) for w in ids])
    for claimed in inbox.claim(len(ids), "w", now=2000.0):
        if status == "done":
            inbox.complete(claimed.id)
        else:
            inbox.fail(claimed.id, "no", None)
    with inbox.store.transaction() as db:
        marks = ",".join("?" * len(ids))
        db.execute(f"UPDATE inbox SET finished_at = ? WHERE webhook_id IN ({marks})",
                   (at, *ids))


def test_inbox_purge_works_in_batches_and_counts_them_all(inbox: Inbox) -> None:
    """With batches of 2, five old done events go in three transactions, all counted."""
    finish(inbox, [f"old-{n}" for n in range(5)], at=100.0)
    finish(inbox, ["new"], at=5000.0)
    assert inbox.purge(finished_before=1000.0, batch=2) == 5
    assert webhook_ids(inbox) == {"new"}


def test_serve_purger_keeps_the_inbox_bounded(store: Store) -> None:
    """serve's purger deletes done events older than keep_events at start, then again every
    purge_every seconds; recent done events and old dead ones stay (a real SQLite file)."""
    inbox = Inbox(store)
    now = time.time()
    finish(inbox, ["old-1", "old-2", "old-3"], at=now - 10 * 86400)
    finish(inbox, ["recent"], at=now - 3600)
    finish(inbox, ["dead"], status="dead", at=now - 30 * 86400)
    options = ServeOptions(store.path, store.path, keep_events=7 * 86400, purge_every=0.05)
    stop = threading.Event()
    start_purger(Inbox(store), options, stop)
    try:
        assert wait_for(lambda: webhook_ids(inbox) == {"recent", "dead"})
        finish(inbox, ["later"], at=now - 8 * 86400)  # purged by a later round, not the first
        assert wait_for(lambda: webhook_ids(inbox) == {"recent", "dead"})
    finally:
        stop.set()
    assert inbox.counts() == {"done": 1, "dead": 1}


def test_writer_group_commits_and_reports_duplicates(inbox: Inbox) -> None:
    """Hundreds of concurrent adds are all stored, each told whether it was new."""
    ids = [f"w-{i}" for i in range(300)]

    async def run() -> list[bool]:
        with InboxWriter(inbox, max_batch=64) as writer:
            return await asyncio.gather(*(writer.add(event(i)) for i in ids + ids[:50]))

    results = asyncio.run(run())
    assert results.count(True) == 300 and results.count(False) == 50
    assert webhook_ids(inbox) == set(ids)


def test_writer_reports_store_errors_and_recovers(inbox: Inbox, store: Store) -> None:
    """While another connection holds the write lock, adds fail with StoreError (nothing
    stored, writer unhealthy); afterwards the same events store fine."""
    sqlite_only(store.url, "holds SQLite's file write lock from another connection")
    blocker = sqlite3.connect(store.path, isolation_level=None)
    with InboxWriter(inbox) as writer:
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(StoreError, match=r"state\.db: cannot begin a transaction"):
                asyncio.run(writer.add(event("w-1")))
            assert writer.healthy is False
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert webhook_ids(inbox) == set()
        assert asyncio.run(writer.add(event("w-1"))) is True
        assert writer.healthy is True
    assert webhook_ids(inbox) == {"w-1"}


def test_writer_closed_refuses_at_once(inbox: Inbox) -> None:
    """After close() an add fails immediately instead of hanging."""
    writer = InboxWriter(inbox)
    writer.start()
    writer.close()
    with pytest.raises(StoreError, match="inbox writer is not running"):
        asyncio.run(writer.add(event("w-1")))
    assert webhook_ids(inbox) == set()


def test_writer_close_flushes_queued_events(inbox: Inbox) -> None:
    """Events submitted before close() are committed before close() returns."""
    outcomes: list[object] = []
    writer = InboxWriter(inbox)
    writer.start()
    for i in range(100):
        writer.submit(event(f"w-{i}"), outcomes.append)
    writer.close()
    assert outcomes == [True] * 100
    assert len(webhook_ids(inbox)) == 100


CLAIMER = """
import json, sys
from connector.service.inbox import Inbox
from connector.store import Store
inbox = Inbox(Store(sys.argv[1]))
mine = []
while True:
    got = inbox.claim(3, sys.argv[2])
    if not got:
        break
    mine += [e.id for e in got]
    for e in got:
        inbox.complete(e.id)
print(json.dumps(mine))
"""


def test_inbox_claims_from_many_processes_take_each_event_once(inbox: Inbox) -> None:
    """Four processes claiming from one inbox at once (on PostgreSQL: FOR UPDATE SKIP LOCKED)
    take every event exactly once between them."""
    import subprocess
    import sys

    assert inbox.add_many([event(f"w-{i}") for i in range(200)]) == [True] * 200
    procs = [subprocess.Popen([sys.executable, "-c", CLAIMER, inbox.store.url, f"p{n}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in range(4)]
    claimed: list[int] = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        claimed += json.loads(out)
    assert sorted(claimed) == sorted(set(claimed)) and len(claimed) == 200
    assert inbox.counts() == {"done": 200}
    rows = inbox.store.query("SELECT MAX(attempts) AS m FROM inbox")
    assert rows[0]["m"] == 1  # no event was claimed twice
