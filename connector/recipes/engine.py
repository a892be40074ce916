"""Running recipes: one run of a :class:`~connector.recipes.recipe.Recipe` for one trigger event.

:meth:`Engine.run` checks the event against the trigger's payload schema, matches the
trigger's options (``with:``) against it, then runs the steps in order over the context
``trigger`` / ``steps`` / ``vars`` / ``env``:

- ``if`` false: the step (or, under ``for_each``, the item) is skipped; its output is null;
- ``for_each``: the step runs once per item of the list (``{{ item }}``); its output is the
  list of per-item outputs;
- a failure that may pass on a second try (a :class:`~connector.errors.RemoteError` with
  status 429 or 5xx, a timeout, a lost connection) is retried ``on_error.retry`` times after a
  jittered, doubling ``on_error.backoff``; other failures (a bad input, a refused token, an
  expression that cannot be evaluated) are not. Then ``on_error.then`` decides: ``continue``
  (output null), ``dead_letter``, or ``fail`` (the recipe's ``on_error.then`` decides between
  ``dead_letter`` and ``failed``).

Every step is recorded in the run history (:mod:`connector.recipes.history`) and, once done, in the
ledger (:mod:`connector.recipes.ledger`): running the same ``run_id`` again skips what is done, so a
run resumed after a crash or replayed from the dead-letter list repeats no effect but the one
that was in flight. A dry run sends nothing and records nothing: it returns every request it
would send (token masked), using each output schema's examples as the step's output.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from connector.auth.redaction import redact, register
from connector.catalog import Catalog
from connector.documents.document import Document
from connector.documents.schema import Validator, compile_validator, problems
from connector.errors import (
    ConnectorError,
    DocumentError,
    Location,
    Problem,
    RecipeError,
    StoreError,
)
from connector.expressions.syntax import JSON, ExpressionError, json_type
from connector.hookspecs import Action, Trigger
from connector.recipes.footprints import OUTSIDE, Echo, Footprints, LoopDetected, Origin, acting
from connector.recipes.history import History
from connector.recipes.ledger import Ledger
from connector.recipes.recipe import Recipe
from connector.recipes.step import StepResult, StepRunner
from connector.runtime import Runtime
from connector.store import Store

_log = logging.getLogger(__name__)

__all__ = ["Engine", "RunResult", "StepResult", "check_event"]

_SECRET_NAME = re.compile(r"TOKEN|SECRET|KEY|PASSWORD|PASSWD|AUTH|CREDENTIAL", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class RunResult:
    """How one run went: ``status`` is succeeded, failed, skipped or dead_letter."""

    run_id: str
    recipe: str
    trigger: str
    status: str
    steps: tuple[StepResult, ...]
    error: str | None = None
    dry_run: bool = False
    executions: int = 1
    outputs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the run succeeded (or had nothing to do)."""
        return self.status in ("succeeded", "skipped")

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request a dry run would send, in order."""
        return [request for step in self.steps for request in step.all_requests()]

    def step(self, step_id: str) -> StepResult | None:
        """The result of step ``step_id`` (None if it did not run)."""
        return next((s for s in self.steps if s.step_id == step_id), None)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready data (secrets masked, as in :meth:`StepResult.as_dict`)."""
        return {
            "run_id": self.run_id,
            "recipe": self.recipe,
            "trigger": self.trigger,
            "status": self.status,
            "error": self.error,
            "dry_run": self.dry_run,
            "executions": self.executions,
            "steps": [step.as_dict() for step in self.steps],
            "requests": [json.loads(redact(json.dumps(r))) for r in self.requests],
        }


def check_event(
    trigger: Trigger, event: Mapping[str, Any] | Document, validator: Validator | None = None
) -> dict[str, Any]:
    """The event's payload, checked against the trigger's payload schema.

    :param event: the payload, or the document it was read from (problems then carry its
        file and line).
    :raises DocumentError: listing every field at fault, each at file:line (or ``<event>``).
    """
    if isinstance(event, Document):
        data, locate = event.data, event.locate
    else:
        data = event

        def locate(path: tuple[str | int, ...]) -> Location:
            from connector.documents.document import pointer

            return Location("<event>", pointer=pointer(path))

    if not isinstance(data, Mapping):
        where = locate(())
        got = json_type(data) if data is not None else "nothing"
        raise DocumentError(
            [Problem(where, f"an event for {trigger.id} must be a JSON object, got {got}")]
        )
    check = validator or compile_validator(trigger.payload_schema, check=False)
    found = problems(check, data, locate)
    if found:
        raise DocumentError(
            [Problem(p.location, f"{p.message} (event for {trigger.id})", p.hint) for p in found]
        )
    return dict(data)


