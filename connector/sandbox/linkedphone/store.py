"""The LinkedPhone sandbox's state: contacts, tasks and notes, their ids and timestamps, and the
indexes that keep every request's cost independent of how many records there are.

Every record carries ``created_at`` and ``updated_at`` (ISO 8601 UTC, milliseconds). The clock
never repeats a value, so ``(updated_at, id)`` orders changes exactly and a polling cursor on
``updated_at`` never skips a record. Lists page in that order (see ``paging.py``: each kind has a
:class:`ChangeLog` fed by :meth:`Store.stamp`). Nothing here is thread-safe: the app runs on one
loop.

Contacts are indexed by lower-case email and by phone, tasks and notes by contact: add records
with :meth:`Store.add_contact`, :meth:`Store.add_task` and :meth:`Store.add_note`, and change a
contact's email or phone with :meth:`Store.set_contact_fields`, never by writing the tables.
"""

from __future__ import annotations

import random
import string
import time
from collections.abc import Callable
from datetime import UTC, datetime

from connector.sandbox.linkedphone.answers import ApiError
from connector.sandbox.linkedphone.paging import ChangeLog, Record, page

__all__ = ["Record", "Store", "page"]

_KINDS = {"ct_": "contacts", "tk_": "tasks", "nt_": "notes"}
"""Which table a record id's prefix belongs to."""
_ALPHABET = string.ascii_letters + string.digits
_ALPHABET_BITS = len(_ALPHABET).bit_length()


class Store:
    """All records of one sandbox account.

    :param seed: seeds the id generator, so the same requests give the same ids.
    :param clock: the wall clock in seconds (tests may pass their own).
    """

    def __init__(self, seed: int = 0, *, clock: Callable[[], float] = time.time) -> None:
        self._seed = seed
        self.clock = clock
        """The time source records are stamped by (tests may set their own)."""
        self.clear()

    def clear(self) -> None:
        """Forget every record and restart the id generator from the seed."""
        self.contacts: dict[str, Record] = {}
        self._by_email: dict[str, list[str]] = {}
        self._by_phone: dict[str, list[str]] = {}
        self._order: dict[str, int] = {}
        self.tasks: dict[str, Record] = {}
        self.notes: dict[str, Record] = {}
        self.changes = {kind: ChangeLog(getattr(self, kind)) for kind in _KINDS.values()}
        """Per table (``contacts``, ``tasks``, ``notes``): the order records last changed in."""
        self._of_contact: dict[str, dict[str, list[str]]] = {"tasks": {}, "notes": {}}
        self._rng = random.Random(self._seed)
        self._last_ms = 0
        self._second = -1
        self._prefix = ""

    def now(self) -> str:
        """A timestamp later than every one handed out before (at least 1 ms later)."""
        ms = max(int(self.clock() * 1000), self._last_ms + 1)
        self._last_ms = ms
        second = ms // 1000
        if second != self._second:  # formatting the date is the costly part: once a second
            stamp = datetime.fromtimestamp(second, UTC)
            self._second, self._prefix = second, stamp.strftime("%Y-%m-%dT%H:%M:%S.")
        return f"{self._prefix}{ms % 1000:03d}Z"

    def new_id(self, prefix: str) -> str:
        """A fresh id such as ``ct_8fK2mQ7xV1pL``.

        The same draws as ``rng.choice(_ALPHABET)`` twelve times (so seeds give the same ids as
        before), without its per-call overhead.
        """
        bits = self._rng.getrandbits
        chars = []
        for _ in range(12):
            n = bits(_ALPHABET_BITS)
            while n >= len(_ALPHABET):
                n = bits(_ALPHABET_BITS)
            chars.append(_ALPHABET[n])
        return prefix + "".join(chars)

    def contact(self, contact_id: str) -> Record:
        """The contact ``contact_id``.

        :raises ApiError: 404 when there is none.
        """
        found = self.contacts.get(contact_id)
        if found is None:
            raise ApiError(404, "not_found", f"contact {contact_id!r} not found")
        return found

    def task(self, task_id: str) -> Record:
        """The task ``task_id``.

        :raises ApiError: 404 when there is none.
        """
        found = self.tasks.get(task_id)
        if found is None:
            raise ApiError(404, "not_found", f"task {task_id!r} not found")
        return found

    def find_contact(self, *, email: str | None = None, phone: str | None = None) -> Record | None:
        """The oldest contact with this email (any case) or this phone, or None."""
        found = [*self._by_email.get(email.lower(), ())] if email else []
        if phone:
            found += self._by_phone.get(phone, ())
        if not found:
            return None
        return self.contacts[min(found, key=self._order.__getitem__)]

    def add_contact(self, contact: Record) -> Record:
        """Store a new contact (with its ``id``, ``email`` and ``phone``) and index it."""
        self.contacts[contact["id"]] = contact
        self._order[contact["id"]] = len(self._order)
        self._index(contact, add=True)
        return contact

    def add_task(self, task: Record) -> Record:
        """Store a new task (with its ``id`` and ``contact_id``) and index it by contact."""
        return self._add_child("tasks", task)

    def add_note(self, note: Record) -> Record:
        """Store a new note (with its ``id`` and ``contact_id``) and index it by contact."""
        return self._add_child("notes", note)

    def _add_child(self, kind: str, record: Record) -> Record:
        table: dict[str, Record] = getattr(self, kind)
        table[record["id"]] = record
        self._of_contact[kind].setdefault(record["contact_id"], []).append(record["id"])
        return record

    def of_contact(self, kind: str, contact_id: str) -> list[Record]:
        """The tasks or notes (``kind``) of one contact, oldest first."""
        table: dict[str, Record] = getattr(self, kind)
        return [table[i] for i in self._of_contact[kind].get(contact_id, ())]

    def set_contact_fields(self, contact: Record, fields: Record) -> None:
        """Change a stored contact's fields, keeping the email and phone index in step."""
        self._index(contact, add=False)
        contact.update(fields)
        self._index(contact, add=True)

    def _index(self, contact: Record, *, add: bool) -> None:
        pairs = ((self._by_email, (contact["email"] or "").lower()),
                 (self._by_phone, contact["phone"]))
        for index, key in pairs:
            if not key:
                continue
            ids = index.setdefault(key, [])
            if add:
                ids.append(contact["id"])
            else:
                ids.remove(contact["id"])
                if not ids:
                    del index[key]

    def stamp(self, record: Record, *, created: bool = False) -> Record:
        """Set ``updated_at`` (and ``created_at`` when ``created``) to :meth:`now`."""
        log = self.changes.get(_KINDS.get(str(record.get("id", ""))[:3], ""))
        if log is not None:
            log.before_stamp()
        now = self.now()
        if created:
            record["created_at"] = now
        record["updated_at"] = now
        if log is not None:
            log.stamped(record)
        return record

    def counts(self) -> dict[str, int]:
        """How many records of each kind there are."""
        return {"contacts": len(self.contacts), "tasks": len(self.tasks), "notes": len(self.notes)}
