"""The dispatcher: which recipes an inbox event starts, and running them once each.

For each stored event (:class:`~connector.service.inbox.InboxEvent`) the dispatcher finds every
loaded
recipe whose trigger declares the event's type (``event: ContactCreate``), completes the payload
when the trigger declares an enrichment fetch (``enrich: {action, with, as}``), and runs each
recipe through the :class:`~connector.recipes.engine.Engine` of the event's location (the engine
then
applies the trigger's ``with:`` filters). Every run has a deterministic id,
``<webhookId>:<recipe key>``, so running the same event again (after a crash, a redelivery
claimed twice, a replay) resumes the same run and the ledger skips the steps already done.

A run that already ended (``succeeded``, ``skipped``, ``failed``) is not started again; a
``dead_letter`` run stays dead until ``ghl-connector replay`` marks it for another try (see
:mod:`connector.service.deadletters`). Event types no recipe and no catalog trigger knows are
acknowledged
and logged once per type.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connector.activity import BUS
from connector.catalog import Catalog
from connector.errors import ConnectorError, DocumentError, Location, Problem, RecipeError
from connector.expressions.syntax import FilterSpec
from connector.expressions.template import compile_value
from connector.hookspecs import SyncEvents, Trigger
from connector.recipes.checker import validate_file
from connector.recipes.engine import Engine, RunResult
from connector.recipes.footprints import Echo
from connector.recipes.history import History
from connector.recipes.recipe import Recipe
from connector.runtime import Runtime
from connector.service.inbox import InboxEvent
from connector.sync.mapping import read_field

__all__ = [
    "FINISHED",
    "Dispatcher",
    "RecipeWatch",
    "Outcome",
    "Route",
    "contact_key",
    "enrich",
    "event_app",
    "event_payload",
    "load_routes",
    "run_id_for",
    "trigger_types",
]

FINISHED = frozenset({"succeeded", "skipped", "failed"})
"""Run statuses that are final: the dispatcher never starts such a run again."""

RECIPE_SUFFIXES = (".yaml", ".yml")
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Route:
    """A loaded recipe and the trigger it uses; ``key`` (the file name without suffix) names
    the recipe in run ids."""

    key: str
    recipe: Recipe
    trigger: Trigger


def load_routes(
    directory: Path, catalog: Catalog, filters: Mapping[str, FilterSpec]
) -> list[Route]:
    """Check and load every recipe (``*.yaml``, ``*.yml``) of ``directory``.

    :raises DocumentError: listing the problems of every recipe that fails validation (nothing
        runs unless all of them pass), or when the folder holds no recipe.
    """
    if not directory.is_dir():
        where = Location(str(directory))
        raise DocumentError([Problem(where, "not a folder of recipes")])
    files = sorted(p for p in directory.iterdir() if p.suffix in RECIPE_SUFFIXES)
    if not files:
        where = Location(str(directory))
        raise DocumentError([Problem(where, "no recipe (*.yaml) in this folder")])
    problems: list[Problem] = []
    routes: list[Route] = []
    keys: dict[str, Path] = {}
    for path in files:
        report = validate_file(path, catalog, filters=filters)
        problems.extend(report.problems)
        if report.problems or report.recipe is None:
            continue
        if path.stem in keys:
            message = f"recipe key {path.stem!r} is also used by {keys[path.stem].name!r}"
            problems.append(Problem(Location(str(path)), message, "rename one of the files"))
            continue
        keys[path.stem] = path
        trigger = catalog.trigger(report.recipe.trigger.use)
        routes.append(Route(path.stem, report.recipe, trigger))
    if problems:
        raise DocumentError(problems)
    return routes


class RecipeWatch:
    """Tells when a recipe folder's files changed (added, removed, edited), by their mtimes."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._seen = self._stamps()

    def __repr__(self) -> str:
        return f"RecipeWatch({str(self.directory)!r})"

    def changed(self) -> bool:
        """Whether the folder changed since the last call (or since it was made)."""
        now = self._stamps()
        if now == self._seen:
            return False
        self._seen = now
        return True

    def _stamps(self) -> dict[str, float]:
        try:
            paths = [p for p in self.directory.iterdir() if p.suffix in RECIPE_SUFFIXES]
            return {p.name: p.stat().st_mtime for p in paths}
        except OSError:
            return {}


