"""The store a test runs on: ``store_location`` is parametrized over SQLite (a fresh file) and
PostgreSQL (a fresh schema in the ``test`` database on 127.0.0.1:5432, dropped afterwards;
skipped with the reason when the server cannot be reached). ``$CONNECTOR_TEST_POSTGRES``
points elsewhere."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import pytest

PG_URL = os.environ.get("CONNECTOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgresql")


@cache
def postgres_unreachable() -> str | None:
    """Why PostgreSQL cannot be used for tests, or None when it can."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[test]')"
    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL at {PG_URL} is unreachable: {' '.join(str(exc).split())[:200]}"
    return None


def need_postgres() -> None:
    """Skip the calling test, with the reason, when PostgreSQL is unreachable."""
    reason = postgres_unreachable()
    if reason:
        pytest.skip(reason)


@cache
def _sweep_dead_runs() -> None:
    """Drop the schemas test runs of this machine left behind when they were killed (their
    process is gone); once per test process."""
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'store\\_t\\_%'")]
        for name in names:
            pid = name.split("_")[2]
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
            except (ValueError, PermissionError):
                continue


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A store URL on a new, empty schema of the test database; the schema is dropped after."""
    import psycopg

    need_postgres()
    _sweep_dead_runs()
    name = f"store_t_{os.getpid()}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def stored_values(store: object) -> bytes:
    """Every value of every table of a PostgreSQL store, as bytes (what a file read shows on
    SQLite): to check that something was stored, or that a secret never was."""
    from connector.storage.tables import metadata

    out = []
    for table in metadata.sorted_tables:
        for row in store.query(f"SELECT * FROM {table.name}"):  # type: ignore[attr-defined]
            out += [v if isinstance(v, bytes) else str(v).encode() for v in row]
    return b"\n".join(out)


def sqlite_only(location: object, why: str) -> None:
    """Skip the PostgreSQL variant of a test about SQLite itself."""
    if str(location).startswith("postgresql"):
        pytest.skip(f"SQLite-specific: {why}")


@pytest.fixture(params=BACKENDS)
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path | str]:
    """Where a test's store lives: a fresh SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield tmp_path / "state.db"
        return
    with postgres_schema() as url:
        yield url
