"""The HTTP API's OpenAPI 3.1 document, generated from the catalog.

One ``POST /v1/actions/<id>`` operation per action: ``operationId`` is the action id with
every character outside ``[A-Za-z0-9_]`` made ``_`` (``ghl.contacts.create`` ->
``ghl_contacts_create``; a clash gets ``_2``, ...), the request body is the action's input
schema (its location input no longer required: the connection fills it), the 200 answer its
output schema (a dry run's preview under its own media type), ``x-scopes`` the OAuth scopes
it needs, ``x-action-id`` its id. Each trigger has ``GET .../events`` and ``GET .../sample``
with its payload schema. Errors share one schema (:data:`connector.api.answers.ERROR_SCHEMA`).
Schemas go to ``components.schemas`` as ``<operationId>_input``, ``_output``, ``_event``.

``globs`` keeps the actions and triggers whose ids match one of them (as ``--actions`` and
API keys do). ``ghl-connector export openapi`` prints this document; ``GET /openapi.json``
serves it; :mod:`connector.api.swagger` lowers it to Swagger 2.0.
"""

from __future__ import annotations

import copy
import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from connector.api.answers import DRY_RUN_TYPE, ERROR_SCHEMA
from connector.catalog import Catalog
from connector.hookspecs import Action, Trigger
from connector.recipes.footprints import is_read
from connector.runtime import location_optional

__all__ = ["DEFAULT_SERVER", "chosen", "clean", "document", "map_schema", "operation_ids"]

DEFAULT_SERVER = "http://127.0.0.1:8787"
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
_ERRORS = {
    "400": "The request is malformed (body, header or parameter), or names no connection.",
    "401": "No valid API key, or the connection's token is unusable.",
    "403": "The API key may not use this, or GHL refused it.",
    "404": "Unknown action or trigger, or GHL found no such record.",
    "409": "The Idempotency-Key's first request has no answer yet.",
    "413": "The request body is too large.",
    "422": "The input fails its schema (every problem listed with its field path), or the"
    " Idempotency-Key was used for another request.",
    "429": "Rate limited (by GHL, or by the pack's own limiter).",
    "502": "GHL failed (5xx or no answer).",
    "504": "GHL did not answer in time.",
}


def chosen(ids: Iterable[str], globs: Sequence[str]) -> list[str]:
    """The ids (sorted) that match any of ``globs`` (all when there is none)."""
    return sorted(i for i in ids if not globs or any(fnmatch.fnmatchcase(i, g) for g in globs))


def operation_ids(ids: Iterable[str]) -> dict[str, str]:
    """Action or trigger id -> its sanitised, unique operation id."""
    taken: set[str] = set()
    out: dict[str, str] = {}
    for item in sorted(ids):
        base = _UNSAFE.sub("_", item)
        name, n = base, 2
        while name in taken:
            name, n = f"{base}_{n}", n + 1
        taken.add(name)
        out[item] = name
    return out


_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions",
                   "dependentSchemas"})
_ONE = frozenset({"items", "additionalProperties", "not", "contains", "propertyNames", "if",
                  "then", "else", "unevaluatedItems", "unevaluatedProperties"})
_MANY = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})


def map_schema(
    schema: Any,  # noqa: ANN401  # a schema or a boolean
    change: Callable[[dict[str, Any]], dict[str, Any]],
) -> Any:  # noqa: ANN401
    """A copy of ``schema`` with ``change`` applied to every subschema, innermost first
    (keywords are told from property names: only subschemas are changed)."""
    if not isinstance(schema, Mapping):
        return copy.deepcopy(schema)
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _MAPS and isinstance(value, Mapping):
            out[key] = {name: map_schema(sub, change) for name, sub in value.items()}
        elif key in _ONE:
            out[key] = map_schema(value, change)
        elif key in _MANY and isinstance(value, list):
            out[key] = [map_schema(sub, change) for sub in value]
        else:
            out[key] = copy.deepcopy(value)
    return change(out)


