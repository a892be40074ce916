"""The project's SQLite state: where it lives, its numbered migrations, and transactions.

One file (``$CONNECTOR_HOME/state.db``, or ``~/.ghl-connector/state.db``) holds everything the
connector persists: connections and their encrypted tokens now; runs, inbox and cursors later.
The file is created with mode 0600 in a 0700 directory, runs in WAL mode, and every write goes
through :meth:`Store.transaction` (``BEGIN IMMEDIATE``, so writers queue instead of failing).

Schema changes are numbered :data:`MIGRATIONS`; a later feature adds its tables by appending one
(never by editing an applied one). ``schema_migrations`` records which numbers ran.

Every :class:`sqlite3.Error` is translated to :class:`~connector.errors.StoreError` here.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connector.errors import StoreError

__all__ = ["MIGRATIONS", "Migration", "Store", "default_state_path"]

STATE_FILE = "state.db"
BUSY_TIMEOUT_MS = 30_000


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered schema change: ``version`` increases by one per migration."""

    version: int
    name: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "connections",
        """
        CREATE TABLE connections (
            name          TEXT PRIMARY KEY,
            kind          TEXT NOT NULL,
            user_type     TEXT NOT NULL,
            company_id    TEXT,
            location_id   TEXT,
            scopes        TEXT,
            expires_at    REAL,
            client_id     TEXT,
            base_url      TEXT NOT NULL,
            parent        TEXT,
            access_token  BLOB NOT NULL,
            refresh_token BLOB,
            client_secret BLOB,
            needs_login   INTEGER NOT NULL DEFAULT 0,
            generation    INTEGER NOT NULL DEFAULT 1,
            updated_at    REAL NOT NULL
        );
        """,
    ),
    Migration(
        2,
        "inbox",
        # Webhook events, stored before they are acknowledged (connector/service/inbox.py).
        """
        CREATE TABLE inbox (
            id           INTEGER PRIMARY KEY,
            webhook_id   TEXT NOT NULL UNIQUE,
            type         TEXT,
            location_id  TEXT,
            received_at  REAL NOT NULL,
            body         BLOB NOT NULL,
            status       TEXT NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'processing', 'done', 'dead')),
            attempts     INTEGER NOT NULL DEFAULT 0,
            available_at REAL NOT NULL,
            claimed_by   TEXT,
            claimed_at   REAL,
            last_error   TEXT,
            finished_at  REAL
        );
        CREATE INDEX inbox_ready ON inbox (status, available_at, id);
        """,
    ),
    Migration(
        3,
        "runs",
        # Recipe runs, their steps (connector/recipes/history.py) and the step ledger
        # (connector/recipes/ledger.py).
        """
        CREATE TABLE runs (
            id           TEXT PRIMARY KEY,
            recipe       TEXT NOT NULL,
            recipe_file  TEXT,
            trigger      TEXT NOT NULL,
            event        TEXT NOT NULL,
            status       TEXT NOT NULL CHECK (status IN
                         ('running', 'succeeded', 'failed', 'skipped', 'dead_letter')),
            error        TEXT,
            executions   INTEGER NOT NULL DEFAULT 1,
            started_at   REAL NOT NULL,
            finished_at  REAL
        );
        CREATE INDEX runs_by_start ON runs (started_at);
        CREATE INDEX runs_by_recipe ON runs (recipe, started_at);
        CREATE TABLE run_steps (
            run_id       TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            step_id      TEXT NOT NULL,
            item         INTEGER NOT NULL,
            position     INTEGER NOT NULL,
            action       TEXT NOT NULL,
            status       TEXT NOT NULL,
            attempts     INTEGER NOT NULL,
            input        TEXT,
            output       TEXT,
            truncated    INTEGER NOT NULL DEFAULT 0,
            error        TEXT,
            started_at   REAL NOT NULL,
            duration_ms  REAL NOT NULL,
            PRIMARY KEY (run_id, step_id, item)
        );
        CREATE TABLE run_ledger (
            run_id       TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            step_id      TEXT NOT NULL,
            item         INTEGER NOT NULL,
            output       TEXT NOT NULL,
            recorded_at  REAL NOT NULL,
            PRIMARY KEY (run_id, step_id, item)
        );
        """,
    ),
    Migration(
        4,
        "sync",
        # Two-way sync: the id map with echo hashes and times (connector/sync/idmap.py) and the
        # audit trail of every change made or skipped (connector/sync/audit.py).
        """
        CREATE TABLE sync_links (
            sync            TEXT NOT NULL,
            object          TEXT NOT NULL,
            ghl_id          TEXT NOT NULL,
            partner_id      TEXT NOT NULL,
            ghl_hash        TEXT,
            partner_hash    TEXT,
            ghl_written     REAL,
            partner_written REAL,
            ghl_applied     REAL,
            partner_applied REAL,
            ghl_seen        REAL,
            partner_seen    REAL,
            deleted         TEXT,
            updated_at      REAL NOT NULL,
            PRIMARY KEY (sync, object, ghl_id),
            UNIQUE (sync, object, partner_id)
        );
        CREATE TABLE sync_audit (
            id          INTEGER PRIMARY KEY,
            at          REAL NOT NULL,
            sync        TEXT NOT NULL,
            event_id    TEXT,
            object      TEXT NOT NULL,
            direction   TEXT NOT NULL,
            action      TEXT NOT NULL,
            reason      TEXT NOT NULL,
            ghl_id      TEXT,
            partner_id  TEXT,
            changes     TEXT NOT NULL
        );
        CREATE INDEX sync_audit_by_time ON sync_audit (at, id);
        """,
    ),
    Migration(
        5,
        "polling",
        # Polling triggers (connector/service/cursor.py): each poller's cursor, and the version of
        # each
        # record it last turned into an event (``position`` is the record's cursor value in ms,
        # NULL for records listed per changed contact, which are kept).
        """
        CREATE TABLE poll_cursors (
            trigger_id  TEXT NOT NULL,
            scope       TEXT NOT NULL,
            value       INTEGER NOT NULL,
            started     INTEGER NOT NULL,
            polled_at   REAL NOT NULL,
            PRIMARY KEY (trigger_id, scope)
        );
        CREATE TABLE poll_seen (
            trigger_id  TEXT NOT NULL,
            scope       TEXT NOT NULL,
            record_id   TEXT NOT NULL,
            version     TEXT NOT NULL,
            position    INTEGER,
            seen_at     REAL NOT NULL,
            PRIMARY KEY (trigger_id, scope, record_id)
        );
        CREATE INDEX poll_seen_by_position ON poll_seen (trigger_id, scope, position);
        """,
    ),
    Migration(
        6,
        "intents",
        # A step about to make a call that is not safe to repeat (connector/recipes/ledger.py): if
        # the
        # process dies before the ledger records the outcome, a resumed run knows not to guess.
        """
        CREATE TABLE run_intents (
            run_id      TEXT NOT NULL,
            step_id     TEXT NOT NULL,
            item        INTEGER NOT NULL,
            action      TEXT NOT NULL,
            started_at  REAL NOT NULL,
            PRIMARY KEY (run_id, step_id, item)
        );
        """,
    ),
    Migration(
        7,
        "sync_audit_by_event",
        # The service applies an inbox event to a sync once: it looks the event up in the
        # sync's audit trail before applying it again (connector/sync/syncs.py).
        """
        CREATE INDEX sync_audit_by_event ON sync_audit (sync, event_id);
        """,
    ),
    Migration(
        8,
        "footprints",
        # Every write a recipe or a sync makes, so its echo is recognised and loops are
        # stopped (connector/recipes/footprints.py). Field values are kept as keyed digests only.
        """
        CREATE TABLE footprints (
            id      INTEGER PRIMARY KEY,
            at      REAL NOT NULL,
            app     TEXT NOT NULL,
            record  TEXT,
            writer  TEXT NOT NULL,
            run     TEXT,
            chain   TEXT NOT NULL,
            fields  TEXT NOT NULL
        );
        CREATE INDEX footprints_by_record ON footprints (app, record, at);
        CREATE INDEX footprints_by_writer ON footprints (writer, app, record, at);
        CREATE TABLE footprint_salt (
            id     INTEGER PRIMARY KEY CHECK (id = 1),
            value  BLOB NOT NULL
        );
        """,
    ),
    Migration(
        9,
        "rest_hooks",
        # REST-hook subscriptions (connector/api/subscriptions.py; the secret sealed by the
        # vault) and their deliveries, each a signed POST retried until delivered or dead
        # (connector/api/delivery.py). Portable types only (TEXT, INTEGER, REAL, BLOB).
        """
        CREATE TABLE hook_subscriptions (
            id          TEXT PRIMARY KEY,
            trigger_id  TEXT NOT NULL,
            event_type  TEXT NOT NULL,
            target_url  TEXT NOT NULL,
            filter      TEXT,
            secret      BLOB NOT NULL,
            created_at  REAL NOT NULL
        );
        CREATE INDEX hook_subscriptions_by_type ON hook_subscriptions (event_type);
        CREATE TABLE hook_deliveries (
            id              TEXT PRIMARY KEY,
            subscription_id TEXT NOT NULL,
            event_id        TEXT NOT NULL,
            body            BLOB NOT NULL,
            status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
                            ('pending', 'sending', 'delivered', 'dead', 'cancelled')),
            attempts        INTEGER NOT NULL DEFAULT 0,
            available_at    REAL NOT NULL,
            claimed_by      TEXT,
            claimed_at      REAL,
            last_status     INTEGER,
            last_error      TEXT,
            created_at      REAL NOT NULL,
            finished_at     REAL
        );
        CREATE INDEX hook_deliveries_ready ON hook_deliveries (status, available_at);
        CREATE INDEX hook_deliveries_by_subscription ON hook_deliveries (subscription_id, status);
        """,
    ),
    Migration(
        10,
        "console_tokens",
        # Login tokens of the web console (connector/console/access.py): their SHA-256 only.
        """
        CREATE TABLE console_tokens (
            digest      TEXT PRIMARY KEY,
            label       TEXT NOT NULL,
            created_at  REAL NOT NULL
        );
        """,
    ),
    Migration(
        11,
        "run_step_exchanges",
        # The HTTP requests of each recipe step (connector/client/transcript.py): method, redacted
        # URL and status per attempt, as bounded JSON text (connector/recipes/history.py).
        """
        ALTER TABLE run_steps ADD COLUMN exchanges TEXT;
        """,
    ),
)


def default_state_path() -> Path:
    """The state file: ``$CONNECTOR_HOME/state.db``, else ``~/.ghl-connector/state.db``."""
    home = os.environ.get("CONNECTOR_HOME")
    base = Path(home) if home else Path.home() / ".ghl-connector"
    return base / STATE_FILE


@contextmanager
def _mapped(path: Path, doing: str) -> Iterator[None]:
    """Translate sqlite3 and OS errors into a one-line :class:`StoreError`."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot {doing}: {exc}") from exc
    except OSError as exc:
        raise StoreError(f"{path}: cannot {doing}: {exc.strerror or exc}") from exc


def _create_private(path: Path) -> None:
    """Create the directory (0700) and an empty file (0600); tighten an existing file to 0600."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            path.chmod(0o600)
        return
    os.close(fd)


_NORMAL, _FULL, _EXTRA = 1, 2, 3
"""SQLite's ``synchronous`` levels."""


class Store:
    """An open state file. Thread-safe: one connection, used under a lock.

    :param path: the database file; ``None`` means :func:`default_state_path`.
    :param migrations: the schema to bring the file up to (tests may pass fewer).
    :raises StoreError: if the file cannot be created, opened or migrated.
    """

    def __init__(
        self, path: Path | str | None = None, *, migrations: Sequence[Migration] = MIGRATIONS
    ) -> None:
        self.path = Path(path) if path is not None else default_state_path()
        self._lock = threading.RLock()
        self._durable_level = _FULL
        self._level = -1  # unknown until the first transaction sets it
        with _mapped(self.path, "open the state file"):
            _create_private(self.path)
            self._db = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        try:
            with _mapped(self.path, "open the state file"):
                self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA foreign_keys = ON")
            self._migrate(migrations)
        except StoreError:
            self._db.close()
            raise

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connection."""
        with self._lock, _mapped(self.path, "close the state file"):
            self._db.close()

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """Run a block in one ``BEGIN IMMEDIATE`` transaction; commit, or roll back on error.

        Yields the raw connection; use it only inside the block.

        :param durable: flush the commit to disk before returning (``synchronous=FULL``).
            ``False`` (``NORMAL``) still survives a killed process (WAL) and becomes durable
            against power loss with the next durable commit; it is for records written on a
            hot path (run history and ledger), never for tokens or inbox events.
        :raises StoreError: if SQLite fails (the transaction is rolled back).
        """
        with self._lock:
            self._use_level(self._durable_level if durable else min(_NORMAL, self._durable_level))
            yield from self._transaction()

    def set_synchronous(self, level: str) -> None:
        """Set how durable commits are flushed: ``FULL`` (default), ``NORMAL`` or ``EXTRA``."""
        levels = {"NORMAL": _NORMAL, "FULL": _FULL, "EXTRA": _EXTRA}
        if level.upper() not in levels:
            raise ValueError(f"set_synchronous: {level!r} is not one of {sorted(levels)}")
        with self._lock:
            self._durable_level = levels[level.upper()]
            self._use_level(self._durable_level)

    def _use_level(self, level: int) -> None:
        """Switch the connection's ``synchronous`` level only when it changes (a PRAGMA each)."""
        if level != self._level:
            with _mapped(self.path, "set the sync mode"):
                self._db.execute(f"PRAGMA synchronous = {level}")
            self._level = level

    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """The body of :meth:`transaction` (the caller holds the lock)."""
        with _mapped(self.path, "begin a transaction"):
            self._db.execute("BEGIN IMMEDIATE")
        try:
            with _mapped(self.path, "write the state file"):
                yield self._db
        except BaseException:
            if self._db.in_transaction:
                with _mapped(self.path, "roll back"):
                    self._db.execute("ROLLBACK")
            raise
        try:
            with _mapped(self.path, "commit"):
                self._db.execute("COMMIT")
        except StoreError:
            # A failed COMMIT (busy, disk full) can leave the transaction open; end it so the
            # connection is usable again and the caller can retry the whole block.
            if self._db.in_transaction:
                with _mapped(self.path, "roll back"):
                    self._db.execute("ROLLBACK")
            raise

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run one read statement and return all rows (indexable by column name)."""
        with self._lock, _mapped(self.path, "read the state file"):
            cursor = self._db.execute(sql, tuple(params))
            cursor.row_factory = sqlite3.Row
            return list(cursor.fetchall())

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one write statement in its own transaction; returns the number of rows changed."""
        with self.transaction() as db:
            return db.execute(sql, tuple(params)).rowcount

    def schema_version(self) -> int:
        """The highest migration number applied to this file (0 for none)."""
        rows = self.query("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations")
        return int(rows[0]["v"])

    def _migrate(self, migrations: Sequence[Migration]) -> None:
        """Apply, in order and each in its own transaction, the migrations not yet applied."""
        numbers = [m.version for m in migrations]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError(f"migrations must be numbered 1..n in order, got {numbers!r}")
        with self.transaction() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
            )
        current = self.schema_version()
        if current > len(migrations):
            raise StoreError(
                f"{self.path}: schema version {current} is newer than this connector knows"
                f" ({len(migrations)}) [hint: upgrade ghl-connector]"
            )
        for migration in migrations[current:]:
            with self.transaction() as db:
                # A concurrent opener may have applied it between our check and BEGIN IMMEDIATE.
                done = db.execute(
                    "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
                ).fetchone()
                if done:
                    continue
                for statement in _statements(migration.sql):
                    db.execute(statement)
                db.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, time.time()),
                )


def _statements(sql: str) -> list[str]:
    """Split a migration's SQL into statements (``executescript`` would commit our transaction)."""
    out: list[str] = []
    current = ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    if current.strip():
        out.append(current.strip())
    return out
