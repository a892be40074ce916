"""The payloads of the webhook events the sandbox sends, built from its stored records.

Each payload has the shape of ``shared/ghl-openapi/webhook-events/<Event>.schema.json`` and its
example, plus ``webhookId`` (a uuid4) and ``timestamp`` (ISO 8601), which
``docs/oauth/WebhookAuthentication.md`` says every delivery carries. Records come in the shapes
the Contacts spec answers with: a contact as ``GetContectByIdSchema``, a note as
``GetNoteSchema``, a task as ``TaskSchema``, an appointment as ``GetEventSchema``. A field whose
value does not have the type the event schema gives it is left out rather than sent wrong.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = ["EVENT_TYPES", "build_event"]

# Field orders follow GHL's examples; only the string-valued fields are copied as they are.
_CONTACT_ORDER = (
    *("id", "address1", "city", "state", "companyName", "country", "source", "dateAdded"),
    *("dateOfBirth", "dnd", "dndSettings", "email", "name", "firstName", "lastName", "phone"),
    *("postalCode", "tags", "website", "attachments", "assignedTo", "customFields"),
)
_CONTACT_STRINGS = tuple(
    name
    for name in _CONTACT_ORDER
    if name not in ("dnd", "dndSettings", "tags", "attachments", "customFields")
)
_DND_CHANNELS = ("SMS", "Email", "GMB", "FB", "WhatsApp", "Call")
_DND_FIELDS = ("status", "message", "code")
_NOTE_STRINGS = ("id", "body", "contactId", "dateAdded")
_TASK_STRINGS = ("id", "assignedTo", "body", "contactId", "title", "dateAdded", "dueDate")
_APPOINTMENT_ORDER = (
    *("id", "address", "title", "calendarId", "contactId", "groupId", "appointmentStatus"),
    *("assignedUserId", "users", "notes", "source", "startTime", "endTime", "dateAdded"),
    "dateUpdated",
)
_APPOINTMENT_STRINGS = tuple(name for name in _APPOINTMENT_ORDER if name != "users")


def _ordered(body: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    return {name: body[name] for name in order if name in body}


def _strings(record: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: record[name] for name in names if isinstance(record.get(name), str)}


def _custom_fields(value: object) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return []
    fields = []
    for item in value:
        if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
            continue
        field_value = item.get("value", item.get("fieldValue"))
        if isinstance(field_value, bool) or not isinstance(
            field_value, str | int | float | list | dict
        ):
            continue
        fields.append({"id": item["id"], "value": field_value})
    return fields


def _contact(record: Mapping[str, Any]) -> dict[str, Any]:
    body = _strings(record, _CONTACT_STRINGS)
    if isinstance(record.get("dnd"), bool):
        body["dnd"] = record["dnd"]
    tags = record.get("tags")
    body["tags"] = [tag for tag in tags if isinstance(tag, str)] if isinstance(tags, list) else []
    attachments = record.get("attachments")
    if isinstance(attachments, list):
        body["attachments"] = list(attachments)
    else:
        # The contact schema stores attachments as a string; the events send an array.
        body["attachments"] = [attachments] if isinstance(attachments, str) and attachments else []
    body["customFields"] = _custom_fields(record.get("customFields"))
    return _ordered(body, _CONTACT_ORDER)


def _contact_dnd(record: Mapping[str, Any]) -> dict[str, Any]:
    body = _contact(record)
    settings = record.get("dndSettings")
    channels: dict[str, Any] = {}
    if isinstance(settings, Mapping):
        for channel in _DND_CHANNELS:
            value = settings.get(channel)
            if isinstance(value, Mapping):
                channels[channel] = _strings(value, _DND_FIELDS)
    body["dndSettings"] = channels
    return _ordered(body, _CONTACT_ORDER)


def _note(record: Mapping[str, Any]) -> dict[str, Any]:
    return _strings(record, _NOTE_STRINGS)


def _task(record: Mapping[str, Any]) -> dict[str, Any]:
    return _strings(record, _TASK_STRINGS)


def _appointment(record: Mapping[str, Any]) -> dict[str, Any]:
    appointment = _strings(record, _APPOINTMENT_STRINGS)
    if "appointmentStatus" not in appointment and isinstance(record.get("status"), str):
        appointment["appointmentStatus"] = record["status"]
    users = record.get("users")
    if isinstance(users, list):
        appointment["users"] = [user for user in users if isinstance(user, str)]
    return {"appointment": _ordered(appointment, _APPOINTMENT_ORDER)}


_BUILDERS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "ContactCreate": _contact,
    "ContactUpdate": _contact,
    "ContactDelete": _contact,
    "ContactTagUpdate": _contact,
    "ContactDndUpdate": _contact_dnd,
    "NoteCreate": _note,
    "NoteUpdate": _note,
    "NoteDelete": _note,
    "TaskCreate": _task,
    "TaskComplete": _task,
    "TaskDelete": _task,
    "AppointmentCreate": _appointment,
    "AppointmentUpdate": _appointment,
    "AppointmentDelete": _appointment,
}

EVENT_TYPES: tuple[str, ...] = tuple(_BUILDERS)
"""The event types :func:`build_event` knows."""


def build_event(event_type: str, record: Mapping[str, Any], *, location_id: str) -> dict[str, Any]:
    """Build the webhook payload for one event about one stored record.

    :param event_type: one of :data:`EVENT_TYPES`, e.g. ``"ContactCreate"``.
    :param record: the record as the sandbox stores it (the spec's response shape).
    :param location_id: the sub-account the event belongs to.
    :returns: ``{"type", "locationId", ...fields, "webhookId", "timestamp"}``, ready to send.
    :raises ValueError: the event type is unknown.
    """
    builder = _BUILDERS.get(event_type)
    if builder is None:
        raise ValueError(f"build_event: unknown event type {event_type!r}")
    payload: dict[str, Any] = {"type": event_type, "locationId": location_id}
    payload.update(builder(record))
    payload["webhookId"] = str(uuid.uuid4())
    payload["timestamp"] = (
        datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
    return payload
