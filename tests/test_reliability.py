"""Reliability of ``serve`` as a real process against the sandbox: kill -9, redeliveries, a failing
GHL, 429 storms and an unwritable inbox lose no event and repeat no effect."""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from connector.sandbox.server import SandboxServer
from connector.store import Store
from tests.serveproc import wait_for
from tests.test_service import (
    ONE_STEP,
    TASKS,
    create_contact,
    inbox_counts,
    post_signed,
    runs,
    serve_for,
)

pytestmark = pytest.mark.slow  # `pytest -m 'not slow'` leaves it out of the quick loop

PATIENT = ONE_STEP.replace("retry: 4, backoff: 0.2", "retry: 10, backoff: 0.3")
WORKERS = 4


def stored_events(db: Path) -> dict[str, str]:
    """webhookId -> contact id of every ContactCreate event in the inbox."""
    with Store(db) as store:
        rows = store.query("SELECT webhook_id, body FROM inbox WHERE type = 'ContactCreate'")
    return {str(r["webhook_id"]): json.loads(r["body"])["id"] for r in rows}


def run_statuses(db: Path) -> dict[str, str]:
    """Run id -> status."""
    return {r["id"]: r["status"] for r in runs(db)}


class Producer(threading.Thread):
    """Creates a contact every ``pause`` seconds until stopped (each one sends a webhook)."""

    def __init__(self, ghl: SandboxServer, pause: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.ghl = ghl
        self.pause = pause
        self.halt = threading.Event()
        self.created = 0

    def run(self) -> None:
        while not self.halt.is_set():
            create_contact(self.ghl, f"P{self.created}")
            self.created += 1
            time.sleep(self.pause)


def test_kill9_at_random_moments_loses_no_event(ghl: SandboxServer, tmp_path: Path) -> None:
    """kill -9 of serve at random moments during a webhook stream, then restarts, 4 rounds:
    every stored event's run succeeds, and the sandbox saw each side effect once."""
    rng = random.Random(1234)
    kills = 4
    ghl.set_limits(requests=2000, seconds=10)  # the stream, not the rate limit, is under test
    proc = serve_for(ghl, tmp_path, "--rate-limit", "2000/10", call_new=PATIENT)
    proc.start()
    ghl.set_webhook_urls([proc.url])
    producer = Producer(ghl)
    producer.start()
    try:
        for _ in range(kills):
            time.sleep(rng.uniform(0.3, 1.2))
            proc.kill9()
            time.sleep(rng.uniform(0.0, 0.3))
            proc.start()
        time.sleep(0.5)
    finally:
        producer.halt.set()
        producer.join(10)
    ghl.drain_webhooks()
    events = stored_events(proc.db)
    assert wait_for(lambda: inbox_counts(proc.db) == {"done": len(events)}, timeout=40)
    proc.stop()
    ghl.set_webhook_urls([])
    statuses = run_statuses(proc.db)
    assert len(events) >= 10, "the stream was too short to test anything"
    assert all(statuses.get(f"{w}:call_new") == "succeeded" for w in events), statuses
    writes = ghl.writes(TASKS)
    print(f"kill -9 x{kills}: {len(events)} events stored, {writes} tasks written")
    # A kill between a task create and its ledger row leaves an intent; the resumed run finds
    # the task through the action's verify read instead of creating it again: each effect once.
    assert writes == len(events)
    assert sum(1 for r in runs(proc.db) if r["executions"] > 1) <= kills * WORKERS


def test_redelivered_and_reordered_webhooks_run_once(ghl: SandboxServer, tmp_path: Path) -> None:
    """Each webhook delivered 2-5 times, shuffled, over parallel connections: one run each."""
    rng = random.Random(99)
    with serve_for(ghl, tmp_path) as proc:
        contacts = [create_contact(ghl, f"R{i}") for i in range(8)]
        payloads = [{"type": "ContactCreate", "locationId": ghl.location_id, "id": c,
                     "firstName": "R", "webhookId": str(uuid.uuid4())} for c in contacts]
        deliveries = [p for p in payloads for _ in range(rng.randint(2, 5))]
        rng.shuffle(deliveries)
        answers: list[int] = []

        def send(batch: list[dict[str, object]]) -> None:
            answers.extend(post_signed(ghl, proc.url, p).status_code for p in batch)

        threads = [threading.Thread(target=send, args=(deliveries[i::4],)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert answers == [200] * len(deliveries)
        assert wait_for(lambda: inbox_counts(proc.db) == {"done": len(payloads)})
    assert ghl.writes(TASKS) == len(payloads)
    assert sorted(run_statuses(proc.db).values()) == ["succeeded"] * len(payloads)


def test_failing_sandbox_events_wait_then_complete_once(ghl: SandboxServer,
                                                        tmp_path: Path) -> None:
    """500s, 504 timeouts and connection resets for a while: events wait, then complete, and
    no task is created twice."""
    ghl.set_faults(
        {"route": TASKS, "error_rate": 1.0, "error_status": 500, "count": 12},
        {"route": TASKS, "reset_rate": 1.0, "count": 8},
        {"route": TASKS, "hang_seconds": 0.5, "count": 3},
    )
    with serve_for(ghl, tmp_path, call_new=PATIENT) as proc:
        ghl.set_webhook_urls([proc.url])
        for index in range(10):
            create_contact(ghl, f"F{index}")
        assert wait_for(lambda: inbox_counts(proc.db) == {"done": 10}, timeout=40)
        ghl.set_webhook_urls([])
    statuses = ghl.location_stats()["routes"][TASKS]["statuses"]
    assert any(str(s) in ("500", "0", "504") for s in statuses), statuses
    assert ghl.writes(TASKS) == 10
    assert sorted(run_statuses(proc.db).values()) == ["succeeded"] * 10


def test_429_storm_keeps_the_window_and_completes(ghl: SandboxServer, tmp_path: Path) -> None:
    """A burst of 429s under a tight limit: no window exceeded, all work completes once."""
    contacts = [create_contact(ghl, f"L{i}") for i in range(30)]
    ghl.call(ghl.app.traffic.reset)  # count only the service's requests
    ghl.set_limits(requests=20, seconds=2)
    ghl.set_faults({"route": TASKS, "burst_429": 10})
    with serve_for(ghl, tmp_path, "--rate-limit", "20/2", call_new=PATIENT) as proc:
        for contact in contacts:
            assert post_signed(ghl, proc.url, {
                "type": "ContactCreate", "locationId": ghl.location_id, "id": contact,
                "webhookId": str(uuid.uuid4())}).status_code == 200
        assert wait_for(lambda: inbox_counts(proc.db) == {"done": 30}, timeout=40)
    assert ghl.writes(TASKS) == 30
    seen = ghl.location_stats()
    assert seen["max_window"] <= 20, seen
    assert seen["throttled"] == 10, seen  # the injected storm only: none for going too fast
    assert sorted(run_statuses(proc.db).values()) == ["succeeded"] * 30


def test_unwritable_inbox_answers_429_and_loses_nothing(ghl: SandboxServer,
                                                        tmp_path: Path) -> None:
    """While another process holds the state file's write lock, webhooks get 429; the sandbox
    retries them and every event runs once after the lock is gone."""
    with serve_for(ghl, tmp_path) as proc:
        ghl.set_webhook_urls([proc.url])
        locker = sqlite3.connect(proc.db, timeout=10, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        try:
            for index in range(5):
                create_contact(ghl, f"U{index}")
            assert wait_for(lambda: any(
                d["status"] == 429 for d in ghl.app.sender.deliveries) or _saw_429(proc), 15)
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        ghl.drain_webhooks(30)
        assert wait_for(lambda: inbox_counts(proc.db) == {"done": 5}, timeout=30)
        ghl.set_webhook_urls([])
    assert ghl.writes(TASKS) == 5
    delivered = [d for d in ghl.drain_webhooks() if d["type"] == "ContactCreate"]
    assert all(d["outcome"] == "delivered" for d in delivered)
    assert any(d["attempts"] > 1 for d in delivered)


def _saw_429(proc: object) -> bool:
    """Whether serve logged a 429 answer (the sandbox records deliveries only when they end)."""
    logs = getattr(proc, "logs", [])  # the receiver's own line: any "429" matched timestamps
    return any("receiver: 429 for" in line for line in logs)


def test_healthz_stays_up_while_work_fails(ghl: SandboxServer, tmp_path: Path) -> None:
    """/healthz answers 200 with the inbox counts while events wait on a failing GHL."""
    ghl.set_faults({"route": TASKS, "error_rate": 1.0})
    with serve_for(ghl, tmp_path, call_new=PATIENT) as proc:
        ghl.set_webhook_urls([proc.url])
        create_contact(ghl, "H")
        assert wait_for(lambda: proc.health().json()["inbox"].get("processing") == 1)
        reply = httpx.get(proc.health_url, timeout=5)
        assert reply.status_code == 200 and reply.json()["in_flight"] == 1
        ghl.clear_faults()
        assert wait_for(lambda: inbox_counts(proc.db) == {"done": 1}, timeout=30)
        ghl.set_webhook_urls([])


UPDATE_STEP = """\
name: Mark new contacts
trigger:
  use: ghl.contacts.created
on_error: {retry: 10, backoff: 0.3, then: dead_letter}
steps:
  - id: mark
    use: ghl.contacts.update
    with:
      contactId: "{{ trigger.id }}"
      source: "seen by {{ trigger.webhookId }}"
"""


def test_ambiguous_writes_of_an_idempotent_step_end_in_one_state(ghl: SandboxServer,
                                                                 tmp_path: Path) -> None:
    """Writes applied then answered 500 or cut: the PUT is sent again and each contact ends
    in the one state its event asked for (a POST would not be safe to repeat: see docs)."""
    route = "PUT /contacts/{contactId}"
    ghl.set_faults({"route": route, "ambiguous_rate": 1.0, "count": 4},
                   {"route": route, "ambiguous_rate": 1.0, "ambiguous_reset": True, "count": 3})
    with serve_for(ghl, tmp_path, mark=UPDATE_STEP) as proc:
        ghl.set_webhook_urls([proc.url])
        contacts = [create_contact(ghl, f"A{index}") for index in range(6)]
        assert wait_for(lambda: inbox_counts(proc.db) == {"done": 6}, timeout=40)
        ghl.set_webhook_urls([])
    assert sorted(run_statuses(proc.db).values()) == ["succeeded"] * 6
    assert ghl.writes(route) > 6  # the ambiguous ones were applied, then sent again
    events = {contact: webhook for webhook, contact in stored_events(proc.db).items()}
    for contact in contacts:
        got = httpx.get(f"{ghl.base_url}/contacts/{contact}", headers=ghl.auth_headers(),
                        timeout=10).json()["contact"]
        assert got["source"] == f"seen by {events[contact]}"
