"""Run history: every recipe run and each of its steps, in the state file's ``runs`` and
``run_steps`` tables, and the queries ``ghl-connector runs`` shows.

What is stored passes through :func:`connector.auth.redaction.redact` first (the event, each step's
rendered input and output, error messages), and inputs and outputs are cut to
:data:`OUTPUT_CAP` characters. Credentials never reach this module: the engine records the
data a step renders, never the request headers the HTTP layer adds.

Run statuses: ``running``, ``succeeded``, ``failed``, ``skipped`` (the trigger's options did
not match the event), ``dead_letter`` (failed and kept for replay). Step statuses:
``succeeded``, ``failed``, ``skipped``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from connector.activity import BUS, contact_fields
from connector.auth.redaction import redact
from connector.client.transcript import HttpNote
from connector.errors import StoreError
from connector.expressions.syntax import JSON
from connector.store import Db, Row, Store, upsert

__all__ = [
    "OUTPUT_CAP",
    "RUN_STATUSES",
    "History",
    "RunRecord",
    "StepRecord",
    "capped",
    "cut",
    "exchanges_text",
    "read_exchanges",
    "redacted_pair",
]

OUTPUT_CAP = 65_536
"""Characters of a step's input or output (as JSON) kept in the history."""

_UPSERT_STEP = upsert(
    "run_steps",
    ("run_id", "step_id", "item", "position", "action", "status", "attempts", "input", "output",
     "truncated", "error", "started_at", "duration_ms", "exchanges"),
    ("run_id", "step_id", "item"),
)
RUN_STATUSES = ("running", "succeeded", "failed", "skipped", "dead_letter")


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One recorded step (``item`` -1) or one item of a ``for_each`` step (``item`` >= 0).

    ``input`` and ``output`` are the stored JSON text, already redacted and capped
    (``truncated`` says whether it was cut).
    """

    step_id: str
    item: int
    position: int
    action: str
    status: str
    attempts: int
    input: str | None
    output: str | None
    truncated: bool
    error: str | None
    started_at: float
    duration_ms: float
    exchanges: str | None = None
    """The step's HTTP requests as stored JSON text (:func:`exchanges_text`), or None."""

    def http(self) -> tuple[list[HttpNote], int]:
        """The step's kept requests, oldest first, and how many were sent in all."""
        return read_exchanges(self.exchanges)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready data; input and output parsed back when they were not cut; ``http``:
        the requests sent (method, redacted URL, status per attempt) and their total."""
        notes, total = self.http()
        return {
            "step": self.step_id,
            "item": None if self.item < 0 else self.item,
            "action": self.action,
            "status": self.status,
            "attempts": self.attempts,
            "input": _parsed(self.input, False),
            "output": _parsed(self.output, self.truncated),
            "truncated": self.truncated,
            "error": self.error,
            "started_at": self.started_at,
            "duration_ms": round(self.duration_ms, 3),
            "http": {"total": total, "requests": [note.as_dict() for note in notes]},
        }


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One recorded run; ``steps`` is filled by :meth:`History.get` only."""

    id: str
    recipe: str
    recipe_file: str | None
    trigger: str
    event: str
    status: str
    error: str | None
    executions: int
    started_at: float
    finished_at: float | None
    steps: tuple[StepRecord, ...] = field(default=())

    def as_dict(self, *, steps: bool = False) -> dict[str, Any]:
        """JSON-ready data (with the steps when ``steps``)."""
        out: dict[str, Any] = {
            "id": self.id,
            "recipe": self.recipe,
            "recipe_file": self.recipe_file,
            "trigger": self.trigger,
            "status": self.status,
            "error": self.error,
            "executions": self.executions,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }
        if steps:
            out["event"] = _parsed(self.event, False)
            out["steps"] = [step.as_dict() for step in self.steps]
        return out


def capped(value: JSON) -> tuple[str, bool]:
    """``value`` as redacted JSON text, cut to :data:`OUTPUT_CAP` characters; and whether cut."""
    return cut(redact(json.dumps(value)))


def cut(text: str) -> tuple[str, bool]:
    """Already redacted ``text`` cut to :data:`OUTPUT_CAP` characters; and whether it was cut."""
    if len(text) <= OUTPUT_CAP:
        return text, False
    return text[:OUTPUT_CAP], True


def redacted_pair(first: JSON, second: JSON) -> tuple[str, str]:
    """Two values as redacted JSON text, with one :func:`~connector.auth.redaction.redact` call.

    JSON text never holds a raw line break, and no pattern of :mod:`connector.auth.redaction` spans
    one, so the two texts joined by a line break are masked exactly as each would be alone.
    """
    joined = redact(json.dumps(first) + "\n" + json.dumps(second))
    head, _, tail = joined.partition("\n")
    return head, tail


