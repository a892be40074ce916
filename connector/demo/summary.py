"""The demo's closing report: what each sync did (from its audit trail), how fast, and whether
both sides ended up as the sync's policy says they should.

:func:`converged` reads every linked pair back from both apps and lists each difference that
the policy does not explain; :func:`report` prints the summary rows and returns whether all
went well.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from connector.demo.relay import WRITES, Applied
from connector.demo.scenario import Cast
from connector.errors import RemoteError
from connector.runtime import Runtime
from connector.sync.audit import entries
from connector.sync.mapping import canonical, read_field
from connector.sync.spec import Side

__all__ = ["Check", "Health", "converged", "report"]


@dataclass(frozen=True, slots=True)
class Check:
    """The convergence check of one sync: pairs compared, and every problem found."""

    sync: str
    pairs: int
    problems: tuple[str, ...]
    conflict: str = ""


@dataclass(frozen=True, slots=True)
class Health:
    """What went wrong outside the syncs: 429 answers per app, webhooks the relay rejected,
    deliveries the sandboxes dropped, and waits that never settled."""

    throttled: dict[str, int]
    rejected: int
    dropped: int
    unsettled: int

    @property
    def ok(self) -> bool:
        """Whether nothing went wrong."""
        return not (any(self.throttled.values()) or self.rejected or self.dropped or self.unsettled)


def converged(runtime: Runtime, cast: Cast) -> Check:
    """Compare every linked contact, the story's tasks, its conflict and its delete."""
    engine, kit, exp = cast.engine, cast.kit, cast.expected
    problems: list[str] = []
    conflict = ""
    rows = engine.store.query(
        "SELECT ghl_id, partner_id, deleted FROM sync_links WHERE sync = ? AND object = ?",
        [engine.spec.name, "contacts"],
    )
    for row in rows:
        ghl_id, partner_id = str(row["ghl_id"]), str(row["partner_id"])
        partner = kit.get_contact(runtime, partner_id)
        if row["deleted"]:
            problems.extend(_deleted(cast, ghl_id, partner))
            continue
        ghl = _ghl_contact(runtime, ghl_id)
        if ghl is None or partner is None:
            problems.append(f"contact {ghl_id}/{partner_id}: missing on one side")
            continue
        diff = _unexplained(cast, ghl, partner)
        if diff:
            problems.append(f"contact {ghl_id}/{partner_id} differs: {diff}")
        if ghl_id == exp.conflict_ghl_id:
            names = (ghl.get("firstName"), ghl.get("lastName"))
            conflict = (
                f"{names[0]!r} (the later edit, in {kit.app}) {names[1]!r} (GHL owns the last "
                f"name) on both sides"
            )
            if names != (exp.conflict_first, exp.conflict_last):
                problems.append(f"conflict on {ghl_id} resolved as {names!r}")
    for contact_id, task_id in exp.tasks:
        task = runtime.call("ghl.tasks.get", {"contactId": contact_id, "taskId": task_id})["task"]
        copy = kit.get_task(runtime, cast.partner_id("tasks", task_id))
        if not (task.get("completed") and kit.task_done(copy)):
            problems.append(f"task {task_id} is not completed on both sides")
    if exp.deleted_ghl_id and engine.ids.find("contacts", "ghl", exp.deleted_ghl_id) is None:
        problems.append(f"deleted contact {exp.deleted_ghl_id} was never linked")
    return Check(engine.spec.name, len(rows), tuple(problems), conflict)


def _unexplained(cast: Cast, ghl: dict[str, Any], partner: dict[str, Any]) -> list[str]:
    """Fields whose values differ between the two sides, except a field owned by one side
    (``source_of_truth``) that the owner leaves empty: the sync never copies it from the other
    side, so the other side keeps its own value."""
    obj = cast.engine.spec.objects["contacts"]
    region = cast.engine.spec.phone_region
    records: dict[Side, dict[str, Any]] = {"ghl": ghl, "partner": partner}
    found = []
    for fmap in obj.fields:
        values = {side: read_field(records[side], fmap.name(side) or "") for side in records}
        same = canonical(fmap.ghl or "", values["ghl"], region) == canonical(
            fmap.ghl or "", values["partner"], region
        )
        owner = fmap.source_of_truth
        if same or (owner and canonical(fmap.ghl or "", values[owner], region) is None):
            continue
        found.append(str(fmap.ghl))
    return sorted(found)


