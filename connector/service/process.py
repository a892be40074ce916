"""The service: receiver, pollers and worker pool in one process (``ghl-connector serve``).

:func:`serve` loads and checks every recipe of a folder (any problem stops the start, listing
them all), takes the state file's serve lock (one service per state file), hands back claims a
killed predecessor left, then runs:

- the webhook receiver (:mod:`connector.service.receiver`) on ``host:port``, which stores each
  verified
  webhook in the inbox before answering, and wakes the workers;
- the pollers (:func:`start_pollers`), which put polled records into the same inbox;
- the worker pool (:mod:`connector.service.workers`), which runs the dispatcher
  (:mod:`connector.service.dispatcher`)
  on each event with the engine of the event's location (:class:`Engines`), then applies it to
  the folder's two-way syncs (:mod:`connector.sync.syncs`);
- the REST-hook deliverer (:mod:`connector.api.delivery`, unless ``rest_hooks`` is off,
  ``--no-rest-hooks``): each event is queued for the subscriptions it matches before its
  recipes run, and sent to their targets signed, retried, durably.

Sync documents in the folder (``name`` + ``sync:``) are loaded too; the receiver then also
takes each of their partners' webhooks at ``/webhooks/<app>`` (HMAC-signed, see
:mod:`connector.service.partnerhooks`), and starting fails with one line if a partner's webhook
secret
or API key is missing. Every sync runs with the runtime of ``sync_location`` (GHL calls) which
also calls the partners with their API keys.

``/console/`` is the web console and ``/metrics`` the Prometheus metrics
(:mod:`connector.console`; a login beyond loopback), in front of the receiver.
``GET /healthz`` (and ``HEAD``, without the body) answers 200 with the inbox counts while the
inbox writer and every worker run, 503 otherwise; a fleet's ``serve`` whose queue cannot be
reached answers 200 ``"degraded"`` with the reason in ``queue`` (it still stores webhooks).
Processed (``done``) inbox events older than ``keep_events`` are purged at start and every
``purge_every`` seconds, in small batches; dead ones stay until replayed or discarded. Logs are
JSON lines on stderr, redacted (:mod:`connector.auth.redaction`). SIGTERM or SIGINT stop the
receiver, then the pool (running events get ``grace`` seconds, the rest is handed back). In
``sandbox`` mode an in-process GHL sandbox stands in for HighLevel: its keys sign the webhooks,
its private token authenticates the calls, and it delivers its events to the service (the
partner sandboxes the syncs name likewise, see :mod:`connector.cli.serve`).
"""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import IO, Any, TextIO

from connector.api.delivery import Deliverer, delivery_counts, fan_out
from connector.api.subscriptions import subscribed_triggers
from connector.auth.redaction import register
from connector.catalog import Catalog
from connector.console.access import health_details
from connector.console.app import ServiceApp
from connector.console.mount import console_banner, replayer, service_console
from connector.errors import ConnectorError, DocumentError, StoreError
from connector.hookspecs import RateLimit, Trigger
from connector.recipes.engine import Engine
from connector.recipes.flows import crossings, recipe_flows, sync_flows
from connector.recipes.footprints import (
    Echo,
    Footprints,
    LoopDetected,
)
from connector.recipes.history import History
from connector.runtime import Runtime
from connector.runtime import Settings as RuntimeSettings
from connector.service.dispatcher import (
    Dispatcher,
    Outcome,
    RecipeWatch,
    Route,
    event_app,
    event_payload,
    load_routes,
)
from connector.service.inbox import EventTypes, Inbox, InboxEvent, InboxWriter, NewEvent
from connector.service.listener import ServerThread, bind_socket, guarded_server, socket_url
from connector.service.options import ServeOptions
from connector.service.partnerhooks import PartnerHook, hub_events, ordering
from connector.service.receiver import WEBHOOK_PATH, ReceiverApp, Settings, open_store
from connector.service.shutdown import on_stop_signal
from connector.service.summary import summary
from connector.service.workers import WorkerPool, recover
from connector.store import Store
from connector.sync.syncs import SyncRoute, Syncs, SyncWriteFailed, load_syncs, partner_hooks

