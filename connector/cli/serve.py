"""``ghl-connector serve --recipes DIR``: receiver, pollers, workers and syncs in one process."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING, Any

from connector.cli.argtypes import (
    days,
    per_app,
    per_window,
    port,
    positive,
    rate_limits,
    seconds,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from connector.catalog import Catalog
    from connector.hookspecs import AuthProvider
    from connector.sandbox.partners import PartnerSandbox
    from connector.sandbox.server import SandboxServer
    from connector.service.options import ServeOptions

__all__ = [
    "add_fleet_arguments", "add_parser", "add_work_arguments", "check_writable", "connections",
    "service_options", "store_location",
]



def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``serve``."""
    parser = sub.add_parser(
        "serve",
        help="receive webhooks and run recipes (receiver, pollers, workers)",
        description=(
            "Check every recipe in DIR (any problem stops the start), then receive GHL "
            "webhooks at /webhooks/ghl, store each one before answering, and run every recipe "
            "whose trigger matches it, with the connection of the event's location. "
            "Sync documents in DIR (name + sync:, e.g. recipes/sync_superphone.yaml) run "
            "too: their partner's webhooks are received at /webhooks/<app> (HMAC-signed with "
            "$CONNECTOR_<APP>_WEBHOOK_SECRET), stored the same way, and applied both ways with "
            "$CONNECTOR_<APP>_API_KEY and the default connection's location. "
            "GET /healthz reports the inbox and, with --broker, the fleet's peers (serve and"
            " worker processes). Logs are JSON lines on stderr (secrets "
            "redacted). SIGTERM/SIGINT finish running work (--grace) and hand back the rest."
        ),
        epilog=(
            "examples:\n"
            "  ghl-connector serve --recipes recipes/ --port 8000\n"
            "  ghl-connector serve --recipes recipes/ --sandbox     local GHL and partner"
            " stand-ins\n"
            "  CONNECTOR_SUPERPHONE_WEBHOOK_SECRET=... CONNECTOR_SUPERPHONE_API_KEY=... \\\n"
            "      ghl-connector serve --recipes my-syncs/      (sync_superphone.yaml in it)\n"
            "  ghl-connector serve --recipes recipes/ --base-url http://127.0.0.1:8800 \\\n"
            "      --public-key sandbox-ed25519.pem\n"
            "\nSee docs/service.md and docs/sync.md (Running it)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="where to listen (127.0.0.1)")
    parser.add_argument("--port", type=port, default=8000, help="0 picks a free port (8000)")
    add_work_arguments(parser)
    add_fleet_arguments(parser, required=False)
    parser.add_argument("--public-key", action="append", default=[], metavar="PEM",
                        help="a trusted webhook public key file, Ed25519 or RSA (repeatable;"
                        " default: GHL's published keys)")
    parser.add_argument("--sandbox", action="store_true",
                        help="demo/test mode: start a GHL sandbox, and the partner sandboxes"
                        " the syncs name, in this process and use them (their keys, tokens"
                        " and webhooks)")
    parser.add_argument("--max-age", type=float, default=300.0, metavar="SECONDS",
                        help="refuse webhooks whose timestamp is further from now (300; 0: off)")
    parser.add_argument("--poll-location", action="append", default=[], metavar="ID",
                        help="a location polling triggers poll (repeatable; default: the"
                        " default connection's location)")
    parser.add_argument("--poll-interval", type=float, default=60.0, metavar="SECONDS",
                        help="seconds between polls (60)")
    parser.add_argument("--keep-events", type=days, default=days("7"), metavar="DAYS",
                        help="keep processed inbox events this long, then purge them (7);"
                        " dead events stay until replayed or discarded")
    parser.set_defaults(func=run)


def add_work_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of running events, shared by ``serve`` and ``worker``."""
    parser.add_argument("--recipes", required=True, metavar="DIR",
                        help="the folder of recipe files (*.yaml)")
    parser.add_argument("--store", "--db", dest="db", metavar="URL|PATH",
                        help="the state: an SQLite file (default: $CONNECTOR_STORE, else"
                        " $CONNECTOR_HOME/state.db) or postgresql://user@host/db, shared by"
                        " any number of processes (docs/scale-out.md)")
    parser.add_argument("--workers", type=positive, default=4, metavar="N",
                        help="events run in parallel (4); one contact's events run in order")
    parser.add_argument("--base-url", action="append", default=[], metavar="[APP=]URL",
                        help="send GHL calls (or APP's, e.g. superphone=URL) to this base URL"
                        " (repeatable)")
    parser.add_argument("--connection", metavar="NAME",
                        help="the connection for events whose location has none of its own"
                        " (default: $CONNECTOR_TOKEN, else the default connection)")
    parser.add_argument("--rate-limit", action="append", default=[], metavar="[APP=]N/SECONDS",
                        help="GHL's per-location limit, if not 100/10 (e.g. a sandbox's), or"
                        " APP's (repeatable)")
    parser.add_argument("--loop-limit", type=per_window, default=None, metavar="N/SECONDS",
                        help="loop protection: a recipe or sync that writes the same record"
                        " more than N times in SECONDS stops, and the event is dead-lettered"
                        " with 'loop detected' (10/60)")
    parser.add_argument("--grace", type=float, default=10.0, metavar="SECONDS",
                        help="on shutdown, how long running events may take to finish (10)")
    parser.add_argument("--no-rest-hooks", dest="rest_hooks", action="store_false",
                        help="do not deliver events to the REST-hook subscriptions of the"
                        " state file (see docs/rest-hooks.md)")


def add_fleet_arguments(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """The options of a fleet process (``serve --broker``, ``worker``: ``required``):
    docs/scale-out.md."""
    if required:  # worker
        broker_help = ("the Dramatiq broker serve --broker queues the events on (the same URL"
                       " and --queue as serve's): redis://HOST:6379/0 or"
                       " amqp://USER:PASSWORD@HOST:5672/; this worker runs the events it takes")
    else:
        broker_help = ("run as a fleet: the Dramatiq broker, redis://HOST:6379/0 or"
                       " amqp://USER:PASSWORD@HOST:5672/ (serve then only receives, polls"
                       " and queues; `ghl-connector worker` processes run the events)")
    parser.add_argument("--broker", required=required, metavar="URL", help=broker_help)
    parser.add_argument("--redis", "--limits", dest="redis", metavar="URL",
                        help="the Redis the fleet shares its rate limits, contact lanes and"
                        " heartbeats through (default: the broker's URL when it is redis://;"
                        " needed with amqp://); without --broker, serve shares only GHL's"
                        " rate limits through it")
    parser.add_argument("--queue", default="ghl-connector", metavar="NAME",
                        help="the queue name and Redis key prefix (ghl-connector); fleets"
                        " sharing a broker need different ones")
    parser.add_argument("--lane-ttl", type=seconds, default=30.0, metavar="SECONDS",
                        help="how long a killed worker's contact lane stays locked (30)")
    parser.add_argument("--sweep-after", type=seconds, default=60.0, metavar="SECONDS",
                        help="send an event again when it is still unsettled this long after"
                        " it arrived and its lane is free (60)")


def work_setup(args: argparse.Namespace) -> tuple[Catalog, dict[str, Any], Path | str]:
    """What ``serve`` and ``worker`` start from: the recipe folder checked (before any warning
    about connections), logging, the catalog, the expression filters and the store's location."""
    from pathlib import Path

    from connector.catalog import build_catalog
    from connector.errors import ConnectorError
    from connector.expressions.filters import BUILTIN_FILTERS
    from connector.plugins import collect_filters, get_plugin_manager
    from connector.service.logformat import configure_logging
    from connector.store import default_store_location

    if not Path(args.recipes).is_dir():
        raise ConnectorError(f"{args.recipes}: not a folder of recipes")
    configure_logging(args.log_level)  # INFO unless --log-level says otherwise
    pm = get_plugin_manager()
    filters = {**BUILTIN_FILTERS, **collect_filters(pm)}
    return build_catalog(pm), filters, store_location(args.db or default_store_location())


def store_location(where: str | Path) -> Path | str:
    """The store a ``--store`` value names: a PostgreSQL URL as given, else the SQLite file
    (checked writable).

    :raises StoreError: the file, its folder or its lock is read-only.
    """
    from pathlib import Path

    where = str(where)
    if where.startswith(("postgresql:", "postgres:")):
        return where
    from connector.store import sqlite_file

    db = sqlite_file(where) or Path(where)
    check_writable(db)
    return db


def service_options(args: argparse.Namespace, catalog: Catalog,
                    db: Path | str) -> ServeOptions:
    """The options ``serve`` and ``worker`` share, from their arguments.

    :raises ConnectorError: a fleet option is wrong (naming it).
    """
    import dataclasses
    from pathlib import Path

    from connector.fleet.options import FleetOptions
    from connector.service.options import ServeOptions
    from connector.service.workers import PoolSettings

    urls = per_app(args.base_url, "--base-url", catalog)
    limits = rate_limits(args.rate_limit, catalog)
    fleet = None
    if args.broker is not None:
        fleet = FleetOptions.parse(args.broker, args.redis, args.queue, lane_ttl=args.lane_ttl,
                                   sweep_after=args.sweep_after)
    elif args.redis is not None:
        fleet = FleetOptions.limits_only(args.redis, args.queue)
    options = ServeOptions(
        recipes=Path(args.recipes),
        db=db,
        host=args.host,
        port=args.port,
        pool=PoolSettings(workers=args.workers, grace=args.grace),
        base_url=urls.pop(catalog.hub or "", None),
        rate_limit=limits.pop(catalog.hub or "", None),
        app_urls=urls,
        app_limits=limits,
        fleet=fleet,
        rest_hooks=args.rest_hooks,
    )
    if args.loop_limit is not None:
        options = dataclasses.replace(
            options, loop_limit=args.loop_limit[0], loop_window=args.loop_limit[1]
        )
    return options


def run(args: argparse.Namespace) -> int:
    """Start the service and run until stopped."""
    import dataclasses

    from connector.service.process import serve
    from connector.service.signatures import default_keys, load_keys

    catalog, filters, db = work_setup(args)
    options = dataclasses.replace(
        service_options(args, catalog, db),
        keys=load_keys(args.public_key) if args.public_key else default_keys(),
        max_age=args.max_age,
        poll_locations=tuple(args.poll_location),
        poll_interval=args.poll_interval,
        keep_events=args.keep_events,
    )
    if not args.sandbox:
        auth, location = connections(args, db)
        options = dataclasses.replace(
            options, auth=auth, poll_locations=options.poll_locations or location,
            sync_location=location[0] if location else None,
        )
        return serve(options, catalog, filters, out=sys.stdout)
    import secrets
    from contextlib import ExitStack

    from connector.cli.servesandbox import start_partners, with_partners
    from connector.sandbox.config import SandboxConfig
    from connector.sandbox.server import SandboxServer

    # A new seed each start: the sandboxes keep nothing, so ids drawn from a fixed seed would
    # repeat, and the state file's id map of an earlier run would link new records to old ones.
    seed = secrets.randbelow(2**31)
    with ExitStack() as stack:
        sandbox = stack.enter_context(SandboxServer(SandboxConfig(seed_contacts=5, seed=seed)))
        partners = start_partners(options.recipes, stack, seed)
        options = with_partners(_with_sandbox(options, sandbox, partners), partners)

        def ready(url: str) -> None:
            sandbox.set_webhook_urls([url])
            for app, box in partners.items():
                box.set_webhook_urls([url.replace("/webhooks/ghl", f"/webhooks/{app}")])

        return serve(options, catalog, filters, out=sys.stdout, on_ready=ready)


def check_writable(db: Path) -> None:
    """Refuse a state file, folder or lock serve could not write, before anything starts
    (otherwise it would start and then fail on every event, or on its lock with a traceback).

    :raises StoreError: the first read-only one, in one line.
    """
    import os

    from connector.errors import StoreError

    folder = db.parent
    beside = [db.with_name(db.name + suffix) for suffix in ("", "-wal", "-shm", ".serve.lock")]
    for path, mode in ((folder, os.W_OK | os.X_OK), *((p, os.W_OK) for p in beside)):
        if path.exists() and not os.access(path, mode):
            kind = "folder" if path == folder else "file"
            raise StoreError(
                f"{path}: the state {kind} is read-only [serve and worker write the state"
                " file (serve also its lock beside it): give a writable --db or $CONNECTOR_HOME]"
            )


def connections(
    args: argparse.Namespace, db: Path | str, command: str = "serve"
) -> tuple[Callable[[str | None], AuthProvider | None], tuple[str, ...]]:
    """Auth per location: the stored connection of that location, else ``--connection``
    (else ``$CONNECTOR_TOKEN``, else the default connection); API-key apps read their keys.
    Also the default connection's location (none when it cannot be resolved yet)."""
    from connector.auth.connection import ConnectionStore
    from connector.auth.credentials import api_key_provider
    from connector.auth.tokens import TokenManager
    from connector.errors import ConnectorError

    connections = ConnectionStore.open(db)
    connections.check_key(command)
    tokens = TokenManager(connections)
    by_location = {
        str(s["location_id"]): str(s["name"])
        for s in connections.summaries()
        if s["location_id"] and not s["needs_login"]
    }

    def for_location(location_id: str | None) -> AuthProvider | None:
        name = by_location.get(location_id or "") or args.connection
        return api_key_provider(tokens.provider(name))

    try:
        default = connections.resolve(args.connection).location_id
    except ConnectorError as exc:
        logging.getLogger("connector.service.process").warning(
            "%s: no default connection (%s): events of locations without a connection"
            " of their own will fail", command, exc)
        default = None
    return for_location, (default,) if default else ()


def _with_sandbox(options: ServeOptions, sandbox: SandboxServer,
                  partners: Mapping[str, PartnerSandbox]) -> ServeOptions:
    """Point the service at an in-process sandbox: its URL, keys, token and limits (and the
    partner sandboxes' API keys)."""
    import dataclasses

    from connector.auth.bearer import StaticBearer
    from connector.auth.credentials import api_key_provider, ghl_only
    from connector.auth.redaction import register
    from connector.hookspecs import RateLimit
    from connector.service.signatures import parse_keys

    register(sandbox.private_token)
    bearer = StaticBearer(sandbox.private_token)
    keys = {app: box.api_key for app, box in partners.items()}
    provider = api_key_provider(ghl_only(bearer), keys=keys)
    pems = [(f"sandbox {kind} key", pem.encode()) for kind, pem in sandbox.public_keys.items()]
    config = sandbox.config
    banner = (
        f"ghl sandbox: {sandbox.base_url} (location {sandbox.location_id}, private token"
        f" {sandbox.private_token}, OAuth client {config.client_id} / {config.client_secret};"
        " this sandbox's own: another sandbox's token is refused)"
    )
    return dataclasses.replace(
        options,
        banner=(*options.banner, banner),
        keys=parse_keys(pems),
        base_url=sandbox.base_url,
        rate_limit=RateLimit(config.rate_limit_requests, config.rate_limit_seconds),
        auth=lambda _location: provider,
        poll_locations=options.poll_locations or (sandbox.location_id,),
        sync_location=sandbox.location_id,
    )
