"""JSON-document basics the catalog generators share: key order, spec fixes and their error.

Used by ``tools/gen_catalog.py`` (actions) and ``tools/gen_triggers.py`` (triggers); not shipped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DRAFT = "https://json-schema.org/draft/2020-12/schema"

KEY_ORDER = (
    "$schema",
    "$id",
    "title",
    "description",
    "type",
    "const",
    "enum",
    "format",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "default",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "anyOf",
    "oneOf",
    "allOf",
    "examples",
)

Json = Any  # parsed JSON/YAML data; this script validates nothing itself, the tests do.


class CatalogError(Exception):
    """The spec or the overrides cannot produce a catalog (message says where and what)."""


def load_json(path: Path) -> Json:
    """Read one JSON file."""
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


def apply_fix(doc: Json, fix: Mapping[str, Json]) -> None:
    """Replace (or, without ``value``, delete) the value at ``fix["pointer"]``.

    The value there must still be ``fix["was"]``. A fix with ``add`` instead adds keys to the
    mapping at the pointer, none of which may exist yet.

    :raises CatalogError: the spec no longer has the value the fix was written against.
    """
    pointer = fix["pointer"]
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    node = doc
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if "add" in fix:
        target = node[parts[-1]]
        if clash := sorted(set(fix["add"]) & set(target)):
            raise CatalogError(f"spec_fixes: {pointer}: the spec now has {clash} [review the fix]")
        target.update(fix["add"])
        return
    last: Json = int(parts[-1]) if isinstance(node, list) else parts[-1]
    current = node[last] if isinstance(node, list) or last in node else None
    if current != fix["was"]:
        raise CatalogError(
            f"spec_fixes: {pointer}: the spec now has {current!r}, not {fix['was']!r}"
            " [review the fix: the spec may have been corrected]"
        )
    if "value" in fix:
        node[last] = fix["value"]
    else:
        del node[last]


def ordered(schema: Mapping[str, Json]) -> dict[str, Json]:
    """Return the schema with its keys in a fixed, readable order."""
    rank = {key: i for i, key in enumerate(KEY_ORDER)}
    return {k: schema[k] for k in sorted(schema, key=lambda k: (rank.get(k, len(rank)), k))}
