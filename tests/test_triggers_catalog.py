"""The GHL triggers in the catalog: manifest entries, payload schemas, generator, CLI listing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, SHARED, run_cli
from jsonschema import Draft202012Validator

from connector.catalog import build_catalog
from connector.documents.manifest import pack_manifest
from connector.plugins import get_plugin_manager

EVENTS_DIR = SHARED / "ghl-openapi" / "webhook-events"
SPEC = SHARED / "ghl-openapi" / "apps" / "contacts.json"
WEBHOOK_TRIGGERS = {
    "ContactCreate": "ghl.contacts.created",
    "ContactUpdate": "ghl.contacts.updated",
    "ContactDelete": "ghl.contacts.deleted",
    "ContactTagUpdate": "ghl.contacts.tag_updated",
    "ContactDndUpdate": "ghl.contacts.dnd_updated",
    "NoteCreate": "ghl.notes.created",
    "NoteUpdate": "ghl.notes.updated",
    "NoteDelete": "ghl.notes.deleted",
    "TaskCreate": "ghl.tasks.created",
    "TaskComplete": "ghl.tasks.completed",
    "TaskDelete": "ghl.tasks.deleted",
    "AppointmentCreate": "ghl.appointments.created",
    "AppointmentUpdate": "ghl.appointments.updated",
    "AppointmentDelete": "ghl.appointments.deleted",
}
RULE_TRIGGERS = {
    # The other events, triggers by the rule of tools/gen_triggers.py (docs/catalog.md).
    "AppInstall": "ghl.apps.installed",
    "AppUninstall": "ghl.apps.uninstalled",
    "AssociationCreate": "ghl.associations.created",
    "AssociationDelete": "ghl.associations.deleted",
    "AssociationUpdate": "ghl.associations.updated",
    "CampaignStatusUpdate": "ghl.campaigns.status_updated",
    "ConversationUnreadWebhook": "ghl.conversations.unread_updated",
    "InboundMessage": "ghl.messages.inbound",
    "InvoiceCreate": "ghl.invoices.created",
    "InvoiceDelete": "ghl.invoices.deleted",
    "InvoicePaid": "ghl.invoices.paid",
    "InvoicePartiallyPaid": "ghl.invoices.partially_paid",
    "InvoiceSent": "ghl.invoices.sent",
    "InvoiceUpdate": "ghl.invoices.updated",
    "InvoiceVoid": "ghl.invoices.voided",
    "LCEmailStats": "ghl.emails.stats",
    "LocationCreate": "ghl.locations.created",
    "LocationUpdate": "ghl.locations.updated",
    "ObjectSchemaCreate": "ghl.object_schemas.created",
    "ObjectSchemaUpdate": "ghl.object_schemas.updated",
    "OpportunityAssignedToUpdate": "ghl.opportunities.assigned_to_updated",
    "OpportunityCreate": "ghl.opportunities.created",
    "OpportunityDelete": "ghl.opportunities.deleted",
    "OpportunityMonetaryValueUpdate": "ghl.opportunities.monetary_value_updated",
    "OpportunityStageUpdate": "ghl.opportunities.stage_updated",
    "OpportunityStatusUpdate": "ghl.opportunities.status_updated",
    "OpportunityUpdate": "ghl.opportunities.updated",
    "OrderCreate": "ghl.orders.created",
    "OrderStatusUpdate": "ghl.orders.status_updated",
    "OutboundMessage": "ghl.messages.outbound",
    "PlanChange": "ghl.apps.plan_changed",
    "PriceCreate": "ghl.prices.created",
    "PriceDelete": "ghl.prices.deleted",
    "PriceUpdate": "ghl.prices.updated",
    "ProductCreate": "ghl.products.created",
    "ProductDelete": "ghl.products.deleted",
    "ProductUpdate": "ghl.products.updated",
    "ProviderOutboundMessage": "ghl.messages.provider_outbound",
    "RecordCreate": "ghl.records.created",
    "RecordDelete": "ghl.records.deleted",
    "RecordUpdate": "ghl.records.updated",
    "RelationCreate": "ghl.relations.created",
    "RelationDelete": "ghl.relations.deleted",
    "UserCreate": "ghl.users.created",
}
ALL_WEBHOOK_TRIGGERS = {**WEBHOOK_TRIGGERS, **RULE_TRIGGERS}
POLLING_TRIGGERS = {
    "ghl.contacts.changed": ("dateUpdated", ["id", "dateUpdated"]),
    "ghl.contacts.added": ("dateAdded", ["id"]),
}
TRIGGER_SCHEMAS = sorted((ROOT / "schemas" / "triggers").glob("ghl.*.json"))
NO_EVENTS = f"GHL webhook-event files not found at {EVENTS_DIR}"


def event_examples() -> list[Any]:
    """One param per (event, example file) of every event."""
    if not EVENTS_DIR.exists():
        return [pytest.param(None, None, marks=pytest.mark.skip(reason=NO_EVENTS), id="none")]
    return [
        pytest.param(event, path, id=path.name)
        for event in ALL_WEBHOOK_TRIGGERS
        for path in sorted(EVENTS_DIR.glob(f"{event}.example*.json"))
    ]


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "manifest.yaml").read_text(encoding="utf-8"))
    # Only GHL's part is generated from the official spec; partner apps (tools/apps/*.yaml)
    # are checked by their own tests (tests/test_superphone.py, ...).
    for key in ("actions", "triggers"):
        data[key] = {k: v for k, v in data.get(key, {}).items() if k.startswith("ghl.")}
    return data


def payload_validator(trigger_id: str) -> Draft202012Validator:
    """A validator for the payload schema of ``trigger_id`` as the runtime loads it."""
    return Draft202012Validator(pack_manifest().triggers[trigger_id].payload_schema)


def errors_of(validator: Draft202012Validator, data: Any) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(data)]


@pytest.mark.parametrize(("event", "path"), event_examples())
def test_trigger_official_example_validates_against_payload(event, path):
    """Every GHL example payload of every event validates against its trigger's payload schema."""
    example = json.loads(path.read_text(encoding="utf-8"))
    assert errors_of(payload_validator(ALL_WEBHOOK_TRIGGERS[event]), example) == []