def _cleaned(node: dict[str, Any]) -> dict[str, Any]:
    from jsonschema import Draft202012Validator

    node.pop("$schema", None)
    node.pop("$id", None)
    if "default" in node:
        rest = {k: v for k, v in node.items() if k != "default"}
        try:
            if not Draft202012Validator(rest).is_valid(node["default"]):
                del node["default"]
        except Exception:  # noqa: BLE001  # a schema jsonschema cannot apply: keep it as is
            pass
    return node


def clean(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a catalog schema fit for ``components``: no ``$schema`` or ``$id``, and no
    ``default`` its own schema refuses (GHL's specs hold a few, such as a description given
    as a number's default; a default the input may not take documents nothing)."""
    cleaned: dict[str, Any] = map_schema(schema, _cleaned)
    return cleaned


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ghl-connector")
    except PackageNotFoundError:
        return "0.0.0"


def _input_schema(action: Action) -> dict[str, Any]:
    return location_optional(action, clean(action.input_schema))


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _errors(*codes: str) -> dict[str, Any]:
    return {code: {"$ref": f"#/components/responses/E{code}"} for code in codes}


def _action_operation(action: Action, op: str) -> dict[str, Any]:
    description = action.description or action.title
    operation: dict[str, Any] = {
        "operationId": op,
        "summary": action.title,
        "description": description,
        "tags": [action.app],
        "x-action-id": action.id,
        "x-scopes": list(action.scopes),
        "parameters": [
            {"$ref": "#/components/parameters/DryRun"},
            {"$ref": "#/components/parameters/IdempotencyKey"},
            {"$ref": "#/components/parameters/Connection"},
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _ref(f"{op}_input")}},
        },
        "responses": {
            "200": {
                "description": "The action's output (checked against its schema); with"
                " dry_run=true, the request it would send.",
                "content": {
                    "application/json": {"schema": _ref(f"{op}_output")},
                    DRY_RUN_TYPE: {"schema": _ref("DryRun")},
                },
            },
            **_errors("400", "401", "403", "404", "409", "413", "422", "429", "502", "504"),
            "default": {"$ref": "#/components/responses/Error"},
        },
    }
    if not is_read(action):
        operation["x-writes"] = True
    if action.deprecated:
        operation["deprecated"] = True
    return operation


