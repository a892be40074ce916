"""The partner recipes shipped in recipes/ (superphone_*.yaml, linkedphone_*.yaml): each
validates, and each runs end to end against the GHL, SuperPhone and LinkedPhone sandboxes,
leaving the expected records on the target side with every write done once; a rerun or an
echo writes nothing more, a dry run sends nothing, and `ghl-connector run` reaches two apps."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, run_cli
from fixtures_linkedphone import Receiver as LpReceiver
from fixtures_superphone import Receiver as SpReceiver

from connector.auth.bearer import StaticBearer
from connector.auth.credentials import api_key_provider
from connector.catalog import Catalog
from connector.client.retry import RetryPolicy
from connector.recipes.checker import validate_file
from connector.recipes.engine import Engine, RunResult
from connector.recipes.history import History
from connector.recipes.recipe import load_recipe
from connector.runtime import Runtime, Settings
from connector.sandbox.linkedphone.server import LinkedPhoneSandboxServer
from connector.sandbox.server import SandboxServer
from connector.sandbox.superphone import SuperPhoneSandboxServer
from connector.store import Store

RECIPES = ROOT / "recipes" / "partner-recipes"
EVENTS = ROOT / "tests" / "data" / "events"
PARTNER = sorted([*RECIPES.glob("superphone_*.yaml"), *RECIPES.glob("linkedphone_*.yaml")])
GHL_TASKS = "POST /contacts/{contactId}/tasks"
GHL_NOTES = "POST /contacts/{contactId}/notes"
GHL_COMPLETE = "PUT /contacts/{contactId}/tasks/{taskId}/completed"
LP_CONTACTS = "POST /contacts"
LP_NOTES = "POST /contacts/{contact_id}/notes"
LP_TAGS = "POST /contacts/{contact_id}/tags"
LP_COMPLETE = "POST /tasks/{task_id}/complete"


@pytest.fixture
def runtime(
    ghl: SandboxServer, sp: SuperPhoneSandboxServer, lp: LinkedPhoneSandboxServer,
    catalog: Catalog,
) -> Iterator[Runtime]:
    """A strict runtime reaching all three sandboxes (GHL token, partner API keys)."""
    bearer = StaticBearer(ghl.private_token)
    settings = Settings(
        base_urls={"ghl": ghl.base_url, "superphone": sp.base_url, "linkedphone": lp.base_url},
        location_id=ghl.location_id, strict=True, retry=RetryPolicy(1),
    )
    auth = api_key_provider(
        lambda app, action: bearer, keys={"superphone": sp.api_key, "linkedphone": lp.api_key}
    )
    with Runtime(catalog, settings, auth=auth) as made:
        yield made


@pytest.fixture
def contact(ghl: SandboxServer) -> dict[str, Any]:
    """A seeded GHL contact (it has an email, an E.164 phone and a tag)."""
    contact_id = ghl.call(lambda: list(ghl.app.store.contacts))[0]
    return dict(ghl.call(lambda: ghl.app.store.contacts[contact_id]))


def run(
    name: str, event: dict[str, Any], catalog: Catalog, runtime: Runtime, store: Store
) -> RunResult:
    """Run recipes/NAME.yaml for ``event``; it must succeed and be in the run history."""
    result = Engine(catalog, runtime, store, environ={}).run(
        load_recipe(RECIPES / f"{name}.yaml"), event
    )
    assert result.status == "succeeded", result.error
    assert History(store).get(result.run_id).status == "succeeded"
    return result


def example(name: str, **fields: Any) -> dict[str, Any]:
    """tests/data/events/NAME.json with top-level ``fields`` replaced."""
    data: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    data.update(fields)
    return data


def partner_event(name: str, record: dict[str, Any]) -> dict[str, Any]:
    """A partner webhook example (tests/data/events/NAME.json) carrying ``record`` as data."""
    return example(name, data=record)


def statuses(result: RunResult) -> dict[str, str]:
    return {step.step_id: step.status for step in result.steps}


def ghl_tasks(ghl: SandboxServer, contact_id: str) -> list[dict[str, Any]]:
    return ghl.call(lambda: [dict(t) for t in ghl.app.store.tasks.get(contact_id, {}).values()])


def ghl_notes(ghl: SandboxServer, contact_id: str) -> list[dict[str, Any]]:
    return ghl.call(lambda: [dict(n) for n in ghl.app.store.notes.get(contact_id, {}).values()])


def sp_records(sp: SuperPhoneSandboxServer, kind: str, **match: Any) -> list[dict[str, Any]]:
    """SuperPhone's stored ``kind`` (contacts, notes, tasks) whose fields equal ``match``."""
    def read() -> list[dict[str, Any]]:
        records = getattr(sp.app.records, kind).values()
        return [dict(r) for r in records if all(r.get(k) == v for k, v in match.items())]

    return sp.call(read)


