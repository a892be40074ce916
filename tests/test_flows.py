"""`validate` warns, before anything runs, when the files checked together copy the same objects
both ways, or a recipe writes what triggers it (``serve`` prints the same at start, see
tests/test_shipped_folder.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import ROOT, run_cli

RECIPES = ROOT / "recipes"
PARTNER_RECIPES = RECIPES / "partner-recipes"


def test_validate_warns_about_recipes_and_a_sync_copying_both_ways(tmp_path):
    for name in ("partner-recipes/superphone_task_from_ghl.yaml", "sync_superphone.yaml",
                 "new_contact_task.yaml"):
        shutil.copy(RECIPES / name, tmp_path / Path(name).name)
    checked = run_cli("validate", str(tmp_path))
    assert checked.status == 0, checked
    warnings = [line for line in checked.stdout.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: ghl tasks and superphone tasks are copied both ways by different files: ghl"
        " tasks -> superphone by superphone_task_from_ghl.yaml, sync_superphone.yaml;"
        " superphone tasks -> ghl by sync_superphone.yaml [the pack skips its own echoes and"
        " stops loops, but a change may be copied twice: to copy each change once, keep one"
        " file per direction]"
    ]


def test_validate_warns_about_a_recipe_that_writes_what_triggers_it():
    checked = run_cli("validate", "--json", str(RECIPES / "task_follow_up.yaml"))
    assert checked.status == 0, checked
    assert json.loads(checked.stdout)["crossings"] == [
        "task_follow_up.yaml writes ghl tasks, which is what triggers it [the pack skips its own"
        " echoes; make sure its conditions leave alone what it wrote]"
    ]


def test_one_way_files_and_a_lone_two_way_sync_are_quiet(tmp_path):
    for name in ("superphone_task_from_ghl.yaml", "superphone_note_from_ghl.yaml"):
        shutil.copy(PARTNER_RECIPES / name, tmp_path / name)
    checked = run_cli("validate", str(tmp_path), str(RECIPES / "sync_linkedphone.yaml"))
    assert checked.status == 0, checked
    assert "warning:" not in checked.stdout


def test_two_kinds_that_write_each_other_are_not_a_both_ways_copy(tmp_path):
    """An inbound message opens an opportunity and a won opportunity sends a message: two kinds
    of record, not one copied both ways, so no "copied both ways" warning (it read "ghl messages
    -> ghl by ..." for the shipped folder)."""
    for name in ("inbound_message_opportunity.yaml", "opportunity_won_thanks.yaml"):
        shutil.copy(RECIPES / name, tmp_path / name)
    checked = run_cli("validate", str(tmp_path))
    assert checked.status == 0, checked
    assert "copied both ways" not in checked.stdout
