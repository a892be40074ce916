"""The built-in expression filters and the registry shape plugins extend.

A registry is a plain mapping ``name -> FilterSpec``. :data:`BUILTIN_FILTERS` holds the
filters below; plugins add theirs through the ``connector_register_filters`` hook, and the
merged mapping is what :func:`connector.expressions.template.parse_template` checks names against.

Every filter takes a JSON value (plus its arguments) and returns a JSON value. Filters that
work on text pass ``null`` through unchanged, so ``{{ trigger.email | lower | default('') }}``
works when the field is missing. Wrong types raise :class:`ExpressionError` naming the filter.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType

from connector import hookimpl
from connector.expressions.dates import parse_datetime, to_epoch_ms, to_iso
from connector.expressions.syntax import (
    JSON,
    MAX_ITEMS,
    MAX_STRING_LENGTH,
    ExpressionError,
    FilterSpec,
    json_type,
    to_text,
)

__all__ = ["BUILTIN_FILTERS", "FilterSpec"]

_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
_INTEGER = re.compile(r"-?[0-9]+")
_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_NOT_DIGITS = re.compile(r"[^0-9]")


def _wrong(name: str, expected: str, value: object) -> ExpressionError:
    return ExpressionError(f"filter {name!r} expects {expected}, got {json_type(value)}")


def _text_arg(name: str, value: JSON) -> str:
    if not isinstance(value, str):
        raise ExpressionError(f"filter {name!r}: argument must be a string, got {json_type(value)}")
    return value


def _int_arg(name: str, value: JSON) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise ExpressionError(f"filter {name!r}: argument must be an integer, got {json_type(value)}")


def _on_text(name: str, func: Callable[[str], JSON]) -> Callable[[JSON], JSON]:
    """A one-argument filter that applies ``func`` to strings and passes null through."""

    def apply(value: JSON) -> JSON:
        if value is None:
            return None
        if not isinstance(value, str):
            raise _wrong(name, "a string", value)
        return func(value)

    return apply


def _default(value: JSON, fallback: JSON) -> JSON:
    return fallback if value is None or value == "" else value


def _join(value: JSON, sep: JSON = "") -> JSON:
    if value is None:
        return None
    if not isinstance(value, list):
        raise _wrong("join", "a list", value)
    glue = _text_arg("join", sep)
    texts = [to_text(item) for item in value]
    if sum(map(len, texts)) + len(glue) * max(len(texts) - 1, 0) > MAX_STRING_LENGTH:
        raise ExpressionError(f"filter 'join': result longer than {MAX_STRING_LENGTH} characters")
    return glue.join(texts)


def _split(value: JSON, sep: JSON = None) -> JSON:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _wrong("split", "a string", value)
    parts: list[JSON] = []
    if sep is None:
        parts.extend(value.split())
        return parts
    cut = _text_arg("split", sep)
    if not cut:
        raise ExpressionError("filter 'split': the separator must not be empty")
    if value.count(cut) >= MAX_ITEMS:
        raise ExpressionError(f"filter 'split': result has more than {MAX_ITEMS} items")
    parts.extend(value.split(cut))
    return parts


def _first(value: JSON) -> JSON:
    if value is None or isinstance(value, list | str):
        return value[0] if value else None
    raise _wrong("first", "a list or a string", value)


def _last(value: JSON) -> JSON:
    if value is None or isinstance(value, list | str):
        return value[-1] if value else None
    raise _wrong("last", "a list or a string", value)


def _length(value: JSON) -> JSON:
    if value is None:
        return 0
    if isinstance(value, list | str | dict):
        return len(value)
    raise _wrong("length", "a list, a string or an object", value)


def _replace(value: JSON, old: JSON, new: JSON) -> JSON:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _wrong("replace", "a string", value)
    before, after = _text_arg("replace", old), _text_arg("replace", new)
    if len(value) + value.count(before) * (len(after) - len(before)) > MAX_STRING_LENGTH:
        raise ExpressionError(
            f"filter 'replace': result longer than {MAX_STRING_LENGTH} characters"
        )
    return value.replace(before, after)


def _slice(value: JSON, start: JSON, end: JSON = None) -> JSON:
    if value is None:
        return None
    if not isinstance(value, list | str):
        raise _wrong("slice", "a list or a string", value)
    return value[_int_arg("slice", start) : _int_arg("slice", end)]


def _json(value: JSON) -> JSON:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ExpressionError(f"filter 'json': cannot serialise a {json_type(value)}") from exc


def _e164(value: JSON, region: JSON = "US") -> JSON:
    import phonenumbers  # 0.2 s to import: only when a recipe formats a phone number

    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _wrong("e164", "a string or a number", value)
    code = _text_arg("e164", region).upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ExpressionError(f"filter 'e164': unknown region {code!r} [use a code like 'US']")
    text = str(value)
    redacted = "***" + _NOT_DIGITS.sub("", text[:1000])[-4:]
    try:
        number = phonenumbers.parse(text, code)
    except phonenumbers.NumberParseException as exc:
        raise ExpressionError(f"filter 'e164': {redacted!r} is not a phone number") from exc
    if not phonenumbers.is_possible_number(number):
        raise ExpressionError(f"filter 'e164': {redacted!r} is not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _email(value: JSON) -> JSON:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _wrong("email", "a string", value)
    address = value.strip().lower()
    if not address:
        return None
    if not _EMAIL.fullmatch(address):
        shown = address if len(address) <= 60 else address[:57] + "..."
        raise ExpressionError(f"filter 'email': {shown!r} is not a valid email address")
    return address


def _date(value: JSON, fmt: JSON) -> JSON:
    pattern = _text_arg("date", fmt)
    moment = parse_datetime("date", value)
    if moment is None:
        return None
    try:
        return moment.strftime(pattern)
    except ValueError as exc:
        raise ExpressionError(f"filter 'date': cannot format with {pattern!r}") from exc


def _iso(value: JSON) -> JSON:
    moment = parse_datetime("iso", value)
    return None if moment is None else to_iso(moment)


def _epoch_ms(value: JSON) -> JSON:
    moment = parse_datetime("epoch_ms", value)
    return None if moment is None else to_epoch_ms(moment)


def _to_int(value: JSON) -> JSON:
    if value is None or isinstance(value, int):
        return None if value is None else int(value)
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            if _INTEGER.fullmatch(text):
                return int(text)
            if _DECIMAL.fullmatch(text):
                return _to_int(float(text))
        except ValueError as exc:
            raise ExpressionError(f"filter 'to_int': {text[:30]!r} is too large") from exc
        raise ExpressionError(f"filter 'to_int': {text[:30]!r} is not a number")
    raise _wrong("to_int", "a number or a numeric string", value)


def _spec(func: Callable[..., JSON], min_args: int, max_args: int, text: str) -> FilterSpec:
    return FilterSpec(func, min_args, max_args, text)


BUILTIN_FILTERS: Mapping[str, FilterSpec] = MappingProxyType(
    {
        "default": _spec(_default, 1, 1, "the argument when the value is null, missing or ''"),
        "date": _spec(_date, 1, 1, "a date (ISO 8601, epoch ms, common forms) in strftime format"),
        "e164": _spec(
            _e164, 0, 1, "a phone number in E.164 form; the argument is a region like 'US'"
        ),
        "email": _spec(
            _email, 0, 0, "an email address trimmed and lower-cased; invalid is an error"
        ),
        "epoch_ms": _spec(_epoch_ms, 0, 0, "a date as milliseconds since 1970-01-01 UTC"),
        "first": _spec(_first, 0, 0, "the first item of a list (or character of a string)"),
        "iso": _spec(_iso, 0, 0, "a date as ISO 8601 in UTC, e.g. 2024-05-01T10:00:00.000Z"),
        "join": _spec(_join, 0, 1, "the items of a list joined into text with a separator"),
        "json": _spec(_json, 0, 0, "the value written as JSON text"),
        "last": _spec(_last, 0, 0, "the last item of a list (or character of a string)"),
        "length": _spec(_length, 0, 0, "the length of a list, string or object (null is 0)"),
        "lower": _spec(_on_text("lower", str.lower), 0, 0, "the string in lower case"),
        "replace": _spec(_replace, 2, 2, "the string with every `old` replaced by `new`"),
        "slice": _spec(_slice, 1, 2, "part of a list or string, from start to end (exclusive)"),
        "split": _spec(_split, 0, 1, "a string cut into a list at a separator (default: spaces)"),
        "to_int": _spec(_to_int, 0, 0, "a number or numeric string as an integer (truncated)"),
        "to_str": _spec(to_text, 0, 0, "the value as text, as it would appear inside a string"),
        "trim": _spec(_on_text("trim", str.strip), 0, 0, "the string without surrounding spaces"),
        "upper": _spec(_on_text("upper", str.upper), 0, 0, "the string in upper case"),
    }
)


@hookimpl
def connector_register_filters() -> Mapping[str, FilterSpec]:
    """The built-in filters, registered like any plugin's (this module is a built-in plugin)."""
    return BUILTIN_FILTERS