__all__ = ["Engines", "build_work", "catch_signals", "load_folder", "serve", "start_pollers",
           "start_purger"]

_log = logging.getLogger("connector.service.process")
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class Engines:
    """One engine per location id, each on a runtime authenticated for that location.

    :param auth: the auth provider for a location id.
    :param sleep: the engines' wait between retries (the pool's, so shutdown interrupts it).
    """

    def __init__(
        self,
        catalog: Catalog,
        store: Store,
        options: ServeOptions,
        sleep: Callable[[float], None],
        footprints: Footprints | None = None,
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.options = options
        self.sleep = sleep
        self.footprints = footprints
        self._engines: dict[str | None, Engine] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Engines(locations={sorted(map(str, self._engines))})"

    def __call__(self, location_id: str | None) -> Engine:
        """The engine for ``location_id`` (created on first use). An event that names no
        location (a partner's) runs in the default connection's location, so a step writing
        to GHL gets its ``locationId`` as it would from ``call``."""
        location_id = location_id or self.options.sync_location
        with self._lock:
            engine = self._engines.get(location_id)
            if engine is None:
                engine = self._engines[location_id] = self._build(location_id)
            return engine

    def _build(self, location_id: str | None) -> Engine:
        options = self.options
        hub = self.catalog.hub
        urls = {hub: options.base_url} if options.base_url and hub else {}
        limits = {hub: options.rate_limit} if options.rate_limit and hub else {}
        settings = RuntimeSettings(
            base_urls={**options.app_urls, **urls},
            location_id=location_id,
            rate_limits={**options.app_limits, **limits},
            limiter=options.limiter,
        )
        auth = options.auth(location_id) if options.auth is not None else None
        runtime = Runtime(self.catalog, settings, auth=auth)
        return Engine(
            self.catalog, runtime, self.store, sleep=self.sleep, footprints=self.footprints
        )

    def rate_limits(self) -> dict[str, list[dict[str, object]]]:
        """Every runtime's rate-limiter state, by app id (one entry per location seen)."""
        with self._lock:
            engines = list(self._engines.values())
        merged: dict[str, list[dict[str, object]]] = {}
        for engine in engines:
            for app, snaps in engine.runtime.rate_limits().items():
                merged.setdefault(app, []).extend(snaps)
        return merged

    def limit_of(self, app_id: str) -> RateLimit | None:
        """The rate limit the runtimes apply to ``app_id`` (its options', else the manifest's)."""
        options = self.options
        if app_id == self.catalog.hub and options.rate_limit:
            return options.rate_limit
        app = self.catalog.apps.get(app_id)
        return options.app_limits.get(app_id, app.rate_limit if app is not None else None)

    def close(self) -> None:
        """Close every runtime's HTTP clients."""
        with self._lock:
            for engine in self._engines.values():
                engine.runtime.close()
            self._engines.clear()


class _WakingWriter(InboxWriter):
    """The inbox writer that wakes the workers once an event is committed."""

    def __init__(self, inbox: Inbox, wake: Callable[[], None]) -> None:
        super().__init__(inbox)
        self._wake_pool = wake

    async def add(self, event: NewEvent) -> bool:
        stored = await super().add(event)
        if stored:
            self._wake_pool()
        return stored


def start_pollers(
    routes: list[Route], engines: Engines, store: Store, options: ServeOptions,
    stop: threading.Event, *, triggers: Sequence[Trigger] = (),
) -> list[str]:
    """Start one poller thread per polling trigger the routes (or ``triggers``: those REST-hook
    subscriptions name) use and per polled location.

    Pollers (:class:`connector.service.pollers.Poller`) put their events into the inbox of
    ``store``,
    through the runtime of their location (so they share its rate limit); they stop when
    ``stop`` is set. Returns ``<trigger> @ <location>`` for each poller started.
    """
    used = [*(r.trigger for r in routes), *triggers]
    polled = sorted({t.id: t for t in used if t.kind == "polling"}.items())
    if not polled:
        return []
    if not options.poll_locations:
        _log.warning("serve: polling triggers %s need a location [give --poll-location]",
                     [tid for tid, _ in polled])
        return []
    from connector.service.pollers import Poller, PollSettings

    settings = PollSettings(interval=options.poll_interval)
    started: list[str] = []
    for trigger_id, trigger in polled:
        for location in options.poll_locations:
            poller = Poller(trigger, engines(location).runtime, store, settings,
                            location_id=location)
            threading.Thread(target=poller.run_forever, args=(stop,), daemon=True,
                             name=f"poll-{trigger_id}-{location}").start()
            started.append(f"{trigger_id} @ {location}")
    return started


class _Lock:
    """The state file's serve lock: one service per state file."""

    def __init__(self, db: Path) -> None:
        self.path = db.with_name(db.name + ".serve.lock")
        self._file: IO[bytes] | None = None

    def __enter__(self) -> _Lock:
        try:
            self._file = open(self.path, "ab")  # noqa: SIM115  # held until __exit__
        except OSError as exc:
            raise StoreError(
                f"{self.path}: cannot open the serve lock: {exc.strerror or exc}"
                " [check the folder's permissions, or give another --db]"
            ) from exc
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self._file.close()
            raise StoreError(
                f"{self.path}: another `ghl-connector serve` uses this state file"
                " [stop it, or give another --db]"
            ) from exc
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            self._file.close()


def _serve_lock(store: Store) -> AbstractContextManager[object]:
    """One service per SQLite file; any number share a PostgreSQL store (pollers take
    leases, inbox claims skip each other's rows)."""
    return _Lock(store.path) if store.dialect == "sqlite" else nullcontext()


def serve(
    options: ServeOptions,
    catalog: Catalog,
    filters: Mapping[str, Any],
    *,
    out: TextIO,
    on_ready: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Run the service until SIGTERM/SIGINT (or ``stop`` is set); returns the exit status.

    :param filters: the expression filters recipes may use.
    :param out: where the start-up summary goes.
    :param on_ready: called with the webhook URL once the receiver listens, before `ready` is
        printed (serve --sandbox points its sandboxes' webhooks there).
    :raises DocumentError: a recipe or sync document fails validation (nothing was started).
    :raises ConnectorError: a sync's partner has no webhook secret or API key, or the syncs
        have no GHL location.
    :raises StoreError: the state file cannot be opened, or another service holds it.
    """
    routes, syncs, hooks = load_folder(options, catalog, filters, out=out)
    with Store(options.db) as work_store, _serve_lock(work_store):
        with open_store(options.db) as receive_store:
            return _run(options, catalog, (routes, syncs), receive_store, work_store, hooks,
                        out=out, on_ready=on_ready, stop=stop or threading.Event())


def load_folder(
    options: ServeOptions, catalog: Catalog, filters: Mapping[str, Any], *, out: TextIO,
    command: str = "serve",
) -> tuple[list[Route], list[SyncRoute], dict[str, PartnerHook]]:
    """Load and check the folder's recipes and syncs, and their partners' webhook settings
    (``serve`` and ``worker`` alike: ``command``, named in errors and log lines); warnings go
    to ``out`` (once: not to the log as well).

    :raises DocumentError: a recipe or sync document fails validation.
    :raises ConnectorError: a sync's partner has no webhook secret or API key, or the syncs
        have no GHL location.
    """
    routes = load_routes(options.recipes, catalog, filters)
    syncs = load_syncs(options.recipes, catalog)
    hooks = partner_hooks(syncs, catalog, secrets=options.webhook_secrets,
                          api_keys=options.api_keys, command=command)
    if syncs and options.sync_location is None:
        raise ConnectorError(
            f"{command}: the syncs in {str(options.recipes)!r} need a GHL location [connect one"
            " with `ghl-connector auth login`, or give --connection]"
        )
    register(*(hook.secret for hook in hooks.values()), *options.api_keys.values())
    unset = [(_file_name(r), n) for r in routes for n in r.recipe.env if n not in os.environ]
    warnings = [f"{file} reads ${name}, which is not set" for file, name in unset]
    # Once, in the start-up summary on ``out`` (stdout): the JSON log on stderr does not repeat
    # it, so a console shows each warning once.
    for warning in [*warnings, *folder_crossings(routes, syncs, catalog)]:
        out.write(f"warning: {warning}\n")
    return routes, syncs, dict(hooks)


def build_work(
    options: ServeOptions, catalog: Catalog, loaded: tuple[list[Route], list[SyncRoute]],
    store: Store, pool: WorkerPool, command: str = "serve",
) -> tuple[Engines, Dispatcher, Deliverer | None]:
    """The engines, the dispatcher and the REST-hook deliverer (None when ``rest_hooks`` is
    off; not started) that run events, set as ``pool``'s handler (the engines wait between
    retries through the pool, so a shutdown interrupts them). ``command`` (``serve``,
    ``worker``) names the process in log lines."""
    routes, sync_routes = loaded
    events = {app.id: app.sync_events for app in catalog.apps.values() if app.sync_events}
    footprints = Footprints(store, loop_limit=options.loop_limit,
                            loop_window=options.loop_window, events=events)
    engines = Engines(catalog, store, options, pool.sleep, footprints)
    dispatcher = Dispatcher(catalog, routes, engines, History(store))
    syncs = Syncs(sync_routes, engines(options.sync_location).runtime, store,
                  location_id=options.sync_location, footprints=footprints) if sync_routes else None
    deliverer = Deliverer(store) if options.rest_hooks else None
    pool.handle = _handler(dispatcher, syncs, footprints, deliverer, command)
    return engines, dispatcher, deliverer


def _run(options: ServeOptions, catalog: Catalog, loaded: tuple[list[Route], list[SyncRoute]],
         receive_store: Store, work_store: Store, hooks: Mapping[str, PartnerHook], *,
         out: TextIO, on_ready: Callable[[str], None] | None, stop: threading.Event) -> int:
    routes, sync_routes = loaded
    inbox = Inbox(work_store)
    pool = WorkerPool(inbox, _unset, options.pool, name=f"serve-{os.getpid()}",
                      order=ordering(hooks, hub_events(catalog)))
    fleet = None
    limits = None
    if options.fleet is not None and not options.fleet.broker:  # only the limits are shared
        from connector.fleet.member import Member

        limits = Member(options.fleet, "serve")
        options = dataclasses.replace(options, fleet=None, limiter=limits.limiter)
    if options.fleet is not None:  # workers elsewhere hold claims: nothing to recover here
        from connector.fleet.identity import store_identity
        from connector.fleet.member import ServeMember

        fleet = ServeMember(options.fleet, inbox, pool.order,
                            identity=store_identity(work_store), recipes=options.recipes)
        options = dataclasses.replace(options, limiter=fleet.limiter)
        recovered = 0
    else:
        # A shared store (PostgreSQL) has other live processes' claims: those of dead ones are
        # taken over when their lease runs out (Inbox.claim), never released wholesale here.
        recovered = recover(inbox) if work_store.dialect == "sqlite" else 0
    engines, dispatcher, deliverer = build_work(options, catalog, loaded, work_store, pool)
    writer = _WakingWriter(Inbox(receive_store), pool.wake if fleet is None else fleet.wake)

    def health() -> tuple[bool, dict[str, Any]]:
        try:
            counts: dict[str, int] | str = inbox.counts()
        except StoreError as exc:
            counts = str(exc)
        # A fleet's serve whose queue (broker or Redis) is down still stores every webhook:
        # it stays in the load balancer, "degraded", and the sweeper sends the events later.
        working = pool.alive if fleet is None else fleet.feeder.alive
        healthy = writer.alive and writer.healthy and working and isinstance(counts, dict)
        healthy = healthy and (deliverer is None or deliverer.alive)
        degraded = healthy and fleet is not None and not fleet.feeder.healthy
        report = {"status": "degraded" if degraded else "ok" if healthy else "unhealthy",
                  "inbox": counts,
                  "workers": options.pool.workers, "in_flight": pool.in_flight,
                  "writer": "ok" if writer.alive and writer.healthy else "failing"}
        if deliverer is not None:
            try:
                report["hooks"] = delivery_counts(work_store)
            except StoreError as exc:
                report["hooks"] = str(exc)
        if fleet is not None:
            report.update(fleet.health())
            report["workers"] = 0
            if not fleet.feeder.healthy:
                report["queue"] = ("unreachable: webhooks are stored, and queued once it is"
                                   f" back ({fleet.feeder.error})")
        return healthy, report

    settings = Settings(options.keys, max_age=options.max_age,
                        events=EventTypes.of_catalog(catalog))
    receiver = ReceiverApp(writer, settings, partners=hooks, health=health,
                           details=health_details(work_store, options.host))
    console, metrics = service_console(
        work_store, options.host, routes=lambda: dispatcher.routes, catalog=catalog,
        # A fleet's serve makes (almost) no call: the headroom shown is the fleet's, in Redis.
        rate_limits=(engines.rate_limits if fleet is None
                     else lambda: fleet.rate_limits(engines.limit_of)),
        replay=replayer(work_store, catalog, lambda loc: engines(loc).runtime,
                        pool.wake if fleet is None else fleet.rescan),
        peers=None if fleet is None else fleet.live_peers,
    )
    app = ServiceApp(console, receiver, metrics)
    try:
        sock = bind_socket(options.host, options.port)
    except ConnectorError as exc:
        raise ConnectorError(f"serve: {exc}") from None
    url = socket_url(sock, WEBHOOK_PATH)
    writer.start()
    if fleet is None:
        pool.start()
    else:
        fleet.start()
    if deliverer is not None:
        deliverer.start()
    catch_signals(stop)
    hook_polls = _HookPollers(routes, engines, work_store, options, stop) if deliverer else None
    pollers = start_pollers(routes, engines, work_store, options, stop)
    if hook_polls is not None:
        pollers += hook_polls.check()
    start_purger(inbox, options, stop)
    # In a thread, so this module, not uvicorn, owns the signals.
    served = ServerThread(guarded_server(app, log_config=None, timeout_graceful_shutdown=2), sock,
                          name="serve-http")
    status = 0
    try:
        served.start()
        if on_ready is not None:  # before "ready": the sandboxes send their webhooks here then
            on_ready(url)
        lines = summary(options, routes, sync_routes, url, pollers, recovered)
        lines[2:2] = console_banner(url.removesuffix(WEBHOOK_PATH), console)
        out.write("\n".join(lines) + "\nready\n")
        out.flush()
        _log.info("serve: ready", extra={"fields": {"webhook_url": url, "recipes": len(routes)}})
        watch = RecipeWatch(options.recipes)
        while not stop.wait(0.2):
            if not served.alive:
                _log.error("serve: the HTTP server stopped; shutting down")
                status = 1
                break
            if watch.changed():
                _reload(dispatcher, options.recipes, catalog)
            if hook_polls is not None:
                hook_polls.check()
    finally:
        stop.set()
        console.stopping.set()
        metrics.close()
        served.stop()
        sock.close()
        writer.close()
        handed = pool.stop() if fleet is None else 0
        if fleet is not None:
            fleet.stop()
        if deliverer is not None:
            deliverer.stop()
        engines.close()
        if limits is not None:
            limits.close()
        _log.info("serve: stopped", extra={"fields": {"handed_back": handed,
                                                      "settled": dict(pool.settled)}})
    return status


class _HookPollers:
    """Polls the polling triggers REST-hook subscriptions name that no recipe polls: those
    subscribed at start, then (looked up every ``every`` seconds) those subscribed later.
    A poller runs until the service stops, even after its last subscription is removed."""

    def __init__(self, routes: list[Route], engines: Engines, store: Store,
                 options: ServeOptions, stop: threading.Event, every: float = 2.0) -> None:
        self.engines, self.store, self.options, self.stop = engines, store, options, stop
        self.every = every
        self.polled = {r.trigger.id for r in routes if r.trigger.kind == "polling"}
        self._next = 0.0

    def check(self) -> list[str]:
        """Start pollers for newly subscribed polling triggers (at most every ``every`` s)."""
        now = time.monotonic()
        if now < self._next:
            return []
        self._next = now + self.every
        catalog = self.engines.catalog
        try:
            named = subscribed_triggers(self.store, catalog)
        except StoreError as exc:
            _log.warning("serve: cannot read the REST-hook subscriptions: %s", exc)
            return []
        fresh = [t for t in named if t.kind == "polling" and t.id not in self.polled]
        if not fresh:
            return []
        self.polled.update(t.id for t in fresh)
        started = start_pollers([], self.engines, self.store, self.options, self.stop,
                                triggers=fresh)
        if started:
            _log.info("serve: polling for REST-hook subscriptions",
                      extra={"fields": {"pollers": started}})
        return started


def start_purger(inbox: Inbox, options: ServeOptions, stop: threading.Event) -> None:
    """Purge ``done`` events older than ``keep_events`` now and every ``purge_every`` seconds
    (in small batches, see :meth:`Inbox.purge`), in a thread that ends when ``stop`` is set."""

    def run() -> None:
        while True:
            try:
                purged = inbox.purge(time.time() - options.keep_events)
            except StoreError as exc:  # a locked or full disk: try again next time
                _log.warning("serve: purging old inbox events failed: %s", exc)
            else:
                if purged:
                    _log.info("serve: purged old inbox events",
                              extra={"fields": {"purged": purged}})
            if stop.wait(options.purge_every):
                return

    threading.Thread(target=run, name="inbox-purge", daemon=True).start()


def _handler(
    dispatcher: Dispatcher, syncs: Syncs | None, footprints: Footprints,
    hooks: Deliverer | None = None, command: str = "serve",
) -> Callable[[InboxEvent], Outcome]:
    """Queue the event for the REST-hook subscriptions it matches (once, however often it
    runs), tell whether it echoes the pack's own write, run its recipes, then apply it to
    the syncs (a sync that fails raises, so the pool retries the event: runs that ended and
    syncs that audited it are skipped then; a loop, or a write the other app refuses, makes
    the event dead at once)."""

    def handle(event: InboxEvent) -> Outcome:
        if hooks is not None and fan_out(hooks.store, event):
            hooks.wake()
        echo = _echo(footprints, event, dispatcher.catalog.hub)
        outcome = dispatcher.process(event, echo)
        if syncs is not None:
            try:
                syncs.process(event, echo)
            except (LoopDetected, SyncWriteFailed) as exc:
                _log.warning("%s: %s; event %r is dead-lettered", command, exc,
                             event.webhook_id)
                error = "; ".join(filter(None, (outcome.error, str(exc))))
                return Outcome("dead", outcome.runs, error)
        return outcome

    return handle


def _reload(dispatcher: Dispatcher, folder: Path, catalog: Catalog) -> None:
    """Load the folder's recipes again after a change; keep the running ones if any fails."""
    try:
        routes = load_routes(folder, catalog, catalog.filters)
    except DocumentError as exc:
        _log.error("serve: recipes changed but do not pass validation; still running the"
                   " ones loaded before: %s", exc)
        return
    dispatcher.use(routes)
    _log.info("serve: recipes reloaded", extra={"fields": {"recipes": len(routes)}})


def folder_crossings(
    routes: Sequence[Route], syncs: Sequence[SyncRoute], catalog: Catalog
) -> list[str]:
    """The warnings of :func:`connector.recipes.flows.crossings` for a folder's recipes and
    syncs."""
    flows = [f for r in routes for f in recipe_flows(_file_name(r), r.recipe, catalog)]
    flows += [f for s in syncs for f in sync_flows(s.file.name, s.spec)]
    return crossings(flows)


def _file_name(route: Route) -> str:
    return Path(route.recipe.file).name if route.recipe.file else route.key


def _echo(footprints: Footprints, event: InboxEvent, hub: str | None) -> Echo | None:
    """The pack's write ``event`` echoes (None: not an echo, or its body is not an object)."""
    payload = event_payload(event)
    if isinstance(payload, str):
        return None
    return footprints.echo_of(event_app(event.type, hub), payload, event.received_at)


def _unset(event: InboxEvent) -> Outcome:
    """The pool's handler until the dispatcher exists (never called: replaced before start)."""
    raise AssertionError(f"no handler for {event!r}")


def catch_signals(stop: threading.Event, command: str = "serve") -> None:
    """SIGTERM and SIGINT set ``stop`` (in the main thread only, where Python allows
    handlers; see :mod:`connector.service.shutdown`); the log line names ``command``
    (``serve``, ``worker``)."""

    def act(sig: signal.Signals) -> None:
        _log.info("%s: %s received, shutting down", command, sig.name)
        stop.set()

    on_stop_signal(act, f"{command}-stop")
