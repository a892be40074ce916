"""GHL's webhook-event files read by rule: one event's schema and examples, defects settled.

``../shared/ghl-openapi/webhook-events/`` holds, per event, ``<Event>.schema.json`` (sometimes a
second ``.schema-2.json``) and ``<Event>.example.json`` (sometimes ``.example-2.json`` ...). The
defects of that folder are settled here, each by a rule written to the report
(docs/catalog.md, "Webhook events"):

- a schema type JSON Schema does not have: ``Date`` is a string (``format: date-time``), any
  other (``Email/SMS``) is dropped (no type constraint);
- ``required: true`` on a property (a draft-3 habit; invalid in 2020-12) is dropped: the property
  stays optional, as GHL's examples do not always carry it;
- a second schema file: its properties are added to the first one's; a property the two
  declare differently takes either form (``anyOf``);
- no schema file: the schema is inferred from the examples (types of their values; a property
  whose examples disagree on the type gets none) or taken from ``schema_from`` in the overrides;
- an official example whose value has another type than the schema says: both types are
  accepted (the examples are what GHL sends);
- no example file: the trigger has no sample.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from catalog_json import Json, load_json
from catalog_report import Report
from jsonschema import Draft202012Validator

JSON_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})
_TYPE_FIXES: Mapping[str, Json] = {"Date": {"type": "string", "format": "date-time"}}


@dataclass
class EventFiles:
    """One event's schema (settled) and its examples (as published, file order)."""

    name: str
    schema: Json
    examples: list[Json]


def event_names(folder: Path) -> list[str]:
    """Every event the folder has a schema or an example of, sorted."""
    return sorted({p.name.split(".", 1)[0] for p in folder.glob("*.json")})


def _numbered(folder: Path, event: str, kind: str) -> list[Path]:
    """``<event>.<kind>.json`` then ``<event>.<kind>-2.json``, ``-3`` ... that exist."""
    first = folder / f"{event}.{kind}.json"
    more = sorted(folder.glob(f"{event}.{kind}-*.json"), key=lambda p: p.name)
    return [p for p in (first, *more) if p.is_file()]


def read_event(
    folder: Path, event: str, schema_from: Mapping[str, str], report: Report
) -> EventFiles:
    """Read ``event``'s files and settle their defects (each one noted in ``report``)."""
    examples = [load_json(p) for p in _numbered(folder, event, "example")]
    schemas = [load_json(p) for p in _numbered(folder, event, "schema")]
    if not schemas and event in schema_from:
        source = schema_from[event]
        report.add("triggers", f"{event}: no schema file; {source}'s schema used (overrides)")
        schemas = [load_json(folder / f"{source}.schema.json")]
    if not schemas:
        report.add("triggers", f"{event}: no schema file; schema inferred from its examples")
        schemas = [infer(examples)]
    schema = copy.deepcopy(schemas[0])
    for extra in schemas[1:]:
        report.add("triggers", f"{event}: a second schema file; its properties are merged in")
        props = schema.setdefault("properties", {})
        for name, sub in extra.get("properties", {}).items():
            if name in props and props[name] != sub:
                report.add("triggers", f"{event}: /{name}: the two schemas differ: either passes")
                props[name] = {"anyOf": [props[name], copy.deepcopy(sub)]}
            else:
                props.setdefault(name, copy.deepcopy(sub))
    if not examples:
        report.add("triggers", f"{event}: no example file; the trigger has no sample")
    schema = settle(schema, event, "", report)
    widen(schema, examples, event, report)
    return EventFiles(event, schema, examples)


def settle(node: Json, event: str, where: str, report: Report) -> Json:
    """Copy a schema with invalid types and boolean ``required`` removed (by the rules above)."""
    if not isinstance(node, Mapping):
        return copy.deepcopy(node)
    out: dict[str, Json] = {}
    for key, value in node.items():
        if key == "properties" and isinstance(value, Mapping):
            out[key] = {n: settle(s, event, f"{where}/{n}", report) for n, s in value.items()}
        elif key == "items":
            out[key] = settle(value, event, f"{where}[]", report)
        elif key == "required" and isinstance(value, bool):
            report.add("triggers", f"{event}: {where or '/'}: `required: {value}` dropped")
        elif key == "type" and isinstance(value, str) and value not in JSON_TYPES:
            fix = _TYPE_FIXES.get(value, {})
            out.update(fix)
            shown = f"`{fix['type']}`" if fix else "no type constraint"
            report.add("triggers", f"{event}: {where or '/'}: type {value!r} is {shown}")
        else:
            out[key] = copy.deepcopy(value)
    return out


def widen(schema: Json, examples: list[Json], event: str, report: Report) -> None:
    """Where an official example has another type than the schema says, accept both types."""
    for example in examples:
        for error in Draft202012Validator(schema).iter_errors(example):
            if error.validator != "type":
                continue
            node = schema
            for part in list(error.absolute_schema_path)[:-1]:
                node = node[part]
            kinds = node["type"] if isinstance(node["type"], list) else [node["type"]]
            node["type"] = [*kinds, _kind(error.instance)]
            where = error.json_path.removeprefix("$")
            report.add(
                "triggers",
                f"{event}: {where}: an example is {_kind(error.instance)},"
                f" the schema says {'/'.join(kinds)}: both accepted",
            )


def infer(examples: list[Json]) -> Json:
    """A schema every one of ``examples`` passes: the types of their values, merged."""
    kinds = {_kind(e) for e in examples}
    if len(kinds) != 1:
        return {}
    kind = kinds.pop()
    out: dict[str, Json] = {"type": kind}
    if kind == "object":
        names = dict.fromkeys(n for e in examples for n in e)
        out["properties"] = {n: infer([e[n] for e in examples if n in e]) for n in names}
    elif kind == "array":
        items = [i for e in examples for i in e]
        if items:
            out["items"] = infer(items)
    return out


def _kind(value: Json) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    return {dict: "object", list: "array"}.get(type(value), "string")
