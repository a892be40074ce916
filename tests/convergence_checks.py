"""The convergence test's checks: both sides read back and compared in normalised form."""

from __future__ import annotations

from collections import Counter
from typing import Any

from convergence_world import World

from connector.syncmap import canonical

CONTACT_FIELDS = ("firstName", "lastName", "email", "phone", "tags")
TASK_FIELDS = {
    "title": "title",
    "body": "description",
    "dueDate": "dueAt",
    "completed": "completed",
}


def norm(record: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """``record``'s fields renamed to GHL names and put in canonical form."""
    return {ghl: canonical(ghl, record.get(own)) for ghl, own in names.items()}


def contact_norm(record: dict[str, Any]) -> dict[str, Any]:
    """A contact (either side: both use the same field names) in canonical form."""
    return norm(record, {n: n for n in CONTACT_FIELDS})


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
    world: World, ghl: list[dict[str, Any]], sp: list[dict[str, Any]]
) -> list[str]:
    """Every way the two sides' contacts differ: unlinked records, links to missing records,
    linked pairs whose normalised fields differ."""
    by_ghl = {str(r["id"]): r for r in ghl}
    by_sp = {str(r["id"]): r for r in sp}
    problems: list[str] = []
    linked_ghl: set[str] = set()
    linked_sp: set[str] = set()
    for row in world.links("contacts"):
        g, p = by_ghl.get(row["ghl_id"]), by_sp.get(row["partner_id"])
        linked_ghl.add(row["ghl_id"])
        linked_sp.add(row["partner_id"])
        if g is None or p is None:
            problems.append(
                f"contact link {row} has a side missing (ghl {g is not None}, sp {p is not None})"
            )
        elif contact_norm(g) != contact_norm(p):
            problems.append(f"contact {row['ghl_id']}: {contact_norm(g)} != {contact_norm(p)}")
    problems += [f"GHL contact {i} is not linked" for i in sorted(set(by_ghl) - linked_ghl)]
    problems += [f"SuperPhone contact {i} is not linked" for i in sorted(set(by_sp) - linked_sp)]
    return problems


def child_mismatches(world: World, obj: str) -> list[str]:
    """Tasks or notes: each GHL child linked to an equal SuperPhone child, and each SuperPhone
    child linked to an equal GHL child, or to one the test deleted on GHL (policy: ignore)."""
    names = TASK_FIELDS if obj == "tasks" else {"body": "body"}
    ghl: dict[str, dict[str, Any]] = {}
    sp: dict[str, dict[str, Any]] = {}
    for row in world.links("contacts"):
        ghl.update({str(r["id"]): r for r in world.ghl_children(obj, row["ghl_id"])})
        sp.update({str(r["id"]): r for r in world.sp_children(obj, row["partner_id"])})
    pairs = {r["ghl_id"]: r["partner_id"] for r in world.links(obj)}
    back = {p: g for g, p in pairs.items()}
    problems: list[str] = []
    for gid, rec in ghl.items():
        pid = pairs.get(gid)
        if pid is None or pid not in sp:
            problems.append(f"GHL {obj[:-1]} {gid} has no SuperPhone twin ({pid})")
        elif norm(rec, {n: n for n in names}) != norm(sp[pid], names):
            problems.append(
                f"{obj[:-1]} {gid}: {norm(rec, {n: n for n in names})} != {norm(sp[pid], names)}"
            )
    for pid in sp:
        twin = back.get(pid)
        if twin is None:
            problems.append(f"SuperPhone {obj[:-1]} {pid} is not linked")
        elif twin not in ghl and twin not in world.tally.ghl_deleted_children:
            problems.append(f"SuperPhone {obj[:-1]} {pid}: its GHL twin {twin} is gone")
    return problems
