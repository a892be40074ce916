"""Leases: a named job (a poller) run by one holder at a time, across every process on a store.

A lease is a row of ``leases``: ``name``, ``holder`` and ``expires``. :meth:`Leases.acquire`
takes it when it is free or expired, or renews it for its holder, in one upsert
(``INSERT ... ON CONFLICT DO UPDATE ... WHERE``), atomic on SQLite and PostgreSQL alike. A
holder that dies stops renewing, and the next process asking after ``expires`` takes the job
over; a holder that stops cleanly releases it at once.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass

from connector.store import Store

__all__ = ["Lease", "Leases", "holder_name"]

_ACQUIRE = (
    "INSERT INTO leases (name, holder, expires, taken_at) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires = excluded.expires,"
    " taken_at = CASE WHEN leases.holder = excluded.holder THEN leases.taken_at"
    " ELSE excluded.taken_at END"
    " WHERE leases.holder = excluded.holder OR leases.expires <= ?"
)


def holder_name(what: str = "") -> str:
    """A holder name unique to this process and object: ``host:pid:what:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{what}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class Lease:
    """Who holds a lease, until when, and since when (epoch seconds)."""

    name: str
    holder: str
    expires: float
    taken_at: float


class Leases:
    """The ``leases`` table of a store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __repr__(self) -> str:
        return f"Leases({self.store!r})"

    def acquire(self, name: str, holder: str, ttl: float, *, now: float | None = None) -> bool:
        """Take or renew ``name`` for ``holder`` for ``ttl`` seconds; False if another holder
        has it and it has not expired.

        :raises StoreError: the store failed.
        """
        if ttl <= 0:
            raise ValueError(f"Leases.acquire: ttl must be positive, got {ttl!r}")
        moment = time.time() if now is None else now
        with self.store.transaction() as db:
            taken = db.execute(_ACQUIRE, (name, holder, moment + ttl, moment, moment)).rowcount
        return taken == 1

    def release(self, name: str, holder: str) -> bool:
        """Give ``name`` up if ``holder`` has it; False if it did not."""
        return self.store.execute(
            "DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder)
        ) == 1

    def get(self, name: str) -> Lease | None:
        """The lease ``name`` as stored (expired or not), or None."""
        rows = self.store.query(
            "SELECT name, holder, expires, taken_at FROM leases WHERE name = ?", (name,)
        )
        if not rows:
            return None
        row = rows[0]
        return Lease(str(row[0]), str(row[1]), float(row[2]), float(row[3]))