def _trigger_operations(trigger: Trigger, op: str) -> dict[str, dict[str, Any]]:
    page = {
        "type": "object",
        "required": ["events"],
        "properties": {
            "events": {"type": "array", "items": {
                "type": "object",
                "required": ["id", "received_at", "data"],
                "properties": {
                    "id": {"type": "string"},
                    "received_at": {"type": "string", "format": "date-time"},
                    "location_id": {"type": ["string", "null"]},
                    "data": _ref(f"{op}_event"),
                },
            }},
            "next_cursor": {"type": "string"},
        },
    }  # fmt: skip
    common: dict[str, Any] = {
        "tags": [trigger.app],
        "x-trigger-id": trigger.id,
        "x-scopes": list(trigger.scopes),
    }
    answer: dict[str, Any] = {
        "description": "Events, newest first",
        "content": {"application/json": {"schema": page}},
    }
    events: dict[str, Any] = {
        **common,
        "operationId": f"{op}_events",
        "summary": f"{trigger.title}: events",
        "description": f"{trigger.description or trigger.title} Newest first; follow"
        " next_cursor for older ones.",
        "parameters": [
            {"name": "cursor", "in": "query", "required": False,
             "description": "next_cursor of the previous page", "schema": {"type": "string"}},
            {"name": "limit", "in": "query", "required": False,
             "description": "events per page (1-100, default 50)",
             "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
        ],
        "responses": {"200": answer, **_errors("400", "401", "403", "404"),
                      "default": {"$ref": "#/components/responses/Error"}},
    }  # fmt: skip
    sample: dict[str, Any] = {
        **common,
        "operationId": f"{op}_sample",
        "summary": f"{trigger.title}: sample event",
        "description": "One example event, in the events' shape, built from the payload"
        " schema.",
        "responses": {"200": answer, **_errors("401", "403", "404"),
                      "default": {"$ref": "#/components/responses/Error"}},
    }  # fmt: skip
    return {"events": events, "sample": sample}


def _fixed_paths() -> dict[str, Any]:
    listing = {"type": "object", "additionalProperties": True}
    def get(op: str, summary: str, name: str | None = None) -> dict[str, Any]:
        operation: dict[str, Any] = {
            "operationId": op,
            "summary": summary,
            "tags": ["catalog"],
            "responses": {
                "200": {"description": summary,
                        "content": {"application/json": {"schema": listing}}},
                **_errors("401", "403", "404"),
                "default": {"$ref": "#/components/responses/Error"},
            },
        }  # fmt: skip
        if name:
            operation["parameters"] = [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            ]
        return operation

    return {
        "/v1/actions": {"get": get("listActions", "The actions this key may call")},
        "/v1/actions/{action_id}": {
            "get": get("describeAction", "One action: schemas, scopes, a sample input",
                       "action_id")  # fmt: skip
        },
        "/v1/triggers": {"get": get("listTriggers", "The triggers this key may read")},
    }


def _hook_paths() -> dict[str, Any]:
    def answer(code: str, text: str, schema: str | None) -> dict[str, Any]:
        if schema is None:
            return {code: {"description": text}}
        return {code: {"description": text,
                       "content": {"application/json": {"schema": _ref(schema)}}}}  # fmt: skip

    common: dict[str, Any] = {"tags": ["hooks"]}
    return {
        "/v1/hooks": {
            "post": {
                **common,
                "operationId": "subscribeHook",
                "summary": "Subscribe a URL to a trigger's events (REST hook)",
                "description": "Each event of the trigger is POSTed to target_url, signed as"
                " Standard Webhooks says (webhook-id, webhook-timestamp, webhook-signature,"
                " with the secret answered here, once), retried with backoff; a target that"
                " answers 410 is unsubscribed.",
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": _ref("HookRequest")}}},
                "responses": {**answer("201", "Subscribed: the id and the signing secret",
                                       "HookCreated"),
                              **answer("200", "Already subscribed (the same trigger, target"
                                       " and filter): that subscription, existing: true",
                                       "HookCreated"),
                              **_errors("400", "401", "403", "413", "422"),
                              "default": {"$ref": "#/components/responses/Error"}},
            },
            "get": {
                **common,
                "operationId": "listHooks",
                "summary": "The subscriptions of the triggers this key may use",
                "responses": {**answer("200", "Subscriptions (never their secrets)",
                                       "HookList"),
                              **_errors("401"),
                              "default": {"$ref": "#/components/responses/Error"}},
            },
        },
        "/v1/hooks/{hook_id}": {
            "delete": {
                **common,
                "operationId": "unsubscribeHook",
                "summary": "Unsubscribe",
                "parameters": [{"name": "hook_id", "in": "path", "required": True,
                                "schema": {"type": "string"}}],
                "responses": {**answer("204", "Unsubscribed", None),
                              **_errors("401", "403", "404"),
                              "default": {"$ref": "#/components/responses/Error"}},
            }
        },
    }  # fmt: skip


def _hook_schemas(trigger_ids: Sequence[str]) -> dict[str, Any]:
    scalar = {"type": ["string", "number", "boolean", "null"]}
    trigger: dict[str, Any] = {"type": "string", "description": "a trigger id"}
    if trigger_ids:
        trigger["enum"] = list(trigger_ids)
    hook = {
        "type": "object",
        "required": ["id", "trigger", "target_url", "created_at"],
        "properties": {
            "id": {"type": "string"},
            "trigger": {"type": "string"},
            "target_url": {"type": "string"},
            "filter": {"type": ["object", "null"]},
            "created_at": {"type": "number"},
        },
    }
    return {
        "HookRequest": {
            "type": "object",
            "required": ["trigger", "target_url"],
            "additionalProperties": False,
            "properties": {
                "trigger": trigger,
                "target_url": {"type": "string", "format": "uri", "maxLength": 2048},
                "filter": {
                    "type": "object",
                    "description": "top-level payload fields that must match: a value, or a"
                    " list of values any of which matches",
                    "maxProperties": 20,
                    "additionalProperties": {"anyOf": [
                        scalar, {"type": "array", "items": scalar, "minItems": 1}]},
                },
            },
        },  # fmt: skip
        "Hook": hook,
        "HookCreated": {"allOf": [_ref("Hook"), {
            "type": "object", "required": ["secret"],
            "properties": {
                "secret": {"type": "string", "description": "whsec_...: verifies each"
                           " delivery's webhook-signature"},
                "existing": {"type": "boolean"},
                "warnings": {"type": "array", "items": {"type": "string"}},
            },
        }]},  # fmt: skip
        "HookList": {"type": "object", "required": ["hooks"],
                     "properties": {"hooks": {"type": "array", "items": _ref("Hook")}}},
    }  # fmt: skip


def _components(schemas: dict[str, Any]) -> dict[str, Any]:
    responses = {
        f"E{code}": {
            "description": text,
            "content": {"application/json": {"schema": _ref("Error")}},
        }
        for code, text in _ERRORS.items()
    }
    responses["Error"] = {
        "description": "Any other error: a GHL 4xx keeps its status and message.",
        "content": {"application/json": {"schema": _ref("Error")}},
    }
    return {
        "schemas": {
            "Error": ERROR_SCHEMA,
            "DryRun": {
                "type": "object",
                "required": ["method", "url"],
                "properties": {
                    "action": {"type": "string"},
                    "method": {"type": "string"},
                    "url": {"type": "string"},
                    "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                    "placeholders": {"type": "object",
                                     "additionalProperties": {"type": "string"}},
                },
            },  # fmt: skip
            **schemas,
        },
        "responses": responses,
        "parameters": {
            "DryRun": {
                "name": "dry_run", "in": "query", "required": False,
                "description": "true: answer the request it would send (token masked), send"
                " nothing",
                "schema": {"type": "boolean"},
            },
            "IdempotencyKey": {
                "name": "Idempotency-Key", "in": "header", "required": False,
                "description": "A repeat with the same key and body answers the stored result"
                " without a second call; the same key with another body answers 422.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255,
                           "pattern": "^[\\x20-\\x7e]+$"},
            },
            "Connection": {
                "name": "X-Connection", "in": "header", "required": False,
                "description": "The stored connection to call with (default: the default"
                " connection)",
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$",
                           "maxLength": 64},
            },
        },  # fmt: skip
        "securitySchemes": {
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            "bearer": {"type": "http", "scheme": "bearer"},
        },
    }


