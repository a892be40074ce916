"""Polling triggers against the GHL sandbox with a real SQLite inbox: one event per new or
changed record, none on a re-poll, nothing lost or repeated across a failed commit, tasks and
notes of changed contacts, reconciliation of dropped webhooks, and the rate-limit window."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from clocks import SteppedClock
from fixtures_store import sqlite_only

from connector.auth.bearer import StaticBearer
from connector.catalog import build_catalog
from connector.client.retry import RetryPolicy
from connector.errors import ConnectorError, RemoteError, StoreError
from connector.hookspecs import RateLimit, Trigger
from connector.recipes.engine import check_event
from connector.runtime import Runtime
from connector.runtime import Settings as RuntimeSettings
from connector.sandbox.server import SandboxServer
from connector.service.pollers import Poller, PollSettings
from connector.service.receiver import ReceiverServer, Settings
from connector.service.signatures import parse_keys
from connector.store import Store

CATALOG = build_catalog()
FAST = PollSettings(interval=0.05, page_size=5, settle=0.0)


def runtime_for(ghl: SandboxServer, limit: RateLimit | None = None) -> Runtime:
    settings = RuntimeSettings(
        strict=True,
        base_urls={"ghl": ghl.base_url},
        location_id=ghl.location_id,
        retry=RetryPolicy(attempts=2, base=0.01, cap=0.05, seed=3),
        rate_limits={"ghl": limit} if limit else {},
    )
    bearer = StaticBearer(ghl.private_token)
    return Runtime(CATALOG, settings, auth=lambda app, action: bearer)


@pytest.fixture
def runtime(ghl: SandboxServer) -> Iterator[Runtime]:
    with runtime_for(ghl) as running:
        yield running


@pytest.fixture
def store(store_location: Path | str) -> Iterator[Store]:
    with Store(store_location) as opened:
        yield opened


@pytest.fixture
def api(ghl: SandboxServer) -> Iterator[httpx.Client]:
    """The sandbox's REST API, called directly (the changes pollers must notice)."""
    with httpx.Client(base_url=ghl.base_url, headers=ghl.auth_headers(), trust_env=False) as c:
        yield c


def poller(
    trigger_id: str,
    runtime: Runtime,
    store: Store,
    *,
    clock: Callable[[], float] = time.time,
    **settings: object,
) -> Poller:
    chosen = PollSettings(**{"interval": 0.05, "page_size": 5, "settle": 0.0, **settings})
    return Poller(CATALOG.trigger(trigger_id), runtime, store, chosen, clock=clock)


def create_contact(api: httpx.Client, ghl: SandboxServer, **fields: object) -> str:
    body = {"locationId": ghl.location_id, "email": f"{uuid.uuid4().hex[:10]}@x.io", **fields}
    made = api.post("/contacts/", json=body)
    assert made.status_code == 201, made.text
    return str(made.json()["contact"]["id"])


def update_contact(api: httpx.Client, contact_id: str, **fields: object) -> None:
    assert api.put(f"/contacts/{contact_id}", json=fields).status_code == 200


def task_body(title: str) -> dict[str, object]:
    return {"title": title, "dueDate": "2030-01-02T09:00:00.000Z", "completed": False}


def seed_ids(runtime: Runtime) -> list[str]:
    return [c["id"] for c in runtime.iterate("ghl.contacts.search", {"pageLimit": 100})]


def events(store: Store, kind: str | None = None) -> list[tuple[str, dict[str, object]]]:
    """(webhook_id, body) of the stored events (of one type), in the order they were stored."""
    rows = store.query("SELECT webhook_id, type, body FROM inbox ORDER BY id")
    return [(r["webhook_id"], json.loads(r["body"])) for r in rows if kind in (None, r["type"])]


