"""The store on SQLite and PostgreSQL: location, permissions, WAL, Alembic migrations (and the
in-place upgrade of a pre-Alembic state file), transactions, error mapping, cross-process locks,
and the portable SQL layer."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from fixtures_store import BACKENDS, postgres_schema
from hypothesis import given
from hypothesis import strategies as st

from connector.auth.connection import ConnectionStore
from connector.auth.vault import Vault
from connector.errors import StoreError
from connector.recipes.history import History
from connector.recipes.ledger import Ledger
from connector.service.inbox import Inbox
from connector.storage.legacy import MIGRATIONS, statements
from connector.storage.postgres import translate
from connector.storage.upgrade import HEAD, MIGRATIONS_DIR
from connector.store import Store, default_state_path, display_url

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
LEGACY_KEY = bytes(range(32))  # the key tests/data/state-numbered.db was sealed with


@pytest.fixture
def store(store_location):
    with Store(store_location) as opened:
        yield opened


def test_store_path_follows_connector_home(monkeypatch, tmp_path):
    """CONNECTOR_HOME decides where state.db lives; without it, ~/.ghl-connector."""
    monkeypatch.setenv("CONNECTOR_HOME", str(tmp_path / "h"))
    assert default_state_path() == tmp_path / "h" / "state.db"
    monkeypatch.delenv("CONNECTOR_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_state_path() == tmp_path / ".ghl-connector" / "state.db"


def test_store_location_from_environment(monkeypatch, tmp_path):
    """CONNECTOR_STORE chooses the store when none is given; sqlite:/// URLs name a file."""
    monkeypatch.setenv("CONNECTOR_STORE", f"sqlite:///{tmp_path / 'env.db'}")
    with Store() as store:
        assert store.dialect == "sqlite" and store.path == tmp_path / "env.db"
    assert (tmp_path / "env.db").exists()


def test_store_created_private_and_in_wal_mode(tmp_path):
    """A new state file is mode 0600 in a 0700 folder and uses the WAL journal."""
    path = tmp_path / "new" / "state.db"
    with Store(path) as store:
        store.execute("INSERT INTO leases VALUES ('x', 'me', 1.0, 0.0)")
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


def test_store_head_names_the_newest_revision():
    """upgrade.HEAD (the fast path's check) is the head of the shipped Alembic revisions."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(config).get_heads() == [HEAD]


def test_store_migrated_schema_matches_the_tables(store):
    """After the revisions ran, the database has exactly the tables, columns, types and indexes
    that connector/storage/tables.py describes (a table added without a revision fails)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from connector.storage.tables import metadata

    assert store.schema_version() == HEAD
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_store_reopening_runs_nothing_again(store):
    """A second opener finds the store at HEAD and leaves its rows alone."""
    store.execute("INSERT INTO leases VALUES ('x', 'me', 1.0, 0.0)")
    with Store(store.url) as again:
        assert again.schema_version() == HEAD
        assert [tuple(r) for r in again.query("SELECT name, holder FROM leases")] == [("x", "me")]


def test_store_refuses_a_newer_schema(store):
    """A store migrated by a newer connector is refused with a hint, not silently used."""
    store.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StoreError, match=r"revision '9999' is newer .*upgrade ghl-connector"):
        Store(store.url)


def test_store_upgrades_a_numbered_state_file_in_place(tmp_path):
    """A state file made by the connector before Alembic (tests/data/make_state_numbered.py)
    opens at HEAD with every row kept: its sealed tokens, inbox, runs, ledger, sync links."""
    path = tmp_path / "state.db"
    shutil.copy(DATA / "state-numbered.db", path)
    with Store(path) as store:
        assert store.schema_version() == HEAD
        versions = [r[0] for r in store.query("SELECT version FROM schema_migrations")]
        assert versions == [m.version for m in MIGRATIONS]
        acme = ConnectionStore(store, Vault(tmp_path / "k", key=LEGACY_KEY)).get("acme")
        assert (acme.access_token, acme.refresh_token) == (
            "legacy-access-token", "legacy-refresh-token")
        assert Inbox(store).counts() == {"done": 1, "pending": 2}
        run = History(store).get("w-0:r")
        assert run.status == "succeeded" and run.steps[0].duration_ms == 12.25
        assert Ledger(store).done("w-0:r") == {("s1", -1): {"id": "t1"}}
        assert store.query("SELECT partner_id FROM sync_links")[0][0] == "p1"
        store.execute("INSERT INTO leases VALUES ('x', 'me', 1.0, 0.0)")  # the new table
    with Store(path) as again:  # and it stays upgraded
        assert again.schema_version() == HEAD