def document(
    catalog: Catalog, *, server_url: str = DEFAULT_SERVER, globs: Sequence[str] = ()
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API over ``catalog`` (only ``globs``' actions and
    triggers when given)."""
    action_ids = chosen(catalog.actions, globs)
    trigger_ids = chosen(catalog.triggers, globs)
    ops = operation_ids([*action_ids, *trigger_ids])
    paths: dict[str, Any] = _fixed_paths()
    schemas: dict[str, Any] = {}
    for action_id in action_ids:
        action, op = catalog.actions[action_id], ops[action_id]
        paths[f"/v1/actions/{action_id}"] = {"post": _action_operation(action, op)}
        schemas[f"{op}_input"] = _input_schema(action)
        schemas[f"{op}_output"] = clean(action.output_schema)
    for trigger_id in trigger_ids:
        trigger, op = catalog.triggers[trigger_id], ops[trigger_id]
        both = _trigger_operations(trigger, op)
        paths[f"/v1/triggers/{trigger_id}/events"] = {"get": both["events"]}
        paths[f"/v1/triggers/{trigger_id}/sample"] = {"get": both["sample"]}
        schemas[f"{op}_event"] = clean(trigger.payload_schema)
    paths.update(_hook_paths())
    schemas.update(_hook_schemas(trigger_ids))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "GHL Connector Pack API",
            "version": _version(),
            "description": "Every action of the GHL Connector Pack's catalog as an HTTP"
            " operation, and its triggers for platforms that poll. Send an API key"
            " ('ghl-connector api keys create NAME') as X-API-Key.",
        },
        "servers": [{"url": server_url}],
        "security": [{"apiKey": []}, {"bearer": []}],
        "tags": [{"name": "catalog"}, {"name": "hooks"},
                 *({"name": a} for a in sorted(catalog.apps))],
        "paths": paths,
        "components": _components(schemas),
    }
