"""The dead-letter list: events and runs given up on, and replaying them (``replay``).

One list for both ways recipes run:

- an inbox event of ``serve`` is *dead* (status ``dead``) when one of its recipe runs ended
  ``dead_letter``, when its payload could not run at all (it does not fit the trigger's
  schema), or when the worker ran out of attempts (the state file or an enrichment fetch kept
  failing). A serve run's id is ``<webhookId>:<recipe key>``;
- a run of ``ghl-connector run`` that ended ``dead_letter`` has no inbox event: it is listed
  on its own (``event`` None), and ``replay`` resumes it in its own process.

Re-queuing puts the event back to ``pending`` and marks the chosen ``dead_letter`` runs to be
resumed (status ``running``); the running service picks the event up, resumes those runs (the
ledger skips the steps they completed) and leaves the runs that had ended alone.

A call whose outcome is unknown (a process died between the call and its record: an
*intent*, see :mod:`connector.recipes.ledger`) is looked up before anything is replayed
(:meth:`DeadLetters.look_up`): through the action's ``verify`` read when it declares one (the
record by its natural key: e-mail, title and due date, ...). Found, its output is recorded as
the step's, so the call is not made again; not found, it will be made; not looked up now (no
credential, the read failed), the intent stays and the resumed run looks before calling. A
call with no way to look stays dead under ``--all`` and ``--recipe``: only naming the run
(``--id``) is a person's word that it may be made again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from connector.catalog import Catalog
from connector.errors import ConnectorError, StoreError
from connector.expressions.syntax import JSON
from connector.hookspecs import Action
from connector.recipes.history import History, StepRecord
from connector.recipes.ledger import Ledger
from connector.recipes.verify import find_effect, verifiable
from connector.runtime import Runtime
from connector.service.inbox import Inbox, InboxEvent
from connector.store import Store

__all__ = ["DeadLetter", "DeadLetters", "Finding"]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A dead inbox event (None: a dead run of ``ghl-connector run``) and its runs that ended
    ``dead_letter`` (``(run id, recipe)`` pairs)."""

    event: InboxEvent | None
    runs: tuple[tuple[str, str], ...]

    def as_dict(self) -> dict[str, object]:
        """JSON-ready data."""
        event = self.event
        return {
            "id": event.id if event else None,
            "source": "serve" if event else "run",
            "webhook_id": event.webhook_id if event else None,
            "type": event.type if event else None,
            "location_id": event.location_id if event else None,
            "attempts": event.attempts if event else None,
            "error": event.last_error if event else None,
            "runs": [{"run_id": run_id, "recipe": recipe} for run_id, recipe in self.runs],
        }


@dataclass(frozen=True, slots=True)
class Finding:
    """What replay found about one call whose outcome was unknown, and what it does about it.

    ``outcome`` is ``happened`` (its output is recorded; not called again), ``not_found``
    (called again), ``unchecked`` (the resumed run looks before calling), ``word`` (no way to
    look; called again because the run was named) or ``stays_dead`` (no way to look).
    """

    run_id: str
    step_id: str
    item: int
    action: str
    outcome: str
    detail: str

    @property
    def replayable(self) -> bool:
        """Whether the run may go back to work."""
        return self.outcome != "stays_dead"

    def as_dict(self) -> dict[str, object]:
        """JSON-ready data."""
        return {
            "run_id": self.run_id, "step": self.step_id, "item": self.item,
            "action": self.action, "outcome": self.outcome, "detail": self.detail,
        }  # fmt: skip