def test_poller_new_and_updated_contacts_fire_once_each(ghl, runtime, store, api):
    """A new and an updated contact give one event each, valid for the trigger; a re-poll none."""
    changed = poller("ghl.contacts.changed", runtime, store)
    assert changed.run_once() == 0  # the first poll notes where the records end
    existing = seed_ids(runtime)[3]
    new = create_contact(api, ghl, firstName="Nia")
    update_contact(api, existing, city="Oslo")
    assert changed.run_once() == 2
    assert changed.run_once() == 0
    stored = events(store, "ghl.contacts.changed")
    assert [body["id"] for _, body in stored] == [new, existing]
    trigger = CATALOG.trigger("ghl.contacts.changed")
    for webhook_id, body in stored:
        assert webhook_id == f"poll:ghl.contacts.changed:{body['id']}:{body['dateUpdated']}"
        check_event(trigger, body)
    assert stored[1][1]["city"] == "Oslo" and "searchAfter" not in stored[1][1]
    update_contact(api, existing, city="Bergen")
    assert changed.run_once() == 1  # a second change of the same contact fires again
    assert events(store)[-1][1]["city"] == "Bergen"


def test_poller_added_fires_once_per_contact(ghl, runtime, store, api):
    """ghl.contacts.added fires for a new contact once, not again when it is updated."""
    added = poller("ghl.contacts.added", runtime, store)
    assert added.run_once() == 0
    new = create_contact(api, ghl)
    assert added.run_once() == 1
    update_contact(api, new, city="Oslo")
    assert added.run_once() == 0
    assert [w for w, _ in events(store)] == [f"poll:ghl.contacts.added:{new}"]


def test_poller_backfill_and_overlap_never_duplicate(ghl, runtime, store, api):
    """Backfill fires for every existing contact; re-reading an hour of overlap repeats none."""
    everything = poller("ghl.contacts.changed", runtime, store, backfill=True, overlap=3600.0)
    assert everything.run_once() == 12
    assert everything.run_once() == 0
    update_contact(api, seed_ids(runtime)[0], city="Oslo")
    assert everything.run_once() == 1
    assert everything.run_once() == 0
    assert len(events(store)) == 13


@pytest.mark.parametrize("trigger", ["ghl.contacts.added", "ghl.contacts.changed"])
def test_poller_contact_made_during_the_first_poll_fires(ghl, runtime, store, api, trigger):
    """The first poll finds where the records end, then reads the records there; a contact
    made between those two searches is new, and the next poll fires for it (it was once
    noted as already there, and never fired)."""
    first = poller(trigger, runtime, store)
    ghl.set_faults({"route": "POST /contacts/search", "latency_ms": 1500})
    searches = lambda: ghl.location_stats()["routes"].get(  # noqa: E731
        "POST /contacts/search", {"requests": 0})["requests"]
    baseline = threading.Thread(target=first.run_once)
    baseline.start()
    deadline = time.monotonic() + 30
    while searches() < 2 and time.monotonic() < deadline:  # the second is held 1.5 s
        time.sleep(0.01)
    assert searches() == 2
    made = create_contact(api, ghl, firstName="Midway")
    baseline.join(30)
    ghl.clear_faults()
    assert first.run_once() == 1
    assert [body["id"] for _, body in events(store)] == [made]


def test_poller_page_cap_spreads_work_over_polls(ghl, runtime, store, api):
    """With one 3-record page per poll (the first is the one at the cursor, read again), 5
    changes arrive over 3 polls, each exactly once."""
    capped = poller("ghl.contacts.changed", runtime, store, page_size=3, max_pages=1)
    capped.run_once()
    made = [create_contact(api, ghl) for _ in range(5)]
    assert [capped.run_once() for _ in range(4)] == [2, 2, 1, 0]
    assert [body["id"] for _, body in events(store)] == made


