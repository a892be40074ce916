"""Running one recipe step: ``if``, ``for_each``, rendering, retries, recording.

:class:`StepRunner` is the engine's worker for one run (:mod:`connector.recipes.engine` owns the
run as a whole). Each step (or ``for_each`` item) is rendered over the run's context, called
through the runtime (which validates the rendered input), retried when the failure may pass,
and recorded, with its ledger row, in one transaction right after it ends.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from connector.auth.redaction import redact
from connector.client.retry import RetryPolicy
from connector.client.transcript import HttpNote
from connector.documents.sample import sample
from connector.errors import AuthError, ConnectorError, RateLimitError, RemoteError
from connector.expressions.syntax import JSON, ExpressionError, json_type
from connector.expressions.template import CompiledValue, Template, truthy
from connector.hookspecs import Action
from connector.recipes.footprints import LoopDetected
from connector.recipes.history import History, StepRecord, cut, exchanges_text, redacted_pair
from connector.recipes.ledger import WHOLE, Ledger, LedgerKey, Redacted, repeat_safe
from connector.recipes.recipe import ITEM, Step
from connector.recipes.verify import find_effect, verifiable
from connector.runtime import Runtime
from connector.store import Store

__all__ = ["StepResult", "StepRunner", "retryable"]


@dataclass(frozen=True, slots=True)
class StepResult:
    """How one step (or one ``for_each`` item) went.

    :param status: ``succeeded``, ``failed`` or ``skipped``.
    :param input: the rendered input (for a ``for_each`` step: the list it ran over).
    :param items: a ``for_each`` step's per-item results.
    :param requests: in a dry run, the requests the step would send (token masked).
    :param replayed: the output came from the ledger of an earlier execution; nothing was sent.
    :param http: the HTTP requests the call sent (bounded: :mod:`connector.client.transcript`),
        each with its redacted URL and the status answered; ``http_total`` counts them all.
    """

    step_id: str
    action: str
    status: str
    output: JSON = None
    input: JSON = None
    attempts: int = 0
    duration_ms: float = 0.0
    error: str | None = None
    items: tuple[StepResult, ...] = ()
    requests: tuple[dict[str, Any], ...] = ()
    replayed: bool = False
    http: tuple[HttpNote, ...] = ()
    http_total: int = 0

    def all_requests(self) -> list[dict[str, Any]]:
        """The step's dry-run requests, its items' included, in order."""
        return [*self.requests, *(r for item in self.items for r in item.requests)]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready data, with secrets masked (:func:`connector.auth.redaction.redact`): ``input``
        and ``output`` themselves hold what was sent and received, credentials included."""
        out: dict[str, Any] = {
            "step": self.step_id,
            "action": self.action,
            "status": self.status,
            "attempts": self.attempts,
            "duration_ms": round(self.duration_ms, 3),
            "input": _masked(self.input),
            "output": _masked(self.output),
            "error": None if self.error is None else redact(self.error),
            "replayed": self.replayed,
        }
        if self.items:
            out["items"] = [item.as_dict() for item in self.items]
        if self.requests:
            out["requests"] = list(self.requests)
        if self.http_total:
            out["http"] = {"total": self.http_total, "requests": [n.as_dict() for n in self.http]}
        return out


def _masked(value: JSON) -> JSON:
    if value is None or isinstance(value, bool | int | float):
        return value
    masked: JSON = json.loads(redact(json.dumps(value)))
    return masked


def retryable(exc: ConnectorError) -> bool:
    """Whether a failure may pass on a second try: 429, 5xx, a timeout or a lost connection
    (a RemoteError without a status); never a refused token or a bad input."""
    if not isinstance(exc, RemoteError) or isinstance(exc, AuthError):
        return False
    return exc.status is None or exc.status == 429 or exc.status >= 500


class _Failed(Exception):
    """A step attempt failed for good: the message, and how many attempts were made."""

    def __init__(self, message: str, attempts: int) -> None:
        self.message = message
        self.attempts = attempts
        super().__init__(message)


