"""The records of the spec-answered operations: one ordered collection per path, such as
``opportunities`` or ``locations/<locationId>/customFields`` (see
:mod:`connector.sandbox.specroutes`). Not thread-safe: only the server's loop touches it."""

from __future__ import annotations

from typing import Any

__all__ = ["Resources"]

Record = dict[str, Any]


class Resources:
    """Records by collection path and id, in the order they were made."""

    def __init__(self) -> None:
        self._collections: dict[str, dict[str, Record]] = {}

    def __repr__(self) -> str:
        return f"Resources({ {k: len(v) for k, v in self._collections.items()} })"

    def put(self, collection: str, record_id: str, record: Record) -> None:
        """Store ``record`` as ``record_id`` of ``collection``."""
        self._collections.setdefault(collection, {})[record_id] = record

    def find(self, collection: str, record_id: str) -> tuple[str, Record] | None:
        """The collection holding ``record_id`` (``collection`` or one just below it: a delete
        of ``calendars/events/{id}`` finds an appointment) and the record; None when none does."""
        found = self._collections.get(collection, {}).get(record_id)
        if found is not None:
            return collection, found
        prefix = collection + "/"
        for key, records in self._collections.items():
            if key.startswith(prefix) and "/" not in key[len(prefix):] and record_id in records:
                return key, records[record_id]
        return None

    def remove(self, collection: str, record_id: str) -> Record | None:
        """Forget a record; the record, or None when there was none."""
        return self._collections.get(collection, {}).pop(record_id, None)

    def records(self, collection: str) -> list[Record]:
        """The collection's records, oldest first."""
        return list(self._collections.get(collection, {}).values())

    def count(self) -> int:
        """How many records all collections hold."""
        return sum(len(records) for records in self._collections.values())
