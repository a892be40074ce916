"""The sync id map: which GHL record is which partner record, plus what the sync last wrote.

One row per linked pair (per sync and object type), in the ``sync_links`` table of the state
file (:mod:`connector.store`, migration 4). Besides the two ids, a row keeps per side: the hashes
of the last few states the sync wrote there, newest first and space-separated in one column
(echo suppression, late webhooks of an earlier write included), that side's update time right
after the write (to tell our own write from a later edit), the source time of the change the
write applied, and the newest source time seen from that side (stale events).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from connector.store import Db, Store, upsert
from connector.sync.spec import Side

__all__ = ["ECHO_DEPTH", "IdMap", "Link", "links_of"]

ECHO_DEPTH = 8
"""How many written states per side a link remembers (a late webhook of an earlier write)."""

_COLUMNS = (
    "sync", "object", "ghl_id", "partner_id", "ghl_hash", "partner_hash", "ghl_written",
    "partner_written", "ghl_applied", "partner_applied", "ghl_seen", "partner_seen", "deleted",
)  # fmt: skip
_UPSERT = upsert("sync_links", (*_COLUMNS, "updated_at"), ("sync", "object", "ghl_id"))


@dataclass(frozen=True, slots=True)
class Link:
    """A linked pair of records and the sync's memory of both sides."""

    sync: str
    object: str
    ghl_id: str
    partner_id: str
    ghl_hash: str | None = None
    partner_hash: str | None = None
    ghl_written: float | None = None
    partner_written: float | None = None
    ghl_applied: float | None = None
    partner_applied: float | None = None
    ghl_seen: float | None = None
    partner_seen: float | None = None
    deleted: str | None = None

    def id(self, side: Side) -> str:
        """The record's id on ``side``."""
        return self.ghl_id if side == "ghl" else self.partner_id

    def hash(self, side: Side) -> str | None:
        """The hash of what the sync last wrote on ``side`` (None: nothing, or since edited)."""
        found = self.hashes(side)
        return found[0] if found else None

    def hashes(self, side: Side) -> tuple[str, ...]:
        """The hashes of the states the sync lately wrote on ``side``, newest first."""
        text = self.ghl_hash if side == "ghl" else self.partner_hash
        return tuple(text.split()) if text else ()

    def remembering(self, side: Side, digest: str) -> Link:
        """A copy noting that the sync wrote the state hashing to ``digest`` on ``side``, as
        the newest of the :data:`ECHO_DEPTH` states it remembers there."""
        kept = [digest, *(h for h in self.hashes(side) if h != digest)][:ECHO_DEPTH]
        return self.with_side(side, hash=" ".join(kept))

    def echoing(self, side: Side, digest: str, when: float | None) -> Link | None:
        """If ``digest`` (changed at ``when``) is a state the sync wrote on ``side`` lately, a
        copy forgetting the states written before it (``side`` has moved past them, so an edit
        back to one of them is a real change); else None. A state older than the latest write
        shown by a change made after that write is such an edit back, not an echo."""
        found = self.hashes(side)
        if digest not in found:
            return None
        index = found.index(digest)
        latest = self.written(side)
        if index and when is not None and latest is not None and when > latest:
            return None
        return self.with_side(side, hash=" ".join(found[: index + 1]))

    def written(self, side: Side) -> float | None:
        """``side``'s update time right after the sync's last write there."""
        return self.ghl_written if side == "ghl" else self.partner_written

    def applied(self, side: Side) -> float | None:
        """The source time of the change the sync's last write on ``side`` carried."""
        return self.ghl_applied if side == "ghl" else self.partner_applied

    def seen(self, side: Side) -> float | None:
        """The newest source time of a change seen from ``side``."""
        return self.ghl_seen if side == "ghl" else self.partner_seen

    def noting(self, side: Side, when: float | None, *, echo: bool = False) -> Link:
        """A copy noting a change from ``side`` at ``when`` (the newest time seen is kept); a
        genuine change (not an echo) also forgets the echo hash, as ``side`` now holds other
        values than the sync wrote."""
        seen = self.seen(side)
        newest = when if seen is None or (when is not None and when > seen) else seen
        if echo:
            return self.with_side(side, seen=newest)
        return self.with_side(side, seen=newest, hash=None)

    def last_changed(
        self, side: Side, stamp: float | None, held: str | None = None
    ) -> float | None:
        """When ``side``'s record, whose update time is now ``stamp`` and whose synced fields
        hash to ``held``, was last changed by someone else: if the sync was the last writer
        (``stamp`` is the time it saw after its write, or the record still holds exactly what
        the sync last wrote: a save that changed none of those fields), the source time of
        the change it wrote."""
        applied = self.applied(side)
        if applied is None or stamp is None:
            return stamp
        if stamp == self.written(side) or (held is not None and held == self.hash(side)):
            return applied
        return stamp

    def with_side(self, side: Side, **values: float | str | None) -> Link:
        """A copy with ``hash``/``written``/``applied``/``seen`` of ``side`` replaced."""
        changes: dict[str, Any] = {f"{side}_{k}": v for k, v in values.items()}
        return dataclasses.replace(self, **changes)


def links_of(store: Store, ids: Sequence[str], limit: int = 100) -> list[Link]:
    """The links, across every sync, whose GHL or partner id is one of ``ids``."""
    wanted = list(dict.fromkeys(ids))[:limit]
    if not wanted:
        return []
    marks = ", ".join("?" * len(wanted))
    rows = store.query(
        f"SELECT {', '.join(_COLUMNS)} FROM sync_links WHERE ghl_id IN ({marks})"
        f" OR partner_id IN ({marks}) ORDER BY sync, object LIMIT ?",
        (*wanted, *wanted, limit),
    )
    return [Link(*(row[c] for c in _COLUMNS)) for row in rows]


class IdMap:
    """The links of one sync, read from and written to the state file."""

    def __init__(self, store: Store, sync: str) -> None:
        self.store = store
        self.sync = sync

    def find(self, obj: str, side: Side, record_id: str) -> Link | None:
        """The link of the record ``record_id`` on ``side``, or None."""
        column = "ghl_id" if side == "ghl" else "partner_id"
        rows = self.store.query(
            f"SELECT {', '.join(_COLUMNS)} FROM sync_links"
            f" WHERE sync = ? AND object = ? AND {column} = ?",
            (self.sync, obj, record_id),
        )
        return Link(*(rows[0][c] for c in _COLUMNS)) if rows else None

    def count(self, obj: str | None = None) -> int:
        """How many links the sync holds (for one object type, or all)."""
        sql = "SELECT COUNT(*) AS n FROM sync_links WHERE sync = ?"
        params: tuple[str, ...] = (self.sync,)
        if obj is not None:
            sql += " AND object = ?"
            params += (obj,)
        return int(self.store.query(sql, params)[0]["n"])

    @staticmethod
    def save(db: Db, link: Link) -> None:
        """Insert or replace ``link`` inside the caller's transaction."""
        values = [getattr(link, c) for c in _COLUMNS]
        # As SQLite's INSERT OR REPLACE did: a link holding the partner id goes first.
        db.execute(
            "DELETE FROM sync_links WHERE sync = ? AND object = ? AND partner_id = ?"
            " AND ghl_id <> ?",
            (link.sync, link.object, link.partner_id, link.ghl_id),
        )
        db.execute(_UPSERT, (*values, time.time()))
