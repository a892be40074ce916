"""The convergence test's checks: both sides read back and compared in normalised form, as
the sync's policy says they must end (archived contacts, notes the partner cannot update)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from convergence_world import World

from connector.sync.audit import entries
from connector.sync.mapping import canonical

CONTACT_FIELDS = ("firstName", "lastName", "email", "phone")


def norm(record: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """``record``'s fields renamed to GHL names and put in canonical form."""
    return {ghl: canonical(ghl, record.get(own)) for ghl, own in names.items()}


def contact_norm(world: World, side: str, record: dict[str, Any]) -> dict[str, Any]:
    """A contact of ``side`` in canonical form under GHL names (tags included)."""
    names = {n: n for n in CONTACT_FIELDS}
    if side == "partner":
        names = {n: world.partner.contact_fields[n] for n in CONTACT_FIELDS}
    return norm(record, {**names, "tags": "tags"})


def task_norm(world: World, side: str, record: dict[str, Any]) -> dict[str, Any]:
    """A task of ``side`` in canonical form under GHL names (``completed`` as a bool)."""
    if side == "ghl":
        names = {n: n for n in world.partner.task_fields}
        return {**norm(record, names), "completed": record.get("completed") is True}
    found = norm(record, dict(world.partner.task_fields))
    return {**found, "completed": world.partner.done(record)}


def duplicates(records: list[dict[str, Any]]) -> list[str]:
    """E-mail addresses and phones held by more than one record."""
    seen: Counter[str] = Counter()
    for rec in records:
        for key in ("email", "phone"):
            value = canonical(key, rec.get(key))
            if isinstance(value, str):
                seen[f"{key}={value}"] += 1
    return sorted(k for k, n in seen.items() if n > 1)


def contact_mismatches(
    world: World, ghl: list[dict[str, Any]], partner: list[dict[str, Any]]
) -> list[str]:
    """Every way the two sides' contacts differ: unlinked records, links to missing records,
    linked pairs whose normalised fields differ, deleted pairs not gone (or archived)."""
    by_ghl = {str(r["id"]): r for r in ghl}
    by_partner = {str(r["id"]): r for r in partner}
    label = world.partner.label
    problems: list[str] = []
    for row in world.links("contacts"):
        g, p = by_ghl.pop(row["ghl_id"], None), by_partner.pop(row["partner_id"], None)
        if g is None or p is None:
            problems.append(
                f"contact link {row} has a side missing (ghl {g is not None}, "
                f"{label} {p is not None})"
            )
        elif contact_norm(world, "ghl", g) != contact_norm(world, "partner", p):
            problems.append(
                f"contact {row['ghl_id']}: {contact_norm(world, 'ghl', g)} != "
                f"{contact_norm(world, 'partner', p)}"
            )
    for row in world.dead_links("contacts"):
        problems += _deleted_pair(world, row, by_ghl, by_partner)
    problems += [f"GHL contact {i} is not linked" for i in sorted(by_ghl)]
    problems += [f"{label} contact {i} is not linked" for i in sorted(by_partner)]
    return problems


def _deleted_pair(
    world: World,
    row: dict[str, Any],
    by_ghl: dict[str, dict[str, Any]],
    by_partner: dict[str, dict[str, Any]],
) -> list[str]:
    """A pair deleted on one side: gone from both, or (archive policy) kept on the partner
    with the archive tag."""
    problems = []
    if by_ghl.pop(row["ghl_id"], None) is not None:
        problems.append(f"GHL contact {row['ghl_id']} is still there; its link is {row}")
    kept = by_partner.pop(row["partner_id"], None)
    tag = world.partner.archive_tag
    if tag is None and kept is not None:
        problems.append(f"partner contact {row['partner_id']} is still there; link {row}")
    elif tag is not None and (kept is None or tag not in (kept.get("tags") or [])):
        problems.append(f"partner contact {row['partner_id']} is not archived: {kept}")
    return problems


def child_mismatches(world: World, obj: str) -> list[str]:
    """Tasks or notes: each GHL child linked to an equal partner child, and each partner child
    linked to an equal GHL child, or to one the test deleted on GHL (policy: ignore)."""
    ghl: dict[str, dict[str, Any]] = {}
    partner: dict[str, dict[str, Any]] = {}
    for row in world.links("contacts"):
        ghl.update({str(r["id"]): r for r in world.ghl_children(obj, row["ghl_id"])})
        partner.update({str(r["id"]): r for r in world.partner_children(obj, row["partner_id"])})
    pairs = {r["ghl_id"]: r["partner_id"] for r in world.links(obj)}
    back = {p: g for g, p in pairs.items()}
    unwritable = _unwritable(world, obj)
    refused = _refused(world, obj)
    label, single = world.partner.label, obj[:-1]
    problems: list[str] = []
    for gid, rec in ghl.items():
        pid = pairs.get(gid)
        if pid is None or pid not in partner:
            problems.append(f"GHL {single} {gid} has no {label} twin ({pid})")
            continue
        mine, theirs = (
            _child_norm(world, obj, "ghl", rec),
            _child_norm(world, obj, "partner", partner[pid]),
        )
        if mine != theirs and gid not in unwritable:
            problems.append(f"{single} {gid}: {mine} != {theirs}")
    for pid in partner:
        twin = back.get(pid)
        if twin is None:
            if pid not in refused:
                problems.append(f"{label} {single} {pid} is not linked")
        elif twin not in ghl and twin not in world.tally.ghl_deleted_children:
            problems.append(f"{label} {single} {pid}: its GHL twin {twin} is gone")
    return problems + _created_as_written(world, obj, partner)


def _child_norm(world: World, obj: str, side: str, record: dict[str, Any]) -> dict[str, Any]:
    if obj == "tasks":
        return task_norm(world, side, record)
    return norm(record, {"body": "body"})


def pass_actions(outcomes: Iterable[Any]) -> set[str]:
    """The actions a polling pass decided, a seed task GHL's create refuses (no due date:
    this spec maps no default) counted as what it is every time, a failed write, apart:
    ``"refused"``. A pass over converged sides decides nothing but skips and these."""
    return {
        "refused" if o.action == "failed" and o.reason.startswith("cannot create on ghl")
        else o.action
        for o in outcomes
    }


def _refused(world: World, obj: str) -> set[str]:
    """Partner children GHL's create refuses (a seed task without the due date GHL needs):
    audited as failed writes, never linked."""
    return {
        str(e.partner_id)
        for e in entries(world.engine.store, obj=obj)
        if e.action == "failed" and e.reason.startswith("cannot create on ghl")
    }


def _unwritable(world: World, obj: str) -> set[str]:
    """GHL children whose change the partner could not take (audited as not writable)."""
    if obj != "notes" or world.partner.note_id is not None:
        return set()
    marker = f"not writable on {world.partner.app}: body"
    return {str(e.ghl_id) for e in entries(world.engine.store, obj=obj) if marker in e.reason}


def _created_as_written(world: World, obj: str, partner: dict[str, dict[str, Any]]) -> list[str]:
    """Notes the partner cannot update still hold exactly what they were created with."""
    if obj != "notes" or world.partner.note_id is not None:
        return []
    created = {
        str(e.partner_id): e.changes.get("body", (None, None))[1]
        for e in entries(world.engine.store, obj=obj)
        if e.action == "create"
    }
    return [
        f"{world.partner.label} note {pid}: {rec.get('body')!r} is not what it was created "
        f"with ({created.get(pid)!r})"
        for pid, rec in partner.items()
        if pid in created and rec.get("body") != created[pid]
    ]
