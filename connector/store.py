"""The project's state: where it lives (an SQLite file or a PostgreSQL database), its schema, and
transactions.

By default one file (``$CONNECTOR_HOME/state.db``, or ``~/.ghl-connector/state.db``) holds
everything the connector persists. It is created with mode 0600 in a 0700 directory, runs in
WAL mode, and every write goes through :meth:`Store.transaction` (``BEGIN IMMEDIATE``, so
writers queue instead of failing). A ``postgresql://`` URL (``--store``, or ``$CONNECTOR_STORE``)
puts the same tables in PostgreSQL instead, shared by any number of processes (docs/scale-out.md).

One code path for both: the tables are described once (:mod:`connector.storage.tables`) and
created by Alembic revisions run at open (:mod:`connector.storage.upgrade`); the modules that
own a table write their SQL once, in the subset both engines share, with ``?`` placeholders.
On SQLite the block gets the ``sqlite3`` connection itself (the embedded default costs what it
did); on PostgreSQL a psycopg connection from SQLAlchemy's pool that takes the same SQL
(:mod:`connector.storage.postgres`). :attr:`Store.dialect` tells the few statements that differ
(a claim's ``FOR UPDATE SKIP LOCKED``).

Every driver error is translated to :class:`~connector.errors.StoreError` here.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import sqlite3
import stat
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from connector.errors import StoreError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


__all__ = [
    "STORE_ENV",
    "Cursor",
    "Db",
    "Row",
    "Store",
    "default_state_path",
    "default_store_location",
    "display_url",
    "upsert",
]

STATE_FILE = "state.db"
STORE_ENV = "CONNECTOR_STORE"
BUSY_TIMEOUT_MS = 30_000

Row = Any
"""A result row: indexable by position and by column name (``sqlite3.Row`` or a PgRow)."""


class Cursor(Protocol):
    """What :meth:`Db.execute` returns."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def fetchmany(self, size: int = ..., /) -> list[Any]: ...


class Db(Protocol):
    """The connection a :meth:`Store.transaction` block gets: SQL with ``?`` placeholders."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor: ...


def default_state_path() -> Path:
    """The state file: ``$CONNECTOR_HOME/state.db``, else ``~/.ghl-connector/state.db``."""
    home = os.environ.get("CONNECTOR_HOME")
    base = Path(home) if home else Path.home() / ".ghl-connector"
    return base / STATE_FILE


def default_store_location() -> str | Path:
    """Where the state is when no ``--store`` is given: ``$CONNECTOR_STORE``, else the file."""
    return os.environ.get(STORE_ENV) or default_state_path()


def display_url(url: str) -> str:
    """A store URL fit for messages and logs: any password replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    auth, _, host = rest.partition("@")
    user = auth.split(":", 1)[0]
    return f"{scheme}://{user}{':***' if ':' in auth else ''}@{host}"


def upsert(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    """``INSERT ... ON CONFLICT (key) DO UPDATE`` setting every other column: the portable
    spelling of SQLite's ``INSERT OR REPLACE`` for a row identified by ``key``."""
    rest = [c for c in columns if c not in key]
    action = (
        f"DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in rest)}" if rest else "DO NOTHING"
    )
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        f" ON CONFLICT ({', '.join(key)}) {action}"
    )


_warned_relative: set[str] = set()


def _sqlite_path(url: str) -> Path | None:
    """The file of an ``sqlite:///path`` URL, made absolute: SQLAlchemy's convention, so
    ``sqlite:////abs/path`` is absolute and ``sqlite:///rel/path`` is relative to the current
    folder (warned about once per process: ``sqlite:///tmp/x.db`` reads as ``/tmp/x.db``)."""
    if not url.startswith("sqlite:///"):
        return None
    path = Path(url[len("sqlite:///") :])
    if not path.is_absolute():
        resolved = path.absolute()
        if url not in _warned_relative:
            _warned_relative.add(url)
            logging.getLogger(__name__).warning(
                "%s names a path relative to the current folder: %s [for an absolute path"
                " write sqlite:////%s, or give the plain path]",
                url, resolved, str(path).lstrip("/"),
            )
        return resolved
    return path


