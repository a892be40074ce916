"""Pagination of a generated action, detected from its query parameters and output schema.

Styles (``$defs.pagination`` in ``schemas/manifest.schema.json``): ``startAfterId`` (and
``startAfter``) is ``cursor`` paging fed from the output's fields of the same names; ``page`` is
``page`` paging; ``offset`` or ``skip`` is ``offset`` paging; ``cursor``/``nextPageToken``/``next``
is ``cursor`` paging fed from the output field that carries the next value. The records are the
output's one array property (at the top or under ``data``). Anything else is declared in the
overrides (``pagination:``) or reported as not paged.
"""

from __future__ import annotations

from collections.abc import Mapping

from catalog_json import Json

LIMITS = ("limit", "pageLimit", "pageSize", "perPage")
CURSORS = ("cursor", "nextPageToken", "next", "pageToken")
_NEXT_FIELDS = ("nextCursor", "nextPageToken", "cursor", "next", "nextPage")


def detect(inputs: Mapping[str, Json], query: set[str], output: Json) -> tuple[Json, str]:
    """Return ``(pagination or None, why not)`` for an action.

    :param inputs: the input schema's properties; :param query: the query parameter names;
    :param output: the converted output schema.
    """
    items = _items(output)
    paged = query & {"startAfterId", "page", "offset", "skip", *CURSORS}
    if not paged:
        return None, ""
    if items is None:
        return None, f"paging parameters {sorted(paged)} but no single record list in the output"
    page: dict[str, Json] = {"items": items}
    limit = next((name for name in LIMITS if name in query), None)
    if limit is not None:
        page["limit"] = _limit(limit, inputs[limit])
    if "startAfterId" in query:
        found = {n: _find(output, n) for n in ("startAfterId", "startAfter") if n in query}
        if not all(found.values()):
            return None, "startAfterId without a startAfterId field in the output"
        return {"style": "cursor", **page, "next": found}, ""
    if "page" in query:
        return {"style": "page", **page, "page": "page"}, ""
    if query & {"offset", "skip"}:
        return {"style": "offset", **page, "offset": "offset" if "offset" in query else "skip"}, ""
    name = next(n for n in CURSORS if n in query)
    source = next((p for f in _NEXT_FIELDS if (p := _find(output, f))), None)
    if source is None:
        return None, f"{name} parameter but no next-cursor field in the output"
    return {"style": "cursor", **page, "next": {name: source}}, ""


def _props(schema: Json) -> Mapping[str, Json]:
    return schema.get("properties", {}) if isinstance(schema, Mapping) else {}


def _items(output: Json) -> str | None:
    """The dotted path of the output's only array property (top level, else under ``data``)."""
    for prefix, node in (("", output), ("data.", _props(output).get("data", {}))):
        arrays = [n for n, sub in _props(node).items() if _is_array(sub)]
        if len(arrays) == 1:
            return prefix + arrays[0]
    return None


def _is_array(schema: Json) -> bool:
    kind = schema.get("type") if isinstance(schema, Mapping) else None
    return kind == "array" or (isinstance(kind, list) and "array" in kind)


def _find(output: Json, name: str) -> str | None:
    """The dotted path of a scalar field called ``name`` at the top or one level down."""
    props = _props(output)
    if name in props and not _is_array(props[name]):
        return name
    for parent, sub in sorted(props.items()):
        if name in _props(sub):
            return f"{parent}.{name}"
    return None


def _limit(name: str, schema: Json) -> dict[str, Json]:
    """The ``limit`` block: the page-size input and its maximum and default when declared."""
    out: dict[str, Json] = {"param": name}
    for key in ("max", "default"):
        value = schema.get("maximum" if key == "max" else key)
        if isinstance(value, int | str) and str(value).isdigit() and int(value) >= 1:
            out[key] = int(value)
    if "max" in out and out.get("default", 0) > out["max"]:
        del out["default"]
    return out
