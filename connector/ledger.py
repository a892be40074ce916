"""The step ledger: each completed step's output per (run id, step id, item), so a run re-run
under the same id skips what it already did.

A step without ``for_each`` is recorded under item :data:`WHOLE` (-1); each item of a
``for_each`` step under its index, and the step as a whole under :data:`WHOLE` once every item
is done. The engine writes a ledger row in the same transaction as the step's history row,
right after the step's effect, so a crash repeats at most the one call in flight.

Outputs are stored as JSON passed through :func:`connector.secrets.redact`: a response that
echoes a credential is masked here too (a re-run then sees the mask, never the secret).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass

from connector.errors import StoreError
from connector.secrets import redact
from connector.store import Store
from connector.syntax import JSON

__all__ = ["WHOLE", "Ledger", "LedgerKey", "Redacted"]

WHOLE = -1
"""The item index of a step as a whole (a step without ``for_each``, or all of its items)."""

LedgerKey = tuple[str, int]
"""(step id, item index)."""


@dataclass(frozen=True, slots=True)
class Redacted:
    """JSON text that has been through :func:`connector.secrets.redact` already."""

    text: str


class Ledger:
    """The ``run_ledger`` table of a state file."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __repr__(self) -> str:
        return f"Ledger({str(self.store.path)!r})"

    def done(self, run_id: str) -> dict[LedgerKey, JSON]:
        """Every output recorded for ``run_id``, by (step id, item).

        :raises StoreError: if a stored output is not JSON any more.
        """
        rows = self.store.query(
            "SELECT step_id, item, output FROM run_ledger WHERE run_id = ?", (run_id,)
        )
        found: dict[LedgerKey, JSON] = {}
        for row in rows:
            try:
                found[(row["step_id"], int(row["item"]))] = json.loads(row["output"])
            except json.JSONDecodeError as exc:
                raise StoreError(
                    f"{self.store.path}: run {run_id!r} step {row['step_id']!r}: the ledger "
                    f"holds unreadable output ({exc.msg})"
                ) from exc
        return found

    @staticmethod
    def write(
        db: sqlite3.Connection, run_id: str, step_id: str, item: int, output: JSON | Redacted
    ) -> None:
        """Record one completed step (or item) inside the caller's transaction.

        :param output: the output, or its JSON text already passed through ``redact``.
        """
        text = output.text if isinstance(output, Redacted) else redact(json.dumps(output))
        db.execute(
            "INSERT OR REPLACE INTO run_ledger (run_id, step_id, item, output, recorded_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (run_id, step_id, item, text, time.time()),
        )

    @staticmethod
    def outputs(done: Mapping[LedgerKey, JSON], step_id: str) -> dict[int, JSON]:
        """The recorded items of one ``for_each`` step, by index."""
        return {item: out for (sid, item), out in done.items() if sid == step_id and item >= 0}