def lp_records(lp: LinkedPhoneSandboxServer, kind: str, **match: Any) -> list[dict[str, Any]]:
    """LinkedPhone's stored ``kind`` (contacts, notes, tasks) whose fields equal ``match``."""
    def read() -> list[dict[str, Any]]:
        records = getattr(lp.app.store, kind).values()
        return [dict(r) for r in records if all(r.get(k) == v for k, v in match.items())]

    return lp.call(read)


def new_ghl_task(runtime: Runtime, contact_id: str, title: str, body: str = "") -> dict[str, Any]:
    data = {"contactId": contact_id, "title": title, "dueDate": "2026-12-01T10:00:00Z"}
    task: dict[str, Any] = runtime.call(
        "ghl.tasks.create", {**data, "completed": False, "body": body}
    )["task"]
    return task


def new_ghl_note(runtime: Runtime, contact_id: str, body: str) -> dict[str, Any]:
    note: dict[str, Any] = runtime.call(
        "ghl.notes.create", {"contactId": contact_id, "body": body}
    )["note"]
    return note


def linked_sp_contact(runtime: Runtime, contact: dict[str, Any]) -> dict[str, Any]:
    """A SuperPhone contact linked to the GHL ``contact`` (externalId = its id)."""
    made: dict[str, Any] = runtime.call("superphone.contacts.create", {
        "email": contact["email"], "firstName": contact["firstName"], "externalId": contact["id"],
    })
    return made


# -- every recipe --------------------------------------------------------------------------


@pytest.mark.parametrize("path", PARTNER, ids=[p.stem for p in PARTNER])
def test_recipes_partners_validate_cleanly(path: Path, catalog: Catalog) -> None:
    """Every partner recipe passes `ghl-connector validate` and starts with its comment."""
    report = validate_file(path, catalog)
    assert report.problems == () and report.warnings == ()
    assert path.read_text().startswith("# "), "each recipe starts with a header comment"


def test_recipes_partners_each_has_a_run_test() -> None:
    """Each shipped partner recipe is run end to end by a test below."""
    names = {p.stem for p in PARTNER}
    assert len(names) >= 6
    prefix = "test_recipes_partners_run_"
    tested = {name[len(prefix):] for name in globals() if name.startswith(prefix)}
    assert names <= tested, names - tested


# -- SuperPhone ----------------------------------------------------------------------------


def test_recipes_partners_run_superphone_contact_created(
    ghl: SandboxServer, sp: SuperPhoneSandboxServer, contact: dict[str, Any],
    catalog: Catalog, runtime: Runtime, store: Store,
) -> None:
    """A new GHL contact lands in SuperPhone with tags, notes and open tasks, each once."""
    note = new_ghl_note(runtime, contact["id"], "Met at the fair")
    echo = new_ghl_note(runtime, contact["id"], "From SuperPhone [superphone:nt_1]")
    task = new_ghl_task(runtime, contact["id"], "Send brochure", body="PDF")
    done = new_ghl_task(runtime, contact["id"], "Old call")
    runtime.call("ghl.tasks.complete",
                 {"contactId": contact["id"], "taskId": done["id"], "completed": True})
    event = example("contact_created", id=contact["id"], locationId=ghl.location_id)
    run("superphone_contact_created", event, catalog, runtime, store)
    (pushed,) = sp_records(sp, "contacts", externalId=contact["id"])
    assert pushed["email"] == contact["email"].lower() and pushed["phone"] == contact["phone"]
    assert pushed["tags"] == contact["tags"] and pushed["source"] == "highlevel"
    (copied,) = sp_records(sp, "notes", contactId=pushed["id"])
    assert copied["body"] == f"Met at the fair [ghl:{note['id']}]"
    assert echo["id"] not in json.dumps(sp_records(sp, "notes"))
    (open_task,) = sp_records(sp, "tasks", contactId=pushed["id"])
    assert open_task["title"] == "Send brochure"
    assert open_task["description"] == f"PDF [ghl:{task['id']}]"
    assert open_task["dueAt"] == "2026-12-01T10:00:00.000Z" and not open_task["completed"]
    assert (sp.writes("upsertContact"), sp.writes("createNote"), sp.writes("createTask")) == (
        1, 1, 1)
    run("superphone_contact_created", event, catalog, runtime, store)
    assert (sp.writes("createNote"), sp.writes("createTask")) == (1, 1)
    assert len(sp_records(sp, "contacts", externalId=contact["id"])) == 1


