"""Webhook payloads built from stored records match GHL's event schemas and examples."""

from __future__ import annotations

import copy
import json
import re
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from connector.sandbox.events import EVENT_TYPES, build_event

EVENTS = Path(__file__).resolve().parents[3] / "shared" / "ghl-openapi" / "webhook-events"

CONTACT: dict[str, Any] = {  # GetContectByIdSchema
    "id": "seD4PfOuKoVMLkEZqohJ",
    "name": "rubika deo",
    "locationId": "ve9EPM428h8vShlRW1KT",
    "firstName": "rubika",
    "lastName": "Deo",
    "email": "rubika@deos.com",
    "emailLowerCase": "rubika@deos.com",
    "timezone": "Asia/Calcutta",
    "companyName": "DGS VolMAX",
    "phone": "+18832327657",
    "dnd": True,
    "type": "read",
    "source": "public api",
    "assignedTo": "ve9EPM428h8vShlRW1KT",
    "address1": "3535 1st St N",
    "city": "ruDolomitebika",
    "state": "AL",
    "country": "US",
    "postalCode": "35061",
    "website": "https://www.tesla.com",
    "tags": ["nisi sint commodo amet", "consequat"],
    "dateOfBirth": "1990-09-25",
    "dateAdded": "2021-07-02T05:18:26.704Z",
    "dateUpdated": "2021-07-02T05:18:26.704Z",
    "attachments": "",
    "ssn": "",
    "keyword": "test",
    "lastActivity": "2021-07-16T11:39:30.564Z",
    "customFields": [{"id": "MgobCB14YMVKuE4Ka8p1", "value": "name"}],
    "businessId": "641c094001436dbc2081e642",
    "dndSettings": {
        channel: {"status": "active", "message": "opted out", "code": "101"}
        for channel in ("Call", "Email", "SMS", "WhatsApp", "GMB", "FB")
    },
}
NOTE: dict[str, Any] = {  # GetNoteSchema
    "id": "HGPcayliwcdoUFzvbTok",
    "body": "lorem ipsum",
    "userId": "TUcmRxWrjqzJS8EjkxNK",
    "dateAdded": "2021-07-08T12:02:11.285Z",
    "contactId": "seD4PfOuKoVMLkEZqohJ",
    "title": "Follow-up summary",
    "color": "#FFAA00",
    "pinned": False,
}
TASK: dict[str, Any] = {  # TaskSchema, plus the dateAdded the sandbox stamps on create
    "id": "lJpzYrWdpkC2hX6t2yue",
    "title": "test",
    "body": "testing",
    "assignedTo": "tesTUcmRxWrjqzJS8Ejk",
    "dueDate": "2021-07-08T02:30:00.000Z",
    "completed": True,
    "contactId": "seD4PfOuKoVMLkEZqohJ",
    "dateAdded": "2021-07-01T02:30:00.000Z",
}
APPOINTMENT: dict[str, Any] = {  # GetEventSchema
    "id": "YS3jaqqeehkR2Is80miy",
    "calendarId": "YlWd2wuCAZQzh2cH1fVZ",
    "status": "booked",
    "title": "Test",
    "assignedUserId": "YlWd2wuCAZQzh2cH1fVZ",
    "notes": "test",
    "startTime": "2021-07-16 11:00:00",
    "endTime": "2021-07-16 11:30:00",
    "address": "Address",
    "locationId": "YlWd2wuCAZQzh2cH1fVZ",
    "contactId": "seD4PfOuKoVMLkEZqohJ",
    "groupId": "YlWd2wuCAZQzh2cH1fVZ",
    "appointmentStatus": "confirmed",
    "users": ["YlWd2wuCAZQzh2cH1fVZ"],
    "dateAdded": "2021-07-16 11:00:00",
    "dateUpdated": "2021-07-16 11:30:00",
    "assignedResources": ["YlWd2wuCAZQzh2cH1fVZ"],
    "source": "booking_widget",
}
RECORDS: dict[str, dict[str, Any]] = {
    "Contact": CONTACT,
    "Note": NOTE,
    "Task": TASK,
    "Appointment": APPOINTMENT,
}
NAMES = (
    "ContactCreate",
    "ContactUpdate",
    "ContactDelete",
    "ContactTagUpdate",
    "ContactDndUpdate",
    "NoteCreate",
    "NoteUpdate",
    "NoteDelete",
    "TaskCreate",
    "TaskComplete",
    "TaskDelete",
    "AppointmentCreate",
    "AppointmentUpdate",
    "AppointmentDelete",
)


def load(name: str) -> Any:
    if not EVENTS.is_dir():
        pytest.skip(f"the GHL webhook schemas are not at {EVENTS}")
    return json.loads((EVENTS / name).read_text())