def recipe_key(recipe: Recipe) -> str:
    """The recipe's key: its file name without suffix (its name when it has no file)."""
    return Path(recipe.file).stem if recipe.file else recipe.name


def _echo_reason(echo: Echo) -> str:
    ago = max(0.0, time.time() - echo.at)
    return (
        f"echo of the pack's own write ({echo.writer}, {ago:.1f} s ago)"
        " [set `echoes: run` under trigger to run on it]"
    )


def options_match(options: Mapping[str, JSON], payload: Mapping[str, Any]) -> str | None:
    """None when the event passes the trigger's options, else why it does not.

    A scalar option must equal the payload's field of the same name; a list option passes
    when the field is one of its values or (a list itself) shares one with it.
    """
    for name, wanted in options.items():
        if wanted is None:
            continue
        got = payload.get(name)
        if isinstance(wanted, list):
            have = got if isinstance(got, list) else [got]
            if not any(value in wanted for value in have):
                return f"{name} {got!r} is not one of {wanted!r}"
        elif got != wanted:
            return f"{name} {got!r} is not {wanted!r}"
    return None


class Engine:
    """Runs recipes through a :class:`~connector.runtime.Runtime`, recording them in a store.

    :param catalog: where the recipe's trigger and actions are looked up.
    :param runtime: calls the actions (its auth and base URL say where they go).
    :param store: the state file for the run history and the ledger; None records nothing
        (dry runs, previews).
    :param runtimes: connection name -> runtime, for steps that name their ``connection``;
        None sends every step through ``runtime``.
    :param sleep: waits between retries (a service may pass one that wakes on shutdown).
    :param environ: where ``{{ env.NAME }}`` is read from (default: the process environment).
    :param footprints: where the runs' writes are recorded, so their echoes are recognised and
        loops stopped (see :mod:`connector.recipes.footprints`); None records none.
    """

    def __init__(
        self,
        catalog: Catalog,
        runtime: Runtime,
        store: Store | None = None,
        *,
        runtimes: Mapping[str, Runtime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        environ: Mapping[str, str] | None = None,
        footprints: Footprints | None = None,
    ) -> None:
        self.catalog = catalog
        self.runtime = runtime
        self.store = store
        self.runtimes = runtimes
        self.history = History(store) if store is not None else None
        self.ledger = Ledger(store) if store is not None else None
        self._sleep = sleep
        self._environ = environ
        self.footprints = footprints
        self._validators: dict[str, Validator] = {}

    def __repr__(self) -> str:
        return f"Engine(store={self.store!r})"

    def run(
        self,
        recipe: Recipe,
        event: Mapping[str, Any] | Document,
        *,
        run_id: str | None = None,
        dry_run: bool = False,
        echo: Echo | None = None,
    ) -> RunResult:
        """Run ``recipe`` once for ``event``.

        :param event: the trigger's payload (or the document it was read from).
        :param run_id: the run's id; a run already recorded under it resumes, skipping the
            steps its ledger holds. Default: a new id.
        :param dry_run: send nothing, record nothing; return the requests instead.
        :param echo: the pack's own write this event echoes (``trigger.origin``); unless the
            recipe's trigger says ``echoes: run``, the run is skipped.
        :raises DocumentError: the event does not fit the trigger's payload schema.
        :raises RecipeError: the recipe names an unknown trigger, action or connection.
        :raises StoreError: the history could not be written.
        """
        trigger, actions = self._resolve(recipe)
        payload = check_event(trigger, event, self._validator(trigger))
        run_id = run_id or uuid.uuid4().hex
        context: dict[str, Any] = {
            "trigger": {**payload, "origin": echo.as_trigger() if echo else dict(OUTSIDE)},
            "steps": {},
            "vars": dict(recipe.vars),
            "env": self._env(recipe),
        }
        record = None if dry_run else self.history
        executions = 1
        if record is not None:
            executions = record.start(run_id, recipe.name, recipe.file, trigger.id, payload)
        base = RunResult(run_id, recipe.name, trigger.id, "running", (), None, dry_run, executions)
        writer = f"recipe:{recipe_key(recipe)}"
        origin = Origin(writer, run_id, (*(echo.chain if echo else ()), writer))
        try:
            if echo is not None and recipe.trigger.echoes == "skip":
                result = replace(base, status="skipped", error=_echo_reason(echo))
            else:
                with acting(origin, None if dry_run else self.footprints):
                    result = self._run(recipe, actions, context, base)
        except LoopDetected as exc:
            _log.warning("%s: %s (run %s); the event is dead-lettered", writer, exc, run_id)
            result = replace(base, status="dead_letter", error=str(exc))
        except ConnectorError as exc:
            if record is not None and not isinstance(exc, StoreError):
                record.finish(run_id, "failed", str(exc))
            raise
        if record is not None:
            record.finish(run_id, result.status, result.error)
        return result

    def _run(
        self,
        recipe: Recipe,
        actions: Mapping[str, Action],
        context: dict[str, Any],
        base: RunResult,
    ) -> RunResult:
        why = self._options_mismatch(recipe, context)
        if why is not None:
            return replace(base, status="skipped", error=f"trigger options: {why}")
        done = {} if base.dry_run or self.ledger is None else self.ledger.done(base.run_id)
        runner = StepRunner(
            run_id=base.run_id,
            store=None if base.dry_run else self.store,
            done=done,
            dry_run=base.dry_run,
            sleep=self._sleep,
        )
        results: list[StepResult] = []
        for position, step in enumerate(recipe.steps):
            runtime = self._runtime_for(step.connection)
            result = runner.run(step, actions[step.id], runtime, context, position)
            results.append(result)
            context["steps"][step.id] = result.output
            if result.status != "failed" or step.on_error.then == "continue":
                continue
            then = step.on_error.then if step.on_error.then == "dead_letter" else None
            status = then or ("dead_letter" if recipe.on_error.then == "dead_letter" else "failed")
            error = f"step {step.id!r} ({step.use}): {result.error}"
            return replace(
                base, status=status, steps=tuple(results), error=error,
                outputs=dict(context["steps"]),
            )  # fmt: skip
        return replace(
            base, status="succeeded", steps=tuple(results), outputs=dict(context["steps"])
        )

    def _resolve(self, recipe: Recipe) -> tuple[Trigger, dict[str, Action]]:
        """The recipe's trigger and each step's action; unknown ids are RecipeErrors."""
        try:
            trigger = self.catalog.trigger(recipe.trigger.use)
        except ConnectorError as exc:
            raise RecipeError(str(exc), location=recipe.trigger.location) from None
        actions: dict[str, Action] = {}
        for step in recipe.steps:
            try:
                actions[step.id] = self.catalog.action(step.use)
            except ConnectorError as exc:
                raise RecipeError(str(exc), location=step.location) from None
            if self.runtimes is not None and step.connection is not None:
                if step.connection not in self.runtimes:
                    known = ", ".join(sorted(self.runtimes)) or "none"
                    raise RecipeError(
                        f"step {step.id!r}: no runtime for connection {step.connection!r}"
                        f" (have: {known})",
                        location=step.location,
                    )
        return trigger, actions

    def _runtime_for(self, connection: str | None) -> Runtime:
        if self.runtimes is None or connection is None:
            return self.runtime
        return self.runtimes[connection]

    def _validator(self, trigger: Trigger) -> Validator:
        found = self._validators.get(trigger.id)
        if found is None:
            found = compile_validator(trigger.payload_schema, check=False)
            self._validators[trigger.id] = found
        return found

    def _env(self, recipe: Recipe) -> dict[str, str | None]:
        """The recipe's allowed variables; values of secret-looking names are registered so
        history and logs mask them."""
        environ = os.environ if self._environ is None else self._environ
        values = {name: environ.get(name) for name in recipe.env}
        register(*(value for name, value in values.items() if _SECRET_NAME.search(name)))
        return values

    def _options_mismatch(self, recipe: Recipe, context: Mapping[str, Any]) -> str | None:
        scope = {"vars": context["vars"], "env": context["env"]}
        try:
            options = recipe.trigger.with_.render(scope)
        except ExpressionError as exc:
            raise RecipeError(f"trigger.with: {exc}", location=recipe.trigger.location) from exc
        if not isinstance(options, Mapping):
            return None
        return options_match(options, context["trigger"])