def test_store_finishes_an_older_numbered_file_first(tmp_path):
    """A file stopped at numbered migration 5 gets 6..9 from the legacy list, then Alembic."""
    path = tmp_path / "state.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
               " applied_at REAL NOT NULL)")
    for migration in MIGRATIONS[:5]:
        for statement in statements(migration.sql):
            db.execute(statement)
        db.execute("INSERT INTO schema_migrations VALUES (?, ?, 0)",
                   (migration.version, migration.name))
    db.commit()
    db.close()
    with Store(path) as store:
        assert store.schema_version() == HEAD
        assert store.query("SELECT COUNT(*) FROM run_intents")[0][0] == 0  # made by number 6
        assert store.query("SELECT COUNT(*) FROM leases")[0][0] == 0  # made by Alembic


def test_store_refuses_a_newer_numbered_file(tmp_path):
    """A numbered file past the last legacy number is refused, not stamped."""
    path = tmp_path / "state.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT,"
               " applied_at REAL)")
    db.execute("INSERT INTO schema_migrations VALUES (42, 'future', 0)")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match=r"schema version 42 is newer .*upgrade ghl-connector"):
        Store(path)


def test_store_transaction_rolls_back_on_error(store):
    """An exception inside transaction() leaves nothing behind."""
    with pytest.raises(RuntimeError), store.transaction() as db:
        db.execute("INSERT INTO leases VALUES ('a', 'me', 1.0, 0.0)")
        raise RuntimeError("boom")
    assert not store.query("SELECT 1 FROM leases WHERE name = 'a'")
    with store.transaction() as db:
        db.execute("INSERT INTO leases VALUES ('b', 'me', 1.0, 0.0)")
    assert store.query("SELECT 1 FROM leases WHERE name = ?", ("b",))


def test_store_failed_statement_leaves_the_connection_usable(store):
    """After a statement fails mid-transaction (PostgreSQL aborts the transaction), the
    rollback leaves the connection ready for the next one."""
    store.execute("INSERT INTO leases VALUES ('a', 'me', 1.0, 0.0)")
    with pytest.raises(StoreError), store.transaction() as db:
        db.execute("INSERT INTO leases VALUES ('a', 'again', 1.0, 0.0)")
    assert store.execute("UPDATE leases SET holder = 'you' WHERE name = 'a'") == 1


def test_store_translates_driver_errors(store):
    """A bad statement surfaces as StoreError naming the store, not the driver's exception."""
    where = "state.db" if store.dialect == "sqlite" else "postgresql://postgres@"
    with pytest.raises(StoreError, match=rf"{where}.*: cannot read the state.*missing_table"):
        store.query("SELECT * FROM missing_table")
    with pytest.raises(StoreError, match="cannot write the state"):
        store.execute("INSERT INTO missing_table VALUES (1)")


def test_store_unreadable_file_is_store_error(tmp_path):
    """A file that is not a database gives StoreError, not a traceback."""
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=r"state\.db: cannot (open|read|migrate) the state file"):
        Store(path)


def test_store_bad_urls_are_one_line_errors():
    """An unknown scheme, and a PostgreSQL server that is not there, are StoreErrors whose
    message hides the password."""
    with pytest.raises(StoreError, match=r"mysql://u:\*\*\*@h/db: not a store URL"):
        Store("mysql://u:secret@h/db")
    with pytest.raises(StoreError) as caught:
        Store("postgresql://u:secret@127.0.0.1:1/db?connect_timeout=2")
    assert "secret" not in str(caught.value) and "\n" not in str(caught.value)
    assert "cannot open the database" in str(caught.value)


def test_display_url_hides_only_the_password():
    assert display_url("postgresql://u:pw@h:5/d?x=1") == "postgresql://u:***@h:5/d?x=1"
    assert display_url("postgresql://u@h/d") == "postgresql://u@h/d"
    assert display_url("/a/b@c/state.db") == "/a/b@c/state.db"


