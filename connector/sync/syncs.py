"""Two-way syncs in the service: the sync documents of a recipe folder, run from the inbox.

``ghl-connector serve --recipes DIR`` loads every sync document of ``DIR`` (a file with a
top-level ``sync:`` and no ``trigger:``, see :func:`connector.sync.spec.load_sync`) with
:func:`load_syncs`, and :class:`Syncs` applies stored webhook events to them: a GHL event (of the
syncs' location) goes to every sync, a partner's event (stored by its receiver, see
:mod:`connector.service.partnerhooks`) to the syncs with that partner. Each sync has one
:class:`~connector.sync.engine.SyncEngine`, which applies one change at a time and audits every
decision in the same transaction as its id-map update.

An event is applied to a sync once: the audit trail is the record of it (the change's
``event_id`` is the inbox ``webhookId``), so an event run again after a failure, a crash or a
shutdown skips the syncs that already audited it. A change that failed half way (the write
happened, the audit did not) is applied again; the engine then pairs the record it wrote by
e-mail or phone and finds nothing left to change, so nothing is written twice.

Webhooks may arrive out of order (each delivery is its own request), so a task or note can come
before its contact's event, or be the first the sync hears of a contact: such a change first
pulls its parent contact (read from its app and applied as a change of its own, audited under
``<webhookId>#parent``), so it is never skipped for a parent "not linked yet".

A write the other app refuses (the engine audits it ``failed`` and logs it, see
:data:`connector.sync.engine.FAILED`) makes the event a dead letter at once
(:class:`SyncWriteFailed`): retrying gives the same answer, and a dead letter is listed by
``ghl-connector replay --list`` and the console. A ``failed`` row does not count as the event
being applied, so replaying the event (after fixing the record or the sync document) applies
it again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from connector.auth.credentials import api_key_env
from connector.catalog import Catalog, build_catalog
from connector.documents.document import load_yaml_file
from connector.errors import ConnectorError, DocumentError, Location, Problem, RemoteError
from connector.recipes.footprints import Echo, Footprints, LoopDetected, Origin, acting
from connector.runtime import Runtime
from connector.service.cursor import POLL_PREFIX
from connector.service.dispatcher import event_payload
from connector.service.inbox import InboxEvent
from connector.service.partnerhooks import PartnerHook, partner_of, webhook_secret_env
from connector.store import Store
from connector.sync.engine import FAILED, Change, Outcome, SyncEngine
from connector.sync.events import change_from_hub, change_from_partner
from connector.sync.mapping import record_time
from connector.sync.sides import SyncSide
from connector.sync.spec import SyncSpec, load_sync

__all__ = [
    "Prepare",
    "SyncRoute",
    "SyncWriteFailed",
    "Syncs",
    "describe",
    "hub_reader",
    "is_sync_document",
    "load_syncs",
    "partner_hooks",
]

Prepare = Callable[[Change], Change]
"""Completes a change before it is applied (e.g. reads the full record a webhook only names)."""
SUFFIXES = (".yaml", ".yml")
_log = logging.getLogger(__name__)


class SyncWriteFailed(ConnectorError):
    """A sync could not write an event's change (the other app refused its input): the event
    is dead at once, not retried (see the module docstring)."""


@dataclass(frozen=True, slots=True)
class SyncRoute:
    """A loaded sync document: its file and its spec (whose ``name`` keys the id map)."""

    file: Path
    spec: SyncSpec

    @property
    def name(self) -> str:
        """The sync's name."""
        return self.spec.name


def is_sync_document(data: object) -> bool:
    """A standalone sync document: ``sync:`` and no ``trigger:`` (as ``validate`` tells them)."""
    return isinstance(data, dict) and "sync" in data and "trigger" not in data


