"""``ghl-connector store``: where the state is, and moving it (``status``, ``migrate``)."""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``store``."""
    parser = sub.add_parser(
        "store",
        help="show the state's store, or copy it into PostgreSQL",
        description="The state (connections, inbox, runs, ledger, sync, pollers, hooks) lives "
        "in an SQLite file by default, or in PostgreSQL when several processes share it "
        "(--store URL, or $CONNECTOR_STORE). Opening a store brings its schema to this "
        "version's (Alembic revisions; an older state file is upgraded in place).",
        epilog="examples:\n  ghl-connector store status\n"
        "  ghl-connector store migrate --from ~/.ghl-connector/state.db"
        " --to postgresql://connector@db.internal/connector\n"
        "\nSee docs/scale-out.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    status = actions.add_parser(
        "status", help="the store's engine, schema revision and rows per table"
    )
    status.add_argument("--store", dest="status_store", metavar="URL|PATH",
                        help="the store (default: $CONNECTOR_STORE, else the state file)")
    status.set_defaults(func=run_status)
    migrate = actions.add_parser(
        "migrate",
        help="copy a whole store into another, empty one (SQLite -> PostgreSQL)",
        description="Copies every table of --from into --to in one transaction: --to must be "
        "empty (a new database or schema) and is left empty if anything fails. Stop `serve` "
        "on --from first. --from is left as it was (upgraded to this version's schema).",
    )
    migrate.add_argument("--from", dest="source", metavar="URL|PATH",
                         help="the store to copy (default: $CONNECTOR_STORE, else the state"
                         " file)")
    migrate.add_argument("--to", dest="target", required=True, metavar="URL",
                         help="the empty store to fill, e.g. postgresql://user@host/db")
    migrate.set_defaults(func=run_migrate)


def run_status(args: argparse.Namespace) -> int:
    """Print the store, its revision and its row counts."""
    from connector.storage.copier import row_counts
    from connector.store import Store

    with Store(args.status_store) as store:
        print(f"store: {store.where} ({store.dialect})")
        print(f"schema revision: {store.schema_version()}")
        for name, count in row_counts(store).items():
            print(f"  {name}: {count}")
    return 0


def run_migrate(args: argparse.Namespace) -> int:
    """Copy --from into --to and say how many rows each table got."""
    from connector.storage.copier import copy_store
    from connector.store import Store

    with Store(args.source) as source, Store(args.target) as target:
        print(f"copying {source.where} -> {target.where}", file=sys.stderr)
        copied = copy_store(source, target)
    for name, count in copied.items():
        print(f"  {name}: {count}")
    print(f"done: {sum(copied.values())} rows copied into {target.where}")
    return 0
