"""The worker process (``ghl-connector worker``): runs the queue's events with the folder's
recipes and syncs, any number of them, on any machine that reaches the store and the broker.

It loads and checks the folder like ``serve`` (:func:`~connector.service.process.load_folder`),
joins the fleet (:class:`~connector.fleet.member.Member`), refuses to start when a live
``serve`` of the fleet reports another store than its own (and warns when serve's recipe
folder differs: :mod:`connector.fleet.identity`), and runs a Dramatiq worker whose
threads call :meth:`~connector.fleet.runner.LaneRunner.run` for each message. With
``health_port`` it answers ``GET /healthz`` with its state and the fleet's live peers.

SIGTERM or SIGINT drain it: lanes stop before their next event and send their message back,
running events get ``grace`` seconds to finish, runs waiting for a retry are handed back after
it, and whatever claim is left is handed back (and its lane sent again) before it exits.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, TextIO

import dramatiq

from connector.catalog import Catalog
from connector.console.access import health_details
from connector.errors import ConnectorError, StoreError
from connector.fleet.identity import StoreIdentity, recipe_digests, recipes_differ, store_identity
from connector.fleet.member import Member
from connector.fleet.options import masked
from connector.fleet.runner import LaneRunner
from connector.service.inbox import Inbox
from connector.service.listener import ServerThread, bind_socket, guarded_server, socket_url
from connector.service.options import ServeOptions
from connector.service.partnerhooks import hub_events, ordering
from connector.service.process import build_work, catch_signals, load_folder
from connector.service.workers import WorkerPool
from connector.store import Store

__all__ = ["work"]

_log = logging.getLogger("connector.fleet.worker")
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def work(
    options: ServeOptions, catalog: Catalog, filters: Mapping[str, Any], *, out: TextIO,
    health_port: int | None = None, stop: threading.Event | None = None,
) -> int:
    """Run a worker until SIGTERM/SIGINT (or ``stop``); returns the exit status.

    ``options.pool.workers`` is the number of threads (events run in parallel).

    :raises DocumentError: a recipe or sync document fails validation.
    :raises ConnectorError: no ``options.fleet``, or Redis or the broker cannot be reached.
    :raises StoreError: the store cannot be opened.
    """
    fleet = options.fleet
    if fleet is None:
        raise ConnectorError("worker: needs --broker URL")
    stop = stop or threading.Event()
    loaded = load_folder(options, catalog, filters, out=out, command="worker")
    threads = options.pool.workers
    with Store(options.db) as store:
        inbox = Inbox(store)
        runner: LaneRunner | None = None
        identity = store_identity(store)
        recipes = recipe_digests(options.recipes)
        member = Member(fleet, "worker", identity=identity, info=lambda: {
            "threads": threads, "in_flight": runner.in_flight if runner else 0,
            "recipes": recipes})
        try:
            differs = check_serve(member, identity, recipes, out=out)
            pool = WorkerPool(inbox, _unset, options.pool, name=member.name,
                              order=ordering(loaded[2], hub_events(catalog)))
            options = _with_limiter(options, member)
            engines, _, deliverer = build_work(options, catalog, loaded[:2], store, pool,
                                                 "worker")
            runner = LaneRunner(inbox, member.lanes, pool, member.name, store_id=identity.id)
            runner.queue = member.open_queue(runner.run)
            worker = dramatiq.Worker(runner.queue.broker, queues={fleet.queue},
                                     worker_threads=threads, worker_timeout=200)
            if deliverer is not None:
                deliverer.start()
            try:
                return _run(options, member, runner, worker, health_port, out=out, stop=stop,
                            inbox=inbox, close=engines.close,
                            about=(identity, len(loaded[0]), len(loaded[1]), differs))
            finally:
                if deliverer is not None:
                    deliverer.stop()
        finally:
            member.close()


def check_serve(member: Member, identity: StoreIdentity, recipes: dict[str, str], *,
                out: TextIO) -> dict[str, str]:
    """Compare this worker with the fleet's live ``serve`` processes (their heartbeats).

    :returns: serve's name -> how its recipe folder differs from this worker's (each also a
        warning on ``out`` and in the log).
    :raises ConnectorError: a serve uses another store (one line naming both stores).
    """
    other = member.other_stores()
    if other:
        raise ConnectorError(
            f"worker: this worker's store is {identity.where}, but {other[0].get('name')} of"
            f" the fleet uses {other[0].get('store')} [give the worker serve's store: --store"
            " URL or $CONNECTOR_STORE]"
        )
    serves = [p for p in member.peers.health().get("peers", []) if p.get("role") == "serve"]
    if not serves:
        _log.warning("worker: no serve of the fleet is running: its store and recipes are"
                     " checked on each message instead")
    differs: dict[str, str] = {}
    for peer in serves:
        diff = recipes_differ(recipes, peer.get("recipes"))
        if diff:
            name = str(peer.get("name"))
            differs[name] = diff
            line = (f"the recipe folder differs from {name}'s ({diff}): the events this"
                    " worker takes run with its own recipes only [give every worker serve's"
                    " folder]")
            out.write(f"warning: {line}\n")
            _log.warning("worker: %s", line)
    return differs


def _with_limiter(options: ServeOptions, member: Member) -> ServeOptions:
    import dataclasses

    return dataclasses.replace(options, limiter=member.limiter)


def _run(options: ServeOptions, member: Member, runner: LaneRunner, worker: dramatiq.Worker,
         health_port: int | None, *, out: TextIO, stop: threading.Event, inbox: Inbox,
         close: Callable[[], None],
         about: tuple[StoreIdentity, int, int, dict[str, str]]) -> int:
    fleet = member.options
    identity, recipes, syncs, differs = about
    served: ServerThread | None = None
    lines = [f"worker: {member.name}", f"store: {identity.where}",
             f"broker: {masked(fleet.broker)} (queue {fleet.queue})",
             f"redis: {masked(fleet.redis)}", f"threads: {options.pool.workers}",
             f"recipes: {recipes} loaded from {options.recipes}"
             + (f", syncs: {syncs}" if syncs else "")]
    queue = runner.queue
    probed: list[tuple[float, str | None]] = [(0.0, None)]

    def broker_problem() -> str | None:
        """Why the consumer cannot reach the broker (probed at most every 5 s)."""
        at, found = probed[0]
        if queue is not None and time.monotonic() - at > 5:
            found = queue.unreachable()
            probed[0] = (time.monotonic(), found)
        return found

    def health() -> tuple[bool, dict[str, Any]]:
        try:
            counts: dict[str, int] | str = inbox.counts()
        except StoreError as exc:
            counts = str(exc)
        fleet_report = member.health()
        problems = []
        if not isinstance(counts, dict):
            problems.append(f"store: {counts}")
        if runner.draining.is_set():
            problems.append("draining")
        unreachable = broker_problem()
        if unreachable:
            problems.append(f"the queue consumer cannot reach the broker: {unreachable}")
        if "peers_error" in fleet_report:
            problems.append(f"the fleet's {fleet_report['peers_error']}")
        other = [p for p in fleet_report.get("peers", [])
                 if p.get("role") == "serve" and "problem" in p]
        if other:
            problems.append(f"serve {other[0].get('name')} uses {other[0].get('store')},"
                            f" not this worker's store {identity.where}")
        foreign = runner.foreign_recently
        if foreign:
            problems.append(f"messages of another store (id {foreign}) than this worker's"
                            f" {identity.where} (id {identity.id}) came in the last minute")
        healthy = not problems
        report = {"status": "ok" if healthy else "unhealthy", "role": "worker",
                  "inbox": counts, "threads": options.pool.workers,
                  "in_flight": runner.in_flight,
                  "store": {"where": identity.where, "id": identity.id}, **fleet_report}
        if problems:
            report["problems"] = problems
        if differs:
            report["recipes_differ"] = differs
        return healthy, report

    if health_port is not None:
        sock = bind_socket(options.host, health_port, option="--health-port")
        app = HealthApp(health, health_details(inbox.store, options.host))
        served = ServerThread(guarded_server(app, log_config=None, timeout_graceful_shutdown=1),
                              sock, name="worker-health")
        served.start()
        lines.append(f"health: {socket_url(sock, '/healthz')}")
    runner.renewer.start()
    member.peers.start()
    worker.start()
    catch_signals(stop, "worker")
    out.write("\n".join(lines) + "\nready\n")
    out.flush()
    _log.info("worker: ready", extra={"fields": {"name": member.name, "queue": fleet.queue}})
    try:
        stop.wait()
    finally:
        handed = _drain(options, runner, worker)
        runner.renewer.stop()
        close()
        if served is not None:
            served.stop()
        _log.info("worker: stopped", extra={"fields": {"handed_back": handed,
                                                        "settled": dict(runner.pool.settled)}})
    return 0


def _drain(options: ServeOptions, runner: LaneRunner, worker: dramatiq.Worker) -> int:
    """Stop taking messages, let running events finish within the grace, hand back the rest."""
    grace = options.pool.grace
    runner.draining.set()
    timer = threading.Timer(grace, runner.pool.interrupt)
    timer.daemon = True
    timer.start()
    try:
        worker.stop(timeout=int((grace + 2) * 1000))
    except Exception:  # a broker gone away must not stop the hand-back
        _log.exception("worker: stopping the queue consumer failed")
    finally:
        timer.cancel()
    return runner.hand_back()


class HealthApp:
    """``GET``/``HEAD /healthz``: 200 with the report while healthy, 503 otherwise; only the
    status to a request ``details`` (given the ``Authorization`` and ``Host`` headers) refuses
    the rest."""

    def __init__(self, health: Callable[[], tuple[bool, dict[str, Any]]],
                 details: Callable[[str, str], bool] | None = None) -> None:
        self.health = health
        self.details = details

    def __repr__(self) -> str:
        return "HealthApp()"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] != "/healthz" or scope["method"] not in ("GET", "HEAD"):
            status, body = 404, b'{"error": "not found"}'
        else:
            import asyncio

            healthy, report = await asyncio.to_thread(self.health)
            if self.details is not None:  # the peers: to this machine, or with a token
                heads = dict(scope["headers"])
                authorization = heads.get(b"authorization", b"").decode("latin-1")
                host = heads.get(b"host", b"").decode("latin-1")
                if not await asyncio.to_thread(self.details, authorization, host):
                    report = {"status": report.get("status")}
            status, body = (200 if healthy else 503), json.dumps(report).encode()
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body",
                    "body": b"" if scope["method"] == "HEAD" else body})


def _unset(event: object) -> Any:  # noqa: ANN401  # replaced by build_work before any use
    raise AssertionError(f"no handler for {event!r}")