def load_syncs(directory: Path, catalog: Catalog | None = None) -> list[SyncRoute]:
    """Load every sync document (``*.yaml``, ``*.yml``) of ``directory``, sorted by file.

    :param catalog: the apps (adapters, webhooks); default: those of every installed plugin.
    :raises DocumentError: listing every problem (file, line, field) of every sync document
        that fails, two syncs sharing a name, or a partner whose webhooks the service cannot
        verify (its manifest declares no ``webhooks``).
    """
    if not directory.is_dir():
        return []
    apps = (catalog or build_catalog()).apps
    files = sorted(p for p in directory.iterdir() if p.suffix in SUFFIXES)
    problems: list[Problem] = []
    found: list[SyncRoute] = []
    names: dict[str, Path] = {}
    for path in files:
        try:
            if not is_sync_document(load_yaml_file(path).data):
                continue
            spec = load_sync(path, apps=apps)
        except DocumentError as exc:
            problems.extend(exc.problems)
            continue
        where = Location(str(path), None, None, "sync.partner")
        partner = apps.get(spec.partner)
        if partner is None or partner.webhooks is None:
            known = ", ".join(sorted(a for a, app in apps.items() if app.webhooks)) or "none"
            message = f"partner {spec.partner!r} has no webhook receiver in the service"
            hint = f"apps whose manifest declares `webhooks`: {known}"
            problems.append(Problem(where, message, hint))
            continue
        if spec.name in names:
            message = f"sync name {spec.name!r} is also used by {names[spec.name].name!r}"
            problems.append(
                Problem(
                    Location(str(path), None, None, "name"),
                    message,
                    "the name keys the id map: rename one",
                )
            )
            continue
        names[spec.name] = path
        found.append(SyncRoute(path, spec))
    if problems:
        raise DocumentError(problems)
    return found


def partner_hooks(
    routes: Sequence[SyncRoute],
    catalog: Catalog,
    *,
    secrets: Mapping[str, str],
    api_keys: Mapping[str, str],
    command: str = "serve",
) -> dict[str, PartnerHook]:
    """The receiver's hook of each partner the syncs name, with its webhook secret (given,
    else ``CONNECTOR_<APP>_WEBHOOK_SECRET``); also checks the partner's API key is there.

    :param secrets: app id -> webhook secret (sandbox mode); others come from the environment.
    :param api_keys: app id -> API key (sandbox mode); others come from the environment.
    :param command: the command that runs (``serve``, ``worker``), named in the error.
    :raises ConnectorError: one line naming every secret or key that is missing.
    """
    hooks: dict[str, PartnerHook] = {}
    missing: list[str] = []
    for route in routes:
        app = route.spec.partner
        partner = catalog.app(app)
        if partner.webhooks is None:
            continue  # load_syncs refused it already
        env = webhook_secret_env(partner)
        secret = secrets.get(app) or os.environ.get(env) or ""
        lacks = [] if secret else [env]
        if not (api_keys.get(app) or os.environ.get(api_key_env(catalog.app(app)))):
            lacks.append(api_key_env(catalog.app(app)))
        if lacks:
            missing.append(f"sync {route.name!r} ({route.file}) needs ${' and $'.join(lacks)}")
            continue
        types = {
            str(t.event): t.id
            for t in catalog.triggers.values()
            if t.app == app and t.kind == "webhook" and t.event
        }
        hooks[app] = PartnerHook(app, secret, partner.webhooks, types)
    if missing:
        raise ConnectorError(
            f"{command}: {'; '.join(missing)} [set the partner's webhook signing secret and"
            " API key in the environment"
            + (", or try it with --sandbox]" if command == "serve" else "]")
        )
    return hooks


def describe(routes: Sequence[SyncRoute], base: str, location_id: str | None) -> list[str]:
    """Start-up summary lines for the syncs (``base``: the service's URL, no path)."""
    if not routes:
        return ["syncs: none"]
    lines = [f"syncs: {len(routes)} loaded, GHL location {location_id or 'any'}"]
    for route in routes:
        objects = ", ".join(route.spec.objects)
        lines.append(
            f"  {route.name}: ghl <-> {route.spec.partner} ({objects}) from {route.file.name}"
        )
    for app in sorted({r.spec.partner for r in routes}):
        lines.append(f"partner webhook URL ({app}): {base}/webhooks/{app}")
    return lines


