"""The PostgreSQL side of :class:`~connector.store.Store`: a psycopg 3 connection that takes the
same SQL as SQLite.

The connector's SQL is written once, in the subset both engines share (``?`` placeholders,
``ON CONFLICT ... DO UPDATE/NOTHING``, ``RETURNING``, ``COALESCE``, ``CASE``, ``substr``). This
module turns ``?`` into psycopg's ``%s`` (and a literal ``%`` into ``%%``), once per statement
text, and returns rows that index by position and by column name, like ``sqlite3.Row``. The
connection comes from SQLAlchemy's pool (``engine.raw_connection()``), so URLs, pooling and
Alembic share one engine, while the hot paths pay no SQL-compilation cost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

__all__ = ["PgRow", "PgSession", "translate"]


@lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """``?`` placeholders to ``%s`` and ``%`` to ``%%``, outside quoted literals and names."""
    out: list[str] = []
    quote = ""
    for char in sql:
        if quote:
            out.append("%%" if char == "%" else char)
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
            out.append(char)
        elif char == "?":
            out.append("%s")
        elif char == "%":
            out.append("%%")
        else:
            out.append(char)
    return "".join(out)


class PgRow(tuple[Any, ...]):
    """A result row: a tuple that also answers ``row["column"]`` and ``row.keys()``."""

    __slots__ = ()
    _index: dict[str, int]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            try:
                return tuple.__getitem__(self, self._index[key])
            except KeyError:
                raise IndexError(f"no such column: {key!r}") from None
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        """The column names, in order."""
        return list(self._index)


def _row_factory(cursor: Any) -> Callable[[Sequence[Any]], PgRow]:
    """psycopg row factory: one :class:`PgRow` subclass per result shape."""
    names = [column.name for column in cursor.description or ()]
    shape = type("Row", (PgRow,), {"__slots__": (), "_index": {n: i for i, n in enumerate(names)}})
    return lambda values: shape(values)


class PgCursor:
    """What ``execute`` returns: ``rowcount``, ``fetchone``, ``fetchall`` (as sqlite3's)."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        """Rows changed by the statement (or returned, for a SELECT)."""
        return self._cursor.rowcount

    def fetchone(self) -> Any:
        """The next row, or None."""
        return self._cursor.fetchone() if self._cursor.description else None

    def fetchall(self) -> list[Any]:
        """The remaining rows."""
        return list(self._cursor.fetchall()) if self._cursor.description else []

    def fetchmany(self, size: int = 100, /) -> list[Any]:
        """Up to ``size`` more rows."""
        return list(self._cursor.fetchmany(size)) if self._cursor.description else []


class PgSession:
    """One psycopg connection in autocommit mode; :class:`~connector.store.Store` sends
    ``BEGIN``/``COMMIT`` itself, as it does on SQLite."""

    def __init__(self, raw: Any) -> None:
        raw.autocommit = True
        raw.row_factory = _row_factory
        self.raw: psycopg.Connection[Any] = raw

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> PgCursor:
        """Run one statement written with ``?`` placeholders."""
        return PgCursor(self.raw.execute(translate(sql), tuple(parameters)))

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> PgCursor:
        """Run one statement once per parameter tuple."""
        cursor = self.raw.cursor()
        cursor.executemany(translate(sql), [tuple(p) for p in parameters])
        return PgCursor(cursor)

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open (INTRANS, INERROR)."""
        import psycopg.pq

        return bool(self.raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE)