def test_recipes_partners_run_superphone_contact_updated(
    ghl: SandboxServer, sp: SuperPhoneSandboxServer, contact: dict[str, Any],
    catalog: Catalog, runtime: Runtime, store: Store,
) -> None:
    """An updated GHL contact updates its SuperPhone twin (tags added) and adds only new notes."""
    existing = runtime.call("superphone.contacts.create",
                            {"email": contact["email"], "tags": ["superphone-only"]})
    first = new_ghl_note(runtime, contact["id"], "First call")
    event = example("contact_updated", id=contact["id"], locationId=ghl.location_id)
    run("superphone_contact_updated", event, catalog, runtime, store)
    (updated,) = sp_records(sp, "contacts", id=existing["id"])
    assert updated["externalId"] == contact["id"] and updated["firstName"] == contact["firstName"]
    assert updated["tags"] == ["superphone-only", *contact["tags"]]
    second = new_ghl_note(runtime, contact["id"], "Second call")
    run("superphone_contact_updated", event, catalog, runtime, store)
    bodies = sorted(n["body"] for n in sp_records(sp, "notes", contactId=existing["id"]))
    assert bodies == [f"First call [ghl:{first['id']}]", f"Second call [ghl:{second['id']}]"]
    assert sp.writes("createNote") == 2 and sp.writes("createContact") == 1


def test_recipes_partners_run_superphone_task_from_ghl(
    ghl: SandboxServer, sp: SuperPhoneSandboxServer, contact: dict[str, Any],
    catalog: Catalog, runtime: Runtime, store: Store,
) -> None:
    """A new GHL task becomes a SuperPhone task once; a redelivery or an echo adds none."""
    task = new_ghl_task(runtime, contact["id"], "Send quote", body="Pricing v2")
    event = example("task_created", id=task["id"], contactId=contact["id"], title="Send quote",
                    body="Pricing v2", dueDate=task["dueDate"], locationId=ghl.location_id)
    run("superphone_task_from_ghl", event, catalog, runtime, store)
    (pushed,) = sp_records(sp, "contacts", externalId=contact["id"])
    (copied,) = sp_records(sp, "tasks", contactId=pushed["id"])
    assert (copied["title"], copied["description"]) == (
        "Send quote", f"Pricing v2 [ghl:{task['id']}]")
    assert copied["dueAt"] == "2026-12-01T10:00:00.000Z"
    again = run("superphone_task_from_ghl", event, catalog, runtime, store)
    assert statuses(again)["task"] == "skipped" and sp.writes("createTask") == 1
    traffic = sp.stats()["traffic"]
    echo = run("superphone_task_from_ghl", {**event, "body": "x [superphone:tk_1]"},
               catalog, runtime, store)
    assert set(statuses(echo).values()) == {"skipped"}
    assert sp.stats()["traffic"] == traffic


def test_recipes_partners_run_superphone_task_to_ghl(
    ghl: SandboxServer, sp: SuperPhoneSandboxServer, contact: dict[str, Any],
    catalog: Catalog, runtime: Runtime, store: Store,
) -> None:
    """A new SuperPhone task becomes a task of the linked GHL contact, once."""
    linked = linked_sp_contact(runtime, contact)
    task = runtime.call("superphone.tasks.create", {
        "contactId": linked["id"], "title": "Call back", "description": "Demo date",
        "dueAt": "2026-12-02T09:00:00Z",
    })
    run("superphone_task_to_ghl", partner_event("superphone_task_created", task),
        catalog, runtime, store)
    (copied,) = ghl_tasks(ghl, contact["id"])
    assert copied["title"] == "Call back" and not copied["completed"]
    assert copied["body"] == f"Demo date [superphone:{task['id']}]"
    assert copied["dueDate"].startswith("2026-12-02T09:00:00")
    run("superphone_task_to_ghl", partner_event("superphone_task_created", task),
        catalog, runtime, store)
    assert ghl.writes(GHL_TASKS) == 1
    stranger = runtime.call("superphone.contacts.create", {"email": "nobody@example.com"})
    lone = runtime.call("superphone.tasks.create", {"contactId": stranger["id"], "title": "x"})
    skipped = run("superphone_task_to_ghl", partner_event("superphone_task_created", lone),
                  catalog, runtime, store)
    assert statuses(skipped) == {"contact": "succeeded", "ghl_tasks": "skipped",
                                 "task": "skipped"}
    assert ghl.writes(GHL_TASKS) == 1


