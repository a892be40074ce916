"""The sync audit trail: every change the sync made or skipped, why, and what it changed.

Rows live in the ``sync_audit`` table (:mod:`connector.store`, migration 4) and are written in
the same transaction as the id-map update they explain. ``changes`` holds, per changed field,
the value before and after, for mapped fields only; values of secret-looking fields and of
fields a sync lists under ``redact`` are stored as ``****``. ``ghl-connector audit`` lists and
exports them (:mod:`connector.cli.audit`).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from connector.activity import BUS
from connector.expressions.syntax import JSON
from connector.store import Db, Row, Store

__all__ = [
    "FIELDS", "MASK", "AuditEntry", "entries", "mentioning", "of_records", "record", "redacted",
    "write_csv", "write_jsonl",
]  # fmt: skip

MASK = "****"
FIELDS = (
    "id", "at", "sync", "event_id", "object", "direction", "action", "reason", "ghl_id",
    "partner_id", "changes",
)  # fmt: skip
"""The columns of an export, in order."""

_SECRET = re.compile(r"token|secret|password|passwd|api_?key|authorization|ssn", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One decision: ``action`` is create, update, delete, archive, link, skip or
    failed (a write the other app refused); ``reason``
    says why; ``changes`` maps a field to ``[before, after]``."""

    at: float
    sync: str
    event_id: str | None
    object: str
    direction: str
    action: str
    reason: str
    ghl_id: str | None
    partner_id: str | None
    changes: Mapping[str, tuple[JSON, JSON]]
    id: int | None = None

    def as_json(self) -> dict[str, Any]:
        """The entry as plain JSON, time in ISO 8601 UTC."""
        moment = datetime.fromtimestamp(self.at, UTC).isoformat(timespec="milliseconds")
        return {
            "id": self.id, "at": moment.replace("+00:00", "Z"), "sync": self.sync,
            "event_id": self.event_id, "object": self.object, "direction": self.direction,
            "action": self.action, "reason": self.reason, "ghl_id": self.ghl_id,
            "partner_id": self.partner_id,
            "changes": {k: list(v) for k, v in self.changes.items()},
        }  # fmt: skip


def redacted(
    changes: Mapping[str, tuple[JSON, JSON]], extra: Iterable[str] = ()
) -> dict[str, tuple[JSON, JSON]]:
    """``changes`` with the values of secret-looking fields and of ``extra`` fields masked."""
    hidden = set(extra)
    out: dict[str, tuple[JSON, JSON]] = {}
    for name, (before, after) in changes.items():
        if name in hidden or _SECRET.search(name):
            out[name] = (None if before is None else MASK, None if after is None else MASK)
        else:
            out[name] = (before, after)
    return out


def record(db: Db, entry: AuditEntry) -> None:
    """Append ``entry`` inside the caller's transaction."""
    db.execute(
        "INSERT INTO sync_audit (at, sync, event_id, object, direction, action, reason,"
        " ghl_id, partner_id, changes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            entry.at,
            entry.sync,
            entry.event_id,
            entry.object,
            entry.direction,
            entry.action,
            entry.reason,
            entry.ghl_id,
            entry.partner_id,
            json.dumps({k: list(v) for k, v in entry.changes.items()}, sort_keys=True),
        ),
    )
    BUS.publish("sync", status=entry.action, sync=entry.sync, object=entry.object,
                direction=entry.direction, reason=entry.reason, ghl_id=entry.ghl_id,
                partner_id=entry.partner_id, contact=entry.ghl_id, fields=sorted(entry.changes))


def entries(
    store: Store,
    *,
    obj: str | None = None,
    since: float | None = None,
    sync: str | None = None,
    limit: int | None = None,
) -> list[AuditEntry]:
    """Audit entries, oldest first, filtered by object type, time and sync name.

    :param limit: keep only the newest ``limit`` entries (still oldest first).
    """
    where: list[str] = []
    params: list[Any] = []
    for column, value in (("object", obj), ("sync", sync)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if since is not None:
        where.append("at >= ?")
        params.append(since)
    sql = "SELECT * FROM sync_audit"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY at DESC, id DESC"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    rows = store.query(sql, params)
    return [_entry(row) for row in reversed(rows)]


def mentioning(store: Store, text: str, *, limit: int = 50) -> list[AuditEntry]:
    """The newest entries whose record ids or changed values contain ``text`` (an e-mail
    address, a phone number, an id), or that were linked by matching it (``matched by email
    gil@example.com`` in the reason: a link that changed nothing records no values), newest
    first."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = "%" + escaped + "%"
    matched = "%matched%by % " + escaped + "%"
    rows = store.query(
        # LOWER on both sides: SQLite's LIKE ignores ASCII case, PostgreSQL's does not.
        "SELECT * FROM sync_audit WHERE LOWER(changes) LIKE LOWER(?) ESCAPE '\\'"
        " OR LOWER(reason) LIKE LOWER(?) ESCAPE '\\' OR ghl_id = ? OR partner_id = ?"
        " ORDER BY at DESC, id DESC LIMIT ?",
        (pattern, matched, text, text, limit),
    )
    return [_entry(row) for row in rows]


def of_records(store: Store, ids: Iterable[str], *, limit: int = 200) -> list[AuditEntry]:
    """The audit trail of the records ``ids`` (GHL or partner ids), newest first."""
    wanted = list(dict.fromkeys(ids))[:100]
    if not wanted:
        return []
    marks = ", ".join("?" * len(wanted))
    rows = store.query(
        f"SELECT * FROM sync_audit WHERE ghl_id IN ({marks}) OR partner_id IN ({marks})"
        " ORDER BY at DESC, id DESC LIMIT ?",
        (*wanted, *wanted, limit),
    )
    return [_entry(row) for row in rows]


def _entry(row: Row) -> AuditEntry:
    changes = {k: (v[0], v[1]) for k, v in json.loads(row["changes"]).items()}
    return AuditEntry(
        at=row["at"], sync=row["sync"], event_id=row["event_id"], object=row["object"],
        direction=row["direction"], action=row["action"], reason=row["reason"],
        ghl_id=row["ghl_id"], partner_id=row["partner_id"], changes=changes, id=row["id"],
    )  # fmt: skip


def write_jsonl(found: Iterable[AuditEntry], out: TextIO) -> None:
    """One JSON object per line."""
    for entry in found:
        out.write(json.dumps(entry.as_json(), sort_keys=True) + "\n")


def write_csv(found: Iterable[AuditEntry], out: TextIO) -> None:
    """CSV with a header row; ``changes`` is a JSON object in its cell."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FIELDS)
    for entry in found:
        data = entry.as_json()
        data["changes"] = json.dumps(data["changes"], sort_keys=True)
        writer.writerow(["" if data[f] is None else data[f] for f in FIELDS])