def run_id_for(webhook_id: str, route_key: str) -> str:
    """The id of the run of recipe ``route_key`` for one event: the same on every attempt."""
    return f"{webhook_id}:{route_key}"


def contact_key(payload: Mapping[str, Any], events: SyncEvents) -> str | None:
    """The contact a hub event is about, for ordering (None when it names none), read by the
    hub's ``sync_events``: the record's id (at ``id``) when its type reports contacts, else the
    first of the ``contact`` fields present (dots walk into objects: GHL's appointment events
    name it at ``appointment.contactId``). A partner's events are read by its manifest's
    envelope instead (:func:`~connector.service.partnerhooks.contact_of`, through the pool's
    ``order``)."""
    kind = payload.get(events.type)
    about = events.types.get(kind) if isinstance(kind, str) else None
    found = payload.get(events.id) if about is not None and about.object == "contacts" else None
    if not found:
        found = next((v for name in events.contact if (v := read_field(payload, name))), None)
    return found if isinstance(found, str) and found else None



def event_payload(event: InboxEvent) -> dict[str, Any] | str:
    """A stored event's body as a JSON object, or why it is not one."""
    try:
        payload = json.loads(event.body)
    except ValueError as exc:
        return f"event {event.webhook_id!r}: body is not JSON: {exc}"
    if not isinstance(payload, dict):
        return f"event {event.webhook_id!r}: body is not an object"
    return payload


def event_app(event_type: str | None, hub: str | None) -> str:
    """The app an inbox event came from: a partner's or a poller's type is a trigger id
    (``<partner>.tasks.created``), a webhook of the ``hub`` app's is typed by its own name
    (GHL's ``TaskCreate``); "" when there is no hub."""
    kind = event_type or ""
    return kind.partition(".")[0] if "." in kind else hub or ""


