"""Following a data path (``contact.tags[0]``) through a JSON Schema, to check it statically.

Used by ``ghl-connector validate`` to check every path an expression reads against the
trigger's payload schema and the earlier steps' output schemas. The rules:

- a key is known when a ``properties`` entry names it (``$ref`` to the same document,
  ``allOf``/``anyOf``/``oneOf`` branches and ``["string", "null"]`` types are all followed);
- when an object declares ``properties``, any other key is an error *even if*
  ``additionalProperties`` is not false: GHL's schemas leave objects open, yet a name they do
  not declare is almost always a typo. An object that declares no properties, or whose
  ``additionalProperties``/``patternProperties`` describe extra keys, accepts any key;
- an integer index needs a list, a key needs an object; a string, number or boolean has
  neither; a schema that says nothing (``{}``) accepts everything below it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Miss", "follow", "list_of"]

_MAX_REFS = 32


@dataclass(frozen=True, slots=True)
class Miss:
    """Why a path leaves its schema: at segment ``depth``, a ``message`` and maybe a ``hint``.

    ``message`` reads after the path so far: ``"has no field 'emial'"``.
    """

    depth: int
    message: str
    hint: str | None = None


def list_of(items: Mapping[str, Any]) -> dict[str, Any]:
    """A schema for a list whose items follow ``items`` (a ``for_each`` step's output)."""
    return {"type": "array", "items": dict(items)}


def follow(
    schema: Mapping[str, Any], segments: Sequence[str | int]
) -> Mapping[str, Any] | Miss | None:
    """The sub-schema ``segments`` lead to in ``schema``.

    :returns: the sub-schema; None when the schema stops describing the data on the way (any
        further path is accepted); or a :class:`Miss` naming the segment at fault.
    """
    current: list[Mapping[str, Any]] = list(_branches(schema, schema))
    for depth, segment in enumerate(segments):
        if not current or any(_is_open(each) for each in current):
            return None
        found = [sub for each in current for sub in _step(each, segment)]
        if not found:
            return _miss(current, segment, depth)
        current = [leaf for sub in found for leaf in _branches(sub, schema)]
    if not current:
        return None
    return current[0] if len(current) == 1 else {"anyOf": current}


def _branches(node: object, root: Mapping[str, Any], hops: int = 0) -> Iterator[Mapping[str, Any]]:
    """``node`` with its ``$ref`` resolved and its ``allOf/anyOf/oneOf`` branches spread out.

    A ``true`` or ``{}`` schema yields itself (it is open); ``false`` yields nothing. Next to a
    schema that describes a shape, branches that only add constraints (``required``...) are
    left out, so they do not make the whole schema look open.
    """
    if not isinstance(node, Mapping):
        if node is True:
            yield {}
        return
    ref = node.get("$ref")
    if isinstance(ref, str) and hops < _MAX_REFS:
        target = _resolve(ref, root)
        yield from ({},) if target is None else _branches(target, root, hops + 1)
    combined = [key for key in ("allOf", "anyOf", "oneOf") if isinstance(node.get(key), list)]
    own = {k: v for k, v in node.items() if k not in ("$ref", "allOf", "anyOf", "oneOf")}
    shaped = _describes(own)
    if shaped or not (combined or isinstance(ref, str)):
        yield own
    for key in combined:
        for branch in node[key]:
            for leaf in _branches(branch, root, hops + 1):
                if not shaped or _describes(leaf):
                    yield leaf


def _describes(node: Mapping[str, Any]) -> bool:
    return any(k in node for k in ("type", "properties", "items", "prefixItems"))


def _resolve(ref: str, root: Mapping[str, Any]) -> object | None:
    """The schema a ``$ref`` names, resolved by jsonschema-path (JSON pointer escapes, and
    ``$ref``s met on the way, followed); None when it names nothing this document holds."""
    if not ref.startswith("#"):
        return None
    from jsonschema_path import SchemaPath

    path = SchemaPath.from_dict(dict(root))
    for part in filter(None, ref[1:].split("/")):
        part = part.replace("~1", "/").replace("~0", "~")
        if part not in path:
            return None
        path = path / part
    with path.open() as contents:
        found: object = contents
    return found


def _types(node: Mapping[str, Any]) -> set[str]:
    declared = node.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return {str(t) for t in declared}
    found = set()
    if "properties" in node or "additionalProperties" in node:
        found.add("object")
    if "items" in node or "prefixItems" in node:
        found.add("array")
    return found


def _is_open(node: Mapping[str, Any]) -> bool:
    """The schema says nothing about the shape (no type, properties or items)."""
    return not _types(node)


def _step(node: Mapping[str, Any], segment: str | int) -> list[object]:
    types = _types(node)
    if isinstance(segment, int):
        if "array" not in types:
            return []
        prefix = node.get("prefixItems")
        if isinstance(prefix, list) and 0 <= segment < len(prefix):
            return [prefix[segment]]
        return [node.get("items", {})]
    if "object" not in types:
        return []
    properties = node.get("properties")
    if isinstance(properties, Mapping) and segment in properties:
        return [properties[segment]]
    extra = node.get("additionalProperties")
    if isinstance(extra, Mapping) and extra:
        return [extra]
    if not properties or node.get("patternProperties"):
        return [{}]
    return []


def _miss(current: Sequence[Mapping[str, Any]], segment: str | int, depth: int) -> Miss:
    types = set().union(*(_types(each) for each in current)) - {"null"}
    if isinstance(segment, int):
        kind = "an object" if "object" in types else _kind(types)
        return Miss(depth, f"is {kind}: it has no index {segment}")
    if "object" in types:
        known = sorted({str(name) for each in current for name in each.get("properties") or {}})
        close = difflib.get_close_matches(segment, known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else _known_hint(known)
        return Miss(depth, f"has no field {segment!r}", hint)
    if "array" in types:
        message = f"is a list: it has no field {segment!r}"
        return Miss(depth, message, "pick an item first, e.g. [0]")
    return Miss(depth, f"is {_kind(types)}: it has no field {segment!r}")


def _known_hint(known: Sequence[str]) -> str:
    shown = ", ".join(known[:8]) + (", ..." if len(known) > 8 else "")
    return f"known fields: {shown}"


def _kind(types: set[str]) -> str:
    names = {"string": "text", "integer": "a number", "number": "a number", "boolean": "true/false"}
    return " or ".join(sorted({names.get(t, t) for t in types})) or "a value"