def test_recipes_partners_run_superphone_note_from_ghl(
    ghl: SandboxServer, sp: SuperPhoneSandboxServer, contact: dict[str, Any],
    catalog: Catalog, runtime: Runtime, store: Store,
) -> None:
    """A new GHL note becomes a note of the SuperPhone contact, once; echoes are ignored."""
    linked = linked_sp_contact(runtime, contact)
    note = new_ghl_note(runtime, contact["id"], "Wants a call")
    event = example("note_created", id=note["id"], contactId=contact["id"], body="Wants a call",
                    locationId=ghl.location_id)
    run("superphone_note_from_ghl", event, catalog, runtime, store)
    run("superphone_note_from_ghl", event, catalog, runtime, store)
    (copied,) = sp_records(sp, "notes", contactId=linked["id"])
    assert copied["body"] == f"Wants a call [ghl:{note['id']}]"
    assert sp.writes("createNote") == 1 and sp.writes("createContact") == 1
    echo = run("superphone_note_from_ghl", {**event, "body": "x [superphone:nt_1]"},
               catalog, runtime, store)
    assert set(statuses(echo).values()) == {"skipped"} and sp.writes("createNote") == 1


def test_recipes_partners_run_superphone_note_to_ghl(
    ghl: SandboxServer, sp: SuperPhoneSandboxServer, sp_receiver: SpReceiver,
    contact: dict[str, Any], catalog: Catalog, runtime: Runtime, store: Store,
) -> None:
    """The webhook SuperPhone sends for a new note makes it a note of the linked GHL contact,
    once; echoes are ignored."""
    linked = linked_sp_contact(runtime, contact)
    note = runtime.call("superphone.notes.create",
                        {"contactId": linked["id"], "body": "Called back, wants a demo."})
    sp.drain_webhooks()
    (event,) = [e for e in map(json.loads, (b for b, _ in sp_receiver.received))
                if e["type"] == "note.created"]
    assert event["data"]["id"] == note["id"]
    run("superphone_note_to_ghl", event, catalog, runtime, store)
    run("superphone_note_to_ghl", event, catalog, runtime, store)
    (copied,) = ghl_notes(ghl, contact["id"])
    assert copied["body"] == f"Called back, wants a demo. [superphone:{note['id']}]"
    assert ghl.writes(GHL_NOTES) == 1
    echo = partner_event("superphone_note_created", {**note, "body": "x [ghl:abc]"})
    assert set(statuses(run("superphone_note_to_ghl", echo, catalog, runtime, store)).values()) \
        == {"skipped"}
    assert ghl.writes(GHL_NOTES) == 1


# -- LinkedPhone ---------------------------------------------------------------------------


def linked_lp_contact(runtime: Runtime, contact: dict[str, Any]) -> dict[str, Any]:
    """A LinkedPhone contact with the GHL ``contact``'s email (how the recipes match them)."""
    made: dict[str, Any] = runtime.call("linkedphone.contacts.create", {
        "email": contact["email"], "first_name": contact["firstName"],
    })["contact"]
    return made


def new_lp_task(runtime: Runtime, contact_id: str, title: str, **fields: Any) -> dict[str, Any]:
    task: dict[str, Any] = runtime.call(
        "linkedphone.tasks.create", {"contact_id": contact_id, "title": title, **fields}
    )["task"]
    return task


def test_recipes_partners_run_linkedphone_contact_fetch(
    lp: LinkedPhoneSandboxServer, catalog: Catalog, runtime: Runtime, store: Store
) -> None:
    """An updated LinkedPhone contact is read back with its tasks and notes."""
    (seeded,) = lp_records(lp, "contacts", first_name="Ada")
    extra = new_lp_task(runtime, seeded["id"], "Send the quote")
    event = partner_event("linkedphone_contact_updated", seeded)
    out = run("linkedphone_contact_fetch", event, catalog, runtime, store).outputs
    assert out["contact"]["contact"]["email"] == seeded["email"]
    assert {t["title"] for t in out["tasks"]["tasks"]} == {"Call Ada back", extra["title"]}
    assert [n["body"] for n in out["notes"]["notes"]] == ["Seed note for Ada Lovelace."]
    assert lp.stats()["traffic"]["routes"].keys() == {
        "GET /contacts/{contact_id}", "GET /tasks", "GET /contacts/{contact_id}/notes",
        "POST /tasks"}