def test_trigger_every_event_is_a_trigger(manifest):
    """Each event of GHL's webhook-events folder is a webhook trigger with a sample (when GHL
    gives an example) that passes its own schema, and states how its scope was chosen."""
    if not EVENTS_DIR.exists():
        pytest.skip(NO_EVENTS)
    names = {p.name.split(".", 1)[0] for p in EVENTS_DIR.glob("*.json")}
    assert names == set(ALL_WEBHOOK_TRIGGERS)
    for event, trigger_id in RULE_TRIGGERS.items():
        entry = manifest["triggers"][trigger_id]
        assert entry["kind"] == "webhook" and "Scope:" in entry["description"], trigger_id
        document = json.loads((ROOT / entry["schema"]).read_text(encoding="utf-8"))
        payload = document["properties"]["payload"]
        Draft202012Validator.check_schema(payload)
        has_example = any(EVENTS_DIR.glob(f"{event}.example*.json"))
        assert ("examples" in payload) is has_example, trigger_id
        for sample in payload.get("examples", []):
            assert errors_of(Draft202012Validator(payload), sample) == [], trigger_id
            assert sample["type"] == entry["event"] or event == "ProviderOutboundMessage"


def test_trigger_appointment_examples_with_wrong_type_still_validate():
    """GHL's AppointmentUpdate/Delete examples say AppointmentCreate; the schema does not pin type."""
    for event in ("AppointmentUpdate", "AppointmentDelete"):
        example = json.loads((EVENTS_DIR / f"{event}.example.json").read_text(encoding="utf-8"))
        assert example["type"] == "AppointmentCreate", f"{event}: GHL fixed its example"
        payload = pack_manifest().triggers[WEBHOOK_TRIGGERS[event]].payload_schema
        assert "const" not in payload["properties"]["type"]
        assert payload["examples"][0]["type"] == event  # the documented example is corrected


