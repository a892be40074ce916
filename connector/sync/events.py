"""Webhook events as sync changes: GHL's and the partner apps' payloads, read into a
:class:`~connector.sync.engine.Change` for :meth:`~connector.sync.engine.SyncEngine.apply`.

GHL posts flat payloads (``{"type": "ContactUpdate", "id", ..., "webhookId", "timestamp"}``,
the record's fields at the top); SuperPhone and LinkedPhone post envelopes
(``{"id" | "eventId", "type": "contact.updated", "timestamp", "data": {record}}``). A type the
sync does not handle gives None.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.sync.engine import Change
from connector.sync.mapping import record_time

__all__ = ["change_from_ghl", "change_from_partner"]

_GHL_TYPES: Mapping[str, tuple[str, bool]] = {
    "ContactCreate": ("contacts", False), "ContactUpdate": ("contacts", False),
    "ContactTagUpdate": ("contacts", False), "ContactDndUpdate": ("contacts", False),
    "ContactDelete": ("contacts", True), "TaskCreate": ("tasks", False),
    "TaskComplete": ("tasks", False), "TaskDelete": ("tasks", True),
    "NoteCreate": ("notes", False), "NoteUpdate": ("notes", False),
    "NoteDelete": ("notes", True),
}  # fmt: skip
"""GHL event type -> (object, is a delete)."""

_GHL_ENVELOPE = frozenset({"type", "locationId", "webhookId", "timestamp", "attachments"})
_PARTNER_OBJECTS = {"contact": "contacts", "task": "tasks", "note": "notes"}


def change_from_ghl(payload: Mapping[str, Any]) -> Change | None:
    """The change a GHL webhook reports (its time is the event's ``timestamp``)."""
    kind = _GHL_TYPES.get(str(payload.get("type")))
    if kind is None or not payload.get("id"):
        return None
    obj, deleted = kind
    record = None if deleted else {k: v for k, v in payload.items() if k not in _GHL_ENVELOPE}
    if record is not None and payload.get("type") == "TaskComplete":
        record["completed"] = True  # the event's meaning; GHL's payload has no such field
    parent = payload.get("contactId")
    return Change(
        side="ghl",
        object=obj,
        record_id=str(payload["id"]),
        record=record,
        updated_at=record_time(payload.get("dateUpdated") or payload.get("timestamp")),
        event_id=_text(payload.get("webhookId")),
        parent_id=_text(parent),
    )


def change_from_partner(payload: Mapping[str, Any]) -> Change | None:
    """The change a SuperPhone or LinkedPhone webhook reports (``<object>.<verb>``)."""
    noun, _, verb = str(payload.get("type", "")).partition(".")
    obj = _PARTNER_OBJECTS.get(noun)
    data = payload.get("data")
    if obj is None or not isinstance(data, dict) or not data.get("id"):
        return None
    deleted = verb == "deleted"
    stamp = data.get("updated_at") or data.get("updatedAt") or payload.get("timestamp")
    return Change(
        side="partner",
        object=obj,
        record_id=str(data["id"]),
        record=None if deleted else data,
        updated_at=record_time(stamp),
        event_id=_text(payload.get("id") or payload.get("eventId")),
        parent_id=_text(data.get("contact_id") or data.get("contactId")),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