CRASH_POINTS = {
    # After every event was inserted, when the cursor is saved.
    "at-cursor": "BEFORE UPDATE ON poll_cursors",
    # Halfway through the events: the first two are in, the third fails.
    "at-third-event": "BEFORE INSERT ON inbox WHEN NEW.webhook_id LIKE '%{third}%'",
}


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_poller_crash_inside_the_commit_loses_and_repeats_nothing(ghl, runtime, store, api, point):
    """A failure inside the commit (after some events were written) rolls events and cursor
    back together; the next poll stores each event exactly once."""
    changed = poller("ghl.contacts.changed", runtime, store)
    changed.run_once()
    made = [create_contact(api, ghl) for _ in range(3)]
    sqlite_only(store.url, "the crash is an SQLite trigger")
    crash = sqlite3.connect(store.path)
    when = CRASH_POINTS[point].format(third=made[2])
    crash.execute(f"CREATE TRIGGER crash {when} BEGIN SELECT RAISE(ABORT, 'simulated crash'); END")
    crash.commit()
    with pytest.raises(StoreError, match="simulated crash"):
        changed.run_once()
    assert events(store) == []
    assert changed.last_error is not None and "simulated crash" in changed.last_error
    crash.execute("DROP TRIGGER crash")
    crash.commit()
    crash.close()
    assert changed.run_once() == 3
    assert changed.run_once() == 0
    assert [body["id"] for _, body in events(store)] == made
    assert changed.last_error is None


def test_poller_failed_page_saves_nothing(ghl, runtime, store, api):
    """When GHL fails on a later page, nothing of the poll is saved; the next poll gets it all."""
    changed = poller("ghl.contacts.changed", runtime, store, page_size=2)
    changed.run_once()
    cursor = changed.ledger.cursor()
    made = [create_contact(api, ghl) for _ in range(5)]
    ghl.set_faults({"route": "POST /contacts/search", "error_rate": 1.0})
    with pytest.raises(RemoteError, match=r"POST /contacts/search -> 500"):
        changed.run_once()
    assert (events(store), changed.ledger.cursor()) == ([], cursor)
    ghl.clear_faults()
    assert changed.run_once() == 5
    assert [body["id"] for _, body in events(store)] == made


def test_poller_tasks_and_notes_of_changed_contacts(ghl, runtime, store, api):
    """New and changed tasks and notes of changed contacts fire once; old ones and unchanged
    ones do not; the payload is the record plus its contact's locationId."""
    clock = SteppedClock()
    ghl.use_clock(clock)  # the sandbox stamps and the pollers read one clock, stepped below
    contact = seed_ids(runtime)[0]
    old = api.post(f"/contacts/{contact}/tasks", json=task_body("old"))
    assert old.status_code == 201
    clock.advance()  # the old task predates the pollers' start ...
    tasks = poller("ghl.tasks.changed", runtime, store, clock=clock)
    notes = poller("ghl.notes.changed", runtime, store, clock=clock)
    assert (tasks.run_once(), notes.run_once()) == (0, 0)
    clock.advance()  # ... which predates every record made from here on
    task = api.post(f"/contacts/{contact}/tasks", json=task_body("Call"))
    note = api.post(f"/contacts/{contact}/notes", json={"body": "met at fair"})
    assert (task.status_code, note.status_code) == (201, 201)
    update_contact(api, contact, city="Oslo")
    assert (tasks.run_once(), notes.run_once()) == (1, 1)
    assert (tasks.run_once(), notes.run_once()) == (0, 0)
    task_id = task.json()["task"]["id"]
    done = api.put(f"/contacts/{contact}/tasks/{task_id}/completed", json={"completed": True})
    assert done.status_code == 200
    update_contact(api, contact, city="Bergen")
    assert (tasks.run_once(), notes.run_once()) == (1, 0)
    update_contact(api, contact, city="Rome")  # the contact changes, its tasks do not
    assert (tasks.run_once(), notes.run_once()) == (0, 0)
    fired = events(store, "ghl.tasks.changed")
    assert [(b["id"], b["completed"]) for _, b in fired] == [(task_id, False), (task_id, True)]
    assert fired[0][0] != fired[1][0] and fired[0][0].startswith(
        f"poll:ghl.tasks.changed:{task_id}:"
    )
    [(_, note_body)] = events(store, "ghl.notes.changed")
    assert (note_body["body"], note_body["locationId"]) == ("met at fair", ghl.location_id)
    for trigger_id, body in (
        (f"ghl.{k}.changed", b)
        for k in ("tasks", "notes")
        for _, b in events(store, f"ghl.{k}.changed")
    ):
        check_event(CATALOG.trigger(trigger_id), body)


