"""Bring a store's schema to the newest Alembic revision, in one transaction, at open.

The revisions live in ``connector/storage/migrations/versions/`` (shipped in the wheel) and run
programmatically: no ``alembic.ini``, no ``env.py``. Concurrent openers are serialized (SQLite:
``BEGIN IMMEDIATE``; PostgreSQL: a transaction-scoped advisory lock) and the version is read
again under the lock, so each revision runs once. A state file made before Alembic (numbered
``schema_migrations``, see :mod:`connector.storage.legacy`) is finished to number 10, stamped
with the baseline revision and upgraded from there.

:data:`HEAD` names the newest revision so that opening an up-to-date SQLite file costs one
``SELECT`` and no SQLAlchemy import; a test checks that it matches the revisions.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connector.errors import StoreError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

__all__ = [
    "HEAD",
    "MIGRATIONS_DIR",
    "current_sqlite",
    "pending",
    "upgrade_postgres",
    "upgrade_sqlite",
]

HEAD = "0005"
"""The newest revision in ``migrations/versions`` (bump it with every new revision)."""

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_LOCK_KEY = 0x67686C5F73746F72  # "ghl_stor": the advisory lock migrators take on PostgreSQL
_LEGACY_BASELINE = 10
"""The numbered version the Alembic baseline revision stands for."""
_log = logging.getLogger(__name__)


def _script() -> Any:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config, ScriptDirectory.from_config(config)


def pending(current: str | None) -> list[tuple[str, str]] | None:
    """The revisions an upgrade from ``current`` would run, oldest first, as (revision, first
    line of its description); ``None`` when ``current`` is newer than this connector knows."""
    from alembic.util import CommandError

    _, script = _script()
    if current is not None:
        try:
            script.get_revision(current)
        except CommandError:
            return None
    out = []
    for rev in script.iterate_revisions("head", current):
        doc = " ".join((rev.module.__doc__ or rev.doc or "").split())
        out.append((rev.revision, doc.split(":")[0].split(". ")[0]))
    return list(reversed(out))


def current_sqlite(db: sqlite3.Connection) -> str | None:
    """The SQLite file's Alembic revision; ``None`` if it has none (new or pre-Alembic)."""
    try:
        row = db.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:
        return None
    return str(row[0]) if row else None


def upgrade_sqlite(db: sqlite3.Connection, where: str) -> None:
    """Upgrade an open SQLite connection (autocommit mode) to :data:`HEAD`."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import StaticPool

    engine = create_engine("sqlite://", creator=lambda: db, poolclass=StaticPool)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                _finish_legacy(db, where)
                _run(conn, where)
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
    finally:
        engine.dispose(close=False)


def upgrade_postgres(engine: Engine, where: str) -> None:
    """Upgrade a PostgreSQL database (the engine's default schema) to :data:`HEAD`."""
    with engine.begin() as conn:
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
        _run(conn, where)


def revision(conn: Connection) -> str | None:
    """The Alembic revision the connected database is at (``None``: none)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def _run(conn: Connection, where: str) -> None:
    """Run the revisions after the current one, in the connection's open transaction."""
    from alembic.runtime.environment import EnvironmentContext
    from alembic.util import CommandError

    from connector.storage.tables import metadata

    config, script = _script()
    current = revision(conn)
    if current is not None and current != HEAD:
        try:
            script.get_revision(current)
        except CommandError:
            raise StoreError(
                f"{where}: schema revision {current!r} is newer than this connector knows"
                f" ({HEAD}) [hint: upgrade ghl-connector]"
            ) from None
    if current == HEAD:
        return

    def steps(rev: Any, _context: Any) -> Any:
        return script._upgrade_revs("head", rev)

    with EnvironmentContext(config, script, fn=steps, destination_rev="head") as env:
        env.configure(connection=conn, target_metadata=metadata)
        env.run_migrations()
    _log.info("%s: schema upgraded from revision %s to %s", where, current or "(none)", HEAD)


def _finish_legacy(db: sqlite3.Connection, where: str) -> None:
    """A pre-Alembic file: apply its missing numbered migrations, then stamp the baseline."""
    from connector.storage.legacy import MIGRATIONS, statements

    if current_sqlite(db) is not None:
        return
    try:
        row = db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()
    except sqlite3.OperationalError:
        return  # a new file: the baseline revision creates everything
    version = int(row[0])
    if version > _LEGACY_BASELINE:
        raise StoreError(
            f"{where}: schema version {version} is newer than this connector knows"
            f" ({_LEGACY_BASELINE}) [hint: upgrade ghl-connector]"
        )
    if version == 0:
        return
    for migration in MIGRATIONS[version:]:
        for statement in statements(migration.sql):
            db.execute(statement)
        db.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.name, time.time()),
        )
    db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL,"
               " CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))")
    db.execute("INSERT INTO alembic_version (version_num) VALUES ('0001')")