def exchanges_text(notes: Sequence[HttpNote], total: int) -> str | None:
    """A step's requests (a transcript's kept ``notes`` and its ``total``) as the JSON text stored
    with it, ``{"total": n, "requests": [...]}``; None when nothing was sent. Bounded by the
    transcript's bounds; URLs were redacted when noted and :meth:`History.write_step` redacts
    the whole text again."""
    if not total:
        return None
    data = {"total": total, "requests": [note.as_dict() for note in notes]}
    return json.dumps(data, ensure_ascii=False)


def read_exchanges(text: str | None) -> tuple[list[HttpNote], int]:
    """The notes and total of stored :func:`exchanges_text` (nothing for None or bad text)."""
    if not text:
        return [], 0
    try:
        data = json.loads(text)
    except ValueError:
        return [], 0
    if not isinstance(data, dict) or not isinstance(data.get("requests"), list):
        return [], 0
    notes = [n for n in (HttpNote.from_dict(item) for item in data["requests"]) if n is not None]
    total = data.get("total")
    return notes, max(total if isinstance(total, int) else 0, len(notes))


def _parsed(text: str | None, truncated: bool) -> JSON:
    if text is None or truncated:
        return text
    try:
        value: JSON = json.loads(text)
    except json.JSONDecodeError:
        return text
    return value


