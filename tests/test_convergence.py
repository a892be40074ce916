"""Convergence of the two-way sync (GHL <-> SuperPhone, real sandboxes over HTTP): a seeded
run of 1,000+ interleaved edits on both sides, delivered by webhooks (some dropped, some
duplicated, reordered) plus polling passes, ends with both sides equal, no duplicates, no echo
loop and an audit row for every change."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from convergence_checks import child_mismatches, contact_mismatches, duplicates
from convergence_inbox import Inbox
from convergence_poll import poll
from convergence_world import SPEC, World

from connector.audit import entries
from connector.catalog import build_catalog
from connector.credentials import StaticBearer, api_key_provider
from connector.hookspecs import RateLimit
from connector.retry import RetryPolicy
from connector.runtime import Runtime, Settings
from connector.sandbox.server import SandboxServer
from connector.sandbox.superphone import SuperPhoneSandboxServer
from connector.store import Store
from connector.sync import Change, SyncEngine
from connector.syncmap import record_time
from connector.syncspec import parse_sync

SEED = 20261123
EDITS = 1000
ROUND = 20
"""Edits between two deliveries."""
POLL_EVERY = 10
"""Rounds between two polling passes."""
DROP, DUP = 0.05, 0.05

KINDS = [
    ("ghl_create", 3), ("sp_create", 3), ("twin_create", 1),
    ("ghl_update", 10), ("sp_update", 10), ("same_record", 6),
    ("ghl_tags", 6), ("sp_tags", 6),
    ("ghl_note", 5), ("sp_note", 5), ("ghl_note_update", 3), ("sp_note_update", 3),
    ("ghl_task", 5), ("sp_task", 5), ("ghl_task_update", 5), ("sp_task_update", 5),
    ("ghl_child_delete", 2), ("ghl_delete", 1.2), ("sp_delete", 1.2),
]  # fmt: skip
"""Edit kinds and their weights."""

WRITES = frozenset({"create", "update", "delete", "archive"})


@pytest.fixture
def world(ghl: SandboxServer, sp: SuperPhoneSandboxServer, tmp_path: Path) -> Iterator[World]:
    """Both sandboxes (limits raised, webhooks to a fresh inbox), a runtime and an engine."""
    ghl.set_limits(requests=1_000_000, seconds=1, daily=10_000_000)
    sp.set_limits(requests=1_000_000, seconds=1)
    fast = RateLimit(1_000_000, 1.0)
    settings = Settings(
        strict=True,
        base_urls={"ghl": ghl.base_url, "superphone": sp.base_url},
        location_id=ghl.location_id,
        retry=RetryPolicy(attempts=2, base=0.01, cap=0.05),
        rate_limits={"ghl": fast, "superphone": fast},
    )
    bearer = StaticBearer(ghl.private_token)
    auth = api_key_provider(lambda app, action: bearer, keys={"superphone": sp.api_key})
    inbox = Inbox()
    ghl.set_webhook_urls([inbox.url("ghl")])
    sp.set_webhook_urls([inbox.url("partner")])
    try:
        with (
            Store(tmp_path / "state.db") as store,
            Runtime(build_catalog(), settings, auth=auth) as rt,
        ):
            store.set_synchronous("NORMAL")  # thousands of commits; durability is not tested here
            engine = SyncEngine(parse_sync(SPEC), rt, store)
            yield World(SEED, rt, engine, ghl, sp, inbox)
    finally:
        ghl.set_webhook_urls([])
        sp.set_webhook_urls([])
        inbox.close()


def settle(world: World) -> None:
    """Deliver every webhook still coming, none dropped, until no more come."""
    for _ in range(20):
        bodies = world.collect()
        if not bodies:
            return
        world.deliver(bodies, drop=0.0, dup=0.0)
    raise AssertionError(f"seed {SEED}: webhooks never stopped coming (echo loop?)")


def run_edits(w: World) -> tuple[int, int, int]:
    """The random run: rounds of edits, each followed by a lossy delivery, with a polling pass
    every few rounds; then everything left delivered and a last poll. Returns (rounds, writes
    by the edits, writes by the sync) as the sandboxes counted them."""
    human = sync = rounds = 0
    while w.tally.edits < EDITS:
        before = w.writes()
        for _ in range(ROUND):
            w.edit(KINDS)
        after = w.writes()
        human += sum(after) - sum(before)
        w.deliver(w.collect(), drop=DROP, dup=DUP)
        rounds += 1
        if rounds % POLL_EVERY == 0:
            poll(w)
        sync += sum(w.writes()) - sum(after)
    before = w.writes()
    settle(w)
    poll(w)
    settle(w)
    return rounds, human, sync + sum(w.writes()) - sum(before)


def assert_same_data(w: World, tag: str) -> int:
    """Both sides hold the same contacts, tags, tasks and notes, without duplicates; returns
    how many contacts there are."""
    ghl_contacts, sp_contacts = w.ghl_contacts(), w.sp_contacts()
    problems = contact_mismatches(w, ghl_contacts, sp_contacts)
    assert problems == [], (tag, *problems[:10])
    dups = duplicates(ghl_contacts) + duplicates(sp_contacts)
    assert dups == [], (tag, *dups[:10])
    for obj in ("tasks", "notes"):
        problems = child_mismatches(w, obj)
        assert problems == [], (tag, *problems[:10])
    return len(ghl_contacts)


def test_convergence_thousand_edits_both_sides(world: World) -> None:
    """1,000+ seeded edits on both sides, webhooks dropped/duplicated/reordered plus polling:
    both sides end equal, with no duplicates, no echo loop and a complete audit trail."""
    w, tag = world, f"seed {SEED}"
    poll(w)  # the first sync: seed records paired or created
    settle(w)
    start = len(entries(w.engine.store))
    rounds, human, sync = run_edits(w)
    assert w.tally.edits >= EDITS and set(w.tally.edit_kinds) == {k for k, _ in KINDS}, tag
    contacts = assert_same_data(w, tag)

    trail = entries(w.engine.store)
    assert len(trail) == w.tally.applied, tag  # one audit row per applied change, no more
    rows = Counter(e.event_id for e in trail)
    unaudited = {k: n for k, n in w.tally.delivered.items() if rows[k] != n}
    assert unaudited == {}, tag  # each delivery of each webhook (duplicates too) has its row
    assert rows["poll"] == w.tally.polled, tag
    written = [e for e in trail[start:] if e.action in WRITES]
    # No echo loop: at most one audited write per edit, each audited write is 1 to 3 requests.
    assert len(written) <= w.tally.edits, (tag, len(written), w.tally.edits)
    assert len(written) <= sync <= 3 * len(written), (tag, sync, len(written))

    frozen = w.writes()
    last = poll(w)
    settle(w)
    assert w.writes() == frozen, tag  # a further full pass writes nothing...
    assert {o.action for o in last} == {"skip"}, tag  # ...and decides nothing but skips
    print(
        f"{tag}: {w.tally.edits} edits ({w.tally.refused} refused), {rounds} rounds, "
        f"{sum(w.tally.delivered.values())} deliveries ({w.tally.dropped} dropped, "
        f"{w.tally.duplicated} duplicated), {w.tally.polled} polled, writes: {human} by "
        f"edits, {sync} by the sync ({len(written)} audited), {contacts} contacts"
    )


# -- the bugs the run found, one by one -----------------------------------------------------


def linked_contact(w: World) -> tuple[str, str]:
    """A GHL contact created and synced: (GHL id, SuperPhone id)."""
    made = w.rt.call("ghl.contacts.create", {"firstName": "Una", "email": "una@example.org"})
    out = w.apply(Change("ghl", "contacts", made["contact"]["id"], made["contact"]))
    settle(w)
    return str(out.ghl_id), str(out.partner_id)


def test_convergence_ghl_task_events_carry_completion(world: World) -> None:
    """GHL task webhooks have no `completed`: TaskCreate is read whole (its echo is an echo) and
    TaskComplete completes the SuperPhone task."""
    w = world
    gid, pid = linked_contact(w)
    task = w.rt.call(
        "ghl.tasks.create",
        {"contactId": gid, "title": "Call", "completed": False, "dueDate": "2026-12-01T10:00:00Z"},
    )["task"]
    settle(w)  # TaskCreate -> createTask; its task.created echo is skipped
    made = w.sp_children("tasks", pid)
    assert [(t["title"], t["completed"]) for t in made] == [("Call", False)]
    w.rt.call("ghl.tasks.complete", {"contactId": gid, "taskId": task["id"], "completed": True})
    settle(w)
    assert w.sp_children("tasks", pid)[0]["completed"] is True
    assert w.sp.writes("updateTask") + w.sp.writes("completeTask") == 1
    skips = [e.reason for e in entries(w.engine.store, obj="tasks") if e.action == "skip"]
    assert skips and all(r.startswith("echo") for r in skips)


def test_convergence_task_created_done_is_done_on_the_other_side(world: World) -> None:
    """A done GHL task becomes a done SuperPhone task (whose create takes no `completed`)."""
    w = world
    gid, pid = linked_contact(w)
    task = w.rt.call(
        "ghl.tasks.create",
        {"contactId": gid, "title": "Done", "completed": True, "dueDate": "2026-12-01T10:00:00Z"},
    )["task"]
    out = w.apply(Change("ghl", "tasks", task["id"], task))
    assert (out.action, out.reason) == ("create", "no match on superphone")
    assert out.changes["completed"] == (None, True)
    assert w.sp_children("tasks", pid)[0]["completed"] is True


def test_convergence_child_of_a_deleted_contact_is_skipped(world: World) -> None:
    """A note arriving after its contact was deleted is audited as a skip, never an error."""
    w = world
    gid, pid = linked_contact(w)
    note = w.rt.call("superphone.notes.create", {"contactId": pid, "body": "late"})
    w.rt.call("ghl.contacts.delete", {"contactId": gid})
    w.apply(Change("ghl", "contacts", gid, None))
    out = w.apply(Change("partner", "notes", note["id"], note))
    assert (out.action, out.reason) == ("skip", "its parent contacts record was deleted")


def test_convergence_child_whose_parent_vanished_is_skipped(world: World) -> None:
    """A note for a contact deleted on the other side (delete not yet seen) is skipped."""
    w = world
    gid, pid = linked_contact(w)
    w.rt.call("superphone.contacts.delete", {"id": pid})  # its webhook is never delivered
    note = w.rt.call("ghl.notes.create", {"contactId": gid, "body": "orphan"})["note"]
    out = w.apply(Change("ghl", "notes", note["id"], note))
    assert (out.action, out.reason) == (
        "skip",
        "its parent contacts record is gone from superphone",
    )


def test_convergence_unreadable_target_is_not_rewritten(world: World) -> None:
    """SuperPhone notes cannot be read back: polling a synced GHL note again writes nothing."""
    w = world
    gid, pid = linked_contact(w)
    note = w.rt.call("ghl.notes.create", {"contactId": gid, "body": "hello"})["note"]
    settle(w)
    w.rt.call("ghl.notes.update", {"contactId": gid, "id": note["id"], "body": "hello again"})
    settle(w)
    assert [n["body"] for n in w.sp_children("notes", pid)] == ["hello again"]
    writes = w.sp.writes("updateNote")
    for polled in w.ghl_children("notes", gid) * 2:
        out = w.apply(Change("ghl", "notes", polled["id"], polled, event_id="poll"))
        assert (out.action, out.reason) == ("skip", "no change")
    assert (writes, w.sp.writes("updateNote")) == (1, 1)


def test_convergence_same_millisecond_edits_agree(world: World) -> None:
    """Edits on both sides at the same source time: GHL wins on both paths, no swap."""
    w = world
    gid, pid = linked_contact(w)
    g = w.rt.call("ghl.contacts.update", {"contactId": gid, "firstName": "Gee"})["contact"]
    s = w.rt.call("superphone.contacts.update", {"id": pid, "firstName": "Ess"})
    # Each change carries the time of the other side's edit, as if both were made at once.
    w.apply(Change("ghl", "contacts", gid, g, updated_at=record_time(s["updatedAt"])))
    out = w.apply(Change("partner", "contacts", pid, s, updated_at=record_time(g["dateUpdated"])))
    assert out.action == "skip" and out.reason.startswith("older"), out
    got = w.rt.call("ghl.contacts.get", {"contactId": gid})["contact"]
    assert (got["firstName"], w.rt.call("superphone.contacts.get", {"id": pid})["firstName"]) == (
        "Gee",
        "Gee",
    )
