"""`ghl-connector store` and the store's command-line behaviour, as real processes on real SQLite
files and a real PostgreSQL: a missing --from, sqlite:/// URLs, the PostgreSQL permission hints,
`store migrate` against a running serve, a read-only `store status`, `store upgrade`, and the
log level every command obeys (the libraries' loggers too; each start-up warning once)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import run_cli
from fixtures_store import PG_URL, postgres_schema

from connector.storage.upgrade import HEAD
from connector.store import Store

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_migrate_from_a_missing_file_is_an_error_and_creates_nothing(tmp_path):
    """A typo in --from is `no such state file`, exit 1: no file, no folder, no rows copied."""
    typo = tmp_path / "typo" / "state.db"
    with postgres_schema() as url:
        result = run_cli("store", "migrate", "--from", str(typo), "--to", url)
        assert result.status == 1, result.stdout
        assert result.stderr.startswith(f"error: {typo}: no such state file"), result.stderr
        assert "rows copied" not in result.stdout and "Traceback" not in result.stderr
        assert not typo.parent.exists()
        with Store(url, read_only=True) as target:
            assert target.schema_version() is None  # not even opened for writing
    missing = tmp_path / "state.db"  # the folder exists, the file does not
    result = run_cli("store", "migrate", "--from", str(missing), "--to", str(tmp_path / "b.db"))
    assert result.status == 1 and f"{missing}: no such state file" in result.stderr
    assert sorted(os.listdir(tmp_path)) == []


def test_sqlite_urls_follow_sqlalchemy_and_print_absolute_paths(tmp_path):
    """sqlite:////abs is absolute; sqlite:///rel is relative to the current folder, warned
    about, and printed as the absolute file it names. `store status` creates no file."""
    work = tmp_path / "work"
    work.mkdir()
    made = run_cli("--store", str(tmp_path / "a" / "b.db"), "runs")
    assert made.status == 0, made.stderr
    absolute = run_cli("store", "status", "--store", f"sqlite:///{tmp_path}/a/b.db", cwd=work)
    assert absolute.status == 0, absolute.stderr
    assert f"store: {tmp_path}/a/b.db (sqlite)" in absolute.stdout
    assert absolute.stderr == ""  # four slashes: no warning
    relative = run_cli("store", "status", "--store", "sqlite:///tmp/a/b.db", cwd=work)
    assert relative.status == 1
    lines = relative.stderr.strip().splitlines()
    assert "sqlite:///tmp/a/b.db names a path relative to the current folder" in lines[0]
    assert f"{work}/tmp/a/b.db" in lines[0] and "sqlite:////tmp/a/b.db" in lines[0]
    assert lines[1] == f"error: {work}/tmp/a/b.db: no such state file (nor its folder)"
    assert os.listdir(work) == []


def test_store_status_is_read_only_and_lists_pending_revisions(tmp_path):
    """`store status` on a pre-Alembic state file shows every revision this version would add
    and leaves the file byte for byte as it was; `store upgrade` applies them."""
    path = tmp_path / "state.db"
    shutil.copy(DATA / "state-numbered.db", path)
    before = _digest(path)
    status = run_cli("store", "status", "--store", str(path))
    assert status.status == 0, status.stderr
    assert f"store: {path} (sqlite)" in status.stdout
    assert "numbered, from before Alembic" in status.stdout
    assert f"  {HEAD}  " in status.stdout and "store upgrade" in status.stdout
    assert "inbox: 3" in status.stdout and "leases" not in status.stdout  # not made yet
    assert _digest(path) == before and sorted(os.listdir(tmp_path)) == ["state.db"]
    upgraded = run_cli("store", "upgrade", "--store", str(path))
    assert upgraded.status == 0 and f"schema revision: none -> {HEAD}" in upgraded.stdout
    again = run_cli("store", "status", "--store", str(path))
    assert f"schema revision: {HEAD} (up to date)" in again.stdout and "leases: 0" in again.stdout


def test_store_status_on_postgresql_changes_nothing(tmp_path):
    """On an empty PostgreSQL schema, status lists the revisions and creates no table."""
    with postgres_schema() as url:
        status = run_cli("store", "status", "--store", url)
        assert status.status == 0, status.stderr
        assert "schema revision: none; this version would add" in status.stdout
        with Store(url, read_only=True) as store:
            assert store.table_names() == set()
        assert run_cli("store", "upgrade", "--store", url).status == 0
        with Store(url, read_only=True) as store:
            assert store.schema_version() == HEAD


@contextmanager
def _role_without_create() -> Iterator[tuple[str, str]]:
    """A login role, and a schema of the test database it may use but not create in."""
    import psycopg
    from fixtures_store import need_postgres

    need_postgres()
    tag = uuid.uuid4().hex[:10]
    role, schema = f"store_norights_{tag}", f"store_t_{os.getpid()}_{tag}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
    try:
        yield role, schema
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_postgresql_permission_errors_carry_a_hint():
    """A role that may not create in its schema, and a search_path naming no schema, are one
    error line each with the hint that fixes them."""
    with _role_without_create() as (role, schema):
        host = PG_URL.split("@", 1)[1]
        url = f"postgresql://{role}@{host}?options=-csearch_path%3D{schema}"
        denied = run_cli("--store", url, "runs")
        assert denied.status == 1
        assert f"permission denied for schema {schema}" in denied.stderr
        assert (
            f"[hint: the role needs CREATE on the schema: createdb -O {role} test, or"
            f" GRANT CREATE ON SCHEMA {schema} TO {role}]"
        ) in denied.stderr
        assert len(denied.stderr.strip().splitlines()) == 1
    nowhere = run_cli(
        "--store", f"{PG_URL}?options=-csearch_path%3Dno_such_{uuid.uuid4().hex}", "runs"
    )
    assert nowhere.status == 1 and "no schema has been selected to create in" in nowhere.stderr
    assert "[hint: the search_path names no schema that exists" in nowhere.stderr


def _recipes(tmp_path: Path) -> Path:
    folder = tmp_path / "recipes"
    folder.mkdir()
    shutil.copy(ROOT / "recipes" / "note_mirror.yaml", folder)
    return folder


@contextmanager
def _serve(
    *args: str, home: Path, errors: list[str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """`ghl-connector ARGS` (a serve) until its `ready` line; stopped with SIGTERM after (its
    stderr then appended to ``errors``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONNECTOR_", "RECIPE_"))}
    env["CONNECTOR_HOME"] = str(home)
    proc = subprocess.Popen(
        [sys.executable, "-m", "connector", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    summary: list[str] = []
    try:
        for line in iter(proc.stdout.readline, ""):
            summary.append(line.rstrip("\n"))
            if line.strip() == "ready":
                break
        else:
            pytest.fail(
                f"serve did not start: {summary} {proc.stderr.read() if proc.stderr else ''}"
            )
        yield proc, summary
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
        if errors is not None:
            errors.append(err)


def test_migrate_refuses_a_state_file_serve_is_running_on(tmp_path):
    """While serve runs on --from, `store migrate` refuses in one line and copies nothing;
    once serve has stopped, the same command copies."""
    db = tmp_path / "state.db"
    with postgres_schema() as url:
        with _serve(
            "--store",
            str(db),
            "serve",
            "--recipes",
            str(_recipes(tmp_path)),
            "--sandbox",
            "--port",
            "0",
            home=tmp_path / "home",
        ):
            refused = run_cli("store", "migrate", "--from", str(db), "--to", url)
            assert refused.status == 1
            assert refused.stderr.strip() == (
                f"error: {db}: `ghl-connector serve` is running on it [stop it, then migrate]"
            )
            with Store(url, read_only=True) as target:
                assert target.table_names() == set()
        done = run_cli("store", "migrate", "--from", str(db), "--to", url)
        assert done.status == 0, done.stderr
        assert "rows copied" in done.stdout


def _records(stderr: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_serve_log_lines_follow_the_level(tmp_path):
    """serve on PostgreSQL at the default level (INFO) and at --log-level ERROR: stderr holds
    JSON lines only, none from alembic (its upgrade is one line of the connector's own), none
    below the level, and each start-up warning is printed once, in the summary on stdout."""
    recipes = _recipes(tmp_path)
    with postgres_schema() as url:
        for flag, lowest in (((), "INFO"), (("--log-level", "ERROR"), "ERROR")):
            home = Path(tempfile.mkdtemp(dir=tmp_path))
            errors: list[str] = []
            with _serve(*flag, "--store", url, "serve", "--recipes", str(recipes), "--sandbox",
                        "--port", "0", home=home, errors=errors) as (_, summary):
                pass
            err = errors[0]
            warned = [line for line in summary if "RECIPE_NOTE_MIRROR_URL" in line]
            assert len(warned) == 1 and warned[0].startswith("warning: "), summary
            records = _records(err)
            assert len(records) == len(err.strip().splitlines()), err  # JSON lines only
            order = ["DEBUG", "INFO", "WARNING", "ERROR"]
            assert all(order.index(str(r["level"])) >= order.index(lowest) for r in records), err
            assert not [r for r in records if str(r["logger"]).startswith("alembic")], err
            assert not [r for r in records if "RECIPE_NOTE_MIRROR" in str(r["message"])], err
            if lowest == "INFO":
                assert any("schema upgraded" in str(r["message"]) for r in records), err
                assert any(r["message"] == "serve: ready" for r in records), err
            else:
                assert records == [], err


def test_store_status_help_teaches():
    """`store status --help` says what it shows, that it changes nothing, with examples."""
    shown = run_cli("store", "status", "--help")
    assert shown.status == 0
    text = " ".join(shown.stdout.split())
    assert "changes nothing" in text and "schema revision" in text
    assert "store status --store /srv/connector/state.db" in text
    assert "store status --store postgresql://" in text
    assert "sqlite:////srv/state.db is absolute" in text