@pytest.mark.parametrize(("event", "trigger_id"), WEBHOOK_TRIGGERS.items())
def test_trigger_webhook_entry_and_schema(manifest, event, trigger_id):
    """Each webhook trigger names its event, scopes and schema; the payload carries webhookId/timestamp."""
    entry = manifest["triggers"][trigger_id]
    assert entry["kind"] == "webhook"
    assert entry["event"] == event
    expected = "calendars/events.readonly" if event.startswith("Appointment") else "contacts.readonly"
    assert entry["scopes"] == [expected]
    assert entry["schema"] == f"schemas/triggers/{trigger_id}.json"
    document = json.loads((ROOT / entry["schema"]).read_text(encoding="utf-8"))
    assert document["$id"] == f"triggers/{trigger_id}.json"
    assert set(document["properties"]) == {"payload", "with"}
    payload = document["properties"]["payload"]
    assert {"webhookId", "timestamp", "type", "locationId"} <= set(payload["properties"])
    assert payload["required"] == ["type", "locationId"]


def test_trigger_scope_assumptions_are_stated(manifest):
    """Triggers whose scope GHL does not document say so in their description."""
    undocumented = {"ContactUpdate", "NoteUpdate", "TaskComplete"} | {
        e for e in WEBHOOK_TRIGGERS if e.startswith("Appointment")
    }
    for event, trigger_id in WEBHOOK_TRIGGERS.items():
        stated = "does not list" in manifest["triggers"][trigger_id]["description"]
        assert stated is (event in undocumented), trigger_id


def test_trigger_payloads_stay_open_to_new_fields():
    """A payload with fields GHL may add later, plus webhookId and timestamp, still validates."""
    example = json.loads((EVENTS_DIR / "ContactCreate.example.json").read_text(encoding="utf-8"))
    delivery = {
        **example,
        "webhookId": "abc123xyz",
        "timestamp": "2025-01-28T14:35:00Z",
        "brandNewField": {"x": 1},
    }
    assert errors_of(payload_validator("ghl.contacts.created"), delivery) == []
    wrong = {**example, "tags": "vip"}
    assert errors_of(payload_validator("ghl.contacts.created"), wrong) != []


def test_trigger_options_are_small_and_closed():
    """`with` takes locationId (and tags for tag events) and refuses anything else."""
    triggers = pack_manifest().triggers
    for trigger_id, trigger in triggers.items():
        if trigger.app != "ghl":
            continue
        expected = {"locationId", "tags"} if trigger_id == "ghl.contacts.tag_updated" else {
            "locationId"
        }
        assert set(trigger.options_schema["properties"]) == expected, trigger_id
    options = Draft202012Validator(triggers["ghl.contacts.tag_updated"].options_schema)
    assert errors_of(options, {"locationId": "abc", "tags": ["vip"]}) == []
    assert errors_of(options, {"tag": ["vip"]}) != []
    assert errors_of(options, {"tags": []}) != []


@pytest.mark.parametrize(("trigger_id", "expected"), POLLING_TRIGGERS.items())
def test_trigger_polling_entry_reads_search_records(manifest, trigger_id, expected):
    """Polling triggers poll ghl.contacts.search; the payload is one of its contacts."""
    cursor, dedupe = expected
    entry = manifest["triggers"][trigger_id]
    assert (entry["kind"], entry["action"]) == ("polling", "ghl.contacts.search")
    assert (entry["cursor"], entry["dedupe"]) == (cursor, dedupe)
    search = json.loads((ROOT / "schemas/actions/ghl.contacts.search.json").read_text())
    record = search["properties"]["output"]["properties"]["contacts"]["items"]
    payload = pack_manifest().triggers[trigger_id].payload_schema
    assert payload["properties"] == record["properties"]
    contact = {"id": "102goXVW3lIExEQPOnd3", "dateAdded": "2024-06-06T18:54:57.221Z"}
    assert errors_of(Draft202012Validator(payload), {**contact, "dnd": "no"}) != []
    assert errors_of(Draft202012Validator(payload), contact) == []


