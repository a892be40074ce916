"""`ghl-connector run` and `ghl-connector runs` as real processes against the GHL sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

from connector.sandbox.server import SandboxServer

RECIPE = """\
name: CLI follow-up
trigger:
  use: ghl.contacts.created
on_error: {retry: 0, backoff: 0}
steps:
  - id: task
    use: ghl.tasks.create
    with:
      contactId: "{{ trigger.id }}"
      title: "Call {{ trigger.firstName }}"
      dueDate: "2026-12-01T10:00:00Z"
      completed: false
  - id: tag
    use: ghl.tags.add
    with: {contactId: "{{ trigger.id }}", tags: [cli-test]}
"""
TASKS = "POST /contacts/{contactId}/tasks"
TAGS = "POST /contacts/{contactId}/tags"


@pytest.fixture
def files(tmp_path: Path, ghl: SandboxServer) -> tuple[Path, Path]:
    contact = ghl.call(lambda: list(ghl.app.store.contacts))[0]
    recipe = tmp_path / "follow_up.yaml"
    recipe.write_text(RECIPE)
    event = tmp_path / "event.json"
    payload = {
        "type": "ContactCreate",
        "locationId": ghl.location_id,
        "id": contact,
        "firstName": "Ada",
    }
    event.write_text(json.dumps(payload, indent=2))
    return recipe, event


@pytest.fixture
def env(tmp_path: Path, ghl: SandboxServer) -> dict[str, str]:
    """One state folder for every process of a test; the sandbox's token as $CONNECTOR_TOKEN."""
    return {
        "CONNECTOR_HOME": str(tmp_path / "home"),
        "CONNECTOR_TOKEN": ghl.private_token,
        "CONNECTOR_LOCATION_ID": ghl.location_id,
    }


def test_run_cli_runs_recipe_and_runs_lists_it(
    files: tuple[Path, Path], env: dict[str, str], ghl: SandboxServer
) -> None:
    """`run` executes the recipe against the sandbox; `runs` and `runs show` report it."""
    recipe, event = files
    done = run_cli("run", str(recipe), "--event", str(event), "--base-url", ghl.base_url, env=env)
    assert done.status == 0, done
    assert "CLI follow-up: succeeded" in done.stdout
    assert ghl.writes(TASKS) == 1 and ghl.writes(TAGS) == 1
    listed = run_cli("runs", "--json", env=env)
    assert listed.status == 0, listed
    (run,) = json.loads(listed.stdout)
    assert (run["recipe"], run["status"], run["trigger"]) == (
        "CLI follow-up",
        "succeeded",
        "ghl.contacts.created",
    )
    table = run_cli("runs", env=env)
    assert run["id"] in table.stdout and "succeeded" in table.stdout
    # --recipe takes the name, or the file's name with or without .yaml (as `replay` does).
    for name in ("CLI follow-up", recipe.name, recipe.stem):
        found = run_cli("runs", "--recipe", name, "--json", env=env)
        assert [r["id"] for r in json.loads(found.stdout)] == [run["id"]], name
    none = run_cli("runs", "--recipe", "nope", "--status", "failed", env=env)
    assert none.stdout.startswith("no runs match --recipe 'nope' and --status 'failed'")
    shown = run_cli("runs", "show", run["id"], "--json", env=env)
    detail = json.loads(shown.stdout)
    assert [s["step"] for s in detail["steps"]] == ["task", "tag"]
    assert detail["steps"][0]["input"]["title"] == "Call Ada"
    assert detail["steps"][0]["output"]["task"]["title"] == "Call Ada"
    text = run_cli("runs", "show", run["id"], env=env)
    assert "ghl.tasks.create" in text.stdout and "Call Ada" in text.stdout
    assert ghl.private_token not in listed.stdout + shown.stdout + text.stdout + done.stdout


def test_run_cli_dry_run_prints_requests_and_sends_nothing(
    files: tuple[Path, Path], env: dict[str, str], ghl: SandboxServer
) -> None:
    """--dry-run prints each request with the token masked; the sandbox sees no request."""
    recipe, event = files
    args = ("run", str(recipe), "--event", str(event), "--dry-run", "--base-url", ghl.base_url)
    done = run_cli(*args, "--json", env=env)
    assert done.status == 0, done
    requests = json.loads(done.stdout)["requests"]
    assert [r["method"] for r in requests] == ["POST", "POST"]
    assert requests[0]["url"].startswith(ghl.base_url)
    assert requests[0]["json"]["title"] == "Call Ada"
    assert requests[0]["headers"]["Authorization"] in ("***", "Bearer ****")
    assert ghl.private_token not in done.stdout
    text = run_cli(*args, env=env)
    assert "would send POST" in text.stdout and "nothing sent" in text.stdout
    assert ghl.location_stats()["requests"] == 0
    assert json.loads(run_cli("runs", "--json", env=env).stdout) == []


