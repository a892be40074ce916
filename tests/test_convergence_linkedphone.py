"""Convergence of the two-way sync (GHL <-> LinkedPhone, real sandboxes over HTTP): a seeded
run of 1,000+ interleaved edits on both sides, delivered by webhooks (some dropped, some
duplicated, reordered) plus polling passes, ends with both sides holding what the policy says
(LinkedPhone cannot delete contacts nor update notes), no duplicates, no echo loop and an
audit row for every change."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from clocks import SteppedClock
from convergence_checks import pass_actions
from convergence_partner import LINKEDPHONE
from convergence_poll import poll
from convergence_run import Plan, converge, open_world, settle
from convergence_world import World

from connector.sandbox.linkedphone.server import LinkedPhoneSandboxServer
from connector.sandbox.server import SandboxServer
from connector.sync.audit import entries
from connector.sync.engine import Change

pytestmark = pytest.mark.slow  # `pytest -m 'not slow'` leaves it out of the quick loop

SEED = 20261124
KINDS = [
    ("ghl_create", 3), ("partner_create", 3), ("twin_create", 1),
    ("ghl_update", 10), ("partner_update", 10), ("same_record", 6),
    ("ghl_tags", 6), ("partner_tags", 6),
    ("ghl_note", 5), ("partner_note", 5), ("ghl_note_update", 3),
    ("ghl_task", 5), ("partner_task", 5), ("ghl_task_update", 5), ("partner_task_update", 5),
    ("ghl_child_delete", 2), ("ghl_delete", 2.4),
]  # fmt: skip
"""Edit kinds and their weights: LinkedPhone has no note update and no contact delete."""
PLAN = Plan(seed=SEED, edits=1000, kinds=KINDS)


@pytest.fixture
def world(ghl: SandboxServer, lp: LinkedPhoneSandboxServer, tmp_path: Path) -> Iterator[World]:
    """Both sandboxes (limits raised, webhooks to a fresh inbox), a runtime and an engine."""
    with open_world(SEED, ghl, LINKEDPHONE, lp, tmp_path) as w:
        yield w


def test_convergence_linkedphone_thousand_edits_both_sides(world: World) -> None:
    """1,000+ seeded edits on both sides, webhooks dropped/duplicated/reordered plus polling:
    both sides end as the policy says, with no duplicates, no echo loop and a full audit."""
    print(converge(world, PLAN))


# -- what LinkedPhone does differently, one by one -------------------------------------------


def linked_contact(w: World) -> tuple[str, str]:
    """A GHL contact created and synced: (GHL id, LinkedPhone id)."""
    made = w.rt.call("ghl.contacts.create", {"firstName": "Una", "email": "una@example.org"})
    out = w.apply(Change("ghl", "contacts", made["contact"]["id"], made["contact"]))
    settle(w)
    return str(out.ghl_id), str(out.partner_id)


def test_convergence_linkedphone_ghl_delete_archives(world: World) -> None:
    """LinkedPhone cannot delete: a GHL delete tags its twin `deleted-in-ghl`, and neither
    that write's webhook nor a later poll writes anything more."""
    w = world
    poll(w)  # the first sync: seed records paired or created
    gid, pid = linked_contact(w)
    w.rt.call("ghl.contacts.delete", {"contactId": gid})
    settle(w)
    kept = w.rt.call("linkedphone.contacts.get", {"contact_id": pid})["contact"]
    assert kept["tags"] == ["deleted-in-ghl"] and kept["email"] == "una@example.org"
    assert w.dead_links("contacts") == [{"ghl_id": gid, "partner_id": pid, "deleted": "ghl"}]
    frozen = w.writes()
    assert pass_actions(poll(w)) <= {"skip", "refused"}
    settle(w)
    assert w.writes() == frozen


def test_convergence_linkedphone_note_update_is_audited_not_written(world: World) -> None:
    """LinkedPhone notes cannot be updated: a GHL note edit is audited as not writable, the
    LinkedPhone note keeps its body and no request is sent for it."""
    w = world
    gid, pid = linked_contact(w)
    note = w.rt.call("ghl.notes.create", {"contactId": gid, "body": "hello"})["note"]
    settle(w)
    writes = w.writes()[1]
    w.rt.call("ghl.notes.update", {"contactId": gid, "id": note["id"], "body": "hello again"})
    settle(w)
    assert [n["body"] for n in w.partner_children("notes", pid)] == ["hello"]
    assert w.writes()[1] == writes
    last = entries(w.engine.store, obj="notes")[-1]
    assert (last.action, last.ghl_id) == ("skip", note["id"])
    assert last.reason.endswith("not writable on linkedphone: body"), last.reason


def test_convergence_linkedphone_tasks_complete_both_ways(world: World) -> None:
    """A LinkedPhone task completed there (status) is done on GHL, and a GHL completion
    sets the LinkedPhone status to completed."""
    w = world
    gid, pid = linked_contact(w)
    due = "2026-12-01T10:00:00Z"
    mine = w.rt.call("linkedphone.tasks.create", {"contact_id": pid, "title": "Lp", "due_at": due})
    theirs = w.rt.call(
        "ghl.tasks.create", {"contactId": gid, "title": "Gh", "dueDate": due, "completed": False}
    )["task"]
    settle(w)
    w.rt.call("linkedphone.tasks.complete", {"task_id": mine["task"]["id"]})
    w.rt.call("ghl.tasks.complete", {"contactId": gid, "taskId": theirs["id"], "completed": True})
    settle(w)
    ghl = {t["title"]: t["completed"] for t in w.ghl_children("tasks", gid)}
    lp = {t["title"]: t["status"] for t in w.partner_children("tasks", pid)}
    assert (ghl, lp) == ({"Lp": True, "Gh": True}, {"Lp": "completed", "Gh": "completed"})


def test_convergence_linkedphone_noop_save_does_not_freeze_a_ghl_edit(world: World) -> None:
    """A LinkedPhone save that changes nothing, made just after a GHL edit, leaves the two
    sides equal (the random run found them apart forever)."""
    w = world
    clock = SteppedClock()
    for sandbox in (w.ghl, w.peer):
        sandbox.use_clock(clock)  # both sides stamp by one clock, stepped below
    gid, pid = linked_contact(w)
    w.rt.call("ghl.contacts.update", {"contactId": gid, "firstName": "Ann"})
    settle(w)  # LinkedPhone now says Ann, written by the sync
    w.rt.call("ghl.contacts.update", {"contactId": gid, "firstName": "Bea"})
    clock.advance()  # the save below is later than the GHL edit
    w.rt.call("linkedphone.contacts.update", {"contact_id": pid, "first_name": "Ann"})
    settle(w)
    poll(w)
    settle(w)
    ghl = w.rt.call("ghl.contacts.get", {"contactId": gid})["contact"]["firstName"]
    lp = w.rt.call("linkedphone.contacts.get", {"contact_id": pid})["contact"]["first_name"]
    assert ghl == lp