def strict(schema: Any, top: bool = True) -> Any:
    """The schema with every property required and no others (webhookId, timestamp aside)."""
    schema = copy.deepcopy(schema)
    if schema.get("type") == "object" and "properties" in schema:
        schema["required"] = sorted(schema["properties"])
        schema["additionalProperties"] = False
        for name, sub in schema["properties"].items():
            schema["properties"][name] = strict(sub, top=False)
        if top:
            schema["properties"]["webhookId"] = {"type": "string", "format": "uuid"}
            schema["properties"]["timestamp"] = {"type": "string"}
    if isinstance(schema.get("items"), dict):
        schema["items"] = strict(schema["items"], top=False)
    return schema


def record_for(event_type: str) -> dict[str, Any]:
    return next(r for prefix, r in RECORDS.items() if event_type.startswith(prefix))


def test_events_cover_the_fourteen_contact_events() -> None:
    """build_event knows exactly the 14 Contacts-related events of the split doc."""
    assert sorted(EVENT_TYPES) == sorted(NAMES)


@pytest.mark.parametrize("event_type", NAMES)
def test_events_examples_validate_against_their_schemas(event_type: str) -> None:
    """GHL's own examples validate, even strictly: our reading of the schemas is right."""
    schema = load(f"{event_type}.schema.json")
    example = load(f"{event_type}.example.json")
    jsonschema.validate(example, schema)
    # GHL's AppointmentUpdate/AppointmentDelete examples are copies that still say
    # "AppointmentCreate"; the payloads we build carry their real type.
    assert example["type"] in (event_type, "AppointmentCreate")
    jsonschema.validate(example, strict(schema))


@pytest.mark.parametrize("event_type", NAMES)
def test_events_payload_validates_and_has_the_example_fields(event_type: str) -> None:
    """A payload from a full record validates strictly and has exactly the example's fields."""
    payload = build_event(event_type, record_for(event_type), location_id="loc-1")
    schema = load(f"{event_type}.schema.json")
    jsonschema.validate(payload, schema)
    jsonschema.validate(payload, strict(schema))
    example = load(f"{event_type}.example.json")
    assert set(payload) == {*example, "webhookId", "timestamp"}
    if event_type != "TaskComplete":  # its example alone lists title last; the order is cosmetic
        assert list(payload) == [*example, "webhookId", "timestamp"]
    assert (payload["type"], payload["locationId"]) == (event_type, "loc-1")
    assert uuid.UUID(payload["webhookId"]).version == 4
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", payload["timestamp"])
    if "appointment" in example:
        assert list(payload["appointment"]) == list(example["appointment"])


def test_events_contact_payload_maps_spec_fields() -> None:
    """Contact payloads keep the event type, turn attachments into a list, keep custom fields."""
    payload = build_event("ContactDndUpdate", CONTACT, location_id="loc-1")
    assert payload["type"] == "ContactDndUpdate"  # the contact's own "type" (read/lead) is not it
    assert payload["attachments"] == [] and payload["tags"] == CONTACT["tags"]
    assert payload["customFields"] == [{"id": "MgobCB14YMVKuE4Ka8p1", "value": "name"}]
    assert payload["dndSettings"]["SMS"] == {
        "status": "active",
        "message": "opted out",
        "code": "101",
    }
    assert "emailLowerCase" not in payload and "ssn" not in payload


def test_events_leave_out_values_of_the_wrong_type() -> None:
    """None values and odd custom field values are left out, so the payload stays valid."""
    record = {
        "id": "c1",
        "email": None,
        "dnd": None,
        "tags": None,
        "attachments": ["a.pdf"],
        "customFields": [
            {"id": "f1", "value": None},
            {"id": "f2", "value": 3},
            {"id": "f3", "value": True},
            {"value": "no id"},
        ],
    }
    payload = build_event("ContactUpdate", record, location_id="loc-1")
    jsonschema.validate(payload, load("ContactUpdate.schema.json"))
    assert "email" not in payload and "dnd" not in payload
    assert payload["tags"] == [] and payload["attachments"] == ["a.pdf"]
    assert payload["customFields"] == [{"id": "f2", "value": 3}]


def test_events_task_and_appointment_from_minimal_records() -> None:
    """A TaskSchema record without dateAdded, and status-only appointments, still map right."""
    task = {k: v for k, v in TASK.items() if k != "dateAdded"}
    payload = build_event("TaskComplete", task, location_id="loc-1")
    jsonschema.validate(payload, load("TaskComplete.schema.json"))
    assert "completed" not in payload and "dateAdded" not in payload
    appointment = {k: v for k, v in APPOINTMENT.items() if k != "appointmentStatus"}
    payload = build_event("AppointmentUpdate", appointment, location_id="loc-1")
    assert payload["appointment"]["appointmentStatus"] == "booked"


def test_events_ids_are_unique_and_unknown_types_fail() -> None:
    """Every payload gets its own webhookId; an unknown event type is a ValueError."""
    ids = {build_event("NoteCreate", NOTE, location_id="l")["webhookId"] for _ in range(50)}
    assert len(ids) == 50
    with pytest.raises(ValueError, match=r"unknown event type 'ContactMerge'"):
        build_event("ContactMerge", CONTACT, location_id="l")