def test_run_cli_bad_event_names_file_and_field(
    files: tuple[Path, Path], env: dict[str, str], tmp_path: Path
) -> None:
    """An event that does not fit the trigger's schema: exit 1, the file, line and field."""
    recipe, _ = files
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "type": "ContactCreate",\n  "locationId": ["x"]\n}\n')
    done = run_cli("run", str(recipe), "--event", str(bad), "--dry-run", env=env)
    assert done.status == 1
    assert re_search(r"error: .*bad\.json:3:\d+: locationId: .*string", done.stderr), done


def test_run_cli_failed_run_exits_1_and_status_filter_finds_it(
    files: tuple[Path, Path], env: dict[str, str], ghl: SandboxServer
) -> None:
    """A run whose step keeps failing exits 1, dead-lettered; `runs --status` filters on it."""
    recipe, event = files
    ghl.set_faults({"route": TAGS, "error_rate": 1.0, "count": 10})
    done = run_cli("run", str(recipe), "--event", str(event), "--base-url", ghl.base_url, env=env)
    assert done.status == 1
    assert "dead_letter" in done.stdout and "'tag'" in done.stderr
    dead = json.loads(run_cli("runs", "--status", "dead_letter", "--json", env=env).stdout)
    assert len(dead) == 1 and "500" in dead[0]["error"]
    assert json.loads(run_cli("runs", "--status", "succeeded", "--json", env=env).stdout) == []