def enrich(trigger: Trigger, payload: Mapping[str, Any], runtime: Runtime) -> dict[str, Any]:
    """The payload completed by the trigger's ``enrich`` fetch (a copy; unchanged without one).

    The fetch's ``with`` is rendered over ``{trigger: payload}``. With ``as: NAME`` the action's
    output goes under ``NAME``; without it, the fetched record (the output, or its only member
    when that is an object, as in ``{"task": {...}}``) fills the fields the payload lacks.

    :raises RemoteError: the fetch failed (the worker retries the event).
    :raises RecipeError: the declaration cannot be rendered or names an unknown action.
    """
    data = dict(payload)
    spec = trigger.enrich
    if not spec:
        return data
    try:
        values = compile_value(spec.get("with", {})).render({"trigger": data}, strict=True)
    except ConnectorError as exc:
        raise RecipeError(f"trigger {trigger.id!r}: enrich.with: {exc}") from exc
    if not isinstance(values, Mapping):
        raise RecipeError(f"trigger {trigger.id!r}: enrich.with is not an object")
    output = runtime.call(str(spec["action"]), values)
    name = spec.get("as")
    if name:
        data[str(name)] = output
        return data
    record = output
    if isinstance(output, Mapping) and len(output) == 1:
        only = next(iter(output.values()))
        record = only if isinstance(only, Mapping) else output
    if isinstance(record, Mapping):
        for key, value in record.items():
            data.setdefault(str(key), value)
    return data


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one event: ``done``, or ``dead`` with the reason (kept for replay)."""

    status: str
    runs: tuple[RunResult, ...] = ()
    error: str | None = None


class Dispatcher:
    """Matches inbox events to routes and runs them.

    Thread-safe: workers call :meth:`process` concurrently (for different contacts).

    :param catalog: the triggers known to the pack (to tell unknown event types apart).
    :param routes: the loaded recipes.
    :param engines: the engine for a location id (None: the event names no location).
    :param history: the run history (to skip runs that already ended).
    """

    def __init__(
        self,
        catalog: Catalog,
        routes: Sequence[Route],
        engines: Callable[[str | None], Engine],
        history: History,
    ) -> None:
        self.catalog = catalog
        self.engines = engines
        self.history = history
        self.routes: tuple[Route, ...] = ()
        self._by_type: dict[str, list[Route]] = {}
        self.use(routes)
        hub = catalog.hub
        self._known = {n for t in catalog.triggers.values() for n in trigger_types(t, hub)}
        self._ignored: set[str] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Dispatcher(routes={len(self.routes)}, types={sorted(self._by_type)})"

    def use(self, routes: Sequence[Route]) -> None:
        """Run these routes from now on (events already running finish with the old ones)."""
        by_type: dict[str, list[Route]] = {}
        for route in routes:
            for name in trigger_types(route.trigger, self.catalog.hub):
                by_type.setdefault(name, []).append(route)
        self.routes, self._by_type = tuple(routes), by_type

    @property
    def event_types(self) -> list[str]:
        """The event types some loaded recipe listens to."""
        return sorted(self._by_type)

    def routes_for(self, event_type: str | None) -> list[Route]:
        """The routes an event of this type starts (unknown types are logged once)."""
        found = self._by_type.get(event_type or "", [])
        if not found and event_type not in self._known:
            with self._lock:
                first = event_type not in self._ignored
                self._ignored.add(event_type or "")
            if first:
                _log.info(
                    "dispatcher: ignoring events of type %r (no trigger declares it)", event_type
                )
            BUS.publish("webhook", status="ignored", code="unknown_event",
                        reason="unknown event type", type=event_type)
        return list(found)

    def process(self, event: InboxEvent, echo: Echo | None = None) -> Outcome:
        """Run every matching recipe that has not ended yet for ``event``.

        :param echo: the pack's write the event echoes (recipes skip it unless they say
            ``echoes: run``).

        :raises StoreError: the state file failed (retry the event later).
        :raises RemoteError: an enrichment fetch failed (retry the event later).
        """
        routes = self.routes_for(event.type)
        if not routes:
            return Outcome("done")
        payload = event_payload(event)
        if isinstance(payload, str):
            return Outcome("dead", error=payload)
        statuses = self._statuses(event.webhook_id, routes)
        engine = self.engines(event.location_id)
        enriched: dict[str, dict[str, Any]] = {}
        results: list[RunResult] = []
        dead: list[str] = []
        for route in routes:
            run_id = run_id_for(event.webhook_id, route.key)
            status = statuses.get(run_id)
            if status in FINISHED:
                continue
            if status == "dead_letter":
                dead.append(f"{route.key}: dead letter")
                continue
            try:
                data = enriched.get(route.trigger.id)
                if data is None:
                    data = enrich(route.trigger, payload, engine.runtime)
                    enriched[route.trigger.id] = data
                result = engine.run(route.recipe, data, run_id=run_id, echo=echo)
            except (DocumentError, RecipeError) as exc:
                dead.append(f"{route.key}: {exc}")
                continue
            results.append(result)
            if result.status == "dead_letter":
                dead.append(f"{route.key}: {result.error}")
        if dead:
            return Outcome("dead", tuple(results), "; ".join(dead))
        return Outcome("done", tuple(results))

    def _statuses(self, webhook_id: str, routes: Iterable[Route]) -> dict[str, str]:
        ids = [run_id_for(webhook_id, r.key) for r in routes]
        marks = ", ".join("?" * len(ids))
        rows = self.history.store.query(f"SELECT id, status FROM runs WHERE id IN ({marks})", ids)
        return {str(r["id"]): str(r["status"]) for r in rows}


def trigger_types(trigger: Trigger, hub: str | None) -> list[str]:
    """The inbox ``type`` values that start a trigger: a webhook of the ``hub`` app's (GHL's) is
    typed by its event (the payload's ``type``); events of pollers and of other apps' receivers
    carry the trigger id instead."""
    if trigger.kind == "webhook" and trigger.app == hub:
        return [trigger.event] if trigger.event else []
    return [trigger.id]
