"""The recipes shipped in recipes/: each validates, and each runs end to end against the GHL
sandbox with a webhook example event (ids adjusted to the sandbox's), leaving the expected
records in the sandbox and its run in the history."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT
from fixtures_store import stored_values

from connector.catalog import Catalog
from connector.client.urlguard import allowing
from connector.recipes.checker import validate_file
from connector.recipes.engine import Engine, RunResult
from connector.recipes.history import History
from connector.recipes.recipe import load_recipe
from connector.runtime import Runtime
from connector.sandbox.server import SandboxServer
from connector.store import Store

RECIPES = ROOT / "recipes"
EVENTS = ROOT / "tests" / "data" / "events"
# Partner recipes run in tests/test_recipes_partners.py; sync documents in test_sync_recipes.py.
OTHER_PREFIXES = ("sync_",)
SHIPPED = sorted(p for p in RECIPES.glob("*.yaml") if not p.stem.startswith(OTHER_PREFIXES))


@pytest.fixture
def contact(ghl: SandboxServer) -> dict[str, Any]:
    contact_id = ghl.call(lambda: list(ghl.app.store.contacts))[0]
    return dict(ghl.call(lambda: ghl.app.store.contacts[contact_id]))


def run(
    name: str,
    event: dict[str, Any],
    catalog: Catalog,
    runtime: Runtime,
    store: Store,
    environ: dict[str, str] | None = None,
) -> RunResult:
    engine = Engine(catalog, runtime, store, environ=environ or {})
    result = engine.run(load_recipe(RECIPES / f"{name}.yaml"), event)
    assert result.status == "succeeded", result.error
    record = History(store).get(result.run_id)
    assert record.status == "succeeded"
    assert record.recipe_file == str(RECIPES / f"{name}.yaml")
    assert [s.step_id for s in record.steps if s.item < 0] == [s.step_id for s in result.steps]
    return result


def example(name: str, **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    data.update(fields)
    return data


def tasks_of(ghl: SandboxServer, contact_id: str) -> list[dict[str, Any]]:
    return ghl.call(lambda: [dict(t) for t in ghl.app.store.tasks.get(contact_id, {}).values()])


def notes_of(ghl: SandboxServer, contact_id: str) -> list[dict[str, Any]]:
    return ghl.call(lambda: [dict(n) for n in ghl.app.store.notes.get(contact_id, {}).values()])


def new_task(runtime: Runtime, contact_id: str, title: str, body: str = "") -> dict[str, Any]:
    data = {"contactId": contact_id, "title": title, "dueDate": "2026-12-01T10:00:00Z"}
    created = runtime.call("ghl.tasks.create", {**data, "completed": False, "body": body})
    task: dict[str, Any] = created["task"]
    return task


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_recipes_shipped_validate_cleanly(path: Path, catalog: Catalog) -> None:
    """Every shipped recipe passes `ghl-connector validate` without a problem or warning."""
    report = validate_file(path, catalog)
    assert report.problems == () and report.warnings == ()
    assert path.read_text().startswith("# "), "each recipe starts with a header comment"


def test_recipes_shipped_each_has_an_event_and_a_test() -> None:
    """Six GHL use cases are shipped, each with a run test below."""
    names = {p.stem for p in SHIPPED}
    tested = {name[len("test_recipes_shipped_run_") :] for name in globals()}
    assert names <= tested, names - tested


def test_recipes_shipped_run_contact_details(
    ghl: SandboxServer, contact: dict[str, Any], catalog: Catalog, runtime: Runtime, store: Store
) -> None:
    """A created contact is read back with its tasks, notes and appointments."""
    task = new_task(runtime, contact["id"], "Send brochure")
    note = runtime.call("ghl.notes.create", {"contactId": contact["id"], "body": "Met at fair"})
    booked = ghl.add_appointment(contact["id"], title="Demo call")
    event = example("contact_created", id=contact["id"], locationId=ghl.location_id)
    result = run("contact_details", event, catalog, runtime, store)
    out = result.outputs
    assert out["contact"]["contact"]["email"] == contact["email"]
    assert [t["id"] for t in out["tasks"]["tasks"]] == [task["id"]]
    assert [n["id"] for n in out["notes"]["notes"]] == [note["note"]["id"]]
    events = out["appointments"]["events"]
    assert booked["id"] in [e["id"] for e in events]


def test_recipes_shipped_run_contact_updated_details(
    ghl: SandboxServer, contact: dict[str, Any], catalog: Catalog, runtime: Runtime, store: Store
) -> None:
    """An updated contact is read back with its (here empty) tasks, notes and appointments."""
    event = example("contact_updated", id=contact["id"], locationId=ghl.location_id)
    result = run("contact_updated_details", event, catalog, runtime, store)
    assert result.outputs["contact"]["contact"]["id"] == contact["id"]
    assert result.outputs["tasks"] == {"tasks": []}
    assert ghl.location_stats()["requests"] == 4


def test_recipes_shipped_run_new_contact_task(
    ghl: SandboxServer, contact: dict[str, Any], catalog: Catalog, runtime: Runtime, store: Store
) -> None:
    """A new contact gets a "Call <name>" task due that day; a dnd contact gets none."""
    event = example("contact_created", id=contact["id"], locationId=ghl.location_id, dnd=False)
    run("new_contact_task", event, catalog, runtime, store)
    (task,) = tasks_of(ghl, contact["id"])
    assert task["title"] == "Call John"
    assert task["dueDate"].startswith("2021-11-26T23:59:59")
    quiet = run("new_contact_task", {**event, "dnd": True}, catalog, runtime, store)
    assert quiet.steps[0].status == "skipped"
    assert len(tasks_of(ghl, contact["id"])) == 1


def test_recipes_shipped_run_task_follow_up(
    ghl: SandboxServer, contact: dict[str, Any], catalog: Catalog, runtime: Runtime, store: Store
) -> None:
    """A new task gets a "Follow-up:" mirror, linked from the original; follow-ups do not."""
    original = new_task(runtime, contact["id"], "Send quote", body="Pricing v2")
    event = example(
        "task_created",
        id=original["id"],
        contactId=contact["id"],
        title="Send quote",
        locationId=ghl.location_id,
    )
    result = run("task_follow_up", event, catalog, runtime, store)
    follow_up = result.outputs["follow_up"]["task"]
    by_title = {t["title"]: t for t in tasks_of(ghl, contact["id"])}
    assert set(by_title) == {"Send quote", "Follow-up: Send quote"}
    assert by_title["Follow-up: Send quote"]["id"] == follow_up["id"]
    assert by_title["Send quote"]["body"] == f"Pricing v2 (follow-up task: {follow_up['id']})"
    writes = ghl.location_stats()["routes"]
    echo = {**event, "id": follow_up["id"], "title": "Follow-up: Send quote"}
    skipped = run("task_follow_up", echo, catalog, runtime, store)
    assert [s.status for s in skipped.steps] == ["skipped"] * 3
    assert ghl.location_stats()["routes"] == writes


def test_recipes_shipped_run_task_completed(
    ghl: SandboxServer, contact: dict[str, Any], catalog: Catalog, runtime: Runtime, store: Store
) -> None:
    """Completing a task completes its open follow-up and leaves other tasks open."""
    original = new_task(runtime, contact["id"], "Send quote")
    follow_up = new_task(runtime, contact["id"], "Follow-up: Send quote")
    other = new_task(runtime, contact["id"], "Follow-up: Book demo")
    event = example(
        "task_completed",
        id=original["id"],
        contactId=contact["id"],
        title="Send quote",
        locationId=ghl.location_id,
    )
    result = run("task_completed", event, catalog, runtime, store)
    done = {t["id"]: t["completed"] for t in tasks_of(ghl, contact["id"])}
    assert done == {original["id"]: False, follow_up["id"]: True, other["id"]: False}
    items = result.steps[1].items
    assert sorted(i.status for i in items) == ["skipped", "skipped", "succeeded"]
    history = History(store).get(result.run_id).steps
    assert sum(1 for s in history if s.step_id == "complete" and s.item >= 0) == 3


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], Any]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length))
        self.received.append((dict(self.headers), body))
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"ok": true}')

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], Any]]]]:
    """A partner endpoint on 127.0.0.1 that records what it is sent."""
    _Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/notes", _Receiver.received
    finally:
        server.shutdown()
        server.server_close()


def test_recipes_shipped_run_note_mirror(
    ghl: SandboxServer,
    contact: dict[str, Any],
    catalog: Catalog,
    runtime: Runtime,
    store: Store,
    receiver: tuple[str, list[tuple[dict[str, str], Any]]],
    tmp_path: Path,
) -> None:
    """A new note is POSTed with its contact to $RECIPE_NOTE_MIRROR_URL; the token is not stored."""
    url, received = receiver
    created = runtime.call("ghl.notes.create", {"contactId": contact["id"], "body": "Wants a call"})
    note = created["note"]
    event = example(
        "note_created", id=note["id"], contactId=contact["id"], locationId=ghl.location_id
    )
    token = "mirror-token-0123456789"
    environ = {"RECIPE_NOTE_MIRROR_URL": url, "RECIPE_NOTE_MIRROR_TOKEN": token}
    with allowing("127.0.0.1"):
        result = run("note_mirror", event, catalog, runtime, store, environ)
    ((headers, body),) = received
    assert headers["Authorization"] == f"Bearer {token}"
    assert body == {
        "source": "highlevel",
        "noteId": note["id"],
        "body": "Wants a call",
        "contact": {"id": contact["id"], "name": contact["name"], "email": contact["email"]},
    }
    assert result.outputs["mirror"]["status"] == 202
    if store.dialect == "postgresql":
        raw = stored_values(store)
    store.close()
    if store.dialect == "sqlite":
        raw = b"".join(p.read_bytes() for p in tmp_path.glob("state.db*"))
    assert b"Wants a call" in raw and token.encode() not in raw


def test_recipes_shipped_run_appointment_activity(
    ghl: SandboxServer, contact: dict[str, Any], catalog: Catalog, runtime: Runtime, store: Store
) -> None:
    """A booked appointment adds a note and the appointment-booked tag to its contact."""
    booked = ghl.add_appointment(contact["id"], title="Demo call")
    event = example("appointment_created", locationId=ghl.location_id)
    event["appointment"] = {**event["appointment"], **booked}
    run("appointment_activity", event, catalog, runtime, store)
    (note,) = notes_of(ghl, contact["id"])
    assert note["body"].startswith(f"Appointment booked: Demo call at {booked['startTime']}")
    tags = ghl.call(lambda: list(ghl.app.store.contacts[contact["id"]]["tags"]))
    assert "appointment-booked" in tags


def _opportunity(runtime: Runtime, contact_id: str, pipeline: str, status: str = "open",
                 stage: str = "stage-new") -> str:
    made = runtime.call("ghl.opportunities.create", {
        "pipelineId": pipeline, "pipelineStageId": stage, "name": f"{pipeline} deal",
        "status": status, "contactId": contact_id})  # fmt: skip
    return str(made["opportunity"]["id"])


def test_recipes_shipped_run_appointment_opportunity_stage(
    ghl: SandboxServer, contact: dict[str, Any], catalog: Catalog, runtime: Runtime, store: Store
) -> None:
    """A booked appointment moves the contact's open opportunity of the pipeline to the booked
    stage; one in another pipeline and a won one stay where they are."""
    recipe = load_recipe(RECIPES / "appointment_opportunity_stage.yaml")
    pipeline, stage = recipe.vars["pipeline_id"], recipe.vars["stage_id"]
    moved = _opportunity(runtime, contact["id"], pipeline)
    other = _opportunity(runtime, contact["id"], "otherPipeline")
    won = _opportunity(runtime, contact["id"], pipeline, status="won")
    booked = ghl.add_appointment(contact["id"], title="Demo call")
    event = example("appointment_created", locationId=ghl.location_id)
    event["appointment"] = {**event["appointment"], **booked}
    result = run("appointment_opportunity_stage", event, catalog, runtime, store)
    assert [s.status for s in result.steps] == ["succeeded", "succeeded"]
    stages = {oid: runtime.call("ghl.opportunities.get", {"id": oid})["opportunity"][
        "pipelineStageId"] for oid in (moved, other, won)}
    assert stages == {moved: stage, other: "stage-new", won: "stage-new"}


def test_recipes_shipped_run_appointment_confirmation_sms(
    ghl: SandboxServer, contact: dict[str, Any], catalog: Catalog, runtime: Runtime, store: Store
) -> None:
    """A booked appointment, read back through the calendars API, is confirmed to its contact
    by SMS through Conversations; once cancelled, no text goes out."""
    booked = ghl.add_appointment(contact["id"], title="Demo call")
    event = example("appointment_created", locationId=ghl.location_id)
    event["appointment"] = {**event["appointment"], **booked}
    run("appointment_confirmation_sms", event, catalog, runtime, store)

    def sent() -> list[dict[str, Any]]:
        return ghl.call(lambda: ghl.app.store.resources.records("conversations/messages"))

    (message,) = sent()
    assert (message["type"], message["contactId"]) == ("SMS", contact["id"])
    assert message["message"] == (
        f'Thanks for booking! Your appointment "Demo call" starts at {booked["startTime"]}.')
    runtime.call("ghl.calendar_events.edit_appointment",
                 {"eventId": booked["id"], "appointmentStatus": "cancelled"})
    quiet = run("appointment_confirmation_sms", event, catalog, runtime, store)
    assert quiet.steps[-1].status == "skipped" and len(sent()) == 1


def test_recipes_shipped_run_inbound_message_opportunity(
    ghl: SandboxServer, contact: dict[str, Any], catalog: Catalog, runtime: Runtime, store: Store
) -> None:
    """A contact's first inbound message opens one opportunity in the pipeline; the next
    message finds it and creates nothing."""
    recipe = load_recipe(RECIPES / "inbound_message_opportunity.yaml")
    trigger = catalog.triggers["ghl.messages.inbound"]
    event = {**trigger.payload_schema["examples"][0], "locationId": ghl.location_id,
             "contactId": contact["id"]}
    run("inbound_message_opportunity", event, catalog, runtime, store)
    again = run("inbound_message_opportunity", event, catalog, runtime, store)
    assert again.steps[-1].status == "skipped"
    found = runtime.call("ghl.opportunities.search", {
        "location_id": ghl.location_id, "contact_id": contact["id"]})["opportunities"]
    assert [(o["name"], o["status"], o["pipelineId"], o["pipelineStageId"]) for o in found] == [
        ("New SMS lead", "open", recipe.vars["pipeline_id"], recipe.vars["stage_id"])]


def test_recipes_shipped_beyond_contacts_typos_get_did_you_mean(tmp_path: Path,
                                                                 catalog: Catalog) -> None:
    """A mistyped opportunities action id and output path in a copy of a shipped recipe are
    each reported at their line with the right name suggested."""
    text = (RECIPES / "appointment_opportunity_stage.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("ghl.opportunities.update", "ghl.opportunities.updat")
                   .replace("steps.open.opportunities", "steps.open.opportunitie"))
    messages = [str(p) for p in validate_file(bad, catalog).problems]
    assert len(messages) == 2, messages
    assert "unknown action 'ghl.opportunities.updat' [did you mean 'ghl.opportunities.update'?]" \
        in messages[0]
    assert "steps.open has no field 'opportunitie'" in messages[1]
    assert "[did you mean 'opportunities'?]" in messages[1]


def test_recipes_shipped_run_opportunity_won_thanks(
    ghl: SandboxServer, contact: dict[str, Any], catalog: Catalog, runtime: Runtime, store: Store
) -> None:
    """A won opportunity texts its contact a thank-you naming the deal; a lost one does not."""
    trigger = catalog.triggers["ghl.opportunities.status_updated"]
    event = {**trigger.payload_schema["examples"][0], "locationId": ghl.location_id,
             "contactId": contact["id"], "name": "Kitchen remodel", "status": "won"}
    run("opportunity_won_thanks", event, catalog, runtime, store)
    lost = run("opportunity_won_thanks", {**event, "status": "lost"}, catalog, runtime, store)
    assert lost.steps[0].status == "skipped"
    sent = ghl.call(lambda: ghl.app.store.resources.records("conversations/messages"))
    assert [(m["contactId"], m["message"]) for m in sent] == [(
        contact["id"], 'Thank you for choosing us! We are getting started on "Kitchen remodel".')]