def test_poller_failed_list_saves_nothing(ghl, runtime, store, api):
    """When listing one changed contact's tasks fails, the poll saves nothing; the next gets all."""
    tasks = poller("ghl.tasks.changed", runtime, store)
    tasks.run_once()
    cursor = tasks.ledger.cursor()
    for contact in seed_ids(runtime)[:2]:
        assert api.post(f"/contacts/{contact}/tasks", json=task_body("t")).status_code == 201
        update_contact(api, contact, city="Oslo")
    ghl.set_faults({"route": "GET /contacts/{contactId}/tasks", "error_rate": 1.0})
    with pytest.raises(RemoteError, match=r"GET /contacts/\w+/tasks -> 500"):
        tasks.run_once()
    assert (events(store), tasks.ledger.cursor()) == ([], cursor)
    ghl.clear_faults()
    assert tasks.run_once() == 2


@pytest.fixture
def receiver(store: Store, ghl: SandboxServer) -> Iterator[ReceiverServer]:
    """The webhook receiver on 127.0.0.1 writing into ``store``; the sandbox sends to it."""
    keys = parse_keys((kind, pem.encode()) for kind, pem in ghl.public_keys.items())
    with ReceiverServer(store, Settings(keys)) as server:
        ghl.set_webhook_urls([server.url])
        try:
            yield server
        finally:
            ghl.set_webhook_urls([])


def test_poller_reconcile_catches_dropped_webhooks_only(ghl, runtime, store, api, receiver):
    """Reconciling, a change whose webhook never came fires once, shaped like the webhook;
    a change whose webhook was stored does not fire."""
    updated = poller("ghl.contacts.updated", runtime, store)
    created = poller("ghl.contacts.created", runtime, store)
    assert (updated.run_once(), created.run_once()) == (0, 0)
    arrived, dropped = seed_ids(runtime)[:2]
    new_arrived = create_contact(api, ghl)
    update_contact(api, arrived, city="Oslo")
    assert {d["outcome"] for d in ghl.drain_webhooks()} == {"delivered"}
    ghl.set_webhook_urls([])  # GHL never sends these two
    update_contact(api, dropped, city="Lima")
    new_dropped = create_contact(api, ghl)
    webhooks = len(events(store))
    assert (updated.run_once(), created.run_once()) == (1, 1)
    assert (updated.run_once(), created.run_once()) == (0, 0)
    mine = events(store)[webhooks:]
    assert [(b["type"], b["id"]) for _, b in mine] == [
        ("ContactUpdate", dropped),
        ("ContactCreate", new_dropped),
    ]
    assert new_arrived != new_dropped
    for webhook_id, body in mine:
        assert body["webhookId"] == webhook_id and body["locationId"] == ghl.location_id
        trigger = (
            "ghl.contacts.updated" if body["type"] == "ContactUpdate" else "ghl.contacts.created"
        )
        check_event(CATALOG.trigger(trigger), body)
    assert mine[0][1]["city"] == "Lima"


def test_poller_reconcile_leaves_young_changes_to_their_webhooks(ghl, runtime, store, api):
    """A change younger than `settle` is not reconciled yet (its webhook may still come)."""
    patient = poller("ghl.contacts.updated", runtime, store, settle=3600.0)
    patient.run_once()
    update_contact(api, seed_ids(runtime)[0], city="Oslo")
    assert patient.run_once() == 0
    assert events(store) == []


def test_poller_never_exceeds_the_rate_limit_window(ghl, runtime, store, api):
    """Polling tasks of 8 changed contacts under a 4-per-second limit stays within the window."""
    poller("ghl.tasks.changed", runtime, store).run_once()
    for contact in seed_ids(runtime)[:8]:
        assert api.post(f"/contacts/{contact}/tasks", json=task_body("t")).status_code == 201
        update_contact(api, contact, city="Oslo")
    # Count only the poll's own traffic, under the tight limit (the cursor is in the store).
    ghl.set_limits(requests=4, seconds=1.0)
    ghl.call(ghl.app.traffic.reset)
    ghl.call(ghl.app.limiter.reset)
    with runtime_for(ghl, RateLimit(4, 1.0)) as limited:
        assert poller("ghl.tasks.changed", limited, store, page_size=3).run_once() == 8
    seen = ghl.location_stats()
    assert seen["requests"] >= 3 + 8 and seen["throttled"] == 0  # 3 search pages, 8 lists
    assert seen["max_window"] <= 4
    assert ghl.within_limits()


