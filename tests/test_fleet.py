"""The fleet (``serve --broker`` and ``worker`` processes) on the real Redis and RabbitMQ:
every event processed once, one contact's events in order, across processes and kill -9."""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from connector.sandbox.server import SandboxServer
from connector.service.inbox import Inbox
from connector.store import Store
from tests.fixtures_store import postgres_schema
from tests.fleetprocs import (
    AMQP_URL,
    NOTE_PER_UPDATE,
    REDIS_URL,
    Fleet,
    WorkerProcess,
    create_contacts,
    need,
    notes_by_contact,
    send_updates,
)
from tests.serveproc import wait_for

NOTES = "POST /contacts/{contactId}/notes"


def counts(db: Path | str) -> dict[str, int]:
    with Store(db) as store:
        return Inbox(store).counts()


def check_processed_once_in_order(ghl: SandboxServer, db: Path | str, contacts: list[str],
                                  per_contact: int) -> None:
    """Every event done, each contact's notes exactly its updates in order, each write once."""
    total = len(contacts) * per_contact
    assert counts(db) == {"done": total}
    found = notes_by_contact(ghl)
    for contact in contacts:
        assert found.get(contact) == [f"{contact}-{i}" for i in range(per_contact)], contact
    assert ghl.writes(NOTES) == total


def kill_run(ghl: SandboxServer, tmp_path: Path, broker: str, *, contacts: int,
             per_contact: int, kills: int = 3, store: str | None = None) -> float:
    """One serve and three workers take ``contacts * per_contact`` signed webhooks while a
    worker is killed with kill -9 (and started again) ``kills`` times; returns the seconds
    from the first webhook to the last event done."""
    ghl.set_limits(requests=1_000_000, seconds=10)
    ids = create_contacts(ghl, contacts)
    total = contacts * per_contact
    rng = random.Random(17)
    with Fleet(ghl, tmp_path, broker, workers=3, recipes={"note": NOTE_PER_UPDATE},
               extra=("--rate-limit", "1000000/10"), store=store) as fleet:
        started = time.monotonic()
        sender = threading.Thread(target=send_updates,
                                  args=(ghl, fleet.serve.url, ids, per_contact), daemon=True)
        sender.start()
        killed = 0
        while killed < kills:
            time.sleep(rng.uniform(0.5, 1.5))
            victim = rng.choice(fleet.workers)
            victim.kill9()
            killed += 1
            victim.start()
        sender.join(600)
        assert not sender.is_alive()
        assert wait_for(lambda: counts(fleet.db).get("done") == total, timeout=300,
                        step=0.5), counts(fleet.db)
        elapsed = time.monotonic() - started
        check_processed_once_in_order(ghl, fleet.db, ids, per_contact)
        health = fleet.serve.health().json()
        assert health["inbox"] == {"done": total}
    print(f"fleet kill -9 x{kills} ({'PostgreSQL' if store else 'SQLite'} store):"
          f" {total} webhooks, {contacts} contacts,"
          f" {elapsed:.1f}s to all done ({total / elapsed:.0f} events/s)")
    return elapsed


FLEET_EVENTS = os.environ.get("CONNECTOR_FLEET_EVENTS")
"""Webhooks of the kill -9 test for every variant (default: the issue's full run, 5,000
webhooks on 500 contacts, on PostgreSQL with Redis; 400 for the other variants)."""