class History:
    """The ``runs`` and ``run_steps`` tables of a state file."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __repr__(self) -> str:
        return f"History({self.store.where!r})"

    def start(
        self, run_id: str, recipe: str, recipe_file: str | None, trigger: str, event: JSON
    ) -> int:
        """Record that run ``run_id`` starts (again); returns how many times it has started."""
        text, _ = capped(event)
        now = time.time()
        # Not flushed: a start lost to a power cut only means the run starts afresh; the run's
        # durable finish flushes it with its steps.
        with self.store.transaction(durable=False) as db:
            db.execute(
                "INSERT INTO runs (id, recipe, recipe_file, trigger, event, status, started_at)"
                " VALUES (?, ?, ?, ?, ?, 'running', ?)"
                " ON CONFLICT (id) DO UPDATE SET status = 'running', error = NULL,"
                " finished_at = NULL, executions = runs.executions + 1",
                (run_id, recipe, recipe_file, trigger, text, now),
            )
            row = db.execute("SELECT executions FROM runs WHERE id = ?", (run_id,)).fetchone()
        location = event.get("locationId") if isinstance(event, dict) else None
        BUS.publish("run", status="started", run_id=run_id, recipe=recipe, trigger=trigger,
                    location=location if isinstance(location, str) else None,
                    **contact_fields(event))
        return int(row[0])

    def check_same_event(self, run_id: str, event: JSON) -> None:
        """Refuse to resume ``run_id`` (from the command line) with an event other than the one
        it was recorded with: its completed steps were made for that one. (The service resumes
        with the event enriched afresh, which may differ, so it does not call this.)

        :raises StoreError: the run exists and its event differs.
        """
        text, _ = capped(event)
        rows = self.store.query("SELECT event FROM runs WHERE id = ?", (run_id,))
        if rows and rows[0]["event"] != text:
            raise StoreError(
                f"run {run_id!r} was started with another event; resuming it with a different"
                " one is refused (its completed steps were made for the first event) [leave"
                " out --run-id to start a new run, or give the run's own event: `ghl-connector"
                f" runs show {run_id} --json`]"
            )

    @staticmethod
    def write_step(db: Db, run_id: str, record: StepRecord) -> None:
        """Record one step (or item) inside the caller's transaction."""
        db.execute(
            _UPSERT_STEP,
            (
                run_id,
                record.step_id,
                record.item,
                record.position,
                record.action,
                record.status,
                record.attempts,
                record.input,
                record.output,
                int(record.truncated),
                None if record.error is None else redact(record.error),
                record.started_at,
                record.duration_ms,
                None if record.exchanges is None else redact(record.exchanges),
            ),
        )
        BUS.publish("step", run_id=run_id, step=record.step_id, item=record.item,
                    action=record.action, status=record.status, attempts=record.attempts,
                    duration_ms=round(record.duration_ms, 3), error=record.error)

    def finish(self, run_id: str, status: str, error: str | None = None) -> None:
        """Record how run ``run_id`` ended."""
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        # Not flushed on its own: the caller's next durable commit (the service marks the inbox
        # event done right after) or closing the store flushes it; a killed process loses nothing.
        now = time.time()
        with self.store.transaction(durable=False) as db:
            db.execute(
                "UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE id = ?",
                (status, None if error is None else redact(error), now, run_id),
            )
            row = db.execute(
                "SELECT recipe, started_at FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
        if row is not None:
            BUS.publish("run", status=status, run_id=run_id, recipe=row[0], error=error,
                        duration_ms=round((now - float(row[1])) * 1000, 3))

    def recent(
        self, *, recipe: str | None = None, status: str | None = None, limit: int = 20
    ) -> list[RunRecord]:
        """The most recent runs first, optionally only of one recipe (its name, or its file's
        name with or without ``.yaml``) or status."""
        where: list[str] = []
        params: list[Any] = []
        if recipe is not None:
            stem = recipe.removesuffix(".yaml").removesuffix(".yml")
            like = "%/" + stem.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("(recipe = ? OR recipe_file IN (?, ?) OR recipe_file LIKE ? ESCAPE '\\'"
                         " OR recipe_file LIKE ? ESCAPE '\\')")
            params += [recipe, f"{stem}.yaml", f"{stem}.yml", f"{like}.yaml", f"{like}.yml"]
        if status is not None:
            where.append("status = ?")
            params.append(status)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        # Runs started in the same instant: the later inserted first (PostgreSQL has no rowid).
        tiebreak = "rowid" if self.store.dialect == "sqlite" else "id"
        rows = self.store.query(
            f"SELECT * FROM runs{clause} ORDER BY started_at DESC, {tiebreak} DESC LIMIT ?",
            (*params, limit),
        )
        return [_run(row) for row in rows]

    def step_timings(self, since: float, limit: int = 5000) -> list[tuple[str, float, str]]:
        """``(action, duration_ms, status)`` of the newest steps started since ``since`` (at
        most ``limit``): the console's latency chart."""
        rows = self.store.query(
            "SELECT action, duration_ms, status FROM run_steps WHERE started_at >= ?"
            " ORDER BY started_at DESC LIMIT ?", (since, limit),
        )
        return [(str(r["action"]), float(r["duration_ms"]), str(r["status"])) for r in rows]

    def ended_since(self, since: float, limit: int = 50_000) -> list[tuple[float, str]]:
        """``(finished_at, status)`` of the runs that ended since ``since``, newest first."""
        rows = self.store.query(
            "SELECT finished_at, status FROM runs WHERE finished_at >= ?"
            " ORDER BY finished_at DESC LIMIT ?", (since, limit),
        )
        return [(float(r["finished_at"]), str(r["status"])) for r in rows]

    def counts(self) -> dict[tuple[str, str], int]:
        """How many runs each recipe has in each status."""
        rows = self.store.query(
            "SELECT recipe, status, COUNT(*) AS n FROM runs GROUP BY recipe, status"
        )
        return {(str(r["recipe"]), str(r["status"])): int(r["n"]) for r in rows}

    def get(self, run_id: str) -> RunRecord:
        """One run with its steps in order, by its id or a prefix that only it has (as git
        takes a commit's).

        :raises StoreError: if there is no such run, or the prefix is not unique (the hint says
            how to list them).
        """
        rows = self.store.query("SELECT * FROM runs WHERE id = ?", (run_id,))
        if not rows:
            rows = self._by_prefix(run_id)
        run_id = rows[0]["id"]
        steps = self.store.query(
            "SELECT * FROM run_steps WHERE run_id = ? ORDER BY position, item", (run_id,)
        )
        return replace(_run(rows[0]), steps=tuple(_step(row) for row in steps))

    def _by_prefix(self, prefix: str) -> list[Row]:
        """The one run whose id starts with ``prefix``, as a one-row list."""
        rows = self.store.query(
            "SELECT * FROM runs WHERE substr(id, 1, ?) = ? ORDER BY started_at DESC LIMIT 6",
            (len(prefix), prefix),
        ) if prefix else []
        if not rows:
            raise StoreError(
                f"no run with id {prefix!r} [list recent runs with `ghl-connector runs`]"
            )
        if len(rows) > 1:
            some = ", ".join(str(row["id"]) for row in rows[:5])
            more = ", ..." if len(rows) > 5 else ""
            raise StoreError(
                f"run id {prefix!r} is ambiguous: it starts {some}{more} [give more characters]"
            )
        return rows


def _run(row: Row) -> RunRecord:
    return RunRecord(
        id=row["id"],
        recipe=row["recipe"],
        recipe_file=row["recipe_file"],
        trigger=row["trigger"],
        event=row["event"],
        status=row["status"],
        error=row["error"],
        executions=int(row["executions"]),
        started_at=float(row["started_at"]),
        finished_at=None if row["finished_at"] is None else float(row["finished_at"]),
    )


def _step(row: Row) -> StepRecord:
    return StepRecord(
        step_id=row["step_id"],
        item=int(row["item"]),
        position=int(row["position"]),
        action=row["action"],
        status=row["status"],
        attempts=int(row["attempts"]),
        input=row["input"],
        output=row["output"],
        truncated=bool(row["truncated"]),
        error=row["error"],
        started_at=float(row["started_at"]),
        duration_ms=float(row["duration_ms"]),
        exchanges=row["exchanges"],
    )
