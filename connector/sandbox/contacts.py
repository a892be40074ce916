"""Contact handlers: get, create, update, delete, upsert and duplicate lookup, and how a request
body becomes a stored contact (names, lower-case copies, E.164 phones, tags, custom fields)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from connector.sandbox.call import Call, Reply
from connector.sandbox.responses import bad_request
from connector.sandbox.state import Record, Store

__all__ = [
    "create_contact",
    "delete_contact",
    "find_duplicate",
    "get_appointments",
    "get_contact",
    "get_duplicate",
    "normal_phone",
    "normal_tags",
    "update_contact",
    "upsert_contact",
]

_PLAIN = (
    "firstName", "lastName", "name", "email", "address1", "city", "state", "postalCode",
    "website", "timezone", "dnd", "dndSettings", "inboundDndSettings", "source", "dateOfBirth",
    "country", "companyName", "assignedTo", "gender",
)
_NOT_STORED = ("locationId", "createNewIfDuplicateAllowed")


def normal_phone(phone: str) -> str:
    """A phone number in E.164, as GHL stores it (a bare 10-digit number is taken as US)."""
    digits = re.sub(r"\D", "", phone)
    if not phone.strip().startswith("+") and len(digits) == 10:
        return "+1" + digits
    return "+" + digits


def normal_tags(tags: list[str]) -> list[str]:
    """Tags as GHL keeps them: trimmed, lower-case, without repeats, in first-seen order."""
    return list(dict.fromkeys(t.strip().lower() for t in tags if t.strip()))


def _custom_fields(store: Store, given: list[dict[str, Any]]) -> list[dict[str, str]]:
    out = []
    for item in given:
        field_id = item.get("id") or store.field_id(str(item.get("key", "")))
        value = item.get("field_value", item.get("value", ""))
        out.append({"id": str(field_id), "value": value if isinstance(value, str)
                    else json.dumps(value)})
    return out


def _apply(store: Store, record: Record, body: dict[str, Any]) -> None:
    """Write the request's fields into ``record``: None clears a field, names are derived."""
    for key, value in body.items():
        if key in _NOT_STORED:
            continue
        if value is None:
            record.pop(key, None)
        elif key == "phone":
            record["phone"] = normal_phone(value)
        elif key == "tags":
            record["tags"] = normal_tags(value)
        elif key == "customFields":
            record["customFields"] = _custom_fields(store, value)
        elif key in _PLAIN:
            record[key] = value
    if ("firstName" in body or "lastName" in body) and "name" not in body:
        full = " ".join(p for p in (record.get("firstName"), record.get("lastName")) if p)
        record["name"] = full
    for key, lower in (("firstName", "firstNameLowerCase"), ("lastName", "lastNameLowerCase"),
                       ("name", "fullNameLowerCase"), ("email", "emailLowerCase")):
        if key in record:
            record[lower] = str(record[key]).lower()
        else:
            record.pop(lower, None)


def find_duplicate(
    store: Store, location_id: str, email: str | None, phone: str | None
) -> tuple[Record, str] | None:
    """The contact GHL would call a duplicate: email match first, then phone; and the field."""
    if email:
        found = store.find_by(location_id, email=email.lower())
        if found is not None:
            return found, "email"
    if phone:
        found = store.find_by(location_id, phone=normal_phone(phone))
        if found is not None:
            return found, "phone"
    return None


def _events_for_change(call: Call, before: Record, after: Record) -> None:
    call.emit("ContactUpdate", after)
    if before.get("tags") != after.get("tags"):
        call.emit("ContactTagUpdate", after)
    if (before.get("dnd"), before.get("dndSettings")) != (after.get("dnd"),
                                                          after.get("dndSettings")):
        call.emit("ContactDndUpdate", after)


def get_contact(call: Call) -> Reply:
    """GET /contacts/{contactId}."""
    return 200, {"contact": call.contact()}


def _insert(call: Call, location_id: str, body: dict[str, Any]) -> Record:
    record: Record = {}
    _apply(call.store, record, body)
    contact = call.store.insert_contact(location_id, record)
    call.emit("ContactCreate", contact)
    return contact


def create_contact(call: Call) -> Reply:
    """POST /contacts/: 201, or GHL's 400 when the location does not allow duplicates."""
    body = call.body
    location_id = call.location(body["locationId"])
    if not call.allow_duplicates:
        found = find_duplicate(call.store, location_id, body.get("email"), body.get("phone"))
        if found is not None:
            contact, matched = found
            raise bad_request(
                "This location does not allow duplicated contacts.",
                meta={"contactName": contact.get("name", ""), "contactId": contact["id"],
                      "matchingField": matched},
            )
    return 201, {"contact": _insert(call, location_id, body)}


def update_contact(call: Call) -> Reply:
    """PUT /contacts/{contactId}: tags in the body replace all tags."""
    contact = call.contact()
    before = dict(contact)
    _apply(call.store, contact, call.body)
    call.store.touch(contact)
    _events_for_change(call, before, contact)
    return 200, {"succeded": True, "contact": contact}


def delete_contact(call: Call) -> Reply:
    """DELETE /contacts/{contactId}."""
    contact = call.contact()
    call.store.delete_contact(contact["id"])
    call.emit("ContactDelete", contact)
    return 200, {"succeded": True}


def upsert_contact(call: Call) -> Reply:
    """POST /contacts/upsert: match on email, then phone; update the match or create.

    With the location's "Allow Duplicate Contact" setting on and
    ``createNewIfDuplicateAllowed`` true, a new contact is always created.
    """
    body = call.body
    location_id = call.location(body["locationId"])
    trace = {"traceId": str(uuid.uuid4())}
    found = None
    if not (call.allow_duplicates and body.get("createNewIfDuplicateAllowed")):
        found = find_duplicate(call.store, location_id, body.get("email"), body.get("phone"))
    if found is None:
        return 200, {"new": True, "contact": _insert(call, location_id, body), **trace}
    contact = found[0]
    before = dict(contact)
    _apply(call.store, contact, body)
    call.store.touch(contact)
    _events_for_change(call, before, contact)
    return 200, {"new": False, "contact": contact, **trace}


def get_duplicate(call: Call) -> Reply:
    """GET /contacts/search/duplicate: ``{contact}`` or ``{contact: null}``."""
    requested = call.query.get("locationId")
    if not requested:
        raise bad_request("locationId should not be empty")
    location_id = call.location(requested)
    email = call.query.get("email")
    number = call.query.get("number")
    if not email and not number:
        raise bad_request("email or number should not be empty")
    found = find_duplicate(call.store, location_id, email, number)
    return 200, {"contact": found[0] if found else None}


def get_appointments(call: Call) -> Reply:
    """GET /contacts/{contactId}/appointments: ``{events}`` (``GetEventSchema`` items)."""
    contact = call.contact()
    return 200, {"events": list(call.store.appointments.get(contact["id"], {}).values())}
