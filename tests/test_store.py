"""The SQLite state file: location, permissions, WAL, migrations, transactions, error mapping."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from connector.errors import StoreError
from connector.store import MIGRATIONS, Migration, Store, default_state_path

ROOT = Path(__file__).resolve().parents[1]


def test_store_path_follows_connector_home(monkeypatch, tmp_path):
    """CONNECTOR_HOME decides where state.db lives; without it, ~/.ghl-connector."""
    monkeypatch.setenv("CONNECTOR_HOME", str(tmp_path / "h"))
    assert default_state_path() == tmp_path / "h" / "state.db"
    monkeypatch.delenv("CONNECTOR_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_state_path() == tmp_path / ".ghl-connector" / "state.db"


def test_store_created_private_and_in_wal_mode(tmp_path):
    """A new state file is mode 0600 in a 0700 folder and uses the WAL journal."""
    path = tmp_path / "new" / "state.db"
    with Store(path) as store:
        store.execute("INSERT INTO schema_migrations VALUES (99, 'x', 0)")
        mode = store.query("PRAGMA journal_mode")[0][0]
    assert mode == "wal"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    for extra in path.parent.glob("state.db-*"):
        assert stat.S_IMODE(extra.stat().st_mode) == 0o600


def test_store_tightens_an_open_file(tmp_path):
    """An existing state file readable by others is set back to 0600 when opened."""
    path = tmp_path / "state.db"
    Store(path).close()
    path.chmod(0o644)
    Store(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_store_applies_migrations_once_and_records_them(tmp_path):
    """Every migration runs once; reopening applies only the ones appended since."""
    path = tmp_path / "state.db"
    extra = Migration(len(MIGRATIONS) + 1, "later", "CREATE TABLE later (id INTEGER);")
    with Store(path) as store:
        assert store.schema_version() == len(MIGRATIONS)
        assert store.query("SELECT name FROM sqlite_master WHERE name = 'connections'")
    with Store(path, migrations=(*MIGRATIONS, extra)) as store:
        assert store.schema_version() == len(MIGRATIONS) + 1
        names = [r["name"] for r in store.query("SELECT name FROM schema_migrations")]
        assert names == [m.name for m in MIGRATIONS] + ["later"]
    with Store(path, migrations=(*MIGRATIONS, extra)) as store:
        assert store.schema_version() == len(MIGRATIONS) + 1


def test_store_refuses_a_newer_schema(tmp_path):
    """A file migrated by a newer connector is refused with a hint, not silently used."""
    path = tmp_path / "state.db"
    extra = Migration(len(MIGRATIONS) + 1, "later", "CREATE TABLE later (id INTEGER);")
    Store(path, migrations=(*MIGRATIONS, extra)).close()
    newer = rf"schema version {extra.version} is newer .*upgrade ghl-connector"
    with pytest.raises(StoreError, match=newer):
        Store(path)


def test_store_rejects_misnumbered_migrations(tmp_path):
    """Migrations must be numbered 1..n in order (a usage bug, so ValueError)."""
    with pytest.raises(ValueError, match="numbered 1..n"):
        Store(tmp_path / "s.db", migrations=(Migration(2, "x", "SELECT 1;"),))


def test_store_transaction_rolls_back_on_error(tmp_path):
    """An exception inside transaction() leaves nothing behind."""
    with Store(tmp_path / "state.db") as store:
        with pytest.raises(RuntimeError), store.transaction() as db:
            db.execute("INSERT INTO schema_migrations VALUES (50, 'x', 0)")
            raise RuntimeError("boom")
        assert not store.query("SELECT 1 FROM schema_migrations WHERE version = 50")
        with store.transaction() as db:
            db.execute("INSERT INTO schema_migrations VALUES (51, 'y', 0)")
        assert store.query("SELECT 1 FROM schema_migrations WHERE version = 51")


def test_store_translates_sqlite_errors(tmp_path):
    """A bad statement surfaces as StoreError naming the file, not sqlite3.Error."""
    with Store(tmp_path / "state.db") as store:
        with pytest.raises(StoreError, match=r"state\.db: cannot read the state file: no such"):
            store.query("SELECT * FROM missing_table")
        with pytest.raises(StoreError, match="cannot write the state file"):
            store.execute("INSERT INTO missing_table VALUES (1)")


def test_store_unreadable_file_is_store_error(tmp_path):
    """A file that is not a database gives StoreError, not a traceback."""
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=r"state\.db: cannot open the state file"):
        Store(path)


def test_store_concurrent_openers_migrate_once(tmp_path):
    """Several processes opening a fresh file at once end with each migration applied once."""
    path = tmp_path / "state.db"
    script = textwrap.dedent(
        f"""
        from connector.store import Store
        Store({str(path)!r}).close()
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    db = sqlite3.connect(path)
    rows = db.execute("SELECT version FROM schema_migrations").fetchall()
    db.close()
    assert rows == [(m.version,) for m in MIGRATIONS]


def test_store_repr_names_the_file(tmp_path):
    """The repr shows the path and nothing else."""
    with Store(tmp_path / "state.db") as store:
        assert repr(store) == f"Store({str(tmp_path / 'state.db')!r})"
    assert os.path.exists(tmp_path / "state.db")
