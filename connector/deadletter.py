"""The dead-letter list: events the service gave up on, and re-queuing them (``replay``).

An inbox event is *dead* (status ``dead``) when one of its recipe runs ended ``dead_letter``,
when its payload could not run at all (it does not fit the trigger's schema), or when the worker
ran out of attempts (the state file or an enrichment fetch kept failing). Its runs keep their
history (``ghl-connector runs``); a serve run's id is ``<webhookId>:<recipe key>``.

Re-queuing puts the event back to ``pending`` and marks the chosen ``dead_letter`` runs to be
resumed (status ``running``), forgetting their intents (a call whose outcome was unknown is
made again: the person replaying has checked); the running service picks the event up,
resumes those runs (the ledger skips the steps they completed) and leaves the runs that had
ended alone.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from connector.errors import StoreError
from connector.history import History
from connector.inbox import Inbox, InboxEvent
from connector.ledger import Ledger
from connector.store import Store

__all__ = ["DeadLetter", "DeadLetters"]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead event and its runs that ended ``dead_letter`` (``(run id, recipe)`` pairs)."""

    event: InboxEvent
    runs: tuple[tuple[str, str], ...]

    def as_dict(self) -> dict[str, object]:
        """JSON-ready data."""
        return {
            "id": self.event.id,
            "webhook_id": self.event.webhook_id,
            "type": self.event.type,
            "location_id": self.event.location_id,
            "attempts": self.event.attempts,
            "error": self.event.last_error,
            "runs": [{"run_id": run_id, "recipe": recipe} for run_id, recipe in self.runs],
        }


class DeadLetters:
    """The dead events of a state file and their dead runs.

    Every method raises :class:`~connector.errors.StoreError` when SQLite fails.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.inbox = Inbox(store)
        self.history = History(store)

    def __repr__(self) -> str:
        return f"DeadLetters({str(self.store.path)!r})"

    def dead(self) -> list[DeadLetter]:
        """Every dead event, oldest first."""
        rows = self.store.query("SELECT id FROM inbox WHERE status = 'dead' ORDER BY id")
        found: list[DeadLetter] = []
        for row in rows:
            event = self.inbox.get(int(row["id"]))
            if event is not None:
                found.append(DeadLetter(event, self._dead_runs(event.webhook_id)))
        return found

    def requeue_all(self) -> list[DeadLetter]:
        """Re-queue every dead event with all of its dead runs."""
        letters = self.dead()
        self._requeue((d.event, [r for r, _ in d.runs]) for d in letters)
        return letters

    def requeue_recipe(self, recipe: str) -> list[DeadLetter]:
        """Re-queue the dead runs of one recipe (its name, or its file name without suffix);
        other dead runs of the same events stay dead."""
        chosen: list[DeadLetter] = []
        for letter in self.dead():
            runs = tuple(
                (run_id, name) for run_id, name in letter.runs
                if recipe in (name, run_id.rpartition(":")[2])
            )
            if runs:
                chosen.append(DeadLetter(letter.event, runs))
        self._requeue((d.event, [r for r, _ in d.runs]) for d in chosen)
        return chosen

    def requeue_one(self, ident: str) -> DeadLetter:
        """Re-queue one dead event (its inbox id or ``webhookId``, with all its dead runs) or
        one dead run (its run id).

        :raises StoreError: nothing dead has this id.
        """
        for letter in self.dead():
            event = letter.event
            if ident in (str(event.id), event.webhook_id):
                self._requeue([(event, [r for r, _ in letter.runs])])
                return letter
            runs = tuple(pair for pair in letter.runs if pair[0] == ident)
            if runs:
                self._requeue([(event, [ident])])
                return DeadLetter(event, runs)
        raise StoreError(
            f"no dead letter {ident!r} [list them with `ghl-connector replay --list`]"
        )

    def _dead_runs(self, webhook_id: str) -> tuple[tuple[str, str], ...]:
        prefix = webhook_id + ":"
        rows = self.store.query(
            "SELECT id, recipe FROM runs WHERE status = 'dead_letter'"
            " AND substr(id, 1, ?) = ? ORDER BY started_at",
            (len(prefix), prefix),
        )
        return tuple((str(r["id"]), str(r["recipe"])) for r in rows)

    def _requeue(self, chosen: Iterable[tuple[InboxEvent, list[str]]]) -> None:
        now = time.time()
        with self.store.transaction() as db:
            for event, run_ids in chosen:
                for run_id in run_ids:
                    db.execute(
                        "UPDATE runs SET status = 'running', error = NULL, finished_at = NULL"
                        " WHERE id = ? AND status = 'dead_letter'",
                        (run_id,),
                    )
                    # A replay is the person's word that an "outcome unknown" call may be made
                    # again (connector/ledger.py): forget its intents.
                    Ledger.settle_run(db, run_id)
                db.execute(
                    "UPDATE inbox SET status = 'pending', available_at = ?, claimed_by = NULL,"
                    " claimed_at = NULL, finished_at = NULL WHERE id = ? AND status = 'dead'",
                    (now, event.id),
                )