def test_recipes_partners_run_linkedphone_tasks_to_ghl(
    ghl: SandboxServer, lp: LinkedPhoneSandboxServer, contact: dict[str, Any],
    catalog: Catalog, runtime: Runtime, store: Store,
) -> None:
    """A GHL contact update fetches its LinkedPhone twin and copies its new open tasks once."""
    twin = linked_lp_contact(runtime, contact)
    due = new_lp_task(runtime, twin["id"], "Call back", description="Quote",
                      due_at="2026-12-03T17:00:00Z")
    closed = new_lp_task(runtime, twin["id"], "Old call")
    runtime.call("linkedphone.tasks.complete", {"task_id": closed["id"]})
    event = example("contact_updated", id=contact["id"], locationId=ghl.location_id)
    result = run("linkedphone_tasks_to_ghl", event, catalog, runtime, store)
    assert result.outputs["found"]["contact"]["id"] == twin["id"]
    (copied,) = ghl_tasks(ghl, contact["id"])
    assert (copied["title"], copied["body"]) == ("Call back", f"Quote [linkedphone:{due['id']}]")
    assert copied["dueDate"].startswith("2026-12-03T17:00:00") and not copied["completed"]
    later = new_lp_task(runtime, twin["id"], "Second call")
    run("linkedphone_tasks_to_ghl", event, catalog, runtime, store)
    titles = sorted(t["title"] for t in ghl_tasks(ghl, contact["id"]))
    assert titles == ["Call back", "Second call"] and ghl.writes(GHL_TASKS) == 2
    assert later["id"] in json.dumps(ghl_tasks(ghl, contact["id"]))


def test_recipes_partners_run_linkedphone_contact_created(
    ghl: SandboxServer, lp: LinkedPhoneSandboxServer, contact: dict[str, Any],
    catalog: Catalog, runtime: Runtime, store: Store,
) -> None:
    """A new GHL contact is created in LinkedPhone with its tags and notes, each once."""
    first = new_ghl_note(runtime, contact["id"], "Met at the fair")
    second = new_ghl_note(runtime, contact["id"], "Prefers texts")
    event = example("contact_created", id=contact["id"], locationId=ghl.location_id)
    run("linkedphone_contact_created", event, catalog, runtime, store)
    (made,) = lp_records(lp, "contacts", email=contact["email"].lower())
    assert (made["first_name"], made["phone"], made["tags"]) == (
        contact["firstName"], contact["phone"], contact["tags"])
    bodies = sorted(n["body"] for n in lp_records(lp, "notes", contact_id=made["id"]))
    assert bodies == [f"Met at the fair [ghl:{first['id']}]", f"Prefers texts [ghl:{second['id']}]"]
    assert (lp.writes(LP_CONTACTS), lp.writes(LP_NOTES)) == (1, 2)
    again = run("linkedphone_contact_created", event, catalog, runtime, store)
    assert statuses(again)["created"] == "skipped"
    assert [i.status for i in again.steps[-1].items] == ["skipped", "skipped"]
    assert (lp.writes(LP_CONTACTS), lp.writes(LP_NOTES), lp.writes(LP_TAGS)) == (1, 2, 0)


def test_recipes_partners_run_linkedphone_task_completed(
    ghl: SandboxServer, lp: LinkedPhoneSandboxServer, webhook_receiver: LpReceiver,
    contact: dict[str, Any], catalog: Catalog, runtime: Runtime, store: Store,
) -> None:
    """The signed webhook LinkedPhone sends for a completed task completes its GHL copy, only
    it, and only once."""
    twin = linked_lp_contact(runtime, contact)
    task = new_lp_task(runtime, twin["id"], "Call back")
    other = new_lp_task(runtime, twin["id"], "Send quote")
    copy = new_ghl_task(runtime, contact["id"], "Call back", body=f"[linkedphone:{task['id']}]")
    kept = new_ghl_task(runtime, contact["id"], "Send quote", body=f"[linkedphone:{other['id']}]")
    lp.set_webhook_urls([webhook_receiver.url])
    runtime.call("linkedphone.tasks.complete", {"task_id": task["id"]})
    lp.drain_webhooks()
    (event,) = [e for e in webhook_receiver.events() if e["type"] == "task.completed"]
    assert event["data"]["id"] == task["id"]
    run("linkedphone_task_completed", event, catalog, runtime, store)
    completed = {t["id"]: t["completed"] for t in ghl_tasks(ghl, contact["id"])}
    assert completed == {copy["id"]: True, kept["id"]: False}
    run("linkedphone_task_completed", event, catalog, runtime, store)
    assert ghl.writes(GHL_COMPLETE) == 1