def hub_reader(runtime: Runtime) -> Prepare:
    """Completes the hub's changes of the objects its ``sync_events`` lists under ``reread``
    with the record as the hub holds it now (a child of a contact, read by its ``get``).

    GHL's task webhooks carry only the task's text fields (``TaskComplete`` says nothing of
    ``completed``), and its note webhooks no update time (only the event's ``timestamp``,
    which may run ahead of the note's ``dateUpdated``: a later edit then looked older). So the
    record is read before the engine compares it, and its update time is the change's time.
    """
    side = SyncSide(runtime)
    hub = runtime.catalog.apps.get(runtime.catalog.hub or "")
    reread = frozenset(hub.sync_events.reread) if hub and hub.sync_events else frozenset()

    def prepare(change: Change) -> Change:
        if change.object not in reread or change.record is None or hub is None:
            return change
        if not change.parent_id:
            return change
        adapter = hub.sync_adapters.get(change.object)
        if adapter is None or "get" not in adapter:
            return change
        data = {adapter["id_input"]: change.record_id, adapter["parent_input"]: change.parent_id}
        try:
            found = side.call(adapter["get"], data).get(adapter["record_key"])
        except RemoteError:
            return change  # gone since: applied as the webhook told it; its delete follows
        if not isinstance(found, dict) or not found:
            return change
        when = record_time(found.get(adapter["updated_field"])) or change.updated_at
        return replace(change, record={**change.record, **found}, updated_at=when)

    return prepare


