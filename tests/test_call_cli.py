"""`ghl-connector call` as a real process: dry runs fill inputs as real calls do; input errors."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_cli

from connector.sandbox.server import SandboxServer


def stored_connection(ghl: SandboxServer, home: Path) -> dict[str, str]:
    """A state folder holding the sandbox's token as connection 'default'; its environment."""
    env = {"CONNECTOR_HOME": str(home), "PIT": ghl.private_token}
    stored = run_cli("auth", "set-token", "default", "--token-env", "PIT", "--location-id",
                     ghl.location_id, "--base-url", ghl.base_url, env=env)
    assert stored.status == 0, stored
    return {"CONNECTOR_HOME": str(home)}


def test_call_dry_run_fills_the_location_from_the_connection(ghl: SandboxServer,
                                                             tmp_path: Path) -> None:
    """The dry run of a create takes locationId and the base URL from the stored connection,
    exactly as the real call (which succeeds) does; nothing is invented."""
    env = stored_connection(ghl, tmp_path / "home")
    given = '{"firstName": "Bob"}'
    dry = run_cli("call", "ghl.contacts.create", "--input", given, "--dry-run", env=env)
    assert dry.status == 0, dry
    preview = json.loads(dry.stdout)
    assert preview["json"] == {"firstName": "Bob", "locationId": ghl.location_id}
    assert preview["url"] == f"{ghl.base_url}/contacts/"
    assert "placeholders" not in preview
    assert ghl.writes("POST /contacts/") == 0
    real = run_cli("call", "ghl.contacts.create", "--input", given, env=env)
    assert real.status == 0, real
    assert ghl.writes("POST /contacts/") == 1


def test_call_dry_run_without_a_connection_marks_what_it_invents(tmp_path: Path) -> None:
    """No connection to read: the dry run still shows the request, with the location it had to
    invent marked as a placeholder."""
    env = {"CONNECTOR_HOME": str(tmp_path / "empty")}
    dry = run_cli("call", "ghl.contacts.create", "--input", '{"firstName": "Bob"}', "--dry-run",
                  env=env)
    assert dry.status == 0, dry
    preview = json.loads(dry.stdout)
    assert preview["json"]["locationId"] == "<locationId>"
    assert list(preview["placeholders"]) == ["locationId"]
    assert "--location-id" in preview["placeholders"]["locationId"]
    given = run_cli("call", "ghl.contacts.create", "--input", '{"firstName": "Bob"}',
                    "--dry-run", "--location-id", "LOC1", env=env)
    assert json.loads(given.stdout)["json"]["locationId"] == "LOC1"
    assert "placeholders" not in json.loads(given.stdout)