def test_recipes_partners_run_linkedphone_task_completed_from_ghl(
    ghl: SandboxServer, lp: LinkedPhoneSandboxServer, contact: dict[str, Any],
    catalog: Catalog, runtime: Runtime, store: Store,
) -> None:
    """A GHL task copied from LinkedPhone, once completed, completes the LinkedPhone task once."""
    twin = linked_lp_contact(runtime, contact)
    task = new_lp_task(runtime, twin["id"], "Call back")
    body = f"Quote [linkedphone:{task['id']}]"
    copy = new_ghl_task(runtime, contact["id"], "Call back", body=body)
    event = example("task_completed", id=copy["id"], contactId=contact["id"], body=body,
                    title="Call back", locationId=ghl.location_id)
    run("linkedphone_task_completed_from_ghl", event, catalog, runtime, store)
    (stored,) = lp_records(lp, "tasks", id=task["id"])
    assert stored["status"] == "completed" and stored["completed_at"]
    again = run("linkedphone_task_completed_from_ghl", event, catalog, runtime, store)
    assert statuses(again) == {"task": "succeeded", "complete": "skipped"}
    plain = run("linkedphone_task_completed_from_ghl", {**event, "body": "no marker"},
                catalog, runtime, store)
    assert set(statuses(plain).values()) == {"skipped"}
    assert lp.writes(LP_COMPLETE) == 1


# -- dry run and the command line ----------------------------------------------------------


def traffic(ghl: SandboxServer, sp: SuperPhoneSandboxServer,
            lp: LinkedPhoneSandboxServer) -> tuple[int, Any, Any]:
    """What each sandbox has been sent so far."""
    return ghl.location_stats()["requests"], sp.stats()["traffic"], lp.stats()["traffic"]


@pytest.mark.parametrize("name", ["superphone_contact_created", "linkedphone_contact_created"])
def test_recipes_partners_dry_run_sends_nothing(
    name: str, ghl: SandboxServer, sp: SuperPhoneSandboxServer, lp: LinkedPhoneSandboxServer,
    contact: dict[str, Any], catalog: Catalog, runtime: Runtime,
) -> None:
    """A dry run returns the requests for GHL and the partner, masks keys, and sends nothing."""
    before = traffic(ghl, sp, lp)
    event = example("contact_created", id=contact["id"], locationId=ghl.location_id)
    result = Engine(catalog, runtime, None, environ={}).run(
        load_recipe(RECIPES / f"{name}.yaml"), event, dry_run=True
    )
    assert result.ok and result.dry_run
    partner = sp.base_url if name.startswith("superphone") else lp.base_url
    urls = [r["url"] for r in result.requests]
    assert any(u.startswith(ghl.base_url) for u in urls)
    assert any(u.startswith(partner) for u in urls)
    shown = json.dumps(result.as_dict())
    assert sp.api_key not in shown and lp.api_key not in shown
    assert ghl.private_token not in shown
    assert traffic(ghl, sp, lp) == before


@pytest.fixture
def cli_env(tmp_path: Path, ghl: SandboxServer, sp: SuperPhoneSandboxServer) -> dict[str, str]:
    """The GHL token and SuperPhone key in the environment, one state folder for the test."""
    return {
        "CONNECTOR_HOME": str(tmp_path / "home"),
        "CONNECTOR_TOKEN": ghl.private_token,
        "CONNECTOR_LOCATION_ID": ghl.location_id,
        "CONNECTOR_SUPERPHONE_API_KEY": sp.api_key,
    }


