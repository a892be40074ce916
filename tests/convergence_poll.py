"""The convergence test's polling pass: every record of both sides applied as a change, and
linked records missing from a listing applied as deletes (what a lost webhook leaves undone)."""

from __future__ import annotations

from typing import Any

from convergence_world import World

from connector.errors import RemoteError
from connector.sync.engine import Change, Outcome
from connector.sync.spec import Side


def poll(w: World) -> list[Outcome]:
    """One reconciliation pass over contacts, then their tasks and notes; its outcomes."""
    before = len(w.tally.outcomes)
    known = w.links("contacts")  # links made during this pass are not checked for deletes
    listed: dict[Side, list[dict[str, Any]]] = {
        "ghl": w.ghl_contacts(),
        "partner": w.partner_contacts(),
    }
    for side in ("ghl", "partner"):
        for rec in listed[side]:
            _apply(w, Change(side, "contacts", str(rec["id"]), rec, event_id="poll"))
    present = {s: {str(r["id"]) for r in listed[s]} for s in listed}
    _contact_deletes(w, known, present)
    for obj in ("tasks", "notes"):
        _children(w, obj)
    return w.tally.outcomes[before:]


def _apply(w: World, change: Change) -> None:
    w.tally.polled += 1
    w.apply(change)


def _contact_deletes(w: World, known: list[dict[str, Any]], present: dict[Side, set[str]]) -> None:
    """Contacts linked before the listing that it no longer holds were deleted."""
    for row in known:
        if row["ghl_id"] not in present["ghl"]:
            _apply(w, Change("ghl", "contacts", row["ghl_id"], None, event_id="poll"))
        elif row["partner_id"] not in present["partner"]:
            _apply(w, Change("partner", "contacts", row["partner_id"], None, event_id="poll"))


def _children(w: World, obj: str) -> None:
    """Each linked contact's tasks or notes on both sides."""
    present: set[str] = set()
    for row in w.links("contacts"):
        for side in ("ghl", "partner"):
            own = str(row["ghl_id" if side == "ghl" else "partner_id"])
            try:
                found = w.children(side, obj, own)
            except RemoteError:
                continue  # the contact is gone: its delete is applied by this or the next pass
            for rec in found:
                present.add(str(rec["id"]))
                _apply(w, Change(side, obj, str(rec["id"]), rec, event_id="poll", parent_id=own))
    # GHL children the test deleted on their own whose delete webhook may have been dropped.
    for row in w.links(obj):
        if row["ghl_id"] not in present and row["ghl_id"] in w.tally.ghl_deleted_children:
            _apply(w, Change("ghl", obj, row["ghl_id"], None, event_id="poll"))