def test_poller_run_forever_polls_until_stopped(ghl, runtime, store, api):
    """run_forever polls on its interval, picks up a change, and returns once stopped."""
    changed = poller("ghl.contacts.changed", runtime, store)
    changed.run_once()
    stop = threading.Event()
    thread = threading.Thread(target=changed.run_forever, args=(stop,))
    thread.start()
    try:
        made = create_contact(api, ghl)
        deadline = time.monotonic() + 10
        while not events(store) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert [body["id"] for _, body in events(store)] == [made]
    assert changed.last_poll is not None and changed.last_error is None


def test_poller_runs_in_one_process_at_a_time(ghl, runtime, store, api):
    """Two pollers of one trigger and location sharing a store (as two serve processes do):
    only the lease holder polls; when it stops, the other takes over and polls."""
    first = poller("ghl.contacts.changed", runtime, store, lease=5.0)
    second = poller("ghl.contacts.changed", runtime, store, lease=5.0)
    poller("ghl.contacts.changed", runtime, store).run_once()  # the baseline, by a third
    stops = [threading.Event(), threading.Event()]
    threads = [threading.Thread(target=p.run_forever, args=(s,)) for p, s in
               zip((first, second), stops, strict=True)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 30
        while not (first.leading or second.leading) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # several intervals: the other one keeps asking, and is refused
        leader, other = (first, second) if first.leading else (second, first)
        assert leader.leading and not other.leading and other.last_poll is None
        made = create_contact(api, ghl)
        while not events(store) and time.monotonic() < deadline:
            time.sleep(0.02)
        stops[(first, second).index(leader)].set()  # the holder stops and releases
        while other.last_poll is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert other.leading and other.last_poll is not None and other.last_error is None
    finally:
        for stop in stops:
            stop.set()
        for thread in threads:
            thread.join(10)
    assert [body["id"] for _, body in events(store)] == [made]


def test_poller_that_lost_its_lease_saves_nothing(ghl, runtime, store, api):
    """Fencing: a poller whose lease passed to another process (it stalled past the expiry)
    commits nothing; the new holder polls the change once."""
    stale = poller("ghl.contacts.changed", runtime, store, lease=60.0)
    assert stale._lead() and stale.run_once() == 0  # the baseline, under its lease
    create_contact(api, ghl)
    store.execute("UPDATE leases SET expires = 0 WHERE name = ?", (stale.lease_name,))
    fresh = poller("ghl.contacts.changed", runtime, store, lease=60.0)
    assert fresh._lead()
    with pytest.raises(StoreError, match="its lease passed to another process"):
        stale.run_once()
    assert events(store) == []
    assert fresh.run_once() == 1 and len(events(store)) == 1


def test_poller_refuses_what_it_cannot_poll(runtime, store):
    """Triggers without a polling source and nonsense settings are refused with a clear error."""
    with pytest.raises(ConnectorError, match=r"'ghl\.tasks\.created' is 'TaskCreate'"):
        Poller(CATALOG.trigger("ghl.tasks.created"), runtime, store)
    partner = Trigger("x.things.changed", "x", "Things", "polling", {}, action="x.things.list")
    with pytest.raises(ConnectorError, match=r"'x\.things\.changed' polls 'x\.things\.list'"):
        Poller(partner, runtime, store)
    flat = Trigger("ghl.c.changed", "ghl", "C", "polling", {}, action="ghl.contacts.search")
    with pytest.raises(ConnectorError, match=r"'ghl\.contacts\.search', which takes no contactId"):
        Poller(flat, runtime, store)
    with pytest.raises(ValueError, match="page_size 0 must be 1..500"):
        PollSettings(page_size=0)
    with pytest.raises(ValueError, match="interval 0 must be above 0"):
        PollSettings(interval=0)
