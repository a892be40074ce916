"""``ghl-connector audit`` as a real process over an audit trail the sync engine wrote."""

from __future__ import annotations

import csv
import io
import json
import time

import pytest
from conftest import run_cli

from connector.auth.credentials import StaticBearer, api_key_provider
from connector.catalog import build_catalog
from connector.runtime import Runtime, Settings
from connector.store import Store
from connector.sync.audit import FIELDS
from connector.sync.engine import Change, SyncEngine
from connector.sync.spec import parse_sync

SPEC = """\
name: audit-test
sync:
  partner: linkedphone
  objects:
    contacts:
      fields: {firstName: first_name, email: email}
"""


@pytest.fixture
def home(tmp_path, ghl, lp):
    """A CONNECTOR_HOME whose state file holds the audit of four changes (two contacts)."""
    settings = Settings(
        strict=True,
        base_urls={"ghl": ghl.base_url, "linkedphone": lp.base_url},
        location_id=ghl.location_id,
    )
    bearer = StaticBearer(ghl.private_token)
    auth = api_key_provider(lambda app, action: bearer, keys={"linkedphone": lp.api_key})
    with (
        Runtime(build_catalog(), settings, auth=auth) as runtime,
        Store(tmp_path / "state.db") as store,
    ):
        engine = SyncEngine(parse_sync(SPEC), runtime, store)
        for name in ("Ann", "Bea"):
            c = runtime.call("ghl.contacts.create", {"firstName": name, "email": f"{name}@x.io"})
            change = Change("ghl", "contacts", c["contact"]["id"], c["contact"], event_id=name)
            engine.apply(change)
            engine.apply(change)
    return tmp_path


def test_audit_cli_csv_lists_every_entry(home):
    """--format csv prints a header and one row per decision, changes as JSON."""
    result = run_cli("audit", "--format", "csv", env={"CONNECTOR_HOME": str(home)})
    assert result.status == 0, result
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == list(FIELDS)
    assert [(r["event_id"], r["action"], r["reason"]) for r in rows] == [
        ("Ann", "create", "no match on linkedphone"),
        ("Ann", "skip", "no change"),
        ("Bea", "create", "no match on linkedphone"),
        ("Bea", "skip", "no change"),
    ]
    assert json.loads(rows[0]["changes"]) == {
        "email": [None, "Ann@x.io"],
        "first_name": [None, "Ann"],
    }


def test_audit_cli_jsonl_limit_and_since(home):
    """--format jsonl prints one object a line; --limit keeps the newest; --since filters."""
    env = {"CONNECTOR_HOME": str(home)}
    result = run_cli("audit", "--format", "jsonl", "--limit", "2", "--object", "contacts", env=env)
    assert result.status == 0, result
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(d["event_id"], d["action"]) for d in lines] == [("Bea", "create"), ("Bea", "skip")]
    assert lines[0]["direction"] == "ghl->linkedphone" and lines[0]["at"].endswith("Z")
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    assert run_cli("audit", "--format", "jsonl", "--since", later, env=env).stdout == ""


def test_audit_cli_output_file_and_table(home, tmp_path):
    """--output writes the export to a file; the default table names actions and reasons."""
    env = {"CONNECTOR_HOME": str(home)}
    target = tmp_path / "audit.jsonl"
    result = run_cli("audit", "--format", "jsonl", "--output", str(target), env=env)
    assert result.status == 0, result
    assert len(target.read_text().splitlines()) == 4
    assert "4 entries written" in result.stderr
    table = run_cli("audit", env=env)
    assert table.stdout.splitlines()[0].split()[:4] == ["AT", "OBJECT", "DIRECTION", "ACTION"]
    assert "no match on linkedphone" in table.stdout


def test_audit_cli_empty_and_bad_since(tmp_path):
    """An empty trail says so; a --since that is not ISO 8601 is a usage error (exit 2)."""
    env = {"CONNECTOR_HOME": str(tmp_path)}
    assert run_cli("audit", env=env).stdout == "no audit entries\n"
    bad = run_cli("audit", "--since", "yesterday", env=env)
    assert bad.status == 2
    assert "'yesterday' is not an ISO 8601 time" in bad.stderr
