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
  the folder's two-way syncs (:mod:`connector.sync.syncs`).

Sync documents in the folder (``name`` + ``sync:``) are loaded too; the receiver then also
takes each of their partners' webhooks at ``/webhooks/<app>`` (HMAC-signed, see
:mod:`connector.service.partnerhooks`), and starting fails with one line if a partner's webhook
secret
or API key is missing. Every sync runs with the runtime of ``sync_location`` (GHL calls) which
also calls the partners with their API keys.

``GET /healthz`` answers 200 with the inbox counts while the inbox writer and every worker run,
503 otherwise. Logs are JSON lines on stderr, redacted (:mod:`connector.auth.redaction`). SIGTERM or
SIGINT stop the receiver, then the pool (running events get ``grace`` seconds, the rest is handed
back). In ``sandbox`` mode an in-process GHL sandbox stands in for HighLevel: its keys sign the
webhooks, its private token authenticates the calls, and it delivers its events to the service
(the partner sandboxes the syncs name likewise, see :mod:`connector.cli.serve`).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any, TextIO

import uvicorn

from connector.auth.redaction import register
from connector.catalog import Catalog
from connector.errors import ConnectorError, StoreError
from connector.hookspecs import RateLimit
from connector.recipes.engine import Engine
from connector.recipes.flows import crossings, recipe_flows, sync_flows
from connector.recipes.footprints import (
    DEFAULT_LOOP_LIMIT,
    DEFAULT_LOOP_WINDOW,
    Echo,
    Footprints,
    LoopDetected,
)
from connector.recipes.history import History
from connector.runtime import AuthProvider, Runtime
from connector.runtime import Settings as RuntimeSettings
from connector.service.dispatcher import (
    Dispatcher,
    Outcome,
    Route,
    event_app,
    event_payload,
    load_routes,
)
from connector.service.inbox import Inbox, InboxEvent, InboxWriter, NewEvent
from connector.service.listener import guarded_server
from connector.service.partnerhooks import PartnerHook
from connector.service.receiver import HEALTH_PATH, WEBHOOK_PATH, ReceiverApp, Settings, open_store
from connector.service.signatures import PublicKeys, default_keys
from connector.service.summary import summary
from connector.service.workers import PoolSettings, WorkerPool, recover
from connector.store import Store
from connector.sync.syncs import SyncRoute, Syncs, load_syncs, partner_hooks

__all__ = ["Engines", "ServeOptions", "ServiceApp", "serve", "start_pollers"]

GHL_APP = "ghl"
_log = logging.getLogger("connector.service.process")
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """What ``serve`` runs.

    :param auth: the auth provider for one location id (None: the event names none); built
        from the stored connections by the CLI, or from the sandbox's token in sandbox mode.
    :param base_url: GHL's base URL override (a sandbox).
    :param rate_limit: GHL's per-location limit override (a sandbox started with another one).
    :param poll_locations: the locations polling triggers poll.
    :param app_urls: base URL overrides of other apps (partner sandboxes, tests).
    :param app_limits: rate limit overrides of other apps.
    :param sync_location: the GHL location the syncs keep in step with their partners, and
        where events that name no location (partner events) run their recipes.
    :param webhook_secrets: partner webhook secrets (sandbox mode; else from the environment).
    :param api_keys: partner API keys (sandbox mode; else from the environment); only checked
        here, ``auth`` sends them.
    :param banner: more start-up summary lines (the sandboxes' URLs and keys).
    """

    recipes: Path
    db: Path
    host: str = "127.0.0.1"
    port: int = 8000
    keys: PublicKeys = field(default_factory=default_keys)
    pool: PoolSettings = field(default_factory=PoolSettings)
    base_url: str | None = None
    rate_limit: RateLimit | None = None
    max_age: float = 300.0
    auth: Callable[[str | None], AuthProvider | None] | None = None
    poll_locations: tuple[str, ...] = ()
    poll_interval: float = 60.0
    app_urls: Mapping[str, str] = field(default_factory=dict)
    app_limits: Mapping[str, RateLimit] = field(default_factory=dict)
    sync_location: str | None = None
    webhook_secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    api_keys: Mapping[str, str] = field(default_factory=dict, repr=False)
    banner: tuple[str, ...] = field(default=(), repr=False)
    loop_limit: int = DEFAULT_LOOP_LIMIT
    loop_window: float = DEFAULT_LOOP_WINDOW


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
        urls = {GHL_APP: options.base_url} if options.base_url else {}
        limits = {GHL_APP: options.rate_limit} if options.rate_limit else {}
        settings = RuntimeSettings(
            base_urls={**options.app_urls, **urls},
            location_id=location_id,
            rate_limits={**options.app_limits, **limits},
        )
        auth = options.auth(location_id) if options.auth is not None else None
        runtime = Runtime(self.catalog, settings, auth=auth)
        return Engine(
            self.catalog, runtime, self.store, sleep=self.sleep, footprints=self.footprints
        )

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