def test_recipes_partners_cli_run_reaches_two_apps(
    ghl: SandboxServer, sp: SuperPhoneSandboxServer, contact: dict[str, Any],
    runtime: Runtime, cli_env: dict[str, str], tmp_path: Path,
) -> None:
    """`run --base-url GHL --base-url superphone=URL` reads SuperPhone and writes GHL once."""
    linked = linked_sp_contact(runtime, contact)
    task = runtime.call("superphone.tasks.create", {"contactId": linked["id"], "title": "Ring"})
    event = tmp_path / "task.json"
    event.write_text(json.dumps(partner_event("superphone_task_created", task)))
    args = ("run", str(RECIPES / "superphone_task_to_ghl.yaml"), "--event", str(event),
            "--base-url", ghl.base_url, "--base-url", f"superphone={sp.base_url}")
    done = run_cli(*args, env=cli_env)
    assert done.status == 0, done
    assert "SuperPhone tasks to HighLevel: succeeded" in done.stdout
    (copied,) = ghl_tasks(ghl, contact["id"])
    assert copied["body"] == f" [superphone:{task['id']}]" and copied["title"] == "Ring"
    assert ghl.writes(GHL_TASKS) == 1 and sp.requests("contact") == 1
    assert sp.api_key not in done.stdout + done.stderr
    dry = run_cli(*args, "--dry-run", "--json", env=cli_env)
    assert dry.status == 0, dry
    urls = [r["url"] for r in json.loads(dry.stdout)["requests"]]
    assert urls[0].startswith(sp.base_url) and urls[1].startswith(ghl.base_url)
    assert ghl.writes(GHL_TASKS) == 1 and sp.requests("contact") == 1


def test_recipes_partners_cli_run_without_key_or_with_unknown_app(
    ghl: SandboxServer, sp: SuperPhoneSandboxServer, cli_env: dict[str, str], tmp_path: Path,
) -> None:
    """No SuperPhone key: the run fails naming the variable; `--base-url nope=URL` is refused."""
    event = tmp_path / "task.json"
    event.write_text((EVENTS / "superphone_task_created.json").read_text())
    recipe = str(RECIPES / "superphone_task_to_ghl.yaml")
    keyless = {k: v for k, v in cli_env.items() if k != "CONNECTOR_SUPERPHONE_API_KEY"}
    done = run_cli("run", recipe, "--event", str(event), "--base-url", ghl.base_url,
                   "--base-url", f"superphone={sp.base_url}", env=keyless)
    assert done.status == 1 and "CONNECTOR_SUPERPHONE_API_KEY" in done.stdout + done.stderr
    assert sp.requests("contact") == 0
    bad = run_cli("run", recipe, "--event", str(event), "--base-url", "superfone=http://x",
                  env=cli_env)
    assert bad.status == 1
    assert "--base-url 'superfone=http://x': unknown app 'superfone'" in bad.stderr
    assert "superphone" in bad.stderr


def test_recipes_partners_run_linkedphone_contact_to_ghl(
    ghl: SandboxServer, lp: LinkedPhoneSandboxServer, catalog: Catalog, runtime: Runtime,
    store: Store,
) -> None:
    """A new LinkedPhone contact lands in GHL with its tags and notes; echoes are not copied."""
    made = runtime.call("linkedphone.contacts.create", {
        "email": "ada@example.com", "first_name": "Ada", "phone": "+14155550100",
        "tags": ["vip"],
    })["contact"]
    note = runtime.call("linkedphone.notes.create",
                        {"contact_id": made["id"], "body": "Prefers texts"})["note"]
    runtime.call("linkedphone.notes.create",
                 {"contact_id": made["id"], "body": "From GHL [ghl:abc]"})
    event = partner_event("linkedphone_contact_created", made)
    result = run("linkedphone_contact_to_ghl", event, catalog, runtime, store)
    contact_id = result.outputs["upsert"]["contact"]["id"]
    stored = ghl.call(lambda: dict(ghl.app.store.contacts[contact_id]))
    assert (stored["email"], stored["firstName"], stored["phone"]) == (
        "ada@example.com", "Ada", "+14155550100")
    assert "vip" in stored["tags"]
    (copied,) = ghl_notes(ghl, contact_id)
    assert copied["body"] == f"Prefers texts [linkedphone:{note['id']}]"
    run("linkedphone_contact_to_ghl", event, catalog, runtime, store)
    assert len(ghl_notes(ghl, contact_id)) == 1 and ghl.writes(GHL_NOTES) == 1
    emails = ghl.call(lambda: [c.get("email") for c in ghl.app.store.contacts.values()])
    assert emails.count("ada@example.com") == 1


