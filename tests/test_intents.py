"""Calls that are not safe to repeat: an interrupted one is looked for (verify), never blindly
repeated; without a way to look, the step fails with "outcome unknown"."""

from __future__ import annotations

from typing import Any

from connector.catalog import build_catalog
from connector.recipes.engine import Engine
from connector.recipes.ledger import WHOLE, Ledger, repeat_safe
from connector.recipes.recipe import parse_recipe
from connector.sandbox.server import SandboxServer
from connector.store import Store

TASKS = "POST /contacts/{contactId}/tasks"
NOTES = "POST /contacts/{contactId}/notes"
CAMPAIGNS = "POST /contacts/{contactId}/campaigns/{campaignId}"

TASK_RECIPE = """\
name: follow-up
trigger: {use: ghl.contacts.created}
steps:
  - id: task
    use: ghl.tasks.create
    with: {contactId: "{{ trigger.id }}", title: Call back, dueDate: "2030-01-01T10:00:00Z", completed: false}
    on_error: {retry: 0}
"""

NOTE_RECIPE = """\
name: note
trigger: {use: ghl.contacts.created}
steps:
  - id: note
    use: ghl.notes.create
    with: {contactId: "{{ trigger.id }}", body: "Welcome call booked"}
    on_error: {retry: 0}
"""

CAMPAIGN_RECIPE = """\
name: campaign
trigger: {use: ghl.contacts.created}
steps:
  - id: join
    use: ghl.campaigns.add
    with: {contactId: "{{ trigger.id }}", campaignId: camp1}
"""


def contact_event(ghl: SandboxServer) -> dict[str, Any]:
    contact = ghl.call(lambda: list(ghl.app.store.contacts))[0]
    return {"type": "ContactCreate", "locationId": ghl.location_id, "id": contact}


def cut_off(store: Store, run_id: str, step_id: str, action: str) -> None:
    """What a process killed between a call and its ledger row leaves behind: an intent."""
    Ledger(store).intend(run_id, step_id, WHOLE, action)


def test_intents_repeat_safety_by_method():
    """Reads, PUT, DELETE and declared retry_safe actions may repeat; a plain POST may not."""
    catalog = build_catalog()
    assert repeat_safe(catalog.action("ghl.contacts.get"))
    assert repeat_safe(catalog.action("ghl.tasks.update"))
    assert repeat_safe(catalog.action("ghl.contacts.upsert"))
    assert not repeat_safe(catalog.action("ghl.tasks.create"))
    assert not repeat_safe(catalog.action("http.request"))


def test_intents_interrupted_create_that_happened_is_found_not_repeated(ghl, catalog, store, runtime):
    """The task exists (the cut-off call went through): the resumed run finds it, sends no POST."""
    event = contact_event(ghl)
    runtime.call("ghl.tasks.create", {"contactId": event["id"], "title": "Call back",
                                      "dueDate": "2030-01-01T10:00:00Z", "completed": False})
    cut_off(store, "run-1", "task", "ghl.tasks.create")
    engine = Engine(catalog, runtime, store)
    result = engine.run(parse_recipe(TASK_RECIPE), event, run_id="run-1")
    assert result.status == "succeeded", result.error
    assert result.outputs["task"]["task"]["title"] == "Call back"
    assert ghl.writes(TASKS) == 1
    assert Ledger(store).intents("run-1") == {}


def test_intents_interrupted_create_that_did_not_happen_is_made(ghl, catalog, store, runtime):
    """No such task (the call never landed): the resumed run makes it, once."""
    cut_off(store, "run-2", "task", "ghl.tasks.create")
    result = Engine(catalog, runtime, store).run(parse_recipe(TASK_RECIPE), contact_event(ghl), run_id="run-2")
    assert result.status == "succeeded", result.error
    assert ghl.writes(TASKS) == 1


def test_intents_without_verify_fail_as_outcome_unknown(ghl, catalog, store, runtime):
    """An interrupted call with no way to look is never repeated: the step fails, clearly."""
    cut_off(store, "run-3", "join", "ghl.campaigns.add")
    result = Engine(catalog, runtime, store).run(parse_recipe(CAMPAIGN_RECIPE), contact_event(ghl), run_id="run-3")
    assert result.status in ("failed", "dead_letter")
    assert "outcome unknown" in result.error
    assert "ghl-connector replay" in result.error
    assert ghl.writes(CAMPAIGNS) == 0
    assert Ledger(store).forget_intents("run-3") == 1
    again = Engine(catalog, runtime, store).run(parse_recipe(CAMPAIGN_RECIPE), contact_event(ghl), run_id="run-3")
    assert again.status == "succeeded", again.error
    assert ghl.writes(CAMPAIGNS) == 1


def test_intents_ambiguous_write_then_resume_does_not_duplicate(ghl, catalog, store, runtime):
    """GHL applies the note but the answer fails (500): the retry of the run finds the note."""
    event = contact_event(ghl)
    ghl.set_faults({"route": NOTES, "ambiguous_rate": 1.0, "count": 1})
    first = Engine(catalog, runtime, store).run(parse_recipe(NOTE_RECIPE), event, run_id="run-4")
    assert first.status in ("failed", "dead_letter")
    assert ghl.writes(NOTES) == 1
    second = Engine(catalog, runtime, store).run(parse_recipe(NOTE_RECIPE), event, run_id="run-4")
    assert second.status == "succeeded", second.error
    assert second.outputs["note"]["note"]["body"] == "Welcome call booked"
    assert ghl.writes(NOTES) == 1


def test_intents_refused_call_leaves_no_intent(ghl, catalog, store, runtime):
    """A 4xx proves nothing changed: no intent is kept, a later run may call again."""
    event = {"type": "ContactCreate", "locationId": ghl.location_id, "id": "noSuchContact0000000"}
    result = Engine(catalog, runtime, store).run(parse_recipe(TASK_RECIPE), event, run_id="run-5")
    assert result.status in ("failed", "dead_letter")
    assert Ledger(store).intents("run-5") == {}


def test_intents_engine_retry_after_ambiguous_write_looks_first(ghl, catalog, store, runtime):
    """With on_error retries, an ambiguous failure of a create is looked for before retrying."""
    recipe = parse_recipe(NOTE_RECIPE.replace("on_error: {retry: 0}", "on_error: {retry: 2, backoff: 0.01}"))
    ghl.set_faults({"route": NOTES, "ambiguous_rate": 1.0, "count": 1})
    result = Engine(catalog, runtime, store).run(recipe, contact_event(ghl), run_id="run-6")
    assert result.status == "succeeded", result.error
    assert ghl.writes(NOTES) == 1


def test_intents_engine_does_not_retry_unverifiable_ambiguous_write(ghl, catalog, store, runtime):
    """Without a verify read, an ambiguous failure is not retried: outcome unknown, one write."""
    recipe = parse_recipe(CAMPAIGN_RECIPE + "    on_error: {retry: 3, backoff: 0.01}\n")
    ghl.set_faults({"route": CAMPAIGNS, "ambiguous_rate": 1.0, "count": 1})
    result = Engine(catalog, runtime, store).run(recipe, contact_event(ghl), run_id="run-7")
    assert result.status in ("failed", "dead_letter")
    assert "outcome unknown" in result.error
    assert ghl.writes(CAMPAIGNS) == 1