@pytest.mark.slow
@pytest.mark.parametrize(("broker", "backend", "events"), [
    (REDIS_URL, "postgresql", 5000), (AMQP_URL, "postgresql", 400), (REDIS_URL, "sqlite", 400),
], ids=["redis-postgresql", "rabbitmq-postgresql", "redis-sqlite"])
def test_fleet_survives_kill9_of_workers(ghl: SandboxServer, tmp_path: Path, broker: str,
                                         backend: str, events: int) -> None:
    """kill -9 of a worker three times during the stream: every event processed once, each
    contact's notes in order, no note written twice, nothing pending or lost; on the shared
    PostgreSQL store with either broker, and on one SQLite file."""
    need(6379, 5672 if broker.startswith("amqp") else 6379)
    contacts = max(1, int(FLEET_EVENTS or events) // 10)
    if backend == "sqlite":
        kill_run(ghl, tmp_path, broker, contacts=contacts, per_contact=10)
        return
    with postgres_schema() as url:
        kill_run(ghl, tmp_path, broker, contacts=contacts, per_contact=10, store=url)


@pytest.mark.parametrize(("requests", "seconds", "events"), [
    (10, 1.0, 60),
    pytest.param(100, 10.0, 250, marks=pytest.mark.slow, id="ghl-100-per-10s"),
], ids=["10-per-1s", None])
def test_four_workers_share_one_locations_limit(ghl: SandboxServer, tmp_path: Path,
                                                requests: int, seconds: float,
                                                events: int) -> None:
    """Four workers writing to one location through the limiter shared in Redis: the sandbox
    (which records every request's arrival) never answers 429 and never sees more than the
    limit in any window; the sandbox's limit is shrunk to keep the test short, and GHL's real
    100 per 10 s is the slow variant. /healthz of serve and of a worker, and serve's console,
    list the five processes."""
    need(6379)
    ghl.set_limits(requests=requests, seconds=seconds)
    contacts = create_contacts(ghl, 10)
    before = ghl.location_stats()["requests"]
    with Fleet(ghl, tmp_path, REDIS_URL, workers=4, recipes={"note": NOTE_PER_UPDATE},
               extra=("--rate-limit", f"{requests}/{seconds:g}")) as fleet:
        started = time.monotonic()
        send_updates(ghl, fleet.serve.url, contacts, events // 10, senders=5)
        assert wait_for(lambda: counts(fleet.db).get("done") == events,
                        timeout=30 + 2 * seconds * events / requests, step=0.2)
        elapsed = time.monotonic() - started
        health = fleet.serve.health().json()
        assert Counter(p["role"] for p in health["peers"]) == {"serve": 1, "worker": 4}, health
        worker_health = httpx.get(fleet.workers[0].health_url, timeout=5).json()
        assert worker_health["status"] == "ok" and len(worker_health["peers"]) == 5
        page = httpx.get(fleet.serve.health_url.replace("/healthz", "/console/connections"),
                         timeout=10)
        assert page.status_code == 200 and "<h2>Fleet</h2>" in page.text
        assert page.text.count("<tr><td>worker</td>") == 4
    seen = ghl.location_stats()
    print(f"4 workers, limit {requests}/{seconds:g}s: {seen['requests'] - before} requests in"
          f" {elapsed:.1f}s, busiest window {seen['max_window']}, 429s {seen['throttled']}")
    assert seen["throttled"] == 0
    assert seen["max_window"] <= requests
    assert ghl.writes(NOTES) == events
    # The limit was the bottleneck: the work took about as long as the limit allows.
    assert elapsed >= seconds * (events // requests - 1)


@pytest.mark.slow
def test_sigterm_drains_a_worker_and_hands_back_its_events(ghl: SandboxServer,
                                                          tmp_path: Path) -> None:
    """SIGTERM to a worker whose events outlast its grace: it exits 0, hands its claims back
    to the inbox and their lanes to the queue, and another worker finishes them, in order,
    each note written once."""
    need(6379)
    ghl.set_limits(requests=100_000, seconds=10)
    contacts = create_contacts(ghl, 3)
    ghl.set_faults({"route": NOTES, "latency_ms": 3000})
    with Fleet(ghl, tmp_path, REDIS_URL, workers=1, recipes={"note": NOTE_PER_UPDATE},
               extra=("--rate-limit", "100000/10", "--grace", "0.3")) as fleet:
        send_updates(ghl, fleet.serve.url, contacts, 3, senders=3)
        first = fleet.workers[0]
        assert wait_for(lambda: counts(fleet.db).get("processing", 0) >= 2, timeout=20)
        assert first.stop(timeout=20) == 0
        records = first.log_records()
        stopped = [r for r in records if r["message"] == "worker: stopped"]
        assert stopped and stopped[0]["handed_back"] >= 1, records[-5:]
        assert any(r["message"] == "worker: SIGTERM received, shutting down" for r in records)
        assert not [r for r in records if r["message"].startswith("serve:")], records[-5:]
        assert counts(fleet.db).get("processing", 0) == 0
        ghl.clear_faults()
        first.start()
        assert wait_for(lambda: counts(fleet.db) == {"done": 9}, timeout=60), counts(fleet.db)
        check_processed_once_in_order(ghl, fleet.db, contacts, 3)


@pytest.mark.slow
def test_lost_messages_are_found_again_from_the_inbox(ghl: SandboxServer,
                                                      tmp_path: Path) -> None:
    """The queue loses every message (purged) and Redis every lane before any worker runs:
    the feeder's sweeper finds the unsettled events in the inbox and sends them again; all
    run once, in order (RabbitMQ broker)."""
    need(6379, 5672)
    import pika
    import redis

    ghl.set_limits(requests=100_000, seconds=10)
    contacts = create_contacts(ghl, 4)
    with Fleet(ghl, tmp_path, AMQP_URL, workers=0, recipes={"note": NOTE_PER_UPDATE},
               extra=("--rate-limit", "100000/10")) as fleet:
        send_updates(ghl, fleet.serve.url, contacts, 3, senders=2)
        assert wait_for(lambda: fleet.serve.health().json()["peers"][0]["sent"] >= 12)
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        lost = connection.channel().queue_purge(fleet.queue).method.message_count
        connection.close()
        client = redis.Redis.from_url(REDIS_URL)
        dropped = client.delete(*client.scan_iter(f"{fleet.queue}:lane:*"))
        client.close()
        assert lost >= 12 and dropped == 4
        assert counts(fleet.db) == {"pending": 12}
        worker = WorkerProcess(fleet.serve.recipes, fleet.serve.home, **fleet.common)
        fleet.workers.append(worker)
        worker.start()
        assert wait_for(lambda: counts(fleet.db) == {"done": 12}, timeout=40), counts(fleet.db)
        check_processed_once_in_order(ghl, fleet.db, contacts, 3)


def test_two_embedded_services_share_one_locations_limit(ghl: SandboxServer,
                                                         tmp_path: Path) -> None:
    """`serve --limits redis://...` without a broker: two services on their own state files,
    each running its own workers, draw GHL's per-location limit from one window in Redis; the
    sandbox never sees more than the limit in any window, nor answers 429."""
    need(6379)
    from tests.fleetprocs import cleanup, new_queue
    from tests.serveproc import ServeProcess

    requests, seconds, each = 10, 1.0, 30
    ghl.set_limits(requests=requests, seconds=seconds)
    contacts = create_contacts(ghl, 6)
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "note.yaml").write_text(NOTE_PER_UPDATE)
    queue = new_queue()
    services = [ServeProcess(folder, tmp_path / f"home{i}", base_url=ghl.base_url,
                             token=ghl.private_token, location_id=ghl.location_id,
                             public_keys=ghl.public_keys,
                             extra=("--limits", REDIS_URL, "--queue", queue, "--rate-limit",
                                    f"{requests}/{seconds:g}")) for i in range(2)]
    try:
        for service in services:
            service.start()
        senders = [threading.Thread(target=send_updates, args=(
            ghl, service.url, contacts[i * 3:i * 3 + 3], each // 3)) for i, service in
            enumerate(services)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(60)
        assert all(wait_for(lambda s=s: counts(s.db).get("done") == each, timeout=60)
                   for s in services)
    finally:
        for service in services:
            if service.process is not None and service.process.poll() is None:
                service.stop()
        cleanup(queue)
    seen = ghl.location_stats()
    assert ghl.writes(NOTES) == 2 * each
    assert seen["throttled"] == 0 and seen["max_window"] <= requests, seen


def test_serves_console_shows_the_fleets_rate_limit_headroom(ghl: SandboxServer,
                                                             tmp_path: Path) -> None:
    """`serve --broker` makes no GHL call itself; its console's rate-limit headroom is the
    fleet's (docs/scale-out.md "Operations"), read from the limiter shared in Redis: the
    location the workers called is listed with the requests they made today."""
    need(6379)
    contacts = create_contacts(ghl, 2)
    with Fleet(ghl, tmp_path, REDIS_URL, workers=1, recipes={"note": NOTE_PER_UPDATE}) as fleet:
        send_updates(ghl, fleet.serve.url, contacts, 3, senders=2)
        assert wait_for(lambda: counts(fleet.db).get("done") == 6, timeout=30, step=0.2)
        page = httpx.get(fleet.serve.health_url.replace("/healthz", "/console/connections"),
                         timeout=10)
    assert page.status_code == 200
    assert "No call made yet" not in page.text
    row = re.search(rf"<tr><td>ghl</td><td>{ghl.location_id}</td><td>(\d+) of (\d+)</td>"
                    r"<td>[^<]*</td><td>(\d+)</td>", page.text)
    assert row is not None, page.text[page.text.find("Rate-limit"):][:800]
    assert int(row.group(3)) >= 6  # the workers' note writes, counted for the whole fleet
