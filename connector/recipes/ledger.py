"""The step ledger: each completed step's output per (run id, step id, item), so a run re-run
under the same id skips what it already did.

A step without ``for_each`` is recorded under item :data:`WHOLE` (-1); each item of a
``for_each`` step under its index, and the step as a whole under :data:`WHOLE` once every item
is done. The engine writes a ledger row in the same transaction as the step's history row,
right after the step's effect.

Between a call and its ledger row a process can die. For a call that is safe to repeat (a
read, a PUT, an action declared ``retry_safe``) a resumed run simply makes it again. For one
that is not (a POST that creates), the engine first records an *intent*; a resumed run that
finds an intent without a ledger row does not guess: the step fails with "outcome unknown",
the run becomes a dead letter for a person to check, and ``ghl-connector replay`` (which clears
the intent) makes the call again when they say so. No effect is ever repeated silently.

Outputs are stored as JSON passed through :func:`connector.auth.redaction.redact`: a response that
echoes a credential is masked here too (a re-run then sees the mask, never the secret).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass

from connector.auth.redaction import redact
from connector.errors import StoreError
from connector.expressions.syntax import JSON
from connector.hookspecs import Action
from connector.store import Db, Store, upsert

__all__ = ["WHOLE", "Ledger", "LedgerKey", "Redacted", "repeat_safe"]

_UPSERT_LEDGER = upsert(
    "run_ledger", ("run_id", "step_id", "item", "output", "recorded_at"),
    ("run_id", "step_id", "item"),
)
_UPSERT_INTENT = upsert(
    "run_intents", ("run_id", "step_id", "item", "action", "started_at"),
    ("run_id", "step_id", "item"),
)
WHOLE = -1
"""The item index of a step as a whole (a step without ``for_each``, or all of its items)."""

LedgerKey = tuple[str, int]
"""(step id, item index)."""


@dataclass(frozen=True, slots=True)
class Redacted:
    """JSON text that has been through :func:`connector.auth.redaction.redact` already."""

    text: str


class Ledger:
    """The ``run_ledger`` table of a state file."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __repr__(self) -> str:
        return f"Ledger({self.store.where!r})"

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
                    f"{self.store.where}: run {run_id!r} step {row['step_id']!r}: the ledger "
                    f"holds unreadable output ({exc.msg})"
                ) from exc
        return found

    @staticmethod
    def write(
        db: Db, run_id: str, step_id: str, item: int, output: JSON | Redacted
    ) -> None:
        """Record one completed step (or item) inside the caller's transaction.

        :param output: the output, or its JSON text already passed through ``redact``.
        """
        text = output.text if isinstance(output, Redacted) else redact(json.dumps(output))
        db.execute(
            _UPSERT_LEDGER,
            (run_id, step_id, item, text, time.time()),
        )

    def intents(self, run_id: str) -> dict[LedgerKey, str]:
        """Calls of ``run_id`` that were started and never recorded: (step id, item) -> action."""
        rows = self.store.query(
            "SELECT step_id, item, action FROM run_intents WHERE run_id = ?", (run_id,)
        )
        return {(row["step_id"], int(row["item"])): str(row["action"]) for row in rows}

    def intend(self, run_id: str, step_id: str, item: int, action: str) -> None:
        """Record that a call not safe to repeat is about to be made (survives a killed process)."""
        with self.store.transaction(durable=False) as db:
            db.execute(
                _UPSERT_INTENT,
                (run_id, step_id, item, action, time.time()),
            )

    @staticmethod
    def settle(db: Db, run_id: str, step_id: str, item: int) -> None:
        """Forget the intent of a call whose outcome is now recorded (caller's transaction)."""
        db.execute(
            "DELETE FROM run_intents WHERE run_id = ? AND step_id = ? AND item = ?",
            (run_id, step_id, item),
        )

    @staticmethod
    def settle_run(db: Db, run_id: str) -> None:
        """Forget every intent of ``run_id`` (inside the caller's transaction)."""
        db.execute("DELETE FROM run_intents WHERE run_id = ?", (run_id,))

    def forget_intent(self, run_id: str, step_id: str, item: int) -> None:
        """Forget one intent (its call failed in a way that proves it changed nothing)."""
        with self.store.transaction(durable=False) as db:
            Ledger.settle(db, run_id, step_id, item)

    def forget_intents(self, run_id_prefix: str) -> int:
        """Drop the intents of runs whose id starts with ``run_id_prefix`` (a replay says: go)."""
        pattern = run_id_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return self.store.execute(
            "DELETE FROM run_intents WHERE run_id LIKE ? ESCAPE '\\'", (pattern + "%",)
        )

    @staticmethod
    def outputs(done: Mapping[LedgerKey, JSON], step_id: str) -> dict[int, JSON]:
        """The recorded items of one ``for_each`` step, by index."""
        return {item: out for (sid, item), out in done.items() if sid == step_id and item >= 0}


def repeat_safe(action: Action) -> bool:
    """Whether calling ``action`` twice does no more than calling it once.

    Reads and PUT/DELETE are; so is anything declared ``retry_safe`` (an upsert, adding tags).
    A POST (or a GraphQL mutation, or a generic request that is not a GET) is not.
    """
    if action.retry_safe:
        return True
    if action.kind == "graphql":
        return not bool(action.options.get("graphql", {}).get("mutation", False))
    if action.kind == "http_request":
        return False
    return action.method.upper() in ("GET", "HEAD", "PUT", "DELETE")