class DeadLetters:
    """The dead events and runs of a state file.

    Every method raises :class:`~connector.errors.StoreError` when SQLite fails.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.inbox = Inbox(store)
        self.history = History(store)
        self.ledger = Ledger(store)

    def __repr__(self) -> str:
        return f"DeadLetters({self.store.where!r})"

    # -- choosing ---------------------------------------------------------------------------

    def dead(self) -> list[DeadLetter]:
        """Every dead event, oldest first, then every dead run that has no inbox event."""
        rows = self.store.query("SELECT id FROM inbox WHERE status = 'dead' ORDER BY id")
        found: list[DeadLetter] = []
        for row in rows:
            event = self.inbox.get(int(row["id"]))
            if event is not None:
                found.append(DeadLetter(event, self._dead_runs(event.webhook_id)))
        loose = self.store.query(
            "SELECT r.id, r.recipe FROM runs r WHERE r.status = 'dead_letter' AND NOT EXISTS"
            " (SELECT 1 FROM inbox i WHERE substr(r.id, 1, length(i.webhook_id) + 1)"
            " = i.webhook_id || ':') ORDER BY r.started_at"
        )
        found += [DeadLetter(None, ((str(r["id"]), str(r["recipe"])),)) for r in loose]
        return found

    def count(self) -> int:
        """How many dead letters :meth:`dead` lists, counted in the state file."""
        rows = self.store.query(
            "SELECT (SELECT COUNT(*) FROM inbox WHERE status = 'dead') + (SELECT COUNT(*)"
            " FROM runs r WHERE r.status = 'dead_letter' AND NOT EXISTS (SELECT 1 FROM inbox i"
            " WHERE substr(r.id, 1, length(i.webhook_id) + 1) = i.webhook_id || ':')) AS n"
        )
        return int(rows[0]["n"])

    def of_recipe(self, recipe: str) -> list[DeadLetter]:
        """The dead runs of one recipe (its name, or its file name without suffix), with
        their events; other dead runs of the same events are left out."""
        chosen: list[DeadLetter] = []
        for letter in self.dead():
            runs = tuple(
                (run_id, name) for run_id, name in letter.runs
                if recipe in (name, run_id.rpartition(":")[2])
            )  # fmt: skip
            if runs:
                chosen.append(DeadLetter(letter.event, runs))
        return chosen

    def one(self, ident: str) -> DeadLetter:
        """One dead event (its inbox id or ``webhookId``, with all its dead runs) or one dead
        run (its run id).

        :raises StoreError: nothing dead has this id.
        """
        for letter in self.dead():
            event = letter.event
            if event is not None and ident in (str(event.id), event.webhook_id):
                return letter
            runs = tuple(pair for pair in letter.runs if pair[0] == ident)
            if runs:
                return DeadLetter(event, runs)
        raise StoreError(
            f"no dead letter {ident!r} [list them with `ghl-connector replay --list`]"
        )

    # -- calls whose outcome is unknown ---------------------------------------------------------

    def look_up(
        self,
        run_id: str,
        catalog: Catalog,
        runtime: Callable[[], Runtime] | None,
        *,
        named: bool,
    ) -> list[Finding]:
        """Look up each call of ``run_id`` whose outcome is unknown, and settle what is known.

        :param runtime: makes the runtime the reads are sent with (None: do not look now; it
            may raise ConnectorError, e.g. no connection, which leaves the look to the run).
        :param named: the person named this run (``--id``): a call with no way to look may be
            made again on their word.
        """
        findings: list[Finding] = []
        made: Runtime | None = None
        for (step_id, item), action_id in sorted(self.ledger.intents(run_id).items()):
            action = catalog.actions.get(action_id)
            where = (run_id, step_id, item, action_id)
            if action is None or not verifiable(action):
                if named:
                    self._forget(run_id, step_id, item)
                    findings.append(Finding(*where, "word", "no way to look it up: it is made"
                                            " again, as you named this run"))
                else:
                    findings.append(Finding(*where, "stays_dead", "no way to look it up (no"
                                            " verify read): left dead [check the record, then"
                                            f" `ghl-connector replay --id {run_id}`]"))
                continue
            data = self._input(run_id, step_id, item)
            reason = "its input was not recorded" if data is None else "no credential given"
            try:
                if data is not None and runtime is not None:
                    made = made or runtime()
                    found = find_effect(action, made, data)
                    findings.append(self._settle(where, action, found))
                    continue
            except ConnectorError as exc:
                reason = str(exc)
            findings.append(Finding(*where, "unchecked", f"not looked up now ({reason}): the"
                                    " resumed run looks before calling again"))
        return findings

    def _settle(self, where: tuple[str, str, int, str], action: Action, found: JSON) -> Finding:
        run_id, step_id, item, action_id = where
        reader = action.options["verify"]["action"]
        if found is None:
            self._forget(run_id, step_id, item)
            return Finding(*where, "not_found", f"did not happen (no match from {reader}): it is"
                           " made again")
        rows = self.store.query(
            "SELECT position, input FROM run_steps WHERE run_id = ? AND step_id = ? AND item = ?",
            (run_id, step_id, item),
        )
        given, output = (rows[0]["input"] if rows else None), json.dumps(found)
        with self.store.transaction() as db:
            History.write_step(db, run_id, StepRecord(
                step_id=step_id, item=item, position=int(rows[0]["position"]) if rows else 0,
                action=action_id, status="succeeded", attempts=0, input=given, output=output,
                truncated=False, error=None, started_at=time.time(), duration_ms=0.0,
            ))  # fmt: skip
            Ledger.write(db, run_id, step_id, item, found)
            Ledger.settle(db, run_id, step_id, item)
        return Finding(*where, "happened", f"took effect (found by {reader}): not made again")

    def _input(self, run_id: str, step_id: str, item: int) -> dict[str, object] | None:
        """The input the cut-off call was made with, as its run recorded it (None: unknown)."""
        rows = self.store.query(
            "SELECT input, truncated FROM run_steps WHERE run_id = ? AND step_id = ? AND item = ?",
            (run_id, step_id, item),
        )
        if not rows or rows[0]["input"] is None:
            return None
        try:
            data = json.loads(rows[0]["input"])
        except json.JSONDecodeError:
            return None  # cut at the history's cap
        return data if isinstance(data, dict) else None

    def _forget(self, run_id: str, step_id: str, item: int) -> None:
        self.ledger.forget_intent(run_id, step_id, item)

    # -- re-queuing ------------------------------------------------------------------------

    def requeue(self, letters: Iterable[DeadLetter]) -> None:
        """Put the chosen events back to ``pending`` and their chosen runs to ``running``, for
        the service (letters without an event are resumed by the caller)."""
        now = time.time()
        with self.store.transaction() as db:
            for letter in letters:
                if letter.event is None:
                    continue
                for run_id, _ in letter.runs:
                    db.execute(
                        "UPDATE runs SET status = 'running', error = NULL, finished_at = NULL"
                        " WHERE id = ? AND status = 'dead_letter'",
                        (run_id,),
                    )
                db.execute(
                    "UPDATE inbox SET status = 'pending', available_at = ?, claimed_by = NULL,"
                    " claimed_at = NULL, finished_at = NULL WHERE id = ? AND status = 'dead'",
                    (now, letter.event.id),
                )

    def discard(self, letters: Iterable[DeadLetter]) -> int:
        """Give the chosen dead letters up for good: their events become ``done`` (purged
        with the others) and their dead runs ``failed`` (\"discarded\"); returns how many."""
        now = time.time()
        count = 0
        with self.store.transaction() as db:
            for letter in letters:
                for run_id, _ in letter.runs:
                    db.execute(
                        "UPDATE runs SET status = 'failed', error = ?, finished_at = ?"
                        " WHERE id = ? AND status = 'dead_letter'",
                        ("discarded from the dead-letter list", now, run_id),
                    )
                if letter.event is not None:
                    db.execute(
                        "UPDATE inbox SET status = 'done', finished_at = ? WHERE id = ?"
                        " AND status = 'dead'", (now, letter.event.id),
                    )
                count += 1
        return count

    def _dead_runs(self, webhook_id: str) -> tuple[tuple[str, str], ...]:
        prefix = webhook_id + ":"
        rows = self.store.query(
            "SELECT id, recipe FROM runs WHERE status = 'dead_letter'"
            " AND substr(id, 1, ?) = ? ORDER BY started_at",
            (len(prefix), prefix),
        )
        return tuple((str(r["id"]), str(r["recipe"])) for r in rows)