class StepRunner:
    """Runs the steps of one run.

    :param run_id: the run's id (ledger and history key).
    :param store: where steps are recorded; None records nothing.
    :param done: the ledger of earlier executions of this run: (step id, item) -> output.
    :param dry_run: build requests without sending them; outputs are schema examples.
    :param sleep: waits between retries.
    """

    def __init__(
        self,
        *,
        run_id: str,
        store: Store | None,
        done: Mapping[LedgerKey, JSON],
        dry_run: bool,
        sleep: Callable[[float], None],
    ) -> None:
        self.run_id = run_id
        self.store = store
        self.done = done
        self.dry_run = dry_run
        self.sleep = sleep
        self.ledger = Ledger(store) if store is not None and not dry_run else None
        self.intents = self.ledger.intents(run_id) if self.ledger is not None else {}

    def run(
        self,
        step: Step,
        action: Action,
        runtime: Runtime,
        context: Mapping[str, Any],
        position: int,
    ) -> StepResult:
        """Run ``step`` (all of its items under ``for_each``) and record it."""
        if (step.id, WHOLE) in self.done:
            return StepResult(
                step.id, action.id, "succeeded", self.done[(step.id, WHOLE)], replayed=True
            )
        if step.for_each is None:
            return self._one(step, action, runtime, context, position, WHOLE)
        started, clock = time.time(), time.perf_counter()
        try:
            items = step.for_each.render(context)
        except ExpressionError as exc:
            failed = StepResult(step.id, action.id, "failed", error=_where(step, "for_each", exc))
            return self._record(step, action, position, WHOLE, failed, started)
        if not isinstance(items, list):
            failed = StepResult(
                step.id, action.id, "failed", input=items,
                error=f"{step.location}: for_each gave a {json_type(items)}, not a list",
            )  # fmt: skip
            return self._record(step, action, position, WHOLE, failed, started)
        results: list[StepResult] = []
        for index, item in enumerate(items):
            scope = {**context, ITEM: item}
            result = self._one(step, action, runtime, scope, position, index)
            results.append(result)
            if result.status == "failed":
                break
        failed_item = next((r for r in results if r.status == "failed"), None)
        ran = any(r.status == "succeeded" for r in results)
        whole = StepResult(
            step.id,
            action.id,
            "failed" if failed_item else "succeeded" if ran else "skipped",
            output=[r.output for r in results] if failed_item is None else None,
            input=items,
            attempts=sum(r.attempts for r in results),
            duration_ms=(time.perf_counter() - clock) * 1000,
            error=None if failed_item is None else f"item {len(results) - 1}: {failed_item.error}",
            items=tuple(results),
        )
        return self._record(step, action, position, WHOLE, whole, started)

    def _one(
        self,
        step: Step,
        action: Action,
        runtime: Runtime,
        context: Mapping[str, Any],
        position: int,
        item: int,
    ) -> StepResult:
        """One call of ``step`` (one item of a ``for_each`` step when ``item`` >= 0)."""
        if item >= 0 and (step.id, item) in self.done:
            output = self.done[(step.id, item)]
            return StepResult(step.id, action.id, "succeeded", output, replayed=True)
        started = time.time()
        with runtime.transcribing() as transcript:
            result = self._outcome(step, action, runtime, context, item)
        if transcript.total:
            result = replace(result, http=tuple(transcript.notes), http_total=transcript.total)
        return self._record(step, action, position, item, result, started)

    def _outcome(
        self,
        step: Step,
        action: Action,
        runtime: Runtime,
        context: Mapping[str, Any],
        item: int,
    ) -> StepResult:
        """How one call of ``step`` went (not yet recorded)."""
        clock = time.perf_counter()
        data: JSON = None
        try:
            if step.if_ is not None and not truthy(_render(step, "if", step.if_, context)):
                return StepResult(step.id, action.id, "skipped")
            data = _render(step, "with", step.with_, context)
            if not isinstance(data, dict):
                raise _Failed(f"{step.location}: with gave a {json_type(data)}", 0)
            _fill_location(action, runtime, data, context)
            earlier = self._settled_elsewhere(step, action, runtime, data, item)
            if earlier is not None:
                return StepResult(step.id, action.id, "succeeded", output=earlier, input=data)
            output, attempts, requests = self._call(step, action, runtime, data, item)
        except _Failed as exc:
            return StepResult(
                step.id, action.id, "failed", input=data, attempts=exc.attempts,
                duration_ms=(time.perf_counter() - clock) * 1000, error=exc.message,
            )  # fmt: skip
        return StepResult(
            step.id, action.id, "succeeded", output=output, input=data, attempts=attempts,
            duration_ms=(time.perf_counter() - clock) * 1000, requests=requests,
        )  # fmt: skip

    def _settled_elsewhere(
        self, step: Step, action: Action, runtime: Runtime, data: Mapping[str, Any], item: int
    ) -> JSON:
        """For a call an earlier execution started and never recorded: its output if it took
        effect (found through the action's ``verify``), else None (safe to make it again).

        :raises _Failed: the outcome cannot be known (no ``verify``), or the check failed.
        """
        if (step.id, item) not in self.intents:
            return None
        if not verifiable(action):
            raise _Failed(
                f"{step.location}: outcome unknown: an earlier execution of this run was cut off "
                f"while calling {action.id}, which is not safe to repeat [check the record in "
                f"{action.app}; `ghl-connector replay` makes the call again]",
                0,
            )
        try:
            found: JSON = find_effect(action, runtime, data)
        except ConnectorError as exc:
            where = f"{step.location}: checking an interrupted {action.id}"
            raise _Failed(f"{where}: {exc}", 0) from exc
        return found

    def _call(
        self,
        step: Step,
        action: Action,
        runtime: Runtime,
        data: Mapping[str, Any],
        item: int = WHOLE,
    ) -> tuple[JSON, int, tuple[dict[str, Any], ...]]:
        """Send the call (retrying what may pass), or in a dry run build it and sample the
        output; returns (output, attempts, dry-run requests)."""
        if self.dry_run:
            try:
                request = runtime.dry_run(action.id, data)
            except ConnectorError as exc:
                raise _Failed(str(exc), 0) from exc
            return sample(action.output_schema), 0, (request,)
        policy = step.on_error
        backoff = RetryPolicy(
            attempts=policy.retry + 1,
            base=policy.backoff,
            cap=policy.backoff * 2**policy.retry,
        ).backoff()
        if self.ledger is not None and not repeat_safe(action):
            self.ledger.intend(self.run_id, step.id, item, action.id)
        attempt = 0
        while True:
            attempt += 1
            try:
                output: JSON = runtime.call(action.id, data)
            except LoopDetected:
                if self.ledger is not None:
                    self.ledger.forget_intent(self.run_id, step.id, item)
                raise
            except ConnectorError as exc:
                if attempt > policy.retry or not retryable(exc):
                    if self.ledger is not None and _not_applied(exc):
                        self.ledger.forget_intent(self.run_id, step.id, item)
                    raise _Failed(str(exc), attempt) from exc
                self.sleep(backoff.delay(attempt))
                if not repeat_safe(action) and _ambiguous(exc):
                    # The failed call may have taken effect: look before calling again.
                    earlier = self._look(step, action, runtime, data, exc, attempt)
                    if earlier is not None:
                        return earlier, attempt, ()
                continue
            return output, attempt, ()

    def _look(
        self,
        step: Step,
        action: Action,
        runtime: Runtime,
        data: Mapping[str, Any],
        exc: ConnectorError,
        attempt: int,
    ) -> JSON:
        """After an ambiguous failure of a call not safe to repeat: its output if it took
        effect; None if it did not (retry); fail when there is no way to tell."""
        if not verifiable(action):
            raise _Failed(
                f"{exc} [outcome unknown: {action.id} is not safe to repeat and declares no "
                "verify read, so it is not retried; check the record, then replay]",
                attempt,
            ) from exc
        try:
            found: JSON = find_effect(action, runtime, data)
        except ConnectorError as check:
            raise _Failed(
                f"{exc}; checking whether it took effect failed: {check}", attempt
            ) from check
        return found

    def _record(
        self,
        step: Step,
        action: Action,
        position: int,
        item: int,
        result: StepResult,
        started: float,
    ) -> StepResult:
        """Write the step's history row (and, once it succeeded, its ledger row)."""
        if self.store is None:
            return result
        given_text, output_text = redacted_pair(result.input, result.output)
        given, _ = cut(given_text)
        output, truncated = cut(output_text)
        record = StepRecord(
            step_id=step.id, item=item, position=position, action=action.id,
            status=result.status, attempts=result.attempts, input=given, output=output,
            truncated=truncated, error=result.error, started_at=started,
            duration_ms=result.duration_ms,
            exchanges=exchanges_text(result.http, result.http_total),
        )  # fmt: skip
        # Not flushed per step: WAL keeps it through a killed process, and the run's durable
        # finish (or the next durable commit) flushes it against power loss.
        with self.store.transaction(durable=False) as db:
            History.write_step(db, self.run_id, record)
            if result.status == "succeeded":
                Ledger.write(db, self.run_id, step.id, item, Redacted(output_text))
                Ledger.settle(db, self.run_id, step.id, item)
        return result


