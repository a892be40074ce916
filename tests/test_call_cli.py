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


CREATE_RECIPE = """\
name: typo
trigger: {use: ghl.contacts.created}
steps:
  - id: make
    use: ghl.contacts.create
    with: {emial: a@example.com, firstName: 5, locationId: LOC1}
"""


def test_call_input_errors_read_as_validate_errors(tmp_path: Path) -> None:
    """The same bad input gets the same words from `call` and `validate`: a did-you-mean for a
    misspelt field, and types in the schema's words (never Python's list notation)."""
    recipe = tmp_path / "typo.yaml"
    recipe.write_text(CREATE_RECIPE)
    checked = run_cli("validate", str(recipe))
    assert checked.status == 1
    expected = [
        "unknown input 'emial' for ghl.contacts.create [did you mean 'email'?]",
        "5 is not of type 'string' or 'null'",
    ]
    assert [line.split(": ", 2)[2] for line in checked.stdout.splitlines()] == expected
    given = '{"emial": "a@example.com", "firstName": 5, "locationId": "LOC1"}'
    called = run_cli("call", "ghl.contacts.create", "--input", given, "--dry-run")
    assert called.status == 1
    assert called.stderr.strip() == (
        f"error: invalid input for ghl.contacts.create: emial: {expected[0]}; firstName: {expected[1]}"
    )
    assert "[" + "'string', 'null'" not in checked.stdout + called.stderr
