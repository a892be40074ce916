"""The API's OpenAPI 3.1 document lowered to Swagger 2.0, for Power Automate and Logic Apps
(their custom-connector importers take 2.0 only).

Every operation keeps its ``operationId``, summary, ``x-scopes`` and parameters; the request
body becomes a ``body`` parameter; ``dry_run`` and the dry run's media type are dropped
(a platform has no use for them); the security is the ``X-API-Key`` header. Schemas are
lowered keyword by keyword (:func:`lower`):

- said the 2.0 way: ``const`` -> a one-value ``enum``; ``examples`` -> ``example`` (the
  first); a number ``exclusiveMinimum``/``exclusiveMaximum`` -> ``minimum``/``maximum`` with
  the boolean flag; ``type: [T, "null"]`` -> ``type: T`` with ``x-nullable: true`` (the
  extension AutoRest and the Microsoft importers read); ``deprecated`` -> ``x-deprecated``;
- annotations 2.0 lacks (``$comment``, ``writeOnly``, ``contentMediaType``, ...) are dropped:
  they constrain nothing;
- constraints 2.0 cannot state (``anyOf``, ``oneOf``, ``not``, ``if``/``then``/``else``,
  ``patternProperties``, ``prefixItems``, several non-null types, ...) are dropped from the
  schema and stated in its ``description`` (``Also checked by the API: ...``) and in
  ``x-checked-by-api``: the API validates every input against the full schema and answers
  422, so a call behaves exactly as under 3.1; the document only says less.

An operation whose input is itself one of several shapes (a top-level ``anyOf``/``oneOf``
whose branches declare their own ``properties``) is left out: a form built from one merged
shape would offer fields that cannot go together. Each one left out is listed, with why, in
the document's ``x-omitted-operations`` (and ``export`` prints them on stderr).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from connector.api.openapi import map_schema

__all__ = ["lower", "swagger"]

_KEEP = frozenset({
    "$ref", "format", "title", "description", "default", "multipleOf", "maximum", "minimum",
    "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems",
    "maxProperties", "minProperties", "required", "enum", "type", "items", "allOf",
    "properties", "additionalProperties", "readOnly", "example",
})  # fmt: skip
_ANNOTATIONS = frozenset({
    "$comment", "$schema", "$id", "$anchor", "writeOnly", "contentMediaType",
    "contentEncoding", "contentSchema", "$defs", "definitions",
})  # fmt: skip
_STATED = {
    "anyOf": "matches at least one of",
    "oneOf": "matches exactly one of",
    "not": "must not match",
    "if": "if it matches",
    "then": "then it must match",
    "else": "else it must match",
    "patternProperties": "properties by pattern",
    "propertyNames": "property names",
    "prefixItems": "items by position",
    "contains": "contains an item matching",
    "minContains": "min matching items",
    "maxContains": "max matching items",
    "dependentRequired": "fields required together",
    "dependentSchemas": "schemas applied when a field is present",
    "unevaluatedProperties": "unevaluated properties",
    "unevaluatedItems": "unevaluated items",
}
_MAX_NOTE = 300


def _said(value: Any) -> str:  # noqa: ANN401
    """A short plain rendering of a dropped constraint."""
    if isinstance(value, list) and all(
        isinstance(b, Mapping) and set(b) <= {"required"} for b in value
    ):
        return " | ".join("+".join(b.get("required", [])) or "{}" for b in value)
    text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    return text if len(text) <= _MAX_NOTE else text[: _MAX_NOTE - 3] + "..."


def _lower_node(node: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    notes: list[str] = []
    for key, value in node.items():
        if key in _KEEP or key.startswith("x-"):
            out[key] = value
        elif key == "const":
            out["enum"] = [value]
        elif key == "examples":
            if isinstance(value, list) and value:
                out["example"] = value[0]
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            if isinstance(value, bool):
                out[key] = value
            elif bound not in node:
                out[bound], out[key] = value, True
            else:
                notes.append(f"{key} {value}")
        elif key == "deprecated":
            out["x-deprecated"] = value
        elif key in _ANNOTATIONS:
            continue
        elif key in _STATED:
            notes.append(f"{_STATED[key]}: {_said(value)}")
        else:
            continue  # an unknown keyword constrains nothing in JSON Schema 2020-12
    for key in ("required", "enum"):  # 2.0 lists hold unique values, at least one
        if isinstance(out.get(key), list):
            unique = [v for i, v in enumerate(out[key]) if v not in out[key][:i]]
            if unique:
                out[key] = unique
            else:
                del out[key]
    kind = out.get("type")
    if isinstance(kind, list):
        types = [t for t in kind if t != "null"]
        if "null" in kind:
            out["x-nullable"] = True
        if len(types) == 1:
            out["type"] = types[0]
        else:
            del out["type"]
            if types:
                notes.append(f"one of the types {', '.join(types)}")
    elif kind == "null":
        del out["type"]
        out["x-nullable"] = True
        notes.append("null")
    if isinstance(out.get("items"), list):  # draft-04 tuple form, never in our schemas
        notes.append(f"items by position: {_said(out.pop('items'))}")
    if isinstance(out.get("additionalProperties"), Mapping) and not out["additionalProperties"]:
        out["additionalProperties"] = True
    if notes:
        text = "; ".join(notes)
        out["description"] = f"{out.get('description', '')} Also checked by the API: {text}."
        out["description"] = out["description"].strip()
        out["x-checked-by-api"] = notes
    return out


def lower(schema: Any) -> Any:  # noqa: ANN401
    """A JSON Schema 2020-12 schema as a Swagger 2.0 Schema Object (see the module doc)."""
    if schema is True:
        return {}
    if schema is False:
        return {"x-checked-by-api": ["nothing is allowed"], "description": "Never valid."}
    return map_schema(schema, _lower_node)


def _why_left_out(input_schema: Mapping[str, Any]) -> str | None:
    for key in ("oneOf", "anyOf"):
        branches = input_schema.get(key)
        if isinstance(branches, list) and any(
            isinstance(b, Mapping) and "properties" in b for b in branches
        ):
            return (
                f"its input is {key} {len(branches)} different shapes, which Swagger 2.0"
                " cannot state (a form of one merged shape would offer fields that cannot go"
                " together); use the OpenAPI 3.1 document or the HTTP action directly"
            )
    return None


def _parameter(param: Mapping[str, Any], components: Mapping[str, Any]) -> dict[str, Any]:
    if "$ref" in param:
        param = components["parameters"][param["$ref"].rpartition("/")[2]]
    out = {k: v for k, v in param.items() if k not in ("schema",)}
    schema = lower(param.get("schema", {}))
    for key in ("type", "format", "pattern", "minLength", "maxLength", "minimum", "maximum",
                "enum"):  # fmt: skip
        if key in schema:
            out[key] = schema[key]
    out.setdefault("type", "string")
    return out


def _responses(responses: Mapping[str, Any], components: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for code, answer in responses.items():
        if "$ref" in answer:
            answer = components["responses"][answer["$ref"].rpartition("/")[2]]
        lowered: dict[str, Any] = {"description": answer.get("description", "")}
        media = answer.get("content", {}).get("application/json")
        if media and "schema" in media:
            lowered["schema"] = _refs(lower(media["schema"]))
        out[code] = lowered
    return out


def _refs(schema: Any) -> Any:  # noqa: ANN401
    """``#/components/schemas/X`` references as 2.0's ``#/definitions/X``."""
    if isinstance(schema, Mapping):
        return {
            k: (v.replace("#/components/schemas/", "#/definitions/") if k == "$ref" else _refs(v))
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_refs(v) for v in schema]
    return schema


