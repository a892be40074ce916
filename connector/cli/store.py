"""``ghl-connector store``: where the state is, its schema, and moving it (``status``,
``upgrade``, ``migrate``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``store``."""
    parser = sub.add_parser(
        "store",
        help="show the state's store, or copy it into PostgreSQL",
        description="The state (connections, inbox, runs, ledger, sync, pollers, hooks) lives "
        "in an SQLite file by default, or in PostgreSQL when several processes share it "
        "(--store URL, or $CONNECTOR_STORE). Opening a store brings its schema to this "
        "version's (Alembic revisions; an older state file is upgraded in place), except "
        "`store status`, which only reads.",
        epilog="examples:\n  ghl-connector store status\n"
        "  ghl-connector store upgrade --store postgresql://connector@db.internal/connector\n"
        "  ghl-connector store migrate --from ~/.ghl-connector/state.db"
        " --to postgresql://connector@db.internal/connector\n"
        "\nSee docs/scale-out.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    status = actions.add_parser(
        "status",
        help="the store's engine, schema revision and rows per table (changes nothing)",
        description="Shows which store the connector uses (an SQLite file, as its absolute "
        "path, or a PostgreSQL URL with any password hidden), the schema revision it is at, "
        "the revisions this version would add, and the rows of each table. It changes "
        "nothing: no file is created, no schema is upgraded (`store upgrade`, `store "
        "migrate`, `serve`, `worker` and the other commands upgrade a store when they open "
        "it). A missing state file is an error.",
        epilog="examples:\n  ghl-connector store status                      the default"
        " store ($CONNECTOR_STORE, else $CONNECTOR_HOME/state.db)\n"
        "  ghl-connector store status --store /srv/connector/state.db\n"
        "  ghl-connector store status --store postgresql://connector@db.internal/connector\n"
        "\nAn sqlite:/// URL follows SQLAlchemy: sqlite:////srv/state.db is absolute,"
        " sqlite:///state.db is relative to the current folder.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    status.add_argument("--store", dest="status_store", metavar="URL|PATH",
                        help="the store (default: $CONNECTOR_STORE, else the state file)")
    status.set_defaults(func=run_status)
    upgrade = actions.add_parser(
        "upgrade",
        help="bring the store's schema to this version's (what any command does at open)",
        description="Runs the schema revisions the store lacks, in one transaction. Every "
        "process that opens a store does this too; run it once before starting a fleet of a "
        "new version. Older connectors refuse a store upgraded past what they know; there is "
        "no downgrade (restore a backup to go back).",
    )
    upgrade.add_argument("--store", dest="upgrade_store", metavar="URL|PATH",
                         help="the store (default: $CONNECTOR_STORE, else the state file)")
    upgrade.set_defaults(func=run_upgrade)
    migrate = actions.add_parser(
        "migrate",
        help="copy a whole store into another, empty one (SQLite -> PostgreSQL)",
        description="Copies every table of --from into --to in one transaction: --to must be "
        "empty (a new database or schema) and is left empty if anything fails. Stop `serve` "
        "on --from first (a running serve is refused). --from must exist and is left as it "
        "was (upgraded to this version's schema).",
    )
    migrate.add_argument("--from", dest="source", metavar="URL|PATH",
                         help="the store to copy (default: $CONNECTOR_STORE, else the state"
                         " file)")
    migrate.add_argument("--to", dest="target", required=True, metavar="URL",
                         help="the empty store to fill, e.g. postgresql://user@host/db")
    migrate.set_defaults(func=run_migrate)


def run_status(args: argparse.Namespace) -> int:
    """Print the store, its revision, the pending revisions and its row counts; read-only."""
    from connector.storage.copier import row_counts
    from connector.storage.upgrade import HEAD, pending
    from connector.store import Store

    with Store(args.status_store, read_only=True) as store:
        print(f"store: {store.where} ({store.dialect})")
        current = store.schema_version()
        tables = store.table_names()
        legacy = current is None and "schema_migrations" in tables
        todo = pending(current)
        if todo is None:
            print(f"schema revision: {current} (newer than this connector knows: {HEAD};"
                  " upgrade ghl-connector)")
        elif not todo:
            print(f"schema revision: {current} (up to date)")
        else:
            shown = "none (numbered, from before Alembic)" if legacy else (current or "none")
            print(f"schema revision: {shown}; this version would add {len(todo)}:")
            for rev, doc in todo:
                print(f"  {rev}  {doc}")
            print("  (`ghl-connector store upgrade` applies them; so does starting serve,"
                  " worker or any command that opens the store)")
        counts = row_counts(store, only=tables)
        if counts:
            print("rows:")
        for name, count in counts.items():
            print(f"  {name}: {count}")
    return 0


def run_upgrade(args: argparse.Namespace) -> int:
    """Open the store (which upgrades it) and say from which revision to which."""
    from connector.store import Store

    with Store(args.upgrade_store, create=False, read_only=True) as before:
        was = before.schema_version()
    with Store(args.upgrade_store, create=False) as store:
        now = store.schema_version()
        print(f"store: {store.where} ({store.dialect})")
    print(f"schema revision: {now} (up to date)" if was == now
          else f"schema revision: {was or 'none'} -> {now}")
    return 0


def run_migrate(args: argparse.Namespace) -> int:
    """Copy --from into --to and say how many rows each table got."""
    from connector.storage.copier import copy_store
    from connector.store import Store, default_store_location, sqlite_file

    source_location = args.source or default_store_location()
    with _no_serve(sqlite_file(source_location)), \
            Store(source_location, create=False) as source, Store(args.target) as target:
        print(f"copying {source.where} -> {target.where}", file=sys.stderr)
        copied = copy_store(source, target)
    for name, count in copied.items():
        print(f"  {name}: {count}")
    print(f"done: {sum(copied.values())} rows copied into {target.where}")
    return 0


@contextmanager
def _no_serve(db: Path | None) -> Iterator[None]:
    """Hold the state file's serve lock for the copy; refuse when a ``serve`` holds it."""
    import fcntl
    import os

    from connector.errors import StoreError

    lock = db.with_name(db.name + ".serve.lock") if db is not None else None
    if lock is None or not lock.exists():  # never ran serve (or a PostgreSQL source)
        yield
        return
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError as exc:
        raise StoreError(f"{lock}: cannot open the serve lock: {exc.strerror}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise StoreError(
                f"{db}: `ghl-connector serve` is running on it [stop it, then migrate]"
            ) from None
        yield
    finally:
        os.close(fd)
