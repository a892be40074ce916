"""The SuperPhone sandbox's data: contacts (with tags), notes and tasks, their rules (unique
email and phone, E.164 phones) and the change events every write produces.

Every record carries ``createdAt`` and ``updatedAt``; ``updatedAt`` moves on every change and
never repeats (a clock that always advances by at least a millisecond), so "changed since"
filters and polling cursors are exact. Writes that change nothing (adding a tag the contact
has, completing a done task) produce no event. Contacts are indexed by email and by phone (kept
in step by every write here), so lookups and the uniqueness check cost the same at any size.
"""

from __future__ import annotations

import base64
import copy
import random
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = ["Emit", "Page", "RecordError", "Records"]

Record = dict[str, Any]
Emit = Callable[[str, Record], None]
"""Called with ``(event type, record copy)`` after each change."""
Page = dict[str, Any]

_E164 = re.compile(r"^\+[1-9][0-9]{7,14}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CONTACT_FIELDS = ("firstName", "lastName", "email", "phone", "tags", "source", "externalId")


class RecordError(Exception):
    """A request the data rules refuse; ``code`` is the GraphQL ``extensions.code``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Records:
    """All records of one sandbox account, and the writes the API offers on them."""

    def __init__(
        self, emit: Emit, *, seed: int = 0, clock: Callable[[], float] = time.time
    ) -> None:
        self._emit = emit
        self._seed = seed
        self.clock = clock
        """The time source records are stamped by, in epoch seconds (tests may set their own)."""
        self.clear()

    def clear(self) -> None:
        """Forget every record; ids restart from the seed."""
        self.contacts: dict[str, Record] = {}
        self.notes: dict[str, Record] = {}
        self.tasks: dict[str, Record] = {}
        self._order: dict[str, int] = {}
        self._by: dict[str, dict[str, list[str]]] = {"email": {}, "phone": {}}
        self._counter = 0
        self._last_ms = 0
        self._rng = random.Random(self._seed)

    # -- shared ----------------------------------------------------------------------------

    def _now(self) -> str:
        ms = max(int(self.clock() * 1000), self._last_ms + 1)
        self._last_ms = ms
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    def _new(self, prefix: str, fields: Mapping[str, Any]) -> Record:
        self._counter += 1
        record_id = f"{prefix}_{self._rng.getrandbits(48):012x}"
        self._order[record_id] = self._counter
        now = self._now()
        return {"id": record_id, **fields, "createdAt": now, "updatedAt": now}

    def _changed(self, event: str, record: Record) -> Record:
        record["updatedAt"] = self._now()
        self._emit(event, copy.deepcopy(record))
        return record

    def page(self, records: list[Record], first: int | None, after: str | None,
             most: int) -> Page:
        """One page of ``records`` (in creation order) after the cursor ``after``."""
        size = first if first is not None else 20
        if not 1 <= size <= most:
            raise RecordError("BAD_USER_INPUT", f"first {size!r} must be between 1 and {most}")
        start = _decode_cursor(after) if after else 0
        ordered = sorted(records, key=lambda r: self._order[r["id"]])
        rest = [r for r in ordered if self._order[r["id"]] > start]
        nodes = rest[:size]
        end = _cursor(self._order[nodes[-1]["id"]]) if nodes else None
        return {"nodes": nodes, "pageInfo": {"hasNextPage": len(rest) > size, "endCursor": end},
                "totalCount": len(records)}

    # -- contacts --------------------------------------------------------------------------

    def contact(self, contact_id: str) -> Record:
        """:raises RecordError: NOT_FOUND."""
        found = self.contacts.get(contact_id)
        if found is None:
            raise RecordError("NOT_FOUND", f"contact {contact_id!r} not found")
        return found

    def find(self, email: str | None, phone: str | None) -> Record | None:
        """The contact with this email (else phone), or None."""
        if not email and not phone:
            raise RecordError("BAD_USER_INPUT", "give email or phone")
        for key, value in (("email", (email or "").lower()), ("phone", phone)):
            found = self._first(key, value)
            if found is not None:
                return found
        return None

    def _first(self, key: str, value: object) -> Record | None:
        """The oldest contact whose ``key`` (email or phone) is ``value`` (None for a blank)."""
        ids = self._by[key].get(value) if value and isinstance(value, str) else None
        if not ids:
            return None
        return self.contacts[min(ids, key=self._order.__getitem__)]

    def _index(self, record: Record, *, add: bool) -> None:
        for key, index in self._by.items():
            value = record.get(key)
            if not value:
                continue
            ids = index.setdefault(value, [])
            if add:
                ids.append(record["id"])
            else:
                ids.remove(record["id"])
                if not ids:
                    del index[value]

    def create_contact(self, fields: Mapping[str, Any]) -> Record:
        """Null fields are as if left out.

        :raises RecordError: BAD_USER_INPUT (no email or phone, bad value), CONFLICT.
        """
        clean = self._contact_fields(_given(fields), None)
        if not clean.get("email") and not clean.get("phone"):
            raise RecordError("BAD_USER_INPUT", "a contact needs an email or a phone")
        base: Record = {name: None for name in CONTACT_FIELDS}
        base["tags"] = []
        record = self._new("ct", {**base, **clean})
        self.contacts[record["id"]] = record
        self._index(record, add=True)
        self._emit("contact.created", copy.deepcopy(record))
        return record

    def update_contact(self, contact_id: str, fields: Mapping[str, Any]) -> Record:
        """Change the given fields; null clears one (an email or phone only if one remains).

        :raises RecordError: NOT_FOUND, BAD_USER_INPUT, CONFLICT.
        """
        record = self.contact(contact_id)
        clean = self._contact_fields(fields, contact_id)
        if all(record.get(k) == v for k, v in clean.items()):
            return record
        if not {**record, **clean}.get("email") and not {**record, **clean}.get("phone"):
            raise RecordError("BAD_USER_INPUT", "a contact needs an email or a phone")
        self._index(record, add=False)
        record.update(clean)
        self._index(record, add=True)
        return self._changed("contact.updated", record)

    def upsert_contact(self, fields: Mapping[str, Any]) -> tuple[Record, bool]:
        """Update the contact with this email (else phone), or create one; tags are added.
        Null fields are as if left out."""
        fields = _given(fields)
        found = self.find(fields.get("email"), fields.get("phone"))
        if found is None:
            return self.create_contact(fields), True
        merged = dict(fields)
        if "tags" in fields:
            merged["tags"] = _union(found["tags"], fields["tags"] or [])
        return self.update_contact(found["id"], merged), False

    def delete_contact(self, contact_id: str) -> Record:
        """Delete a contact with its notes and tasks (one ``contact.deleted`` event)."""
        record = self.contact(contact_id)
        del self.contacts[contact_id]
        self._index(record, add=False)
        for bucket in (self.notes, self.tasks):
            for key in [k for k, r in bucket.items() if r["contactId"] == contact_id]:
                del bucket[key]
        self._emit("contact.deleted", copy.deepcopy(record))
        return record

    def tag(self, contact_id: str, tags: list[str], *, add: bool) -> Record:
        """Add or remove tags by name; no change, no event."""
        record = self.contact(contact_id)
        new = _union(record["tags"], tags) if add else [t for t in record["tags"] if t not in tags]
        if new == record["tags"]:
            return record
        record["tags"] = new
        return self._changed("contact.updated", record)

    def _contact_fields(self, fields: Mapping[str, Any], own_id: str | None) -> Record:
        clean = {k: v for k, v in fields.items() if k in CONTACT_FIELDS}
        if clean.get("email"):
            clean["email"] = str(clean["email"]).strip().lower()
            if not _EMAIL.match(clean["email"]):
                raise RecordError("BAD_USER_INPUT", f"email {clean['email']!r} is not valid")
        if clean.get("phone") and not _E164.match(str(clean["phone"])):
            raise RecordError("BAD_USER_INPUT", f"phone {clean['phone']!r} is not E.164")
        if "tags" in clean:
            clean["tags"] = _union([], clean["tags"] or [])
        for key in ("email", "phone"):
            value = clean.get(key)
            other = self._first(key, value)
            if other is not None and other["id"] != own_id:
                raise RecordError("CONFLICT", f"{key} {value!r} belongs to contact {other['id']!r}")
        return clean

    # -- notes -----------------------------------------------------------------------------

    def create_note(self, contact_id: str, body: str) -> Record:
        """:raises RecordError: NOT_FOUND (contact), BAD_USER_INPUT (empty body)."""
        self.contact(contact_id)
        if not body.strip():
            raise RecordError("BAD_USER_INPUT", "a note needs a body")
        record = self._new("nt", {"contactId": contact_id, "body": body})
        self.notes[record["id"]] = record
        self._emit("note.created", copy.deepcopy(record))
        return record

    def update_note(self, note_id: str, body: str) -> Record:
        """:raises RecordError: NOT_FOUND, BAD_USER_INPUT."""
        record = self.notes.get(note_id)
        if record is None:
            raise RecordError("NOT_FOUND", f"note {note_id!r} not found")
        if not body.strip():
            raise RecordError("BAD_USER_INPUT", "a note needs a body")
        if record["body"] == body:
            return record
        record["body"] = body
        return self._changed("note.updated", record)

    # -- tasks -----------------------------------------------------------------------------

    def task(self, task_id: str) -> Record:
        """:raises RecordError: NOT_FOUND."""
        found = self.tasks.get(task_id)
        if found is None:
            raise RecordError("NOT_FOUND", f"task {task_id!r} not found")
        return found

    def create_task(self, contact_id: str, fields: Mapping[str, Any]) -> Record:
        """:raises RecordError: NOT_FOUND (contact), BAD_USER_INPUT (empty title)."""
        self.contact(contact_id)
        if not str(fields.get("title") or "").strip():
            raise RecordError("BAD_USER_INPUT", "a task needs a title")
        record = self._new("tk", {
            "contactId": contact_id, "title": fields["title"],
            "description": fields.get("description"), "dueAt": fields.get("dueAt"),
            "completed": False, "completedAt": None,
        })
        self.tasks[record["id"]] = record
        self._emit("task.created", copy.deepcopy(record))
        return record

    def update_task(self, task_id: str, fields: Mapping[str, Any]) -> Record:
        """Change title, description, dueAt or completed; completing emits task.completed."""
        record = self.task(task_id)
        clean = {k: v for k, v in fields.items() if k in ("title", "description", "dueAt")}
        if "title" in clean and not str(clean["title"] or "").strip():
            raise RecordError("BAD_USER_INPUT", "a task needs a title")
        done = fields.get("completed")
        completing = done is True and not record["completed"]
        if done is not None and done != record["completed"]:
            clean["completed"] = done
            clean["completedAt"] = self._now() if done else None
        if all(record.get(k) == v for k, v in clean.items()):
            return record
        record.update(clean)
        return self._changed("task.completed" if completing else "task.updated", record)

    def complete_task(self, task_id: str) -> Record:
        """Mark done; a done task stays as it is (no event)."""
        return self.update_task(task_id, {"completed": True})


def _given(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The fields with a value (null ones dropped)."""
    return {k: v for k, v in fields.items() if v is not None}


def _union(old: list[str], new: list[str]) -> list[str]:
    out = list(old)
    for tag in new:
        if tag not in out:
            out.append(tag)
    return out


def _cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"sp:{position}".encode()).decode()


def _decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        prefix, _, number = text.partition(":")
        if prefix != "sp":
            raise ValueError(cursor)
        return int(number)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RecordError("BAD_USER_INPUT", f"after {cursor!r} is not a cursor") from exc
