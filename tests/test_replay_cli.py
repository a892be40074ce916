"""``ghl-connector replay``: dead letters of a running ``serve`` listed and re-queued."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from connector.sandbox.server import SandboxServer
from tests.serveproc import ROOT, wait_for
from tests.test_service import ONE_STEP, TASKS, create_contact, inbox_counts, runs, serve_for

NOTES = "POST /contacts/{contactId}/notes"
FRAGILE = ONE_STEP.replace("retry: 4, backoff: 0.2", "retry: 1, backoff: 0.05")
NOTE_STEP = """\
name: Note new contacts
trigger:
  use: ghl.contacts.created
on_error: {retry: 1, backoff: 0.05, then: dead_letter}
steps:
  - id: note
    use: ghl.notes.create
    with:
      contactId: "{{ trigger.id }}"
      body: "Welcome {{ trigger.firstName }}"
"""


def replay(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``ghl-connector replay --db DB ARGS`` as a process."""
    return subprocess.run(
        [sys.executable, "-m", "connector", "replay", "--db", str(db), *args],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(db.parent)},
    )


def statuses(db: Path) -> dict[str, str]:
    """Run status by recipe key."""
    return {r["id"].rpartition(":")[2]: r["status"] for r in runs(db)}


def listed(db: Path) -> list[dict[str, Any]]:
    """``replay --list --json``."""
    done = replay(db, "--list", "--json")
    assert done.returncode == 0, done.stderr
    found: list[dict[str, Any]] = json.loads(done.stdout)
    return found


def test_replay_recipe_requeues_only_that_recipes_dead_runs(ghl: SandboxServer,
                                                           tmp_path: Path) -> None:
    """Two recipes dead-letter on one event; replaying one re-runs it alone, once."""
    ghl.set_faults({"route": TASKS, "error_rate": 1.0}, {"route": NOTES, "error_rate": 1.0})
    with serve_for(ghl, tmp_path, call_new=FRAGILE, note_new=NOTE_STEP) as proc:
        ghl.set_webhook_urls([proc.url])
        create_contact(ghl, "Hal")
        assert wait_for(lambda: inbox_counts(proc.db) == {"dead": 1})
        letters = listed(proc.db)
        assert len(letters) == 1 and letters[0]["type"] == "ContactCreate"
        assert sorted(r["recipe"] for r in letters[0]["runs"]) == [
            "Call new contacts", "Note new contacts"]
        ghl.clear_faults()
        done = replay(proc.db, "--recipe", "call_new")
        assert done.returncode == 0, done.stderr
        assert "1 dead letter re-queued" in done.stdout
        assert wait_for(lambda: statuses(proc.db)["call_new"] == "succeeded")
        assert wait_for(lambda: inbox_counts(proc.db) == {"dead": 1})
        assert statuses(proc.db)["note_new"] == "dead_letter"
        assert ghl.writes(TASKS) == 1 and ghl.writes(NOTES) == 0
        done = replay(proc.db, "--all")
        assert done.returncode == 0, done.stderr
        assert wait_for(lambda: inbox_counts(proc.db) == {"done": 1})
        ghl.set_webhook_urls([])
    assert statuses(proc.db) == {"call_new": "succeeded", "note_new": "succeeded"}
    assert ghl.writes(TASKS) == 1 and ghl.writes(NOTES) == 1
    assert listed(proc.db) == []


def test_replay_id_requeues_one_run_by_its_id(ghl: SandboxServer, tmp_path: Path) -> None:
    """`--id RUN_ID` re-queues exactly that run; the other event stays dead."""
    ghl.set_faults({"route": TASKS, "error_rate": 1.0})
    with serve_for(ghl, tmp_path, call_new=FRAGILE) as proc:
        ghl.set_webhook_urls([proc.url])
        create_contact(ghl, "Ida")
        create_contact(ghl, "Jo")
        assert wait_for(lambda: inbox_counts(proc.db) == {"dead": 2})
        ghl.clear_faults()
        first = listed(proc.db)[0]["runs"][0]["run_id"]
        done = replay(proc.db, "--id", first)
        assert done.returncode == 0, done.stderr
        assert wait_for(lambda: inbox_counts(proc.db) == {"dead": 1, "done": 1})
        ghl.set_webhook_urls([])
    found = {r["id"]: r["status"] for r in runs(proc.db)}
    assert found[first] == "succeeded"
    assert sorted(found.values()) == ["dead_letter", "succeeded"]
    assert ghl.writes(TASKS) == 1


def test_replay_unknown_id_is_an_error(tmp_path: Path) -> None:
    """An id that names no dead letter exits 1 with a hint; --recipe matching nothing too."""
    done = replay(tmp_path / "state.db", "--id", "nope")
    assert done.returncode == 1
    assert "no dead letter 'nope'" in done.stderr and "replay --list" in done.stderr
    done = replay(tmp_path / "state.db", "--recipe", "ghost")
    assert done.returncode == 1 and "ghost" in done.stderr


def test_replay_under_serve_runs_the_recipe_as_it_is_now(ghl: SandboxServer,
                                                         tmp_path: Path) -> None:
    """Fix the recipe file while serve runs, then replay: the dead run resumes with the fixed
    recipe (serve reloads changed files); a broken edit is not loaded."""
    ghl.set_faults({"route": TASKS, "error_rate": 1.0})
    with serve_for(ghl, tmp_path, call_new=FRAGILE) as proc:
        ghl.set_webhook_urls([proc.url])
        create_contact(ghl, "Kim")
        assert wait_for(lambda: inbox_counts(proc.db) == {"dead": 1})
        ghl.clear_faults()
        recipe = next(proc.recipes.glob("*.yaml"))
        broken = recipe.read_text().replace("steps:", "stepz:")
        recipe.write_text(broken)
        assert wait_for(lambda: any("do not pass validation" in line for line in proc.logs))
        recipe.write_text(FRAGILE.replace("Call {{", "Ring {{"))
        assert wait_for(lambda: any("recipes reloaded" in line for line in proc.logs))
        (letter,) = listed(proc.db)
        done = replay(proc.db, "--id", letter["runs"][0]["run_id"])
        assert done.returncode == 0, done.stderr
        assert "replays it with the file as it is now" in done.stdout
        assert wait_for(lambda: inbox_counts(proc.db) == {"done": 1})
        ghl.set_webhook_urls([])
    titles = ghl.call(lambda: [t["title"] for ts in ghl.app.store.tasks.values()
                               for t in ts.values()])
    assert [t for t in titles if t.startswith(("Call", "Ring"))] == ["Ring Kim"]
