"""Where a character of a YAML value stands in its file: expression errors at file:line:col.

A recipe value such as ``body: "Hi {{ trigger.nmae }}"`` is parsed as a template, and
expression errors know their column *inside the value's text*. :func:`locate_column` turns that
into a file position when it can be known for sure: the value is written on one line (plain or
quoted, with nothing escaped before that column) or as a literal block (``|``). Otherwise the
value's own position is kept.
"""

from __future__ import annotations

from connector.documents.document import Document, JsonPath
from connector.errors import Location

__all__ = ["locate_column"]


def locate_column(
    doc: Document, source: str, path: JsonPath, text: str | None, column: int
) -> Location:
    """Where character ``column`` (1-based) of ``text``, the value at ``path``, stands in the
    file whose text is ``source``; the value's own position when that is not sure."""
    where = doc.locate(path)
    if text is None or column <= 0:
        return where
    exact = _file_position(source, where, text, column)
    return where if exact is None else Location(where.file, exact[0], exact[1], where.pointer)


def _file_position(source: str, where: Location, text: str, column: int) -> tuple[int, int] | None:
    """The file (line, column) of ``column`` (1-based, in ``text``) when ``text`` stands at
    ``where`` on one line (plain or quoted, nothing escaped before that column) or as a
    literal block (``|``); else None."""
    if not source or where.line is None or where.column is None:
        return None
    lines = source.splitlines()
    if where.line > len(lines):
        return None
    raw = lines[where.line - 1]
    start = where.column - 1
    prefix = text[: column - 1]
    if raw[start : start + 1] == "|":
        return _block_position(lines, where.line, prefix)
    if raw[start : start + 1] in ("'", '"'):
        start += 1
    if "\n" in prefix or raw[start : start + len(prefix)] != prefix:
        return None
    return where.line, start + len(prefix) + 1


def _block_position(lines: list[str], line: int, prefix: str) -> tuple[int, int] | None:
    """Where ``prefix`` ends in the literal block scalar whose indicator is on ``line``."""
    offset = prefix.count("\n")
    last = prefix.rsplit("\n", 1)[-1]
    number = line + 1 + offset
    if number > len(lines):
        return None
    raw = lines[number - 1]
    indent = len(raw) - len(raw.lstrip(" "))
    if raw[indent : indent + len(last)] != last:
        return None
    return number, indent + len(last) + 1