class Syncs:
    """The syncs a service runs, each with its engine, applied from inbox events.

    Thread-safe: workers call :meth:`process` concurrently; each engine applies one change at
    a time, and the worker pool runs one contact's events in arrival order.

    :param routes: the loaded sync documents.
    :param runtime: calls GHL (for ``location_id``) and the partners (with their API keys).
    :param store: the state file (id map, audit trail).
    :param location_id: the GHL location the syncs keep in step; GHL events of other
        locations are not applied (None: every GHL event is).
    """

    def __init__(
        self,
        routes: Sequence[SyncRoute],
        runtime: Runtime,
        store: Store,
        *,
        location_id: str | None,
        footprints: Footprints | None = None,
    ) -> None:
        self.routes = tuple(routes)
        self.footprints = footprints
        self.store = store
        self.location_id = location_id
        self.partners = frozenset(r.spec.partner for r in self.routes)
        self._webhooks = {p: runtime.catalog.app(p).webhooks for p in self.partners}
        self._engines = [SyncEngine(r.spec, runtime, store) for r in self.routes]
        self._prepare = hub_reader(runtime)
        self.hub = runtime.catalog.hub or ""
        """The hub app's id: its events are typed by its own names and cover every sync."""
        hub = runtime.catalog.apps.get(self.hub)
        self._hub_events = hub.sync_events if hub else None
        """How the hub's webhooks read as changes (its manifest's ``sync_events``)."""

    def __repr__(self) -> str:
        return f"Syncs({[r.name for r in self.routes]}, location={self.location_id!r})"

    def process(self, event: InboxEvent, echo: Echo | None = None) -> list[Outcome]:
        """Apply the change ``event`` reports to every sync it concerns and that has not
        audited it yet; returns the outcomes of this attempt.

        :param echo: the pack's write the event echoes: a sync skips the echoes of other
            writers (recipes, other syncs); its own it recognises itself (and audits).
        :raises LoopDetected: a sync's write was refused as a loop (the event is dead).
        :raises ConnectorError: applying failed for some sync (the worker retries the event
            with the inbox's backoff; syncs that applied it skip it then).
        :raises SyncWriteFailed: no call failed, but some sync's write was refused by the
            other app (audited ``failed``): the event is dead, retrying would not help.
        """
        found = self._change(event)
        if found is None:
            return []
        app, change = found
        outcomes: list[Outcome] = []
        failed: list[str] = []
        refused: list[str] = []
        loops: list[LoopDetected] = []
        for engine in self._engines:
            spec = engine.spec
            if app not in (self.hub, spec.partner) or change.object not in spec.objects:
                continue
            writer = f"sync:{spec.name}"
            if echo is not None and echo.writer != writer:
                _log.info("syncs: %s skips event %r: echo of the pack's own write (%s)",
                          writer, event.webhook_id, echo.writer)
                continue
            if self._applied(spec.name, event.webhook_id):
                continue
            origin = Origin(writer, event.webhook_id, (*(echo.chain if echo else ()), writer))
            try:
                with acting(origin, self.footprints):
                    prepared = self._prepare(change) if app == self.hub else change
                    parent = self._pull_parent(engine, prepared)
                    applied = engine.apply(prepared)
            except LoopDetected as exc:
                loops.append(exc)
                continue
            except ConnectorError as exc:
                failed.append(f"sync {spec.name!r}: {exc}")
                continue
            outcomes.append(applied)
            for out in (parent, applied):
                if out is not None and out.action == FAILED:
                    refused.append(f"sync {spec.name!r}: {change.object} {out.reason}")
        if loops:
            raise LoopDetected("; ".join(str(e) for e in loops), loops[0].chain)
        if failed:
            raise ConnectorError(f"event {event.webhook_id!r}: " + "; ".join(failed))
        if refused:
            raise SyncWriteFailed(f"event {event.webhook_id!r}: " + "; ".join(refused))
        return outcomes

    def _change(self, event: InboxEvent) -> tuple[str, Change] | None:
        """The source app and the change an event reports (None: nothing a sync applies)."""
        if event.webhook_id.startswith(POLL_PREFIX):
            return None
        app = partner_of(event.webhook_id, self.partners)
        payload = event_payload(event)
        if isinstance(payload, str):
            return None
        if app is None:
            elsewhere = self.location_id and event.location_id not in (None, self.location_id)
            if elsewhere:
                _log.debug(
                    "syncs: event %r is of location %r, not the syncs' one",
                    event.webhook_id,
                    event.location_id,
                )
                return None
            events = self._hub_events
            change = change_from_hub(payload, events) if events else None
            app = self.hub
        else:
            webhooks = self._webhooks.get(app)
            change = change_from_partner(payload, webhooks) if webhooks else None
        if change is None:
            return None
        return app, replace(change, event_id=event.webhook_id)

    def _pull_parent(self, engine: SyncEngine, change: Change) -> Outcome | None:
        """Apply the parent contact of a task or note change first, if the sync has not
        linked it yet (nothing when the object has no parent or its parent is not synced
        from that side); its outcome, if it was applied now."""
        spec = engine.spec
        obj = spec.objects[change.object]
        parent = spec.objects.get(obj.parent or "")
        if parent is None or change.record is None or not change.parent_id:
            return None
        if not parent.allows(change.side):
            return None
        if engine.ids.find(parent.name, change.side, change.parent_id) is not None:
            return None
        event_id = f"{change.event_id}#parent"
        if self._applied(spec.name, event_id):
            return None
        pulled = Change(change.side, parent.name, change.parent_id, {}, event_id=event_id)
        return engine.apply(pulled)

    def _applied(self, sync: str, event_id: str) -> bool:
        """Whether ``sync`` already audited the event (applied it, or decided to skip it; a
        write the other app refused, audited ``failed``, does not count: a replay retries)."""
        rows = self.store.query(
            "SELECT 1 AS found FROM sync_audit WHERE sync = ? AND event_id = ? AND action != ?"
            " LIMIT 1",
            (sync, event_id, FAILED),
        )
        return bool(rows)