def swagger(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The Swagger 2.0 document for the OpenAPI 3.1 document ``doc`` (from
    :func:`connector.api.openapi.document`)."""
    components = doc["components"]
    schemas = components["schemas"]
    url = urlsplit(doc["servers"][0]["url"])
    paths: dict[str, Any] = {}
    omitted: dict[str, str] = {}
    used: set[str] = {"Error"}
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            body = operation.get("requestBody")
            lowered: dict[str, Any] = {
                k: v for k, v in operation.items()
                if k not in ("requestBody", "parameters", "responses", "tags")
            }  # fmt: skip
            lowered["tags"] = operation.get("tags", [])
            parameters = [
                _parameter(p, components)
                for p in operation.get("parameters", [])
                if p.get("$ref") != "#/components/parameters/DryRun"
            ]
            if body is not None:
                ref = body["content"]["application/json"]["schema"]["$ref"]
                name = ref.rpartition("/")[2]
                why = _why_left_out(schemas[name])
                if why is not None:
                    omitted[operation["operationId"]] = why
                    continue
                used.add(name)
                parameters.insert(0, {
                    "name": "body", "in": "body", "required": bool(body.get("required")),
                    "schema": {"$ref": f"#/definitions/{name}"},
                })  # fmt: skip
            if parameters:
                lowered["parameters"] = parameters
            lowered["responses"] = _responses(operation["responses"], components)
            used.update(_referenced(lowered["responses"]))
            paths.setdefault(path, {})[method] = lowered
    definitions: dict[str, Any] = {}
    pending = sorted(used)
    while pending:  # the schemas used, and every schema they refer to
        name = pending.pop()
        if name not in definitions:
            definitions[name] = _refs(lower(schemas[name]))
            pending.extend(_referenced(definitions[name]) - set(definitions))
    definitions = dict(sorted(definitions.items()))
    out: dict[str, Any] = {
        "swagger": "2.0",
        "info": doc["info"],
        "host": url.netloc,
        "basePath": url.path or "/",
        "schemes": [url.scheme or "http"],
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "securityDefinitions": {
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}
        },
        "security": [{"apiKey": []}],
        "tags": doc.get("tags", []),
        "paths": paths,
        "definitions": definitions,
    }
    if omitted:
        out["x-omitted-operations"] = omitted
    return out


def _referenced(value: Any) -> set[str]:  # noqa: ANN401
    found: set[str] = set()
    if isinstance(value, Mapping):
        for key, sub in value.items():
            if key == "$ref" and isinstance(sub, str) and sub.startswith("#/definitions/"):
                found.add(sub.rpartition("/")[2])
            else:
                found |= _referenced(sub)
    elif isinstance(value, list):
        for sub in value:
            found |= _referenced(sub)
    return found