def test_recipes_partners_run_superphone_task_completed_to_ghl(
    ghl: SandboxServer, sp: SuperPhoneSandboxServer, contact: dict[str, Any],
    catalog: Catalog, runtime: Runtime, store: Store,
) -> None:
    """Completing SuperPhone tasks completes their GHL counterparts (either origin), once."""
    linked = linked_sp_contact(runtime, contact)
    origin = new_ghl_task(runtime, contact["id"], "From GHL")
    other = new_ghl_task(runtime, contact["id"], "Unrelated")
    copy_of_ghl = runtime.call("superphone.tasks.create", {
        "contactId": linked["id"], "title": "From GHL", "description": f"[ghl:{origin['id']}]"})
    native = runtime.call("superphone.tasks.create", {"contactId": linked["id"], "title": "Ring"})
    mirror = new_ghl_task(runtime, contact["id"], "Ring", body=f"[superphone:{native['id']}]")
    for task in (copy_of_ghl, native):
        done = runtime.call("superphone.tasks.complete", {"id": task["id"]})
        event = partner_event("superphone_task_completed", done)
        run("superphone_task_completed_to_ghl", event, catalog, runtime, store)
    run("superphone_task_completed_to_ghl", event, catalog, runtime, store)
    completed = {t["id"]: t["completed"] for t in ghl_tasks(ghl, contact["id"])}
    assert completed == {origin["id"]: True, other["id"]: False, mirror["id"]: True}
    assert ghl.writes(GHL_COMPLETE) == 2


def test_recipes_partners_run_superphone_task_completed_from_ghl(
    ghl: SandboxServer, sp: SuperPhoneSandboxServer, contact: dict[str, Any],
    catalog: Catalog, runtime: Runtime, store: Store,
) -> None:
    """Completing GHL tasks completes their SuperPhone counterparts (either origin), once."""
    linked = linked_sp_contact(runtime, contact)
    origin = new_ghl_task(runtime, contact["id"], "From GHL")
    copy_of_ghl = runtime.call("superphone.tasks.create", {
        "contactId": linked["id"], "title": "From GHL", "description": f"x [ghl:{origin['id']}]"})
    native = runtime.call("superphone.tasks.create", {"contactId": linked["id"], "title": "Ring"})
    other = runtime.call("superphone.tasks.create", {"contactId": linked["id"], "title": "Other"})
    mirror = new_ghl_task(runtime, contact["id"], "Ring", body=f"[superphone:{native['id']}]")
    for task in (origin, mirror):
        event = example("task_completed", id=task["id"], contactId=contact["id"],
                        body=task["body"], title=task["title"], locationId=ghl.location_id)
        run("superphone_task_completed_from_ghl", event, catalog, runtime, store)
    again = run("superphone_task_completed_from_ghl", event, catalog, runtime, store)
    assert [i.status for i in again.steps[-1].items] == ["skipped"]  # only "Other" is open
    completed = {t["id"]: t["completed"] for t in sp_records(sp, "tasks", contactId=linked["id"])}
    assert completed == {copy_of_ghl["id"]: True, native["id"]: True, other["id"]: False}
    assert sp.writes("completeTask") == 2


def test_recipes_partners_cli_partner_only_recipe_needs_no_ghl_login(
    lp: LinkedPhoneSandboxServer, tmp_path: Path
) -> None:
    """A recipe calling only LinkedPhone runs with its API key alone (no GHL token set)."""
    (seeded,) = lp_records(lp, "contacts", first_name="Grace")
    event = tmp_path / "contact.json"
    event.write_text(json.dumps(partner_event("linkedphone_contact_updated", seeded)))
    env = {"CONNECTOR_HOME": str(tmp_path / "home"), "CONNECTOR_LINKEDPHONE_API_KEY": lp.api_key}
    done = run_cli("run", str(RECIPES / "linkedphone_contact_fetch.yaml"), "--event", str(event),
                   "--base-url", f"linkedphone={lp.base_url}", "--json", env=env)
    assert done.status == 0, done
    steps = {s["step"]: s for s in json.loads(done.stdout)["steps"]}
    assert steps["contact"]["output"]["contact"]["email"] == seeded["email"]
    assert [t["title"] for t in steps["tasks"]["output"]["tasks"]] == ["Call Grace back"]
    assert lp.requests("GET /tasks") == 1
