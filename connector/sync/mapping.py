"""Records seen through a sync's field mapping: reading, mapping, comparing and hashing them.

Values are compared in a canonical form, so that what an app normalises on its own does not
look like a change: text is trimmed, e-mail addresses lower-cased, phone numbers put in E.164,
lists of text (tags) compared as sorted lower-case sets, and empty values (null, "", []) are
all "no value". The echo hash is the SHA-256 of the canonical JSON of a projection.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import phonenumbers

from connector.expressions.dates import parse_datetime
from connector.expressions.syntax import JSON, ExpressionError
from connector.sync.spec import CUSTOM_PREFIX, FieldMap, ObjectSync, Side, other

__all__ = [
    "canonical",
    "differences",
    "digest",
    "ghl_value",
    "mapped",
    "match_value",
    "projection",
    "read_field",
    "record_time",
    "synced_names",
]


def read_field(record: Mapping[str, Any], name: str) -> JSON:
    """The value of field ``name`` (dots walk into objects; ``customFields.<id>`` reads a GHL
    custom field by id or key)."""
    if name.startswith(CUSTOM_PREFIX):
        wanted = name[len(CUSTOM_PREFIX) :]
        for item in record.get("customFields") or ():
            if isinstance(item, dict) and wanted in (item.get("id"), item.get("key")):
                value: JSON = item.get("value", item.get("field_value", item.get("fieldValue")))
                return value
        return None
    current: Any = record
    for part in name.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current  # type: ignore[no-any-return]  # JSON data read from a JSON record


def mapped(
    obj: ObjectSync, source: Side, record: Mapping[str, Any], *, create: bool = False
) -> dict[str, JSON]:
    """The other side's field values computed from a ``source`` record: the fields that update
    the other side, or with ``create`` every field copied that way (owned ones included)."""
    out: dict[str, JSON] = {}
    for field in obj.fields:
        if field.reaches(source) if create else field.flows(source):
            out[str(field.name(other(source)))] = _value(field, source, record)
    return out


def _value(field: FieldMap, source: Side, record: Mapping[str, Any]) -> JSON:
    template = field.transform(source)
    name = field.name(source)
    if template is not None:
        value = template.render({"item": dict(record)})
    else:
        value = None if name is None else read_field(record, name)
    if field.default is not None and canonical(str(field.name(other(source))), value) is None:
        # The source record has no value (a partner task without a due date): the field's
        # default, computed from the same record, so every change gives the same one.
        return field.default.render({"item": dict(record)})
    return value


def ghl_value(obj: ObjectSync, source: Side, record: Mapping[str, Any], name: str) -> JSON:
    """The value GHL field ``name`` has (or would have) for a ``source`` record."""
    fmap = next((f for f in obj.fields if f.ghl == name), None)
    if fmap is None:
        return None
    if source == "ghl":
        return read_field(record, name)
    if fmap.to_ghl is not None:
        try:
            return fmap.to_ghl.render({"item": dict(record)})
        except ExpressionError:
            return None  # no usable value to match on; the mapping reports the fault
    return None if fmap.partner is None else read_field(record, fmap.partner)


def projection(obj: ObjectSync, side: Side, record: Mapping[str, Any]) -> dict[str, JSON]:
    """The fields the sync keeps in step on ``side`` (those it writes there and those it
    copies from there), as ``record`` holds them: what the echo hash covers."""
    return {name: read_field(record, name) for name in synced_names(obj, side)}


def synced_names(obj: ObjectSync, side: Side) -> list[str]:
    """The names on ``side`` of the fields copied to or from it."""
    return [
        str(f.name(side))
        for f in obj.fields
        if f.name(side) is not None and (f.reaches(side) or f.reaches(other(side)))
    ]


def canonical(name: str, value: JSON, region: str = "US") -> JSON:
    """``value`` in the form two sides are compared in (see the module docstring)."""
    if value is None or value == "" or value == [] or value == {}:
        return None
    if isinstance(value, str):
        text = value.strip()
        lower = name.lower()
        if "email" in lower:
            return text.lower()
        if "phone" in lower:
            return _e164(text, region) or text
        return text
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        tags: list[JSON] = [*sorted({str(v).strip().lower() for v in value if str(v).strip()})]
        return tags or None
    return value


def digest(values: Mapping[str, JSON], region: str = "US") -> str:
    """SHA-256 (hex) of the canonical JSON of ``values``."""
    data = {k: canonical(k, v, region) for k, v in values.items()}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def differences(
    desired: Mapping[str, JSON], current: Mapping[str, Any], region: str = "US"
) -> dict[str, tuple[JSON, JSON]]:
    """Field -> ``(before, after)`` for each desired value that differs from ``current``'s."""
    out: dict[str, tuple[JSON, JSON]] = {}
    for name, after in desired.items():
        before = read_field(current, name)
        if canonical(name, before, region) != canonical(name, after, region):
            out[name] = (before, after)
    return out


def match_value(key: str, value: JSON, region: str = "US") -> str | None:
    """A match key's value as it is looked up: e-mail lower-cased, phone in E.164."""
    if not isinstance(value, str | int) or isinstance(value, bool) or value == "":
        return None
    text = str(value).strip()
    if key == "phone":
        return _e164(text, region)
    return text.lower() or None


def _e164(text: str, region: str) -> str | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def record_time(value: JSON) -> float | None:
    """An update time (ISO 8601 text or epoch milliseconds) as epoch seconds, or None."""
    if isinstance(value, float | int) and not isinstance(value, bool):
        return float(value) / 1000.0
    try:
        moment: datetime | None = parse_datetime("sync", value)
    except ExpressionError:
        return None
    return None if moment is None else moment.timestamp()