@pytest.mark.parametrize("backend", BACKENDS)
def test_store_concurrent_openers_migrate_once(backend, tmp_path):
    """Several processes opening a fresh store at once end with it migrated exactly once."""
    def run(location: str) -> None:
        script = f"from connector.store import Store\nStore({location!r}).close()\n"
        procs = [subprocess.Popen([sys.executable, "-c", script], cwd=ROOT,
                                  stderr=subprocess.PIPE) for _ in range(4)]
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
        with Store(location) as store:
            assert [tuple(r) for r in store.query("SELECT version_num FROM alembic_version")] \
                == [(HEAD,)]

    if backend == "sqlite":
        run(str(tmp_path / "state.db"))
    else:
        with postgres_schema() as url:
            run(url)


def test_store_repr_names_the_file(tmp_path):
    """The repr shows the path and nothing else."""
    with Store(tmp_path / "state.db") as store:
        assert repr(store) == f"Store({str(tmp_path / 'state.db')!r})"
    assert os.path.exists(tmp_path / "state.db")


HOLDER = textwrap.dedent(
    """
    import sys, time
    from connector.store import Store
    store = Store(sys.argv[1])
    with store.exclusive("job"):
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
    print("released", flush=True)
    """
)


def test_store_exclusive_excludes_other_processes(store):
    """While another process holds a named lock, this one waits for it; other names are free."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, store.url, "1.0"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    with store.exclusive("other"):
        pass  # another name does not wait
    started = time.monotonic()
    with store.exclusive("job"):
        waited = time.monotonic() - started
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.strip() == "released"
    assert waited > 0.3


def test_store_is_usable_from_many_threads(store):
    """Threads sharing one store interleave transactions safely."""
    def work(n: int) -> None:
        for i in range(20):
            with store.transaction() as db:
                db.execute("INSERT INTO leases VALUES (?, ?, 1.0, 0.0)", (f"{n}-{i}", "t"))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert store.query("SELECT COUNT(*) AS n FROM leases")[0]["n"] == 80


def test_store_rows_index_by_name_and_position(store):
    """Rows from query() answer row["column"] and row[0] on both engines; bytes stay bytes."""
    store.execute("INSERT INTO footprint_salt (id, value) VALUES (1, ?)", (b"\x00\xff%?",))
    row = store.query("SELECT id, value FROM footprint_salt WHERE value = ?", (b"\x00\xff%?",))[0]
    assert (row["id"], bytes(row["value"])) == (1, b"\x00\xff%?")
    assert row[0] == 1 and list(row.keys()) == ["id", "value"]


def test_store_sql_with_percent_and_question_marks_in_literals(store):
    """'%' anywhere and '?' inside quotes are literal on both engines."""
    store.execute("INSERT INTO leases VALUES ('50% ?', ?, 1.0, 0.0)", ("who?",))
    rows = store.query("SELECT name FROM leases WHERE name LIKE '50%' AND holder = ?", ("who?",))
    assert [r[0] for r in rows] == ["50% ?"]


@given(st.text(alphabet="?%'\"ab ", max_size=30))
def test_translate_only_rewrites_outside_quotes(sql):
    """translate() turns each unquoted ? into %s, doubles every %, and changes nothing else."""
    out = translate(sql)
    back = out.replace("%%", "\0").replace("%s", "?").replace("\0", "%")
    assert back == sql



def test_store_migrate_copies_a_state_file_into_postgresql(tmp_path):
    """`ghl-connector store migrate --from FILE --to URL` copies every row of a (pre-Alembic)
    state file into an empty PostgreSQL schema: tokens still open with the same key, ids
    continue after the copied ones; a second copy into the filled schema is refused."""
    from conftest import run_cli

    path = tmp_path / "state.db"
    shutil.copy(DATA / "state-numbered.db", path)
    with postgres_schema() as url:
        done = run_cli("store", "migrate", "--from", str(path), "--to", url)
        assert done.status == 0, done.stderr
        assert "inbox: 3" in done.stdout and "rows copied" in done.stdout
        with Store(path) as source, Store(url) as target:
            for table in ("connections", "inbox", "runs", "run_steps", "run_ledger",
                          "run_intents", "sync_links", "sync_audit", "poll_cursors",
                          "poll_seen", "footprints", "footprint_salt"):
                assert [tuple(r) for r in target.query(f"SELECT * FROM {table}")] == [
                    tuple(r) for r in source.query(f"SELECT * FROM {table}")], table
            acme = ConnectionStore(target, Vault(tmp_path / "k", key=LEGACY_KEY)).get("acme")
            assert acme.refresh_token == "legacy-refresh-token"
            with target.transaction() as db:
                db.execute("INSERT INTO inbox (webhook_id, received_at, body, available_at)"
                           " VALUES ('new', 1.0, ?, 1.0)", (b"{}",))
            ids = [r[0] for r in target.query("SELECT id FROM inbox ORDER BY id")]
            assert ids[-1] == max(ids[:-1]) + 1
        again = run_cli("store", "migrate", "--from", str(path), "--to", url)
        assert again.status == 1 and "not empty: connections (1)" in again.stderr
        assert "Traceback" not in again.stderr
        status = run_cli("--store", url, "store", "status")
        assert status.status == 0 and "(postgresql)" in status.stdout
        assert f"schema revision: {HEAD}" in status.stdout and "inbox: 4" in status.stdout


def test_store_migrate_accepts_a_database_a_process_opened_once(tmp_path):
    """A serve or worker pointed at a new PostgreSQL database once leaves one row: the
    automatically created footprint salt. `store migrate` still copies into it, replacing that
    salt with the source's (the copied footprints stay readable); any other row is refused."""
    from conftest import run_cli

    from connector.console.access import create_token
    from connector.recipes.footprints import Footprints

    path = tmp_path / "state.db"
    shutil.copy(DATA / "state-numbered.db", path)
    with postgres_schema() as url:
        with Store(url) as target:
            Footprints(target)  # what serve and worker do at start
            assert target.query("SELECT COUNT(*) FROM footprint_salt")[0][0] == 1
        done = run_cli("store", "migrate", "--from", str(path), "--to", url)
        assert done.status == 0, done.stderr
        with Store(path) as source, Store(url) as target:
            salt = [tuple(r) for r in source.query("SELECT * FROM footprint_salt")]
            assert salt and [tuple(r) for r in target.query("SELECT * FROM footprint_salt")] == salt
    with postgres_schema() as url:
        with Store(url) as target:
            Footprints(target)
            create_token(target, "admin")
        refused = run_cli("store", "migrate", "--from", str(path), "--to", url)
        assert refused.status == 1 and "console_tokens (1)" in refused.stderr