def sqlite_file(location: Path | str) -> Path | None:
    """The absolute file an SQLite store location names (a path or ``sqlite:///`` URL);
    ``None`` for a PostgreSQL or other URL."""
    text = str(location)
    if text.startswith("sqlite:///"):
        return _sqlite_path(text)
    if "://" in text or text.startswith(("postgresql:", "postgres:")):
        return None
    return Path(text).expanduser().absolute()


def _pg_hint(exc: BaseException, url: str) -> str:
    """A hint for the PostgreSQL errors a role without rights on its schema meets."""
    orig = getattr(exc, "orig", exc)
    state = getattr(getattr(orig, "diag", None), "sqlstate", None) or getattr(orig, "sqlstate", "")
    text = str(orig)
    role, database = "ROLE", "DATABASE"
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url.replace("postgres://", "postgresql://", 1))
        role, database = parsed.username or role, parsed.database or database
    except Exception:  # noqa: BLE001, S110  # only a hint: keep the placeholders
        pass
    if state == "42501" and "permission denied for schema" in text:
        schema = text.split("permission denied for schema", 1)[1].split()[0].strip('"')
        return (
            f" [hint: the role needs CREATE on the schema: createdb -O {role} {database}, or"
            f" GRANT CREATE ON SCHEMA {schema} TO {role}]"
        )
    if state == "3F000" or "no schema has been selected to create in" in text:
        return (
            " [hint: the search_path names no schema that exists: CREATE SCHEMA name"
            f" AUTHORIZATION {role}, or fix ?options=-csearch_path%3Dname in the URL]"
        )
    return ""


def _cause(exc: BaseException) -> str:
    """An error's message on one line: the driver's own (SQLAlchemy wraps it with the class
    name and a help link), else the error's."""
    orig = getattr(exc, "orig", None)
    text = str(orig if isinstance(orig, BaseException) else exc)
    text = text.split("(Background on this error at:")[0]
    return " ".join(text.split()) or type(exc).__name__


