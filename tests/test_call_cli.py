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


def test_catalog_samples_are_accepted_by_call_and_run(tmp_path: Path) -> None:
    """`catalog show TRIGGER --sample` writes an event `run` takes, and the shipped
    new_contact_task recipe's step runs on it (not skipped); an action's sample is an input
    `call` takes."""
    from conftest import ROOT

    event = tmp_path / "event.json"
    shown = run_cli("catalog", "show", "ghl.contacts.created", "--sample")
    assert shown.status == 0, shown
    event.write_text(shown.stdout)
    ran = run_cli("run", str(ROOT / "recipes" / "new_contact_task.yaml"), "--event", str(event),
                  "--dry-run", "--json")
    assert ran.status == 0, ran
    (step,) = json.loads(ran.stdout)["steps"]
    assert step["status"] == "succeeded" and step["requests"][0]["method"] == "POST"
    given = tmp_path / "input.json"
    given.write_text(run_cli("catalog", "show", "ghl.notes.create", "--sample").stdout)
    called = run_cli("call", "ghl.notes.create", "--input", f"@{given}", "--dry-run",
                     "--location-id", "LOC1")
    assert called.status == 0, called
    assert json.loads(called.stdout)["method"] == "POST"


def test_catalog_every_sample_fits_its_schema() -> None:
    """Every trigger's sample event passes its payload check, and every action's sample input
    passes its input check (what `run` and `call` do first)."""
    from connector.catalog import build_catalog
    from connector.cli.describe import describe_action, describe_trigger
    from connector.recipes.engine import check_event
    from connector.runtime import Runtime, Settings

    catalog = build_catalog()
    for trigger in catalog.triggers.values():
        check_event(trigger, describe_trigger(trigger)[1]["example_event"])
    with Runtime(catalog, Settings(location_id="LOC1")) as runtime:
        for action in catalog.actions.values():
            runtime.prepare_input(action, describe_action(action)[1]["example_input"])


def test_call_deprecated_action_warns_and_catalog_shows_graphql_as_post() -> None:
    """A deprecated action still runs but says what to use instead; GraphQL actions are listed
    with the method they send (POST), not GET."""
    called = run_cli("call", "ghl.contacts.list", "--dry-run", "--location-id", "LOC1")
    assert called.status == 0, called
    assert called.stderr.strip() == (
        "warning: action 'ghl.contacts.list' is deprecated [use 'ghl.contacts.search' instead]"
    )
    listed = run_cli("catalog", "--app", "superphone", "--json")
    methods = {row["method"] for row in json.loads(listed.stdout) if row["kind"] == "action"}
    assert methods == {"POST"}


def test_catalog_doc_counts_what_the_manifest_holds() -> None:
    """docs/catalog.md states the number of GHL actions and triggers the manifest has, and its
    trigger table names every GHL trigger."""
    import re

    from conftest import ROOT

    from connector.catalog import build_catalog

    catalog = build_catalog()
    text = (ROOT / "docs" / "catalog.md").read_text()
    found = re.search(r"its (\d+) actions and (\d+) triggers", text)
    assert found, "docs/catalog.md no longer states the counts"
    ghl_actions = [a for a in catalog.actions.values() if a.app == "ghl"]
    ghl_triggers = [t for t in catalog.triggers.values() if t.app == "ghl"]
    assert (int(found.group(1)), int(found.group(2))) == (len(ghl_actions), len(ghl_triggers))
    table = text.split("## Triggers", 1)[1].split("\n\n", 2)[1]
    for trigger in ghl_triggers:
        group, _, verb = trigger.id.rpartition(".")
        assert f"`{trigger.id}`" in table or re.search(rf"`{group}\.\w+`.*`{verb}`", table), trigger.id


def test_call_fills_every_kind_of_location_input(ghl: SandboxServer, tmp_path: Path) -> None:
    """The connection's location fills the location input whatever its name: `location_id`
    (opportunities search) and GHL's `altId` with `altType: location` (invoices); an `altType`
    the caller gives (`company`) leaves the pair alone. The sandbox answers 422 to a search or
    a list without them, so the real calls' success is the proof they were sent."""
    env = stored_connection(ghl, tmp_path / "home")
    loc = ghl.location_id
    dry = run_cli("call", "ghl.opportunities.search", "--input", "{}", "--dry-run", env=env)
    assert dry.status == 0, dry
    assert json.loads(dry.stdout)["url"] == f"{ghl.base_url}/opportunities/search?location_id={loc}"
    real = run_cli("call", "ghl.opportunities.search", "--input", "{}", env=env)
    assert real.status == 0, real
    assert "opportunities" in json.loads(real.stdout)

    page = '{"limit": "10", "offset": "0"}'
    dry = run_cli("call", "ghl.invoices.list", "--input", page, "--dry-run", env=env)
    assert dry.status == 0, dry
    assert json.loads(dry.stdout)["url"].endswith(f"&altId={loc}&altType=location")
    real = run_cli("call", "ghl.invoices.list", "--input", page, env=env)
    assert real.status == 0, real

    company = '{"altId": "COMPANY1", "altType": "company"}'
    dry = run_cli("call", "ghl.transactions.list", "--input", company, "--dry-run", env=env)
    assert dry.status == 0, dry
    url = json.loads(dry.stdout)["url"]
    assert "altId=COMPANY1&altType=company" in url and f"altId={loc}" not in url


def test_call_dry_run_without_a_connection_marks_the_alt_id_it_invents(tmp_path: Path) -> None:
    """No connection: `altId` is a placeholder listed under `placeholders`; `altType` is
    `location`, not invented (it is what the location fill always sends)."""
    env = {"CONNECTOR_HOME": str(tmp_path / "empty")}
    dry = run_cli("call", "ghl.invoices.list", "--input", '{"limit": "10", "offset": "0"}',
                  "--dry-run", env=env)
    assert dry.status == 0, dry
    preview = json.loads(dry.stdout)
    assert preview["url"].endswith("&altId=%3CaltId%3E&altType=location")
    assert list(preview["placeholders"]) == ["altId"]
    searched = run_cli("call", "ghl.opportunities.search", "--dry-run", "--input", "{}",
                       "--location-id", "LOC1", env=env)
    assert searched.status == 0, searched
    assert json.loads(searched.stdout)["url"].endswith("/opportunities/search?location_id=LOC1")