def _deleted(cast: Cast, ghl_id: str, partner: dict[str, Any] | None) -> list[str]:
    obj = cast.engine.spec.objects["contacts"]
    if obj.delete == "propagate" and cast.kit.can_delete and partner is not None:
        return [f"contact {ghl_id}: deleted in GHL but still in {cast.kit.app}"]
    if obj.delete == "archive" and (partner is None or obj.archive_tag not in partner["tags"]):
        return [f"contact {ghl_id}: deleted in GHL but not tagged {obj.archive_tag!r}"]
    return []


def _ghl_contact(runtime: Runtime, contact_id: str) -> dict[str, Any] | None:
    try:
        found = runtime.call("ghl.contacts.get", {"contactId": contact_id})
    except RemoteError as exc:
        if exc.status in (400, 404):
            return None
        raise
    contact = found.get("contact")
    return dict(contact) if isinstance(contact, dict) else None


def report(
    out: TextIO,
    casts: Sequence[Cast],
    applied: Sequence[Applied],
    checks: Sequence[Check],
    health: Health,
) -> bool:
    """Print the summary; returns whether everything converged with no error and no 429."""
    rows: list[tuple[str, str]] = []
    for cast in casts:
        rows.extend(_sync_rows(cast))
    latencies = sorted(a.latency for a in applied if a.latency is not None)
    if latencies:
        p50 = statistics.median(latencies) * 1000
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
        rows.append(
            (
                "latency change -> sync write",
                f"p50 {p50:.0f} ms, p99 {p99:.0f} ms ({len(latencies)} webhook-driven writes)",
            )
        )
    errors = [a for a in applied if a.error]
    rows.append(("429 answers", ", ".join(f"{k} {v}" for k, v in health.throttled.items())))
    rows.append(("webhooks rejected / failed", f"{health.rejected} / {len(errors)}"))
    rows.append(("webhooks dropped / unsettled waits", f"{health.dropped} / {health.unsettled}"))
    for check in checks:
        verdict = "yes" if not check.problems else f"NO ({len(check.problems)} problems)"
        rows.append((f"converged {check.sync}", f"{verdict}, {check.pairs} contact pairs checked"))
        if check.conflict:
            rows.append(("  conflicting edits ended as", check.conflict))
    ok = not errors and health.ok and all(not c.problems for c in checks)
    rows.append(("result", "OK" if ok else "FAILED"))
    out.write("\nsummary\n")
    for label, value in rows:
        out.write(f"  {label:<38}{value}\n")
    for check in checks:
        for problem in check.problems[:10]:
            out.write(f"  problem: {check.sync}: {problem}\n")
    for failed in errors[:10]:
        out.write(f"  error: {failed.sync}: {failed.error}\n")
    return ok


def _sync_rows(cast: Cast) -> list[tuple[str, str]]:
    name, app = cast.engine.spec.name, cast.kit.app
    found = entries(cast.engine.store, sync=name)
    rows = []
    for direction in (f"ghl->{app}", f"{app}->ghl"):
        done = Counter(e.action for e in found if e.direction == direction and e.action in WRITES)
        detail = ", ".join(f"{n} {action}d" for action, n in sorted(done.items()))
        by_obj = Counter(e.object for e in found if e.direction == direction and e.action in WRITES)
        objs = ", ".join(f"{n} {o}" for o, n in sorted(by_obj.items()))
        label = f"synced {direction.replace('->', ' -> ')}"
        rows.append((label, f"{sum(done.values())} ({detail}; {objs})" if done else "0"))
    paired = sum(1 for e in found if e.action == "link" or e.reason.startswith("matched by"))
    rows.append((f"paired at first sync ({app})", str(paired)))
    conflicts = [e for e in found if e.reason.startswith("older")]
    how = Counter(
        "source of truth" if "source of truth" in e.reason else "last writer wins"
        for e in conflicts
    )
    text = ", ".join(f"{n} by {k}" for k, n in sorted(how.items()))
    rows.append(
        (f"conflicts resolved ({app})", f"{len(conflicts)}" + (f" ({text})" if text else ""))
    )
    for e in conflicts:
        fields = ", ".join(sorted(e.changes)) or "nothing"
        rows.append(("", f"{e.direction} {e.object} {e.ghl_id}: {e.reason}; wrote {fields}"))
    echoes = sum(1 for e in found if e.reason.startswith("echo"))
    rows.append((f"echo writes suppressed ({app})", str(echoes)))
    deletes = Counter(
        f"{e.direction} {e.reason}" for e in found if e.action in ("delete", "archive")
    )
    text = ", ".join(f"{n} x {reason}" for reason, n in sorted(deletes.items()))
    rows.append((f"deletes ({app})", f"{sum(deletes.values())}" + (f" ({text})" if text else "")))
    return rows