@contextmanager
def _mapped(
    where: object, doing: str, errors: tuple[type[BaseException], ...], url: str = ""
) -> Iterator[None]:
    """Translate driver and OS errors into a one-line :class:`StoreError` (with a hint for the
    PostgreSQL permission errors a new database's role meets)."""
    try:
        yield
    except errors as exc:
        text = _cause(exc)
        hint = _pg_hint(exc, url) if url.startswith("postgres") else ""
        raise StoreError(f"{where}: cannot {doing}: {text}{hint}") from exc
    except OSError as exc:
        raise StoreError(f"{where}: cannot {doing}: {exc.strerror or exc}") from exc


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
    """An open store. Thread-safe: one connection, used under a lock.

    :param location: an SQLite file path, an ``sqlite:///path`` URL (``sqlite:////abs/path``
        for an absolute one) or a ``postgresql://`` URL; ``None`` means
        :func:`default_store_location`. A file is made absolute (:attr:`where`, :attr:`path`).
    :param create: make a missing SQLite file (``False``: "no such state file").
    :param read_only: change nothing: no file made, no schema upgrade, SQLite opened read-only
        (for ``store status``, which reads the revision and the pending ones itself).
    :raises StoreError: if the store cannot be created, opened or migrated.
    """

    dialect: Literal["sqlite", "postgresql"]

    def __init__(
        self, location: Path | str | None = None, *, create: bool = True,
        read_only: bool = False,
    ) -> None:
        if location is None:
            location = default_store_location()
        text = str(location)
        self._lock = threading.RLock()
        self._durable_level = _FULL
        self._level = -1  # unknown until the first transaction sets it
        self._engine: Engine | None = None
        self._closed = False
        self.read_only = read_only
        if text.startswith(("postgresql:", "postgres:", "postgresql+psycopg:")):
            self.dialect = "postgresql"
            self.url = text
            self.where = display_url(text)
            # Local things (the vault's key file, refresh lock files) stay in CONNECTOR_HOME.
            self.path = default_state_path()
            self._errors: tuple[type[BaseException], ...] = _pg_errors()
            self._open_postgres()
            return
        if "://" in text and _sqlite_path(text) is None:
            raise StoreError(
                f"{display_url(text)}: not a store URL [hint: use a file path,"
                " sqlite:////absolute/path or postgresql://user@host/database]"
            )
        self.dialect = "sqlite"
        self.path = sqlite_file(text) or Path(text)
        self.url = f"sqlite:///{self.path}"
        self.where = str(self.path)
        self._errors = (sqlite3.Error,)
        if (read_only or not create) and not self.path.is_file():
            raise StoreError(
                f"{self.where}: no such state file"
                + ("" if self.path.parent.is_dir() else " (nor its folder)")
            )
        with self._mapped("open the state file"):
            if read_only:
                self._db: Any = sqlite3.connect(
                    f"{self.path.as_uri()}?mode=ro", uri=True,
                    timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                    check_same_thread=False,
                )
            else:
                _create_private(self.path)
                self._db = sqlite3.connect(
                    self.path,
                    timeout=BUSY_TIMEOUT_MS / 1000,
                    isolation_level=None,
                    check_same_thread=False,
                )
        try:
            with self._mapped("open the state file"):
                self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                if not read_only:
                    self._db.execute("PRAGMA journal_mode = WAL")
                    self._db.execute("PRAGMA foreign_keys = ON")
            if not read_only:
                self._migrate_sqlite()
        except StoreError:
            self._db.close()
            raise

    def _open_postgres(self) -> None:
        try:
            from sqlalchemy import create_engine
        except ImportError as exc:  # pragma: no cover - the extra is part of `test`
            raise StoreError(f"{self.where}: PostgreSQL needs SQLAlchemy: {exc}") from exc
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise StoreError(
                f"{self.where}: PostgreSQL needs psycopg [hint: pip install"
                " 'ghl-connector[scale]']"
            ) from None
        from connector.storage.postgres import PgSession
        from connector.storage.upgrade import upgrade_postgres

        scheme, _, rest = self.url.partition("://")
        try:
            engine = create_engine(
                f"postgresql+psycopg://{rest}", pool_pre_ping=True, pool_size=2, max_overflow=8
            )
        except (ValueError, TypeError) as exc:  # sqlalchemy's ArgumentError is a ValueError
            raise StoreError(
                f"{self.where}: not a valid PostgreSQL URL ({_cause(exc)}) [hint:"
                " postgresql://user@host:5432/database]"
            ) from None
        try:
            with self._mapped("open the database"):
                if not self.read_only:
                    upgrade_postgres(engine, self.where)
                self._fairy = engine.raw_connection()
                self._db = PgSession(self._fairy.driver_connection)
                if self.read_only:
                    self._db.execute("SET default_transaction_read_only = on")
        except BaseException:
            self._closed = True
            engine.dispose()
            raise
        self._engine = engine

    def _mapped(self, doing: str) -> Any:
        return _mapped(self.where, doing, self._errors, self.url)

    def __repr__(self) -> str:
        return f"Store({self.where!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connection (and, on PostgreSQL, the pool)."""
        with self._lock, self._mapped("close the state"):
            if self._closed:
                return
            self._closed = True
            if self.dialect == "postgresql":
                self._fairy.invalidate()  # closes the psycopg connection
            else:
                self._db.close()
            if self._engine is not None:
                self._engine.dispose()

    def __del__(self) -> None:
        # A PostgreSQL store dropped unclosed: close its connections (psycopg warns otherwise).
        if getattr(self, "dialect", None) == "postgresql" and not getattr(self, "_closed", True):
            try:
                self.close()
            except Exception:  # noqa: BLE001, S110  # nothing useful to do while collected
                pass

    @property
    def engine(self) -> Engine:
        """An SQLAlchemy engine on this store (made on first use on SQLite)."""
        if self._engine is None:
            from sqlalchemy import create_engine

            self._engine = create_engine(self.url)
        return self._engine

    @property
    def skip_locked(self) -> str:
        """`` FOR UPDATE SKIP LOCKED`` on PostgreSQL (claims safe for many processes), else
        nothing (SQLite's ``BEGIN IMMEDIATE`` already holds the only write lock)."""
        return " FOR UPDATE SKIP LOCKED" if self.dialect == "postgresql" else ""

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[Db]:
        """Run a block in one transaction; commit, or roll back on error.

        Yields the connection; use it only inside the block. On SQLite the transaction is
        ``BEGIN IMMEDIATE``; on PostgreSQL ``READ COMMITTED``, where statements that read
        and then write take their row locks (``FOR UPDATE``) or use one upsert.

        :param durable: flush the commit to disk before returning (SQLite
            ``synchronous=FULL``). ``False`` (``NORMAL``) still survives a killed process (WAL)
            and becomes durable against power loss with the next durable commit; it is for
            records written on a hot path (run history and ledger), never for tokens or inbox
            events. On PostgreSQL, ``False`` commits with ``synchronous_commit`` off: the same
            trade (a killed process loses nothing; a server crash may lose the last such
            commits, never a durable one).
        :raises StoreError: if the database fails (the transaction is rolled back).
        """
        with self._lock:
            if self.dialect == "sqlite":
                self._use_level(
                    self._durable_level if durable else min(_NORMAL, self._durable_level)
                )
            else:
                self._reconnect_if_broken()
            yield from self._transaction(durable)

    def set_synchronous(self, level: str) -> None:
        """Set how durable commits are flushed: ``FULL`` (default), ``NORMAL`` or ``EXTRA``
        (SQLite; PostgreSQL keeps its server's setting)."""
        levels = {"NORMAL": _NORMAL, "FULL": _FULL, "EXTRA": _EXTRA}
        if level.upper() not in levels:
            raise ValueError(f"set_synchronous: {level!r} is not one of {sorted(levels)}")
        if self.dialect != "sqlite":
            return
        with self._lock:
            self._durable_level = levels[level.upper()]
            self._use_level(self._durable_level)

    def set_busy_timeout(self, seconds: float) -> None:
        """How long an SQLite writer waits for the lock before failing (PostgreSQL: no-op)."""
        if self.dialect == "sqlite":
            with self._lock, self._mapped("set the busy timeout"):
                self._db.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")

    def _use_level(self, level: int) -> None:
        """Switch the connection's ``synchronous`` level only when it changes (a PRAGMA each)."""
        if level != self._level:
            with self._mapped("set the sync mode"):
                self._db.execute(f"PRAGMA synchronous = {level}")
            self._level = level

    def _reconnect_if_broken(self) -> None:
        """PostgreSQL: replace a connection the server closed (restart, idle timeout)."""
        if self._db.raw.closed and self._engine is not None:
            from connector.storage.postgres import PgSession

            with self._mapped("reconnect"):
                self._fairy.invalidate()
                self._fairy = self._engine.raw_connection()
                self._db = PgSession(self._fairy.driver_connection)

    def _transaction(self, durable: bool = True) -> Iterator[Db]:
        """The body of :meth:`transaction` (the caller holds the lock)."""
        db = self._db
        begin = "BEGIN IMMEDIATE" if self.dialect == "sqlite" else "BEGIN"
        with self._mapped("begin a transaction"):
            db.execute(begin)
        try:
            with self._mapped("write the state"):
                if not durable and self.dialect == "postgresql":
                    db.execute("SET LOCAL synchronous_commit TO OFF")
                yield db
        except BaseException:
            self._rollback()
            raise
        try:
            with self._mapped("commit"):
                db.execute("COMMIT")
        except StoreError:
            # A failed COMMIT (busy, disk full) can leave the transaction open; end it so the
            # connection is usable again and the caller can retry the whole block.
            self._rollback()
            raise

    def _rollback(self) -> None:
        try:
            in_transaction = self._db.in_transaction
        except self._errors:
            return
        if in_transaction:
            with self._mapped("roll back"):
                self._db.execute("ROLLBACK")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one read statement and return all rows (indexable by column name)."""
        with self._lock:
            if self.dialect == "postgresql":
                self._reconnect_if_broken()
                with self._mapped("read the state"):
                    return self._db.execute(sql, tuple(params)).fetchall()  # type: ignore[no-any-return]
            with self._mapped("read the state file"):
                cursor = self._db.execute(sql, tuple(params))
                cursor.row_factory = sqlite3.Row
                return list(cursor.fetchall())

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one write statement in its own transaction; returns the number of rows changed."""
        with self.transaction() as db:
            return db.execute(sql, tuple(params)).rowcount

    def schema_version(self) -> str | None:
        """The Alembic revision the store is at."""
        if self.dialect == "sqlite":
            from connector.storage.upgrade import current_sqlite

            with self._lock, self._mapped("read the schema version"):
                return current_sqlite(self._db)
        if "alembic_version" not in self.table_names():
            return None
        rows = self.query("SELECT version_num FROM alembic_version")
        return str(rows[0][0]) if rows else None

    def table_names(self) -> set[str]:
        """The tables the store holds (on PostgreSQL: in its current schema)."""
        if self.dialect == "sqlite":
            sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
        else:
            sql = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        return {str(row[0]) for row in self.query(sql)}

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """Hold a lock named ``name`` across every process using this store, for a block.

        SQLite: an ``flock`` on ``<state>.locks/<name>.lock`` beside the file (one machine).
        PostgreSQL: a session advisory lock on a connection of its own, so the store's
        connection stays free while the holder works (for instance, refreshing a token).
        """
        if self.dialect == "postgresql":
            key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
            with self._mapped(f"take the lock {name!r}"):
                conn = self.engine.raw_connection()
            try:
                raw: Any = conn.driver_connection
                with self._mapped(f"take the lock {name!r}"):
                    raw.autocommit = True
                    raw.execute("SELECT pg_advisory_lock(%s)", (key,))
                try:
                    yield
                finally:
                    with self._mapped(f"release the lock {name!r}"):
                        raw.execute("SELECT pg_advisory_unlock(%s)", (key,))
            finally:
                conn.close()
            return
        path = self.path.with_name(self.path.name + ".locks") / f"{name}.lock"
        try:
            path.parent.mkdir(mode=0o700, exist_ok=True)
            fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        except OSError as exc:
            raise StoreError(f"{path}: cannot open the lock file: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    def _migrate_sqlite(self) -> None:
        """Bring the file to the newest revision; an up-to-date file costs one SELECT."""
        from connector.storage.upgrade import HEAD, current_sqlite

        with self._mapped("read the schema version"):
            if current_sqlite(self._db) == HEAD:
                return
        from connector.storage.upgrade import upgrade_sqlite

        with self._mapped("migrate the state file"):
            upgrade_sqlite(self._db, self.where)


def _pg_errors() -> tuple[type[BaseException], ...]:
    """The exceptions PostgreSQL access raises (psycopg's and SQLAlchemy's)."""
    errors: list[type[BaseException]] = []
    try:
        import psycopg

        errors.append(psycopg.Error)
    except ImportError:
        pass
    try:
        import sqlalchemy.exc

        errors.append(sqlalchemy.exc.SQLAlchemyError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)