def test_store_cli_bad_store_is_one_error_line(tmp_path):
    """A --store the connector cannot use is one `error:` line naming it (password hidden),
    exit 1, no traceback; so is a migrate target that is not empty."""
    from conftest import run_cli

    bad = run_cli("--store", "mysql://u:pw@h/db", "runs")
    assert bad.status == 1 and bad.stderr.startswith("error: mysql://u:***@h/db: not a store URL")
    down = run_cli("--store", "postgresql://u:pw@127.0.0.1:1/db?connect_timeout=2", "store",
                   "status")
    assert down.status == 1 and "cannot open the database" in down.stderr
    for result in (bad, down):
        assert "Traceback" not in result.stderr and "pw" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_store_cli_malformed_postgresql_urls_are_one_plain_line(tmp_path):
    """A PostgreSQL URL with a port that is not a number, or a server that refuses, is one
    `error:` line without a traceback, the driver's class name or SQLAlchemy's help link."""
    from conftest import run_cli

    for url in ("postgresql://u:pw@127.0.0.1:notaport/db", "postgresql://u@[::1/db",
                "postgresql://u:pw@127.0.0.1:1/db?connect_timeout=2"):
        bad = run_cli("--store", url, "runs")
        assert bad.status == 1, (url, bad.stderr)
        assert bad.stderr.startswith("error: postgresql://u"), bad.stderr
        assert "Traceback" not in bad.stderr and ":pw@" not in bad.stderr
        assert "sqlalche.me" not in bad.stderr and "OperationalError" not in bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr
