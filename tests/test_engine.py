"""The recipe engine against the GHL sandbox: steps, if, for_each, retries, dry runs, the
ledger, the run history, and secrets kept out of the state file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fixtures_store import stored_values

from connector.auth.bearer import StaticBearer
from connector.catalog import Catalog
from connector.client.retry import RetryPolicy
from connector.client.urlguard import allowing
from connector.errors import DocumentError, RecipeError
from connector.recipes.engine import Engine, check_event
from connector.recipes.history import History
from connector.recipes.recipe import Recipe, parse_recipe
from connector.runtime import Runtime, Settings
from connector.sandbox.server import SandboxServer
from connector.store import Store

TASKS = "POST /contacts/{contactId}/tasks"
TAGS = "POST /contacts/{contactId}/tags"
NOTES = "POST /contacts/{contactId}/notes"


@pytest.fixture
def engine(runtime: Runtime, catalog: Catalog, store: Store, ghl: SandboxServer) -> Engine:
    """The engine on the shared GHL runtime (no HTTP retries: the engine's own are tested)."""
    return Engine(catalog, runtime, store, environ={"RECIPE_SANDBOX_TOKEN": ghl.private_token})


def contact_ids(ghl: SandboxServer) -> list[str]:
    return ghl.call(lambda: list(ghl.app.store.contacts))


def event(ghl: SandboxServer, **fields: Any) -> dict[str, Any]:
    contact = contact_ids(ghl)[0]
    return {"type": "ContactCreate", "locationId": ghl.location_id, "id": contact, **fields}


def recipe(steps: str, *, on_error: str = "{retry: 2, backoff: 0}", head: str = "") -> Recipe:
    text = (
        f"name: test recipe\ntrigger:\n  use: ghl.contacts.created\n{head}"
        f"on_error: {on_error}\nsteps:\n{steps}"
    )
    return parse_recipe(text, file="test.yaml")


GET_CONTACT = """\
  - id: contact
    use: ghl.contacts.get
    with: {contactId: "{{ trigger.id }}"}
"""

ADD_TAG = """\
  - id: tag
    use: ghl.tags.add
    with: {contactId: "{{ trigger.id }}", tags: [engine-test]}
"""


def task_step(extra: str = "", title: str = "Call {{ steps.contact.contact.firstName }}") -> str:
    return f"""\
  - id: task
    use: ghl.tasks.create
{extra}    with:
      contactId: "{{{{ trigger.id }}}}"
      title: "{title}"
      dueDate: "2026-12-01T10:00:00Z"
      completed: false
"""


def sandbox_tasks(ghl: SandboxServer, contact_id: str) -> list[dict[str, Any]]:
    return ghl.call(lambda: list(ghl.app.store.tasks.get(contact_id, {}).values()))


def test_engine_runs_steps_in_order_passing_outputs(engine: Engine, ghl: SandboxServer) -> None:
    """A later step reads an earlier step's output; the records exist in the sandbox."""
    ev = event(ghl)
    result = engine.run(recipe(GET_CONTACT + task_step()), ev)
    assert result.status == "succeeded", result.error
    first = result.outputs["contact"]["contact"]["firstName"]
    titles = [t["title"] for t in sandbox_tasks(ghl, ev["id"])]
    assert titles == [f"Call {first}"]
    assert [s.step_id for s in result.steps] == ["contact", "task"]


def test_engine_if_false_skips_and_records_skip(
    engine: Engine, ghl: SandboxServer, store: Store
) -> None:
    """A step whose `if` is false sends nothing, outputs null and is recorded as skipped."""
    steps = GET_CONTACT + task_step('    if: "{{ trigger.vip }}"\n')
    result = engine.run(recipe(steps), event(ghl, vip=False))
    assert result.status == "succeeded"
    assert result.steps[1].status == "skipped"
    assert result.outputs["task"] is None
    assert ghl.writes(TASKS) == 0
    rows = History(store).get(result.run_id).steps
    assert [(r.step_id, r.status) for r in rows] == [("contact", "succeeded"), ("task", "skipped")]


def test_engine_for_each_repeats_step_per_item(engine: Engine, ghl: SandboxServer) -> None:
    """for_each runs once per item; `if` is per item; the output is the per-item list."""
    extra = "    for_each: \"{{ ['a', 'skip', 'b'] }}\"\n    if: \"{{ item != 'skip' }}\"\n"
    steps = GET_CONTACT + task_step(extra, title="Task {{ item }}")
    ev = event(ghl)
    result = engine.run(recipe(steps), ev)
    assert result.status == "succeeded", result.error
    output = result.outputs["task"]
    assert isinstance(output, list) and len(output) == 3
    assert output[1] is None
    assert [item["task"]["title"] for item in (output[0], output[2])] == ["Task a", "Task b"]
    assert sorted(t["title"] for t in sandbox_tasks(ghl, ev["id"])) == ["Task a", "Task b"]
    assert ghl.writes(TASKS) == 2


def test_engine_retries_server_errors_per_on_error(engine: Engine, ghl: SandboxServer) -> None:
    """Two 500s then success: with retry 2 the step succeeds on its third attempt."""
    ghl.set_faults({"route": TAGS, "error_rate": 1.0, "error_status": 503, "count": 2})
    result = engine.run(recipe(ADD_TAG), event(ghl))
    assert result.status == "succeeded", result.error
    assert result.steps[0].attempts == 3
    assert ghl.writes(TAGS) == 1


def test_engine_retries_rate_limits(engine: Engine, ghl: SandboxServer) -> None:
    """A 429 is retried like a 5xx: the step succeeds on its second attempt."""
    ghl.set_faults({"route": TAGS, "burst_429": 1})
    result = engine.run(recipe(ADD_TAG), event(ghl))
    assert result.status == "succeeded", result.error
    assert result.steps[0].attempts == 2
    assert ghl.writes(TAGS) == 1


def test_engine_retries_timeouts(ghl: SandboxServer, catalog: Catalog, store: Store) -> None:
    """A request that times out is retried; the next attempt succeeds."""
    bearer = StaticBearer(ghl.private_token)
    settings = Settings(
        base_urls={"ghl": ghl.base_url}, location_id=ghl.location_id, timeout=0.3,
        retry=RetryPolicy(attempts=1),
    )  # fmt: skip
    ghl.set_faults({"route": "GET /contacts/{contactId}", "hang_seconds": 1.0, "count": 1})
    with Runtime(catalog, settings, auth=lambda app, action: bearer) as runtime:
        result = Engine(catalog, runtime, store).run(recipe(GET_CONTACT), event(ghl))
    assert result.status == "succeeded", result.error
    assert result.steps[0].attempts == 2


def test_engine_step_dead_letter_overrides_recipe_stop(engine: Engine, ghl: SandboxServer) -> None:
    """A step's then: dead_letter dead-letters the run even when the recipe says stop."""
    ghl.set_faults({"route": TAGS, "error_rate": 1.0, "count": 10})
    steps = ADD_TAG + "    on_error: {retry: 0, then: dead_letter}\n"
    result = engine.run(recipe(steps, on_error="{retry: 0, then: stop}"), event(ghl))
    assert result.status == "dead_letter"


def test_engine_gives_up_after_retries_and_dead_letters(
    engine: Engine, ghl: SandboxServer, store: Store
) -> None:
    """Failures past the retries dead-letter the run (the recipe default) and are recorded."""
    ghl.set_faults({"route": TAGS, "error_rate": 1.0, "count": 10})
    result = engine.run(recipe(ADD_TAG, on_error="{retry: 1, backoff: 0}"), event(ghl))
    assert result.status == "dead_letter"
    assert result.steps[0].attempts == 2
    assert "500" in (result.error or "") and "'tag'" in (result.error or "")
    record = History(store).get(result.run_id)
    assert record.status == "dead_letter"
    assert record.steps[0].status == "failed" and record.steps[0].attempts == 2


def test_engine_recipe_stop_marks_run_failed(engine: Engine, ghl: SandboxServer) -> None:
    """With the recipe's on_error then: stop, a failed step fails the run (no dead letter)."""
    ghl.set_faults({"route": TAGS, "error_rate": 1.0, "count": 10})
    result = engine.run(recipe(ADD_TAG, on_error="{retry: 0, then: stop}"), event(ghl))
    assert result.status == "failed"


def test_engine_does_not_retry_input_errors(engine: Engine, ghl: SandboxServer) -> None:
    """A rendered input that fails the action's schema is not retried and sends nothing."""
    steps = """\
  - id: tag
    use: ghl.tags.add
    with: {contactId: "{{ trigger.id }}", tags: "{{ trigger.id }}"}
"""
    result = engine.run(recipe(steps, on_error="{retry: 3, backoff: 0}"), event(ghl))
    assert result.status == "dead_letter"
    step = result.step("tag")
    assert step is not None and step.attempts == 1
    assert "invalid input for ghl.tags.add" in (step.error or "")
    assert ghl.location_stats()["requests"] == 0


def test_engine_then_continue_goes_on(engine: Engine, ghl: SandboxServer) -> None:
    """A step with then: continue fails alone; the next step runs and the run succeeds."""
    ghl.set_faults({"route": TAGS, "error_rate": 1.0, "count": 10})
    failing = ADD_TAG + "    on_error: {retry: 0, then: continue}\n"
    result = engine.run(recipe(failing + GET_CONTACT), event(ghl))
    assert result.status == "succeeded"
    assert [s.status for s in result.steps] == ["failed", "succeeded"]
    assert result.outputs["tag"] is None


def test_engine_dry_run_sends_and_records_nothing(
    engine: Engine, ghl: SandboxServer, store: Store
) -> None:
    """A dry run returns each request (token masked), samples outputs, sends nothing."""
    result = engine.run(recipe(GET_CONTACT + task_step() + ADD_TAG), event(ghl), dry_run=True)
    assert result.status == "succeeded", result.error
    requests = result.requests
    assert [(r["method"], r["url"].rsplit("/", 1)[-1]) for r in requests] == [
        ("GET", event(ghl)["id"]),
        ("POST", "tasks"),
        ("POST", "tags"),
    ]
    assert all(r["headers"]["Authorization"] == "Bearer ****" for r in requests)
    sample_name = result.outputs["contact"]["contact"]["firstName"]
    assert requests[1]["json"]["title"] == f"Call {sample_name}"
    assert ghl.location_stats()["requests"] == 0
    assert History(store).recent() == []


def test_engine_rerun_same_run_id_skips_completed_steps(
    engine: Engine, ghl: SandboxServer, store: Store
) -> None:
    """Re-running a failed run id replays done steps from the ledger: each effect once."""
    ghl.set_faults({"route": TAGS, "error_rate": 1.0, "count": 10})
    steps = GET_CONTACT + task_step() + ADD_TAG
    ev = event(ghl)
    first = engine.run(recipe(steps, on_error="{retry: 0}"), ev)
    assert first.status == "dead_letter"
    assert ghl.writes(TASKS) == 1
    ghl.clear_faults()
    again = engine.run(recipe(steps, on_error="{retry: 0}"), ev, run_id=first.run_id)
    assert again.status == "succeeded", again.error
    assert [s.replayed for s in again.steps] == [True, True, False]
    assert again.outputs["task"] == first.outputs["task"]
    assert ghl.writes(TASKS) == 1 and ghl.writes(TAGS) == 1
    record = History(store).get(first.run_id)
    assert record.status == "succeeded" and record.executions == 2


def test_engine_rerun_for_each_resumes_at_failed_item(engine: Engine, ghl: SandboxServer) -> None:
    """A for_each step that failed half-way redoes only the items that were not done."""
    steps = task_step('    for_each: "{{ trigger.titles }}"\n', title="{{ item }}")
    first = engine.run(recipe(steps, on_error="{retry: 0}"), event(ghl, titles=["a", 5, "c"]))
    assert first.status == "dead_letter"
    assert "item 1" in (first.error or "")
    assert ghl.writes(TASKS) == 1
    again = engine.run(
        recipe(steps, on_error="{retry: 0}"),
        event(ghl, titles=["a", "b", "c"]),
        run_id=first.run_id,
    )
    assert again.status == "succeeded", again.error
    assert [i.replayed for i in again.steps[0].items] == [True, False, False]
    assert ghl.writes(TASKS) == 3
    titles = sorted(t["title"] for t in sandbox_tasks(ghl, event(ghl)["id"]))
    assert titles == ["a", "b", "c"]


def test_engine_history_records_inputs_outputs_and_timing(
    engine: Engine, ghl: SandboxServer, store: Store
) -> None:
    """The history holds the run (recipe, trigger, event) and each step's input and output."""
    ev = event(ghl)
    result = engine.run(recipe(GET_CONTACT + ADD_TAG), ev)
    record = History(store).get(result.run_id)
    assert (record.recipe, record.recipe_file, record.trigger) == (
        "test recipe",
        "test.yaml",
        "ghl.contacts.created",
    )
    assert json.loads(record.event)["id"] == ev["id"]
    assert record.finished_at is not None and record.status == "succeeded"
    contact, tag = record.steps
    assert json.loads(contact.input or "null") == {"contactId": ev["id"]}
    assert json.loads(contact.output or "null")["contact"]["id"] == ev["id"]
    assert json.loads(tag.output or "null")["tags"]
    assert contact.attempts == 1 and contact.duration_ms > 0
    assert [r.id for r in History(store).recent(status="succeeded")] == [result.run_id]
    assert History(store).recent(recipe="another") == []


def test_engine_keeps_secrets_out_of_the_state_file(
    engine: Engine, ghl: SandboxServer, store: Store, tmp_path: Path
) -> None:
    """The token sent in a step's headers and echoed in the event is never stored."""
    steps = """\
  - id: fetch
    use: http.request
    with:
      url: "{{ env.RECIPE_BASE }}/contacts/{{ trigger.id }}"
      headers: {Authorization: "Bearer {{ env.RECIPE_SANDBOX_TOKEN }}", Version: "2021-07-28"}
"""
    token = ghl.private_token
    environ = {"RECIPE_SANDBOX_TOKEN": token, "RECIPE_BASE": ghl.base_url}
    engine = Engine(engine.catalog, engine.runtime, store, environ=environ)
    ev = event(ghl, note=f"Authorization: Bearer {token}", other=token)
    with allowing("127.0.0.1"):
        result = engine.run(recipe(steps, head="env: [RECIPE_SANDBOX_TOKEN, RECIPE_BASE]\n"), ev)
    assert result.status == "succeeded", result.error
    assert result.outputs["fetch"]["status"] == 200
    if store.dialect == "postgresql":
        raw = stored_values(store)
    store.close()
    if store.dialect == "sqlite":
        raw = b"".join(p.read_bytes() for p in tmp_path.glob("state.db*"))
    assert b"/contacts/" in raw  # the run was recorded...
    assert token.encode() not in raw  # ...without the token
    assert token not in json.dumps(result.as_dict())
    assert b"Bearer ***" in raw


def test_engine_trigger_options_skip_other_locations(engine: Engine, ghl: SandboxServer) -> None:
    """A trigger's locationId option skips events of other locations (recorded as skipped)."""
    text = (
        "name: only one location\ntrigger:\n  use: ghl.contacts.created\n"
        "  with: {locationId: someOtherLocation}\nsteps:\n" + ADD_TAG
    )
    result = engine.run(parse_recipe(text), event(ghl))
    assert result.status == "skipped" and result.steps == ()
    assert "locationId" in (result.error or "")
    assert ghl.location_stats()["requests"] == 0


def test_engine_trigger_list_option_matches_any_value(engine: Engine, ghl: SandboxServer) -> None:
    """A list option passes events whose field holds one of its values, and only those."""
    text = (
        "name: vip tags\ntrigger:\n  use: ghl.contacts.tag_updated\n"
        "  with: {tags: [vip, gold]}\nsteps:\n" + ADD_TAG
    )
    tagged = {**event(ghl), "type": "ContactTagUpdate"}
    assert engine.run(parse_recipe(text), {**tagged, "tags": ["x", "gold"]}).status == "succeeded"
    other = engine.run(parse_recipe(text), {**tagged, "tags": ["x"]})
    assert other.status == "skipped" and "tags" in (other.error or "")
    assert ghl.writes(TAGS) == 1


def test_engine_bad_event_names_file_and_field(
    engine: Engine, ghl: SandboxServer, tmp_path: Path
) -> None:
    """An event that fails the payload schema is a DocumentError at file:line and field."""
    from connector.documents.document import load_yaml_file

    path = tmp_path / "event.json"
    path.write_text('{\n  "type": "ContactCreate",\n  "locationId": 5\n}\n')
    with pytest.raises(DocumentError, match=r"event\.json:3:.*locationId.*not of type 'string'"):
        engine.run(recipe(ADD_TAG), load_yaml_file(path))
    trigger = engine.catalog.trigger("ghl.contacts.created")
    with pytest.raises(DocumentError, match=r"^<event>: locationId: required field is missing"):
        check_event(trigger, {"type": "ContactCreate"})
    assert ghl.location_stats()["requests"] == 0


def test_engine_unknown_action_is_recipe_error_at_its_line(
    engine: Engine, ghl: SandboxServer
) -> None:
    """A step naming an action the catalog lacks fails before anything runs, at its line."""
    steps = GET_CONTACT + "  - id: bad\n    use: ghl.contacts.fetch\n"
    with pytest.raises(RecipeError, match=r"test\.yaml:\d+.*unknown action 'ghl\.contacts\.fetch'"):
        engine.run(recipe(steps), event(ghl))
    assert ghl.location_stats()["requests"] == 0
