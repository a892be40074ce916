"""The sandbox's data: contacts and what hangs off them (tasks, notes, appointments, campaigns,
workflows), per location, with GHL-style ids and timestamps.

Records are stored in the shapes the spec returns them in (a contact as in
``GetContectByIdSchema``, a task as ``TaskSchema``, a note as ``GetNoteSchema``, an appointment
as ``GetEventSchema``), so handlers can answer with them directly. Absent fields are left out
rather than set to null, because the spec's response schemas do not allow nulls.

Contacts are indexed by location and lower-case email, and by location and E.164 phone, so the
duplicate check costs the same at any size. Every change to a contact goes through
:meth:`Store.insert_contact`, :meth:`Store.touch` or :meth:`Store.delete_contact`, which keep the
index in step and bump :attr:`Store.version`; :attr:`Store.memo` holds answers worked out from
the records (search orderings) and is emptied on every change.
"""

from __future__ import annotations

import random
import string
import time
from collections.abc import Callable, Hashable, Iterable
from datetime import UTC, datetime
from typing import Any

from connector.sandbox.resources import Resources

__all__ = ["ID_ALPHABET", "Record", "Store", "iso_time"]

ID_ALPHABET = string.ascii_letters + string.digits

Record = dict[str, Any]

_FIRST = ("Ada", "Bob", "Cleo", "Dan", "Eve", "Finn", "Gus", "Hana", "Ivan", "Jo", "Kai", "Lea")
_LAST = ("Lovelace", "Smith", "Patel", "Garcia", "Nguyen", "Kim", "Rossi", "Okafor", "Novak")
_TAGS = ("lead", "customer", "vip", "newsletter", "partner")


