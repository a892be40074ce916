"""Schema-valid values for spec-driven answers: :func:`instance` builds one from a response
schema (the spec's own examples wherever they pass, else values made from types, formats, enums
and bounds), and :func:`fit` lays a stored record over a schema, keeping each stored value the
schema accepts and filling the rest.

The pack's action schemas are self-contained (no ``$ref``) and finite, so building recurses
without a depth limit of its own; :data:`_MAX_DEPTH` only guards against a pathological schema.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator

__all__ = ["fit", "instance", "valid"]

_MAX_DEPTH = 40
_FORMATS: Mapping[str, str] = {
    "date-time": "2024-01-01T00:00:00.000Z",
    "date": "2024-01-01",
    "time": "00:00:00Z",
    "email": "sandbox@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


_CACHE_SIZE = 20_000
_validators: dict[int, tuple[Mapping[str, Any], Draft202012Validator]] = {}


def valid(value: Any, schema: Mapping[str, Any]) -> bool:  # noqa: ANN401 - any JSON value
    """Whether ``value`` passes ``schema`` (formats checked, as the runtime checks them).

    Validators are kept by the schema's identity, holding the schema so the identity stays its
    own; the cache is emptied when it grows past :data:`_CACHE_SIZE` (schemas merged on the fly).
    """
    found = _validators.get(id(schema))
    if found is None or found[0] is not schema:
        if len(_validators) >= _CACHE_SIZE:
            _validators.clear()
        checker = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
        found = _validators[id(schema)] = (schema, checker)
    return bool(found[1].is_valid(value))


def instance(schema: Mapping[str, Any], depth: int = 0) -> Any:  # noqa: ANN401 - any JSON
    """A value ``schema`` accepts: its first passing example, else one built from its keywords."""
    if depth > _MAX_DEPTH:
        return None
    for example in _examples(schema):
        if valid(example, schema):
            return copy.deepcopy(example)
    built = _build(schema, depth)
    return built


def fit(record: Any, schema: Mapping[str, Any], depth: int = 0) -> Any:  # noqa: ANN401
    """``record`` as ``schema`` wants it: an object keeps every declared property whose stored
    value passes, the others come from :func:`instance`; any other value is kept when it passes."""
    if depth > _MAX_DEPTH:
        return instance(schema, depth)
    props = schema.get("properties")
    if isinstance(record, dict) and isinstance(props, Mapping):
        out = {}
        base = instance(schema, depth)
        if isinstance(base, dict):
            out.update(base)
        for name, sub in props.items():
            if name in record:
                candidate = fit(record[name], sub, depth + 1)
                if valid(candidate, sub):
                    out[name] = candidate
        if valid(out, schema):
            return out
        return base
    if valid(record, schema):
        return record
    for combo in ("oneOf", "anyOf"):  # the first branch the record fits into
        for branch in schema.get(combo) or ():
            if isinstance(branch, Mapping) and "properties" in branch:
                candidate = fit(record, branch, depth + 1)
                if valid(candidate, schema):
                    return candidate
    return instance(schema, depth)


def _examples(schema: Mapping[str, Any]) -> list[Any]:
    found = list(schema.get("examples") or [])
    for key in ("example", "default", "const"):
        if key in schema:
            found.append(schema[key])
    return found


def _kind(schema: Mapping[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None and "properties" in schema:
        return "object"
    return kind if isinstance(kind, str) else None


def _build(schema: Mapping[str, Any], depth: int) -> Any:  # noqa: ANN401
    if "enum" in schema and schema["enum"]:
        return copy.deepcopy(schema["enum"][0])
    for combo in ("oneOf", "anyOf", "allOf"):
        branches = schema.get(combo)
        if not branches:
            continue
        rest = {k: v for k, v in schema.items() if k not in (combo, "examples", "example")}
        if combo == "allOf":
            merged = dict(rest)
            for branch in branches:
                merged = _merge(merged, branch)
            return instance(merged, depth + 1)
        for branch in branches:
            value = instance(_merge(rest, branch), depth + 1)
            if valid(value, schema):
                return value
        return instance(_merge(rest, branches[0]), depth + 1)
    kind = _kind(schema)
    if kind == "object":
        return _object(schema, depth)
    if kind == "array":
        items = schema.get("items")
        count = max(1, int(schema.get("minItems", 1)))
        if not isinstance(items, Mapping) or schema.get("maxItems") == 0:
            return []
        built = [instance(items, depth + 1) for _ in range(count)]
        # An item no value passes (a oneOf whose branches overlap): an empty list when allowed.
        return built if valid(built[0], items) or schema.get("minItems") else []
    if kind == "string":
        return _string(schema)
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        value = low + (1 if "exclusiveMinimum" in schema else 0)
        return int(value) if kind == "integer" else value
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return {}  # no type: any JSON (the spec gives no schema)


def _object(schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
    props: Mapping[str, Any] = schema.get("properties") or {}
    required = set(schema.get("required", ()))
    out = {}
    for name, sub in props.items():
        value = instance(sub, depth + 1)
        if name in required or valid(value, sub):  # an optional value none passes: left out
            out[name] = value
    for name in schema.get("required", ()):
        if name not in out:
            extra = schema.get("additionalProperties")
            out[name] = instance(extra, depth + 1) if isinstance(extra, Mapping) else "string"
    return out


def _string(schema: Mapping[str, Any]) -> str:
    text = _FORMATS.get(str(schema.get("format")), "string")
    low = int(schema.get("minLength", 0))
    if len(text) < low:
        text = text + "x" * (low - len(text))
    high = schema.get("maxLength")
    return text[: int(high)] if isinstance(high, int) else text


def _merge(base: Mapping[str, Any], branch: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` narrowed by ``branch`` (properties and required lists joined)."""
    merged = {**base, **branch}
    if "properties" in base and "properties" in branch:
        merged["properties"] = {**base["properties"], **branch["properties"]}
    if "required" in base or "required" in branch:
        merged["required"] = [*base.get("required", ()), *branch.get("required", ())]
    return merged
