"""The LinkedPhone sandbox's state: contacts, tasks and notes, their ids and timestamps, and the
cursor paging every list endpoint shares.

Every record carries ``created_at`` and ``updated_at`` (ISO 8601 UTC, milliseconds). The clock
never repeats a value, so ``(updated_at, id)`` orders changes exactly and a polling cursor on
``updated_at`` never skips a record. Lists page in that order; a page cursor is the opaque
(base64 JSON) key of the last record sent. Nothing here is thread-safe: the app runs on one loop.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import string
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from connector.sandbox.linkedphone.answers import ApiError

__all__ = ["Record", "Store", "page"]

Record = dict[str, Any]
_ALPHABET = string.ascii_letters + string.digits


class Store:
    """All records of one sandbox account.

    :param seed: seeds the id generator, so the same requests give the same ids.
    :param wall: the wall clock in seconds (tests of the clock may pass their own).
    """

    def __init__(self, seed: int = 0, *, wall: Callable[[], float] = time.time) -> None:
        self._seed = seed
        self._wall = wall
        self.clear()

    def clear(self) -> None:
        """Forget every record and restart the id generator from the seed."""
        self.contacts: dict[str, Record] = {}
        self.tasks: dict[str, Record] = {}
        self.notes: dict[str, Record] = {}
        self._rng = random.Random(self._seed)
        self._last_ms = 0

    def now(self) -> str:
        """A timestamp later than every one handed out before (at least 1 ms later)."""
        ms = max(int(self._wall() * 1000), self._last_ms + 1)
        self._last_ms = ms
        stamp = datetime.fromtimestamp(ms / 1000, UTC)
        return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"

    def new_id(self, prefix: str) -> str:
        """A fresh id such as ``ct_8fK2mQ7xV1pL``."""
        return prefix + "".join(self._rng.choice(_ALPHABET) for _ in range(12))

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
        """The contact with this email (any case) or this phone, or None."""
        for contact in self.contacts.values():
            if email and (contact["email"] or "").lower() == email.lower():
                return contact
            if phone and contact["phone"] == phone:
                return contact
        return None

    def stamp(self, record: Record, *, created: bool = False) -> Record:
        """Set ``updated_at`` (and ``created_at`` when ``created``) to :meth:`now`."""
        now = self.now()
        if created:
            record["created_at"] = now
        record["updated_at"] = now
        return record

    def counts(self) -> dict[str, int]:
        """How many records of each kind there are."""
        return {"contacts": len(self.contacts), "tasks": len(self.tasks), "notes": len(self.notes)}


def page(
    records: Iterable[Record], *, limit: int, cursor: str | None, since: str | None
) -> tuple[list[Record], str | None]:
    """One page of ``records`` in ``(updated_at, id)`` order and the cursor of the next page.

    :param cursor: the previous page's ``next_cursor`` (records after its key).
    :param since: keep records whose ``updated_at`` is at or after this ISO 8601 time.
    :raises ApiError: 400 when ``cursor`` or ``since`` cannot be read.
    """
    after = _decode_cursor(cursor) if cursor else None
    floor = _parse_time(since) if since else None
    chosen = sorted(
        (r for r in records if floor is None or _parse_time(r["updated_at"]) >= floor),
        key=_key,
    )
    if after is not None:
        chosen = [r for r in chosen if _key(r) > after]
    items = chosen[:limit]
    more = len(chosen) > limit
    return [dict(r) for r in items], _encode_cursor(_key(items[-1])) if more else None


def _key(record: Record) -> tuple[str, str]:
    return str(record["updated_at"]), str(record["id"])


def _encode_cursor(key: tuple[str, str]) -> str:
    raw = json.dumps(list(key), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, "invalid_cursor", f"cursor {cursor!r} is not valid") from exc
    if not (isinstance(key, list) and len(key) == 2 and all(isinstance(k, str) for k in key)):
        raise ApiError(400, "invalid_cursor", f"cursor {cursor!r} is not valid")
    return key[0], key[1]


def _parse_time(text: str) -> datetime:
    """An ISO 8601 time (``Z`` or an offset; naive means UTC) as an aware datetime."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ApiError(400, "invalid_request", f"{text!r} is not an ISO 8601 time") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)
