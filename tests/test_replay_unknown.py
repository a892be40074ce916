"""``replay`` of runs of ``ghl-connector run``: one dead-letter list, the recipe as it is now,
and calls whose outcome is unknown looked up before anything is made again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli

from connector.sandbox.server import SandboxServer

TASKS = "POST /contacts/{contactId}/tasks"
RECIPE = """\
name: Follow-up task
trigger: {use: ghl.contacts.created}
on_error: {retry: 0, backoff: 0, then: dead_letter}
steps:
  - id: task
    use: ghl.tasks.create
    with:
      contactId: "{{ trigger.id }}"
      title: "TITLE {{ trigger.firstName }}"
      dueDate: "2030-01-01T10:00:00Z"
      completed: false
"""


@pytest.fixture
def env(tmp_path: Path, ghl: SandboxServer) -> dict[str, str]:
    return {"CONNECTOR_HOME": str(tmp_path / "home"), "CONNECTOR_TOKEN": ghl.private_token,
            "CONNECTOR_LOCATION_ID": ghl.location_id}


def contact_event(ghl: SandboxServer, tmp_path: Path, index: int, name: str) -> Path:
    contact = ghl.call(lambda: list(ghl.app.store.contacts))[index]
    path = tmp_path / f"event-{name}.json"
    path.write_text(json.dumps({"type": "ContactCreate", "locationId": ghl.location_id,
                                "id": contact, "firstName": name}))
    return path


def tasks(ghl: SandboxServer) -> list[str]:
    """Every task title in the sandbox."""
    return sorted(t["title"] for per in ghl.call(lambda: list(ghl.app.store.tasks.values()))
                  for t in per.values())


def dead(env: dict[str, str]) -> list[dict[str, Any]]:
    listed = run_cli("replay", "--list", "--json", env=env)
    assert listed.status == 0, listed
    found: list[dict[str, Any]] = json.loads(listed.stdout)
    return found


def test_replay_lists_and_resumes_runs_of_the_run_command_with_the_recipe_as_it_is_now(
    ghl: SandboxServer, tmp_path: Path, env: dict[str, str]
) -> None:
    """A run of `ghl-connector run` that dead-lettered is on `replay --list`; `replay --id`
    resumes it here with the recipe file as fixed since, and it leaves the list."""
    recipe = tmp_path / "follow_up.yaml"
    recipe.write_text(RECIPE)
    event = contact_event(ghl, tmp_path, 0, "Ann")
    ghl.set_faults({"route": TASKS, "error_rate": 1.0, "error_status": 503})
    failed = run_cli("run", str(recipe), "--event", str(event), "--base-url", ghl.base_url,
                     "--run-id", "cli-1", env=env)
    assert failed.status == 1, failed
    ghl.clear_faults()
    (letter,) = dead(env)
    assert (letter["source"], letter["runs"]) == (
        "run", [{"run_id": "cli-1", "recipe": "Follow-up task"}])
    recipe.write_text(RECIPE.replace("TITLE", "Call"))
    done = run_cli("replay", "--id", "cli-1", "--base-url", ghl.base_url, env=env)
    assert done.status == 0, done
    assert "run cli-1: succeeded" in done.stdout
    assert tasks(ghl) == ["Call Ann"]
    assert dead(env) == []


def test_replay_looks_up_unknown_outcomes_and_repeats_only_what_did_not_happen(
    ghl: SandboxServer, tmp_path: Path, env: dict[str, str]
) -> None:
    """Two runs cut off mid-create: GHL applied one (its answer was lost) and not the other.
    `replay --all` finds the first (not made again) and makes the second, saying which."""
    recipe = tmp_path / "follow_up.yaml"
    recipe.write_text(RECIPE)
    ghl.set_faults({"route": TASKS, "ambiguous_rate": 1.0, "count": 1})
    applied = run_cli("run", str(recipe), "--event", str(contact_event(ghl, tmp_path, 0, "Bo")),
                      "--base-url", ghl.base_url, "--run-id", "applied", env=env)
    assert applied.status == 1, applied
    ghl.set_faults({"route": TASKS, "error_rate": 1.0, "count": 1})
    lost = run_cli("run", str(recipe), "--event", str(contact_event(ghl, tmp_path, 1, "Cy")),
                   "--base-url", ghl.base_url, "--run-id", "lost", env=env)
    assert lost.status == 1, lost
    ghl.clear_faults()
    assert tasks(ghl) == ["TITLE Bo"]
    assert {r["runs"][0]["run_id"] for r in dead(env)} == {"applied", "lost"}
    done = run_cli("replay", "--all", "--base-url", ghl.base_url, env=env)
    assert done.status == 0, done
    lines = done.stdout.splitlines()
    assert ("run applied step task (ghl.tasks.create): outcome unknown; took effect (found by"
            " ghl.tasks.list): not made again") in lines
    assert ("run lost step task (ghl.tasks.create): outcome unknown; did not happen (no match"
            " from ghl.tasks.list): it is made again") in lines
    assert tasks(ghl) == ["TITLE Bo", "TITLE Cy"]
    assert ghl.writes(TASKS) == 2
    shown = json.loads(run_cli("runs", "show", "applied", "--json", env=env).stdout)
    assert shown["status"] == "succeeded"


CAMPAIGN = """\
name: Join campaign
trigger: {use: ghl.contacts.created}
on_error: {retry: 0, backoff: 0, then: dead_letter}
steps:
  - id: join
    use: ghl.campaigns.add
    with: {contactId: "{{ trigger.id }}", campaignId: camp1}
"""


def test_replay_all_leaves_a_call_that_cannot_be_looked_up_dead_until_named(
    ghl: SandboxServer, tmp_path: Path, env: dict[str, str]
) -> None:
    """An unknown outcome with no verify read is not repeated by `--all` (the run stays dead,
    saying why); `--id RUN` is the person's word and makes it again."""
    route = "POST /contacts/{contactId}/campaigns/{campaignId}"
    recipe = tmp_path / "join.yaml"
    recipe.write_text(CAMPAIGN)
    ghl.set_faults({"route": route, "ambiguous_rate": 1.0, "count": 1})
    cut = run_cli("run", str(recipe), "--event", str(contact_event(ghl, tmp_path, 2, "Di")),
                  "--base-url", ghl.base_url, "--run-id", "join-1", env=env)
    assert cut.status == 1, cut
    ghl.clear_faults()
    everything = run_cli("replay", "--all", "--base-url", ghl.base_url, env=env)
    assert everything.status == 0, everything
    assert ("run join-1 step join (ghl.campaigns.add): outcome unknown; no way to look it up (no"
            " verify read): left dead [check the record, then `ghl-connector replay --id"
            " join-1`]") in everything.stdout.splitlines()
    assert "0 dead letters re-queued" in everything.stdout
    assert [r["runs"][0]["run_id"] for r in dead(env)] == ["join-1"]
    assert ghl.writes(route) == 1
    named = run_cli("replay", "--id", "join-1", "--base-url", ghl.base_url, env=env)
    assert named.status == 0, named
    assert "run join-1: succeeded" in named.stdout
    assert dead(env) == []