class ServiceApp:
    """The receiver plus a ``/healthz`` that reports the inbox counts and the workers' state.

    :param health: returns (healthy, details) in a worker thread.
    """

    def __init__(
        self, receiver: ReceiverApp, health: Callable[[], tuple[bool, dict[str, Any]]]
    ) -> None:
        self.receiver = receiver
        self.health = health

    def __repr__(self) -> str:
        return f"ServiceApp({self.receiver!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == HEALTH_PATH and scope["method"] == "GET":
            healthy, details = await asyncio.to_thread(self.health)
            body = json.dumps(details, separators=(",", ":")).encode()
            headers = [(b"content-type", b"application/json"),
                       (b"content-length", b"%d" % len(body))]
            await send({"type": "http.response.start", "status": 200 if healthy else 503,
                        "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.receiver(scope, receive, send)


def start_pollers(
    routes: list[Route], engines: Engines, store: Store, options: ServeOptions,
    stop: threading.Event,
) -> list[str]:
    """Start one poller thread per polling trigger the routes use and per polled location.

    Pollers (:class:`connector.service.pollers.Poller`) put their events into the inbox of
    ``store``,
    through the runtime of their location (so they share its rate limit); they stop when
    ``stop`` is set. Returns ``<trigger> @ <location>`` for each poller started.
    """
    polled = sorted({r.trigger.id: r.trigger for r in routes
                     if r.trigger.kind == "polling"}.items())
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


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ConnectorError(
            f"serve: {host}:{port}: cannot listen: {exc.strerror or exc} [use another --port]"
        ) from exc
    return sock


def _serve_http(app: ServiceApp, sock: socket.socket) -> tuple[uvicorn.Server, threading.Thread]:
    """Run uvicorn in a thread (so this module, not uvicorn, owns the signals)."""
    server = guarded_server(app, log_config=None, timeout_graceful_shutdown=2)

    def run() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except Exception:  # thread top level: log it, the main thread notices the exit
            _log.exception("serve: the HTTP server failed")

    thread = threading.Thread(target=run, name="serve-http", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    return server, thread


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
    :param on_ready: called with the webhook URL once the receiver listens.
    :raises DocumentError: a recipe or sync document fails validation (nothing was started).
    :raises ConnectorError: a sync's partner has no webhook secret or API key, or the syncs
        have no GHL location.
    :raises StoreError: the state file cannot be opened, or another service holds it.
    """
    routes = load_routes(options.recipes, catalog, filters)
    syncs = load_syncs(options.recipes)
    hooks = partner_hooks(syncs, catalog, secrets=options.webhook_secrets,
                          api_keys=options.api_keys)
    if syncs and options.sync_location is None:
        raise ConnectorError(
            f"serve: the syncs in {str(options.recipes)!r} need a GHL location [connect one"
            " with `ghl-connector auth login`, or give --connection]"
        )
    register(*(hook.secret for hook in hooks.values()), *options.api_keys.values())
    unset = [(_file_name(r), n) for r in routes for n in r.recipe.env if n not in os.environ]
    warnings = [f"{file} reads ${name}, which is not set" for file, name in unset]
    for warning in [*warnings, *folder_crossings(routes, syncs, catalog)]:
        out.write(f"warning: {warning}\n")
        _log.warning("serve: %s", warning)
    with Store(options.db) as work_store, _Lock(options.db):
        with open_store(options.db) as receive_store:
            return _run(options, catalog, (routes, syncs), receive_store, work_store, hooks,
                        out=out, on_ready=on_ready, stop=stop or threading.Event())


def _run(options: ServeOptions, catalog: Catalog, loaded: tuple[list[Route], list[SyncRoute]],
         receive_store: Store, work_store: Store, hooks: Mapping[str, PartnerHook], *,
         out: TextIO, on_ready: Callable[[str], None] | None, stop: threading.Event) -> int:
    routes, sync_routes = loaded
    inbox = Inbox(work_store)
    recovered = recover(inbox)
    pool = WorkerPool(inbox, _unset, options.pool, name=f"serve-{os.getpid()}")
    footprints = Footprints(work_store, loop_limit=options.loop_limit,
                            loop_window=options.loop_window)
    engines = Engines(catalog, work_store, options, pool.sleep, footprints)
    dispatcher = Dispatcher(catalog, routes, engines, History(work_store))
    syncs = Syncs(sync_routes, engines(options.sync_location).runtime, work_store,
                  location_id=options.sync_location, footprints=footprints) if sync_routes else None
    pool.handle = _handler(dispatcher, syncs, footprints)
    writer = _WakingWriter(Inbox(receive_store), pool.wake)

    def health() -> tuple[bool, dict[str, Any]]:
        try:
            counts: dict[str, int] | str = inbox.counts()
        except StoreError as exc:
            counts = str(exc)
        healthy = writer.alive and writer.healthy and pool.alive and isinstance(counts, dict)
        return healthy, {"status": "ok" if healthy else "unhealthy", "inbox": counts,
                         "workers": options.pool.workers, "in_flight": pool.in_flight,
                         "writer": "ok" if writer.alive and writer.healthy else "failing"}

    settings = Settings(options.keys, max_age=options.max_age)
    app = ServiceApp(ReceiverApp(writer, settings, partners=hooks), health)
    sock = _bind(options.host, options.port)
    url = f"http://{options.host}:{sock.getsockname()[1]}{WEBHOOK_PATH}"
    writer.start()
    pool.start()
    _catch_signals(stop)
    pollers = start_pollers(routes, engines, work_store, options, stop)
    server, thread = _serve_http(app, sock)
    status = 0
    try:
        if not server.started:
            raise ConnectorError(f"serve: {url}: the HTTP server did not start (see the log)")
        lines = summary(options, routes, sync_routes, url, pollers, recovered)
        out.write("\n".join(lines) + "\nready\n")
        out.flush()
        _log.info("serve: ready", extra={"fields": {"webhook_url": url, "recipes": len(routes)}})
        if on_ready is not None:
            on_ready(url)
        while not stop.wait(0.2):
            if not thread.is_alive():
                _log.error("serve: the HTTP server stopped; shutting down")
                status = 1
                break
    finally:
        stop.set()
        server.should_exit = True
        thread.join(10)
        sock.close()
        writer.close()
        handed = pool.stop()
        engines.close()
        _log.info("serve: stopped", extra={"fields": {"handed_back": handed,
                                                      "settled": dict(pool.settled)}})
    return status


def _handler(
    dispatcher: Dispatcher, syncs: Syncs | None, footprints: Footprints
) -> Callable[[InboxEvent], Outcome]:
    """Tell whether an event echoes the pack's own write, run its recipes, then apply it to
    the syncs (a sync that fails raises, so the pool retries the event: runs that ended and
    syncs that audited it are skipped then; a loop makes the event dead at once)."""

    def handle(event: InboxEvent) -> Outcome:
        echo = _echo(footprints, event)
        outcome = dispatcher.process(event, echo)
        if syncs is not None:
            try:
                syncs.process(event, echo)
            except LoopDetected as exc:
                _log.warning("serve: %s; event %r is dead-lettered", exc, event.webhook_id)
                error = "; ".join(filter(None, (outcome.error, str(exc))))
                return Outcome("dead", outcome.runs, error)
        return outcome

    return handle


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


def _echo(footprints: Footprints, event: InboxEvent) -> Echo | None:
    """The pack's write ``event`` echoes (None: not an echo, or its body is not an object)."""
    payload = event_payload(event)
    if isinstance(payload, str):
        return None
    return footprints.echo_of(event_app(event.type), payload, event.received_at)


def _unset(event: InboxEvent) -> Outcome:
    """The pool's handler until the dispatcher exists (never called: replaced before start)."""
    raise AssertionError(f"no handler for {event!r}")


def _catch_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set ``stop`` (only the main thread can install handlers)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        _log.info("serve: %s received, shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
