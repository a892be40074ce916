"""The LinkedPhone sandbox's list paging: records in ``(updated_at, id)`` order, the opaque page
cursor (base64 JSON of the last key sent), the ``updated_since`` floor, and :class:`ChangeLog`,
the order in which the records of one kind last changed.

The store's clock never repeats a value and every change stamps a record with a later
``updated_at`` than any before, so appending ``(updated_at, id)`` on each stamp keeps a list
sorted without ever sorting it. A record's older keys stay behind as stale entries, skipped when
read and dropped when the log is rebuilt. A page is then a binary search and a short walk, at
any number of records, instead of a sort of all of them per request.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from connector.sandbox.linkedphone.answers import ApiError

__all__ = ["ChangeLog", "Page", "Record", "page"]

Record = dict[str, Any]
Page = tuple[list[Record], str | None]
Key = tuple[str, str]
_SLACK = 1024
"""Stale entries a log may hold beyond its live records before it is rebuilt."""


def page(records: Iterable[Record], *, limit: int, cursor: str | None, since: str | None) -> Page:
    """One page of ``records`` in ``(updated_at, id)`` order and the cursor of the next page
    (for a few records, such as one contact's: they are sorted here).

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
    return _cut(chosen, limit)


class ChangeLog:
    """The keys of one kind of record (contacts, tasks or notes) in the order they last changed.

    :param table: the records by id, as the store holds them (read, never written, here).
    """

    def __init__(self, table: Mapping[str, Record]) -> None:
        self._table = table
        self._keys: list[Key] = []

    def before_stamp(self) -> None:
        """Called before a record of this kind is stamped: rebuild the log when it holds more
        stale entries than live records (plus some slack), so it stays in proportion."""
        if len(self._keys) > 2 * len(self._table) + _SLACK:
            self._keys = sorted(_key(r) for r in self._table.values())

    def stamped(self, record: Record) -> None:
        """Called after ``record`` got a new ``updated_at`` (later than every earlier one)."""
        self._keys.append((record["updated_at"], record["id"]))

    def page(
        self,
        *,
        limit: int,
        cursor: str | None,
        since: str | None,
        keep: Callable[[Record], bool] | None = None,
    ) -> Page:
        """One page of the records ``keep`` accepts (all when None), as :func:`page` gives it.

        :raises ApiError: 400 when ``cursor`` or ``since`` cannot be read.
        """
        after = _decode_cursor(cursor) if cursor else None
        floor = _parse_time(since) if since else None
        keys, table = self._keys, self._table
        start = 0
        if floor is not None:
            start = bisect.bisect_left(keys, floor, key=lambda k: _parse_time(k[0]))
        if after is not None:
            start = max(start, bisect.bisect_right(keys, after))
        chosen: list[Record] = []
        for index in range(start, len(keys)):
            updated_at, record_id = keys[index]
            record = table.get(record_id)
            if record is None or record["updated_at"] != updated_at:
                continue  # stale: the record changed again later (or is not stored yet)
            if keep is None or keep(record):
                chosen.append(record)
                if len(chosen) > limit:
                    break
        return _cut(chosen, limit)


def _cut(chosen: list[Record], limit: int) -> Page:
    """The first ``limit`` of ``chosen`` (copies) and, when more follow, the next cursor."""
    items = chosen[:limit]
    more = len(chosen) > limit
    return [dict(r) for r in items], _encode_cursor(_key(items[-1])) if more else None


def _key(record: Record) -> Key:
    return str(record["updated_at"]), str(record["id"])


def _encode_cursor(key: Key) -> str:
    raw = json.dumps(list(key), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_cursor(cursor: str) -> Key:
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
