"""Copy a whole store into another one: ``ghl-connector store migrate --from A --to B``.

The usual use is an SQLite state file into a new PostgreSQL database, when one ``serve``
becomes several. Both stores are opened (and so brought to the newest schema) first; the
destination must be empty, but for leases and the footprint salt a ``serve`` or ``worker``
that opened it once made (the source's salt replaces it). Every table of
:mod:`connector.storage.tables` is copied in
foreign-key order inside one destination transaction, so a failure leaves the destination as
empty as it was; the source is read inside one transaction too (a consistent copy: on SQLite,
writers wait until it is done, so stop ``serve`` first). PostgreSQL's id sequences are then
moved past the copied ids.
"""

from __future__ import annotations

from collections.abc import Callable

from connector.errors import StoreError
from connector.store import Store

__all__ = ["copy_store", "row_counts"]

_BATCH = 1000


def _tables() -> list[tuple[str, list[str], list[str], bool]]:
    """(name, columns, primary key, has an autoincrementing id) in foreign-key order."""
    from sqlalchemy import Integer

    from connector.storage.tables import metadata

    out = []
    for table in metadata.sorted_tables:
        key = [c.name for c in table.primary_key.columns]
        serial = (
            key == ["id"]
            and isinstance(table.c.id.type, Integer)
            and table.c.id.autoincrement is not False
        )
        out.append((table.name, [c.name for c in table.columns], key, serial))
    return out


def row_counts(store: Store, only: set[str] | None = None) -> dict[str, int]:
    """How many rows each table of the store holds (of those in ``only``, when given: a store
    not yet upgraded lacks the newer tables)."""
    return {
        name: int(store.query(f"SELECT COUNT(*) AS n FROM {name}")[0][0])
        for name, _, _, _ in _tables()
        if only is None or name in only
    }


def copy_store(
    source: Store, target: Store, *, progress: Callable[[str, int], None] | None = None
) -> dict[str, int]:
    """Copy every row of ``source`` into the empty ``target``; returns rows copied per table.

    :raises StoreError: the target is not empty, or either store failed (the target is left
        as it was).
    """
    if source.url == target.url:
        raise StoreError(f"{target.where}: --from and --to are the same store")
    filled = {name: n for name, n in row_counts(target).items() if n and name != "leases"}
    if filled and filled != {"footprint_salt": 1}:
        some = ", ".join(f"{name} ({n})" for name, n in sorted(filled.items()))
        raise StoreError(
            f"{target.where}: not empty: {some} [copy into a new database or schema]"
        )
    copied: dict[str, int] = {}
    with source.transaction() as read, target.transaction() as write:
        write.execute("DELETE FROM leases")
        # A serve or worker that opened the target once made its own footprint salt: the
        # source's replaces it (the copied footprints were digested with the source's).
        write.execute("DELETE FROM footprint_salt")
        for name, columns, key, serial in _tables():
            cursor = read.execute(
                f"SELECT {', '.join(columns)} FROM {name} ORDER BY {', '.join(key)}"
            )
            insert = (
                f"INSERT INTO {name} ({', '.join(columns)})"
                f" VALUES ({', '.join('?' * len(columns))})"
            )
            count = 0
            while True:
                rows = cursor.fetchmany(_BATCH)
                if not rows:
                    break
                write.executemany(insert, [tuple(_plain(v) for v in row) for row in rows])
                count += len(rows)
            if serial and target.dialect == "postgresql":
                write.execute(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'),"
                    f" COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM {name}"
                )
            copied[name] = count
            if progress is not None:
                progress(name, count)
    return copied


def _plain(value: object) -> object:
    """A value as the target driver takes it (memoryview from a driver -> bytes)."""
    return bytes(value) if isinstance(value, memoryview) else value
