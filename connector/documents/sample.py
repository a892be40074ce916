"""Example instances built from a JSON Schema's ``examples``, defaults and types.

Used by ``catalog show`` (an example input) and by dry runs (a stand-in for a step's output).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["sample"]

_BY_TYPE: Mapping[str, Any] = {
    "string": "string",
    "integer": 0,
    "number": 0,
    "boolean": False,
    "array": [],
    "object": {},
    "null": None,
}


def sample(schema: Mapping[str, Any], *, required_only: bool = False, depth: int = 0) -> Any:
    """An instance of ``schema``: its first example, default, const or enum value, else built.

    :param required_only: for objects, fill only the required properties.
    """
    for key in ("examples", "default", "const", "enum"):
        if key in schema:
            value = schema[key]
            if key in ("examples", "enum"):
                if value:
                    return value[0]
                continue
            return value
    if "example" in schema:
        return schema["example"]
    for combo in ("oneOf", "anyOf", "allOf"):
        if schema.get(combo):
            branch = schema[combo][0]
            if "type" in schema or "properties" in schema:
                # A branch that only narrows the parent (e.g. "required: [email]"): merge them.
                rest = {k: v for k, v in schema.items() if k != combo}
                required = [*rest.get("required", ()), *branch.get("required", ())]
                merged = {**rest, **branch, "required": required}
                return sample(merged, required_only=required_only, depth=depth)
            return sample(branch, required_only=required_only, depth=depth)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        return _object(schema, required_only, depth)
    if kind == "array":
        items = schema.get("items")
        if isinstance(items, Mapping) and depth < 6:
            return [sample(items, required_only=required_only, depth=depth + 1)]
        return []
    return _BY_TYPE.get(str(kind), None)


def _object(schema: Mapping[str, Any], required_only: bool, depth: int) -> dict[str, Any]:
    if depth >= 6:
        return {}
    props: Mapping[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", ()))
    names = [n for n in props if n in required] if required_only else list(props)
    if len(names) < schema.get("minProperties", 0):  # "at least one of these" inputs
        names += [n for n in props if n not in names][: schema["minProperties"] - len(names)]
    return {n: sample(props[n], required_only=required_only, depth=depth + 1) for n in names}
