"""Calendar appointments of contacts. The Contacts API only reads them, so they are created,
changed and deleted through the sandbox's control API; each change emits its webhook event."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from connector.sandbox.state import Record, Store

__all__ = ["FIELDS", "create", "delete", "update"]

FIELDS = (
    "title", "calendarId", "status", "appointmentStatus", "assignedUserId", "notes", "address",
    "startTime", "endTime", "groupId", "users", "source",
)
Emit = Callable[[list[tuple[str, Record, str]]], None]


def _fields(given: Mapping[str, Any]) -> Record:
    unknown = sorted(set(given) - set(FIELDS) - {"contactId"})
    if unknown:
        raise ValueError(f"appointment: unknown fields {unknown!r} [known: {list(FIELDS)!r}]")
    return {k: v for k, v in given.items() if k in FIELDS}


def create(store: Store, emit: Emit, contact_id: str, fields: Mapping[str, Any]) -> Record:
    """Book an appointment for a contact and emit ``AppointmentCreate``.

    :raises KeyError: no such contact
    :raises ValueError: a field the appointment does not have
    """
    contact = store.contact(contact_id, None)
    if contact is None:
        raise KeyError(f"appointment: contact {contact_id!r} not found")
    event = store.add_appointment(contact, _fields(fields))
    emit([("AppointmentCreate", event, event["locationId"])])
    return event


def update(store: Store, emit: Emit, appointment_id: str, fields: Mapping[str, Any]) -> Record:
    """Change an appointment and emit ``AppointmentUpdate``.

    :raises KeyError: no such appointment
    :raises ValueError: a field the appointment does not have
    """
    event = store.find_appointment(appointment_id)
    if event is None:
        raise KeyError(f"appointment: {appointment_id!r} not found")
    event.update(_fields(fields))
    store.touch(event)
    emit([("AppointmentUpdate", event, event["locationId"])])
    return event


def delete(store: Store, emit: Emit, appointment_id: str) -> Record:
    """Delete an appointment and emit ``AppointmentDelete``.

    :raises KeyError: no such appointment
    """
    event = store.find_appointment(appointment_id)
    if event is None:
        raise KeyError(f"appointment: {appointment_id!r} not found")
    del store.appointments[event["contactId"]][appointment_id]
    emit([("AppointmentDelete", event, event["locationId"])])
    return event
