"""``ghl-connector worker --recipes DIR --broker URL``: run a fleet's queued events."""

from __future__ import annotations

import argparse
import sys

from connector.cli.argtypes import port
from connector.cli.serve import add_fleet_arguments, add_work_arguments

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``worker``."""
    parser = sub.add_parser(
        "worker",
        help="run the events a `serve --broker` queues (any number, on any machine)",
        description=(
            "Join the fleet of `serve --broker URL`: check every recipe in DIR (the same folder"
            " and environment as serve's), then run the events serve queues, one contact's"
            " events in order across all workers, with the connection of the event's"
            " location; GHL's rate limits are shared by the fleet through Redis. Give it the"
            " same store (--store), broker, Redis and --queue as serve. SIGTERM/SIGINT drain it:"
            " running events get --grace seconds, the rest goes back to the queue."
        ),
        epilog=(
            "examples:\n"
            "  ghl-connector worker --recipes recipes/ --broker redis://127.0.0.1:6379/0\n"
            "  ghl-connector worker --recipes recipes/ --broker amqp://guest:guest@mq:5672/ \\\n"
            "      --redis redis://cache:6379/0 --workers 8 --health-port 8101\n"
            "\nSee docs/scale-out.md."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_work_arguments(parser)
    add_fleet_arguments(parser, required=True)
    parser.add_argument("--host", default="127.0.0.1",
                        help="where /healthz listens with --health-port (127.0.0.1)")
    parser.add_argument("--health-port", dest="port", type=port, default=None, metavar="PORT",
                        help="answer GET /healthz (this worker and the fleet's peers) on this"
                        " port (0 picks a free one; default: none)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the worker until stopped."""
    import dataclasses

    from connector.cli.serve import connections, service_options, work_setup
    from connector.fleet.worker import work

    catalog, filters, db = work_setup(args)
    health_port = args.port
    args.port = 0
    options = service_options(args, catalog, db)
    auth, location = connections(args, db, "worker")
    options = dataclasses.replace(options, auth=auth,
                                  sync_location=location[0] if location else None)
    return work(options, catalog, filters, out=sys.stdout, health_port=health_port)
