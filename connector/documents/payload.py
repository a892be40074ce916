"""Reading untrusted JSON payloads (webhook bodies, ``call --input``) within limits.

:func:`load_json` is ``json.loads`` with the limits :mod:`connector.documents.document` puts on
YAML, so
no outside input reaches Python's own limits (which raise ``ValueError`` or ``RecursionError``
from deep inside the parser) or builds values the rest of the connector cannot store:

- bytes must be UTF-8 (``json.loads`` would also take UTF-16 and UTF-32);
- at most ``max_bytes`` bytes, nested at most :data:`~connector.documents.document.MAX_DEPTH` deep;
- integers of at most :data:`~connector.documents.document.MAX_INT_DIGITS` digits;
- no ``NaN``/``Infinity`` and no number too large for a float (not JSON, and not storable);
- no lone surrogate escapes (``"\\ud800"``), which no UTF-8 text or SQLite column can hold.

Every refusal is a :class:`~connector.errors.DocumentError` naming the source, and the line
and column or the path where that applies.
"""

from __future__ import annotations

import functools
import json
import math
import re
from typing import Any

from connector.documents.document import MAX_DEPTH, MAX_INT_DIGITS, JsonPath, pointer
from connector.errors import DocumentError, Location, Problem

__all__ = ["MAX_BYTES", "load_json"]

MAX_BYTES = 16 * 1024 * 1024
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class _Refused(ValueError):
    """A parser hook refuses the number ``token`` (internal: becomes a DocumentError)."""

    def __init__(self, token: str, message: str) -> None:
        super().__init__(message)
        self.token = token


def load_json(
    data: str | bytes,
    *,
    source: str | None = None,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    max_digits: int = MAX_INT_DIGITS,
) -> Any:  # noqa: ANN401  # parsed, not yet validated: the caller checks its shape
    """Parse one JSON text within limits.

    :param data: the text, or its UTF-8 bytes.
    :param source: the name errors give (a file, ``body``, ``--input``).
    :raises DocumentError: not UTF-8, not JSON, or over a limit.
    """
    size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise _error(source, f"{size} bytes; the limit is {max_bytes}")
    if isinstance(data, bytes):
        if b"\x00" in data:  # never in JSON text; UTF-16 and UTF-32 are full of them
            raise _error(source, "not UTF-8 text (it holds NUL bytes: UTF-16 or UTF-32?)")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _error(source, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    else:
        text = data
    try:
        value = _decoder(max_digits).decode(text)
    except json.JSONDecodeError as exc:
        raise _error(source, f"invalid JSON: {exc.msg}", exc.lineno, exc.colno) from None
    except _Refused as exc:
        raise _error(source, str(exc), *_position(text, exc.token)) from None
    except RecursionError:
        raise _error(source, f"nesting deeper than {max_depth} levels") from None
    _walk(value, source, max_depth, strings=_SURROGATE_ESCAPE.search(text) is not None)
    return value


@functools.lru_cache(maxsize=8)
def _decoder(max_digits: int) -> json.JSONDecoder:
    """The decoder holding numbers to ``max_digits`` (made once: ``json.loads`` with hooks
    would make one per call)."""
    return json.JSONDecoder(parse_int=_integer(max_digits), parse_float=_float,
                            parse_constant=_constant)  # fmt: skip


def _integer(max_digits: int) -> Any:  # noqa: ANN401  # json's hook type
    def parse(text: str) -> int:
        digits = len(text.lstrip("-"))
        if digits > max_digits:
            raise _Refused(text, f"an integer of {digits} digits; the limit is {max_digits}")
        return int(text)

    return parse


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        shown = text if len(text) <= 20 else text[:20] + "..."
        raise _Refused(text, f"the number {shown} is too large for a float")
    return value


def _constant(text: str) -> float:
    raise _Refused(text, f"{text} is not JSON")


def _position(text: str, token: str) -> tuple[int | None, int | None]:
    """The line and column of the first ``token`` that stands as a value (not inside text)."""
    found = re.search(r"(?:^|[\[:,])\s*(" + re.escape(token) + r")(?![\w.])", text)
    if found is None:
        return None, None
    start = found.start(1)
    return text.count("\n", 0, start) + 1, start - text.rfind("\n", 0, start)


def _walk(value: Any, source: str | None, max_depth: int, *, strings: bool) -> None:  # noqa: ANN401
    """Check depth (and, when the text escapes surrogates, every string) without recursion."""
    stack: list[tuple[Any, JsonPath]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, dict | list):
            if len(path) >= max_depth:
                raise _error(source, f"nesting deeper than {max_depth} levels")
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                if strings and isinstance(key, str):
                    _check_text(key, source, path)
                stack.append((child, (*path, key)))
        elif strings and isinstance(item, str):
            _check_text(item, source, path)


def _check_text(text: str, source: str | None, path: JsonPath) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _error(source, "a lone surrogate escape (\\ud800-\\udfff) is not text",
                     path=path) from None


def _error(source: str | None, message: str, line: int | None = None,
           column: int | None = None, *, path: JsonPath = ()) -> DocumentError:
    return DocumentError([Problem(Location(source, line, column, pointer(path)), message)])