def _ambiguous(exc: ConnectorError) -> bool:
    """A failure after which the call may or may not have taken effect (5xx, timeout, reset)."""
    if isinstance(exc, RateLimitError):
        return False  # GHL refuses a rate-limited request before doing anything
    return isinstance(exc, RemoteError) and (exc.status is None or exc.status >= 500)


def _not_applied(exc: ConnectorError) -> bool:
    """A failure that proves the call changed nothing: refused input, a 4xx answer, or a
    credential refused (a 401 or 403 answer, or no token sent: none usable, or not for that
    host)."""
    if isinstance(exc, AuthError):
        return True
    if isinstance(exc, RemoteError):
        return exc.status is not None and 400 <= exc.status < 500
    return True


def _render(
    step: Step, part: str, value: Template | CompiledValue, context: Mapping[str, Any]
) -> JSON:
    try:
        rendered: JSON = value.render(context)
    except ExpressionError as exc:
        raise _Failed(_where(step, part, exc), 0) from exc
    return rendered


def _where(step: Step, part: str, exc: ExpressionError) -> str:
    return f"{step.location}: {part}: {exc}"


def _fill_location(
    action: Action, runtime: Runtime, data: dict[str, Any], context: Mapping[str, Any]
) -> None:
    """An action's location inputs left out, with no location from the connection: the
    event's own ``locationId`` (the location the event came from)."""
    if runtime.settings.location_id or not action.location_names():
        return
    location = context["trigger"].get("locationId")
    if isinstance(location, str) and location:
        data.update(action.location_fill(data, location))