@pytest.mark.parametrize("path", TRIGGER_SCHEMAS, ids=lambda p: p.name)
def test_trigger_schema_descriptions_and_examples(path):
    """Every property has a description and every `examples` value fits its own subschema."""
    document = json.loads(path.read_text(encoding="utf-8"))
    problems = []

    def walk(node: Any, where: str) -> None:
        if not isinstance(node, dict):
            return
        for name, prop in node.get("properties", {}).items():
            if not prop.get("description"):
                problems.append(f"{where}.{name}: no description")
            walk(prop, f"{where}.{name}")
        walk(node.get("items"), f"{where}[]")
        for example in node.get("examples", []):
            problems.extend(f"{where}: {e.message}" for e in Draft202012Validator(node).iter_errors(example))
        if where.startswith(".payload") and node.get("additionalProperties") is False:
            problems.append(f"{where}: closed to new fields")

    walk(document, "")
    assert problems == []


def test_trigger_sandbox_events_validate():
    """The sandbox's webhook payloads (built from stored records) validate against the triggers."""
    events = pytest.importorskip("connector.sandbox.events")
    contact = {
        "id": "c1", "firstName": "Ann", "email": "ann@example.com", "tags": ["vip"], "dnd": False,
        "dndSettings": {"SMS": {"status": "active", "message": "", "code": ""}},
        "customFields": [{"id": "f1", "value": "x"}],
    }
    records = {
        "Contact": contact,
        "Note": {"id": "n1", "body": "hello", "contactId": "c1", "dateAdded": "2024-01-01T00:00:00Z"},
        "Task": {"id": "t1", "title": "Call", "contactId": "c1", "dueDate": "2024-01-02T00:00:00Z"},
        "Appointment": {"id": "a1", "calendarId": "cal", "contactId": "c1", "users": ["u1"]},
    }
    for event, trigger_id in WEBHOOK_TRIGGERS.items():
        group = next(g for g in records if event.startswith(g))
        payload = events.build_event(event, records[group], location_id="loc1")
        assert errors_of(payload_validator(trigger_id), payload) == [], event


def test_trigger_catalog_json_lists_triggers(manifest):
    """`ghl-connector catalog --json` lists every trigger with id, app, kind and event."""
    result = run_cli("catalog", "--json")
    assert result.status == 0, result
    rows = {r["id"]: r for r in json.loads(result.stdout)
            if r["kind"] != "action" and r["app"] == "ghl"}
    assert set(rows) == set(manifest["triggers"])
    for trigger_id, entry in manifest["triggers"].items():
        row = rows[trigger_id]
        assert (row["app"], row["kind"], row["event"]) == ("ghl", entry["kind"], entry.get("event"))


def test_trigger_catalog_ids_equal_manifest_ids(manifest):
    """The triggers the built-in plugins register are exactly the manifest's."""
    catalog = build_catalog(get_plugin_manager(entry_points=False))
    assert {t for t in catalog.triggers if t.startswith("ghl.")} == set(manifest["triggers"])
    assert catalog.trigger("ghl.contacts.created").event == "ContactCreate"


def test_trigger_generated_files_are_up_to_date(tmp_path):
    """The committed manifest and schemas/triggers/ are exactly what the generator writes."""
    if not SPEC.exists():
        pytest.skip("official spec not found")
    script = ROOT / "tools" / "gen_catalog.py"
    done = subprocess.run(
        [sys.executable, str(script), "--specs", str(SPEC.parent), "--out", str(tmp_path)],
        capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stderr

    def tree(root: Path) -> dict[str, bytes]:
        files = [root / "manifest.yaml", *sorted((root / "schemas/triggers").glob("ghl.*.json"))]
        return {f.relative_to(root).as_posix(): f.read_bytes() for f in files}

    assert tree(ROOT) == tree(tmp_path)