@pytest.mark.slow  # kill -9 of a real process: out of the quick loop
def test_run_cli_resumes_a_killed_run_without_repeating_effects(
    files: tuple[Path, Path], env: dict[str, str], ghl: SandboxServer
) -> None:
    """A run killed mid-step, resumed with --run-id, creates its task once, not twice."""
    recipe, event = files
    ghl.set_faults({"route": TAGS, "hang_seconds": 3.0, "count": 1})
    command = [sys.executable, "-m", "connector", "run", str(recipe), "--event", str(event)]
    command += ["--base-url", ghl.base_url, "--run-id", "crash-1"]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")} | env
    proc = subprocess.Popen(command, cwd=ROOT, env=full_env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while _requests(ghl, TAGS) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _requests(ghl, TAGS) == 1, "the run never reached its second step"
    finally:
        proc.kill()
        proc.wait(10)
    assert ghl.writes(TASKS) == 1
    ghl.clear_faults()
    resumed = run_cli(
        "run", str(recipe), "--event", str(event), "--base-url", ghl.base_url,
        "--run-id", "crash-1", env=env,
    )  # fmt: skip
    assert resumed.status == 0, resumed
    assert "done earlier" in resumed.stdout
    assert ghl.writes(TASKS) == 1 and ghl.writes(TAGS) == 1
    detail = json.loads(run_cli("runs", "show", "crash-1", "--json", env=env).stdout)
    assert detail["status"] == "succeeded" and detail["executions"] == 2


def test_run_cli_uses_the_recipes_stored_connection(
    files: tuple[Path, Path], tmp_path: Path, ghl: SandboxServer
) -> None:
    """A recipe naming `connection: main` runs with that stored connection's token and base
    URL; the state file holds the run but never the token in clear."""
    recipe, event = files
    recipe.write_text(RECIPE.replace("on_error:", "connection: main\non_error:"))
    home = tmp_path / "stored"
    env = {"CONNECTOR_HOME": str(home), "PIT": ghl.private_token}
    stored = run_cli(
        "auth", "set-token", "main", "--token-env", "PIT", "--location-id", ghl.location_id,
        "--base-url", ghl.base_url, env=env,
    )  # fmt: skip
    assert stored.status == 0, stored
    done = run_cli("run", str(recipe), "--event", str(event), env={"CONNECTOR_HOME": str(home)})
    assert done.status == 0, done
    assert ghl.writes(TASKS) == 1
    raw = b"".join(p.read_bytes() for p in home.glob("state.db*"))
    assert b"CLI follow-up" in raw and ghl.private_token.encode() not in raw
    other = run_cli("run", str(recipe), "--event", str(event), "--connection", "nope", env=env)
    assert other.status == 1 and "no connection named 'nope'" in other.stderr


def test_runs_cli_show_unknown_id_and_bad_limit(env: dict[str, str]) -> None:
    """`runs show` of an unknown id exits 1 with a hint; a non-positive --limit is a usage error."""
    missing = run_cli("runs", "show", "nope", env=env)
    assert missing.status == 1
    assert "no run with id 'nope'" in missing.stderr and "ghl-connector runs" in missing.stderr
    assert run_cli("runs", "--limit", "0", env=env).status == 2
    empty = run_cli("runs", env=env)
    assert empty.status == 0 and "no runs recorded" in empty.stdout


def _requests(ghl: SandboxServer, route: str) -> int:
    routes = ghl.location_stats()["routes"]
    return int(routes.get(route, {}).get("requests", 0))


def re_search(pattern: str, text: str) -> bool:
    import re

    return re.search(pattern, text) is not None


def test_run_cli_resume_with_another_event_is_refused(
    files: tuple[Path, Path], env: dict[str, str], ghl: SandboxServer, tmp_path: Path
) -> None:
    """`run --run-id ID --event OTHER` exits 1 saying why; the run keeps its first event."""
    recipe, event = files
    first = run_cli("run", str(recipe), "--event", str(event), "--base-url", ghl.base_url,
                    "--run-id", "same-1", env=env)
    assert first.status == 0, first
    other = tmp_path / "other.json"
    other.write_text(event.read_text().replace('"Ada"', '"Bea"'))
    again = run_cli("run", str(recipe), "--event", str(other), "--base-url", ghl.base_url,
                    "--run-id", "same-1", env=env)
    assert again.status == 1, again
    assert "run 'same-1' was started with another event" in again.stderr
    assert "leave out --run-id" in again.stderr and "Traceback" not in again.stderr
    detail = json.loads(run_cli("runs", "show", "same-1", "--json", env=env).stdout)
    assert detail["event"]["firstName"] == "Ada"
    assert (detail["status"], detail["executions"]) == ("succeeded", 1)
    assert ghl.writes(TASKS) == 1


def test_runs_cli_show_takes_a_unique_prefix(
    files: tuple[Path, Path], env: dict[str, str], ghl: SandboxServer
) -> None:
    """`runs show` takes a prefix only one run id has; a shared prefix is refused, listing them."""
    recipe, event = files
    for run_id in ("abc123", "abd456"):
        done = run_cli("run", str(recipe), "--event", str(event), "--base-url", ghl.base_url,
                       "--run-id", run_id, env=env)
        assert done.status == 0, done
    shown = run_cli("runs", "show", "abc", "--json", env=env)
    assert shown.status == 0, shown
    assert json.loads(shown.stdout)["id"] == "abc123"
    shared = run_cli("runs", "show", "ab", env=env)
    assert shared.status == 1
    assert "run id 'ab' is ambiguous" in shared.stderr
    assert "abc123" in shared.stderr and "abd456" in shared.stderr


def test_a_call_refused_before_sending_is_not_an_unknown_outcome(
    files: tuple[Path, Path], tmp_path: Path, ghl: SandboxServer
) -> None:
    """A stored connection for another host: the token is not sent, so the call did nothing.
    Once the connection is fixed, `replay` makes the call (it said 'outcome unknown' and
    dead-lettered again: the refusal was taken for a call that may have gone out)."""
    recipe, event = files
    env = {"CONNECTOR_HOME": str(tmp_path / "home"), "PIT": ghl.private_token}

    def store(*more: str) -> None:
        saved = run_cli("auth", "set-token", "default", "--token-env", "PIT", "--location-id",
                        ghl.location_id, *more, env=env)
        assert saved.status == 0, saved.stderr

    store()  # for GHL itself, not the sandbox
    refused = run_cli("run", str(recipe), "--event", str(event), "--base-url", ghl.base_url,
                      env=env)
    assert refused.status == 1 and "its token is not sent there" in refused.stdout
    assert ghl.writes(TASKS) == 0
    store("--base-url", ghl.base_url)
    again = run_cli("replay", "--all", "--base-url", ghl.base_url, env=env)
    assert "outcome unknown" not in again.stdout + again.stderr, again
    assert ghl.writes(TASKS) == 1


def test_run_dry_run_previews_the_host_the_real_run_would_use(
    files: tuple[Path, Path], tmp_path: Path, ghl: SandboxServer
) -> None:
    """`run --dry-run` takes the host and location from the connection the real run would use,
    as `call --dry-run` does (it showed GHL's own host while `call` showed the stored one)."""
    recipe, event = files
    env = {"CONNECTOR_HOME": str(tmp_path / "home"), "PIT": ghl.private_token}
    saved = run_cli("auth", "set-token", "default", "--token-env", "PIT", "--location-id",
                    ghl.location_id, "--base-url", ghl.base_url, env=env)
    assert saved.status == 0, saved.stderr
    done = run_cli("run", str(recipe), "--event", str(event), "--dry-run", "--json", env=env)
    assert done.status == 0, done
    requests = json.loads(done.stdout)["requests"]
    assert requests and all(r["url"].startswith(ghl.base_url) for r in requests), requests
    assert ghl.private_token not in done.stdout