def iso_time(epoch: float) -> str:
    """GHL's timestamp format: ISO 8601 in UTC with milliseconds and a ``Z``."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class Store:
    """All sandbox records. Not thread-safe: only the server's event loop touches it."""

    def __init__(self, *, seed: int = 0, clock: Callable[[], float] = time.time) -> None:
        self._seed = seed
        self.clock = clock
        """The time source records are stamped by, in epoch seconds (tests may set their own)."""
        self.clear()

    def clear(self) -> None:
        """Forget every record and restart the id sequence from the seed."""
        self._rng = random.Random(self._seed)
        self._last_ms = 0
        self.contacts: dict[str, Record] = {}
        self.tasks: dict[str, dict[str, Record]] = {}
        self.notes: dict[str, dict[str, Record]] = {}
        self.appointments: dict[str, dict[str, Record]] = {}
        self.campaigns: dict[str, set[str]] = {}
        self.workflows: dict[str, dict[str, str]] = {}
        self.custom_field_ids: dict[str, str] = {}
        self.resources = Resources()
        """The records of every operation outside Contacts (:mod:`connector.sandbox.specroutes`)."""
        self._indexed: dict[str, tuple[tuple[str, str] | None, tuple[str, str] | None]] = {}
        self._by_email: dict[tuple[str, str], list[str]] = {}
        self._by_phone: dict[tuple[str, str], list[str]] = {}
        self._order: dict[str, int] = {}
        self.version = 0
        """Bumped on every change (see :meth:`changed`)."""
        self.memo: dict[Hashable, Any] = {}
        """Answers derived from the records, valid until the next change."""

    def changed(self) -> None:
        """Note that records changed: bump :attr:`version` and forget :attr:`memo`."""
        self.version += 1
        self.memo.clear()

    def find_by(self, location_id: str, *, email: str | None = None,
                phone: str | None = None) -> Record | None:
        """The oldest contact of a location whose ``emailLowerCase`` is ``email`` (or whose
        ``phone`` is ``phone``: give one of them), or None."""
        if email is not None:
            ids = self._by_email.get((location_id, email), ())
        else:
            ids = self._by_phone.get((location_id, phone or ""), ())
        if not ids:
            return None
        return self.contacts[min(ids, key=self._order.__getitem__)]

    def _index(self, contact: Record) -> None:
        """File a contact under its current email and phone (and out of its old ones)."""
        contact_id = contact["id"]
        self._unindex(contact_id)
        location = contact["locationId"]
        email, phone = contact.get("emailLowerCase"), contact.get("phone")
        keys = ((location, email) if email else None, (location, phone) if phone else None)
        for index, key in zip((self._by_email, self._by_phone), keys, strict=True):
            if key is not None:
                index.setdefault(key, []).append(contact_id)
        self._indexed[contact_id] = keys

    def _unindex(self, contact_id: str) -> None:
        keys = self._indexed.pop(contact_id, (None, None))
        for index, key in zip((self._by_email, self._by_phone), keys, strict=True):
            if key is not None:
                ids = index[key]
                ids.remove(contact_id)
                if not ids:
                    del index[key]

    def new_id(self) -> str:
        """A fresh 20-character alphanumeric id, like GHL's."""
        return "".join(self._rng.choices(ID_ALPHABET, k=20))

    def now_ms(self) -> int:
        """The current time in epoch milliseconds, strictly increasing across calls."""
        now = int(self.clock() * 1000)
        self._last_ms = now if now > self._last_ms else self._last_ms + 1
        return self._last_ms

    def stamp(self) -> str:
        """The current time as a GHL timestamp (strictly increasing across calls)."""
        return iso_time(self.now_ms() / 1000)

    def field_id(self, key: str) -> str:
        """The custom field id for a custom field ``key`` (made up on first use)."""
        if key not in self.custom_field_ids:
            self.custom_field_ids[key] = self.new_id()
        return self.custom_field_ids[key]

    def contact(self, contact_id: str, location_id: str | None) -> Record | None:
        """The contact with this id, if it exists in that location (any location when None)."""
        found = self.contacts.get(contact_id)
        if found is None or (location_id is not None and found["locationId"] != location_id):
            return None
        return found

    def in_location(self, location_id: str | None) -> Iterable[Record]:
        """Every contact of a location (of all locations when None), oldest first."""
        if location_id is None:
            return self.contacts.values()
        return (c for c in self.contacts.values() if c["locationId"] == location_id)

    def insert_contact(self, location_id: str, fields: Record) -> Record:
        """Store a new contact made of already-normalised ``fields``; return it."""
        stamp = self.stamp()
        record: Record = {
            "id": self.new_id(),
            "locationId": location_id,
            "type": "lead",
            "dnd": False,
            "tags": [],
            "customFields": [],
            "followers": [],
            "dateAdded": stamp,
            "dateUpdated": stamp,
        }
        record.update(fields)
        self.contacts[record["id"]] = record
        self._order[record["id"]] = len(self._order)
        self._index(record)
        self.changed()
        return record

    def delete_contact(self, contact_id: str) -> Record | None:
        """Remove a contact and everything attached to it; return what was removed."""
        record = self.contacts.pop(contact_id, None)
        self._unindex(contact_id)
        self.changed()
        for table in (self.tasks, self.notes, self.appointments, self.campaigns, self.workflows):
            table.pop(contact_id, None)
        return record

    def touch(self, record: Record) -> None:
        """Mark a record as written now (every write updates ``dateUpdated``); a contact is
        re-indexed by its email and phone."""
        record["dateUpdated"] = self.stamp()
        if self.contacts.get(record.get("id", "")) is record:
            self._index(record)
        self.changed()

    def seed_contacts(self, location_id: str, count: int) -> list[Record]:
        """Add ``count`` made-up contacts (every third with an appointment); return them."""
        made = []
        for n in range(count):
            first, last = self._rng.choice(_FIRST), self._rng.choice(_LAST)
            contact = self.insert_contact(location_id, {
                "firstName": first,
                "lastName": last,
                "name": f"{first} {last}",
                "firstNameLowerCase": first.lower(),
                "lastNameLowerCase": last.lower(),
                "fullNameLowerCase": f"{first} {last}".lower(),
                "email": f"{first}.{last}.{n}@example.com".lower(),
                "emailLowerCase": f"{first}.{last}.{n}@example.com".lower(),
                "phone": f"+1555{n:07d}",
                "source": "sandbox seed",
                "tags": sorted(set(self._rng.sample(_TAGS, k=self._rng.randint(0, 2)))),
            })
            if n % 3 == 0:
                self.add_appointment(contact, {"title": f"Call with {first}"})
            made.append(contact)
        return made

    def add_appointment(self, contact: Record, fields: Record) -> Record:
        """Attach a calendar appointment to a contact; return it (``GetEventSchema`` shape)."""
        start = self.now_ms() + 86_400_000
        stamp = self.stamp()
        event: Record = {
            "id": self.new_id(),
            "calendarId": "sandboxCalendar00001",
            "locationId": contact["locationId"],
            "contactId": contact["id"],
            "title": "Appointment",
            "status": "booked",
            "appointmentStatus": "confirmed",
            "assignedUserId": "sandboxUser000000001",
            "users": [],
            "notes": "",
            "address": "",
            "startTime": iso_time(start / 1000),
            "endTime": iso_time(start / 1000 + 1800),
            "dateAdded": stamp,
            "dateUpdated": stamp,
        }
        event.update(fields)
        self.appointments.setdefault(contact["id"], {})[event["id"]] = event
        return event

    def find_appointment(self, appointment_id: str) -> Record | None:
        """The appointment with this id, whichever contact it belongs to."""
        for events in self.appointments.values():
            if appointment_id in events:
                return events[appointment_id]
        return None
