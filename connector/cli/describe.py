"""Human descriptions of catalog entries for ``catalog show``."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping
from typing import Any

from connector.documents.lazyschema import plain
from connector.documents.sample import sample
from connector.hookspecs import Action, Trigger

__all__ = ["describe_action", "describe_trigger"]


def describe_action(action: Action) -> tuple[str, dict[str, Any]]:
    """Text and JSON for one action: inputs, output shape, scopes, an example input."""
    places = {p.name: p.location for p in action.params}
    example = sample(action.input_schema, required_only=True)
    lines = [f"{action.id}: {action.title}"]
    if action.deprecated:
        lines.append(f"  DEPRECATED upstream; use {action.use_instead or 'another action'} instead")
    if action.description and action.description != action.title:
        lines += textwrap.wrap(action.description, 96, initial_indent="  ", subsequent_indent="  ")
    lines.append(f"  {action.method} {action.path}   (operation {action.operation or '-'})")
    lines.append(f"  scopes: {' '.join(action.scopes) or 'none'}")
    if action.pagination:
        lines.append(
            f"  paginated ({action.pagination['style']}): use --all-pages to fetch every page"
        )
    lines.append("")
    lines.append("inputs:")
    lines += _fields(action.input_schema, places)
    lines.append("")
    lines.append("output:")
    lines += _shape(action.output_schema, "  ")
    lines.append("")
    lines.append(f"example input (`catalog show {action.id} --sample > input.json`):")
    lines.append("  " + json.dumps(example))
    data = {
        "id": action.id,
        "app": action.app,
        "title": action.title,
        "description": action.description,
        "method": action.method,
        "path": action.path,
        "operation": action.operation,
        "scopes": list(action.scopes),
        "deprecated": action.deprecated,
        "use_instead": action.use_instead,
        "params": {p.name: p.location for p in action.params},
        "pagination": action.pagination,
        "input_schema": plain(action.input_schema),
        "output_schema": plain(action.output_schema),
        "example_input": example,
    }
    return "\n".join(lines) + "\n", data


def describe_trigger(trigger: Trigger) -> tuple[str, dict[str, Any]]:
    """Text and JSON for one trigger: event, scopes, payload shape and an example event."""
    example = sample(trigger.payload_schema)
    lines = [f"{trigger.id}: {trigger.title}", f"  {trigger.kind} trigger"]
    if trigger.event:
        lines.append(f"  event: {trigger.event}")
    lines.append(f"  scopes: {' '.join(trigger.scopes) or 'none'}")
    lines += ["", "payload:", *_shape(trigger.payload_schema, "  ")]
    lines += ["", f"example event (`catalog show {trigger.id} --sample > event.json`):"]
    shown = json.dumps(example)
    lines.append("  " + (shown if len(shown) <= 400 else shown[:397] + "..."))
    data = {
        "id": trigger.id,
        "app": trigger.app,
        "kind": trigger.kind,
        "title": trigger.title,
        "event": trigger.event,
        "scopes": list(trigger.scopes),
        "payload_schema": plain(trigger.payload_schema),
        "example_event": example,
    }
    return "\n".join(lines) + "\n", data


def _type(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        return "|".join(kind)
    if kind == "array" and isinstance(schema.get("items"), Mapping):
        return f"array of {_type(schema['items'])}"
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(v) for v in schema["enum"])
    return str(kind or "any")


def _fields(schema: Mapping[str, Any], places: Mapping[str, str]) -> list[str]:
    props: Mapping[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", ()))
    if not props:
        return ["  (none)"]
    out = []
    for name, prop in props.items():
        flag = "required" if name in required else "optional"
        where = places.get(name, "body")
        desc = " ".join(str(prop.get("description", "")).split())
        head = f"  {name} ({_type(prop)}, {flag}, {where})"
        out.append(f"{head}: {desc[:120]}" if desc else head)
    return out


def _shape(schema: Mapping[str, Any], indent: str, depth: int = 0) -> list[str]:
    props: Mapping[str, Any] = schema.get("properties", {})
    if not props or depth > 1:
        return [f"{indent}{_type(schema)}"]
    out = []
    for name, prop in props.items():
        out.append(f"{indent}{name}: {_type(prop)}")
        inner = prop.get("items", prop) if prop.get("type") == "array" else prop
        if isinstance(inner, Mapping) and inner.get("properties") and depth < 1:
            names = ", ".join(list(inner["properties"])[:12])
            more = " ..." if len(inner["properties"]) > 12 else ""
            out.append(f"{indent}  ({names}{more})")
    return out
