"""Reading a manifest (``manifest.yaml``) into App, Action and Trigger descriptors.

The staged pipeline: read the YAML with positions (:mod:`connector.documents.document`),
validate it against ``schemas/manifest.schema.json``, then build frozen descriptors, loading
each action's schema file. Consistency checks that JSON Schema cannot express (every input
placed, every path placeholder filled, no two inputs on the same wire name) are reported with
the line of the action that breaks them.

The pack's own manifest (:func:`pack_manifest`, checked in full by the test suite) takes a
fast path: its compiled JSON form is read instead of the YAML, without positions
(:mod:`connector.documents.compiled`), and each schema file is read the first time its
action's schemas are looked at (:mod:`connector.documents.lazyschema`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from connector.documents.compiled import read_pack_manifest
from connector.documents.document import Document, load_yaml_file
from connector.documents.lazyschema import SchemaFile
from connector.documents.schema import compile_validator, load_schema, raise_for_document
from connector.errors import DocumentError, Problem
from connector.hookspecs import (
    SEARCH_INPUT,
    SEARCH_RANGE,
    Action,
    App,
    EventMatch,
    EventType,
    Gone,
    Param,
    Polling,
    RateLimit,
    SyncEvents,
    Trigger,
    Webhooks,
)
from connector.pack import pack_root

__all__ = ["Manifest", "load_manifest", "pack_manifest"]

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_EXECUTOR_OPTIONS = ("graphql", "verify", "headers", "body")
"""Manifest keys that configure how an action runs; they reach the runtime as ``Action.options``."""


@dataclass(frozen=True, slots=True)
class Manifest:
    """The apps, actions and triggers one manifest declares."""

    file: str
    apps: Mapping[str, App]
    actions: Mapping[str, Action]
    triggers: Mapping[str, Trigger]


@cache
def pack_manifest() -> Manifest:
    """The pack's own manifest (built-in apps, actions and triggers), read once."""
    root = pack_root()
    # The pack's own manifest and schemas are checked in full by its test suite
    # (tests/test_manifest.py, tests/test_contracts.py); reading the YAML with positions and
    # 576 schema files at every start would cost each process over a second.
    return load_manifest(root / "manifest.yaml", schema_root=root, trusted=True)


def load_manifest(
    path: Path,
    *,
    schema_root: Path | None = None,
    check_schemas: bool = True,
    trusted: bool = False,
) -> Manifest:
    """Read, validate and build the manifest at ``path``.

    :param schema_root: folder that the manifest's ``schema:`` paths are relative to
        (default: the manifest's own folder).
    :param check_schemas: check each schema file against the JSON Schema meta-schema.
    :param trusted: the pack's own manifest, checked by its tests: read from its compiled
        JSON form when that is current (without positions or validation), its params not
        checked against the inputs, and each schema file read the first time something looks
        at its action's schemas.
    :raises DocumentError: listing every problem, each at its file:line:col.
    """
    if trusted:
        doc = read_pack_manifest(path)
    else:
        doc = load_yaml_file(path)
        validator = compile_validator(
            load_schema("manifest.schema.json"), source="manifest.schema.json", fast=False
        )
        raise_for_document(validator, doc)
    builder = _Builder(doc, schema_root or path.parent, check_schemas, lazy=trusted)
    return builder.build()


class _Builder:
    def __init__(self, doc: Document, root: Path, check_schemas: bool, *, lazy: bool) -> None:
        self.doc = doc
        self.root = root
        self.check_schemas = check_schemas
        self.lazy = lazy
        self.found: list[Problem] = []

    def build(self) -> Manifest:
        data = self.doc.data
        apps = {key: _app(key, spec) for key, spec in data["apps"].items()}
        actions = {}
        for key, spec in data.get("actions", {}).items():
            action = self._action(key, spec, apps)
            if action is not None:
                actions[key] = action
        triggers = {}
        for key, spec in data.get("triggers", {}).items():
            trigger = self._trigger(key, spec, apps)
            if trigger is not None:
                triggers[key] = trigger
        for key, action in actions.items():
            if action.use_instead and action.use_instead not in actions:
                self._problem(
                    ("actions", key, "use_instead"), f"unknown action {action.use_instead!r}"
                )
        if self.found:
            raise DocumentError(self.found)
        return Manifest(str(self.doc.file), apps, actions, triggers)

    def _problem(self, path: tuple[str | int, ...], message: str) -> None:
        self.found.append(Problem(self.doc.locate(path), message))

    def _schema(self, where: tuple[str, ...], relative: str) -> SchemaFile | None:
        """The schema file at ``relative``: read (and checked) now, or read on first use."""
        schema_id, folder = str(Path(relative).relative_to("schemas")), self.root / "schemas"
        if self.lazy:
            return SchemaFile(lambda: load_schema(schema_id, folder))
        path = self.root / relative
        try:
            schema = load_schema(schema_id, folder)
        except DocumentError as exc:
            self._problem((*where, "schema"), f"{path}: {exc.problems[0].message}")
            return None
        if self.check_schemas:
            try:
                compile_validator(schema, source=str(path))
            except DocumentError as exc:
                self._problem((*where, "schema"), str(exc))
                return None
        return SchemaFile(lambda: schema)

    def _part(self, schema: SchemaFile, name: str) -> Mapping[str, Any]:
        """A part of an action's or trigger's schema: a plain dict, or lazy when trusted."""
        part = schema.part(name)
        return part if self.lazy else part.resolve()

    def _action(self, key: str, spec: Mapping[str, Any], apps: Mapping[str, App]) -> Action | None:
        where = ("actions", key)
        app = key.split(".", 1)[0]
        if app not in apps:
            self._problem(where, f"action {key!r} belongs to unknown app {app!r}")
            return None
        schema = self._schema(where, spec["schema"])
        if schema is None:
            return None
        method = spec.get("method", "POST" if spec.get("kind") == "graphql" else "GET")
        params = tuple(_param(name, raw) for name, raw in spec.get("params", {}).items())
        body = spec.get("body", "json" if method in _BODY_METHODS else "none") != "none"
        input_schema = self._part(schema, "input")
        if not self.lazy:
            self._check_params(where, spec, input_schema, params, body)
        return Action(
            id=key,
            app=app,
            title=spec["title"],
            input_schema=input_schema,
            output_schema=self._part(schema, "output"),
            method=method,
            path=spec.get("path", "/"),
            kind=spec.get("kind", "http"),
            description=spec.get("description", ""),
            operation=spec.get("operation"),
            scopes=tuple(spec.get("scopes", ())),
            deprecated=spec.get("deprecated", False),
            use_instead=spec.get("use_instead"),
            params=params,
            body=body,
            retry_safe=spec.get("retry_safe", False),
            pagination=spec.get("pagination"),
            location_param=spec.get("location_param"),
            location_inputs=spec.get("location_inputs", {}),
            success=tuple(spec.get("success", ())),
            options={key: spec[key] for key in _EXECUTOR_OPTIONS if key in spec},
            source=str(self.doc.file),
            tags=tuple(spec.get("tags", ())),
        )

    def _check_params(
        self,
        where: tuple[str, ...],
        spec: Mapping[str, Any],
        input_schema: Mapping[str, Any],
        params: tuple[Param, ...],
        body: bool,
    ) -> None:
        properties = input_schema.get("properties", {})
        placed = {p.name for p in params}
        for p in params:
            if p.name not in properties:
                self._problem((*where, "params", p.name), f"{p.name!r} is not an input property")
        filled = [("location_param", spec["location_param"])] if "location_param" in spec else []
        filled += [("location_inputs", name) for name in spec.get("location_inputs", {})]
        for key, name in filled:
            if name not in properties:
                self._problem((*where, key), f"{name!r} is not an input property")
        wire: dict[tuple[str, str], str] = {}
        for p in params:
            other = wire.setdefault((p.location, p.wire_name), p.name)
            if other != p.name:
                self._problem(
                    (*where, "params", p.name),
                    f"inputs {other!r} and {p.name!r} both go to {p.location} {p.wire_name!r}",
                )
        path_params = {p.wire_name for p in params if p.location == "path"}
        for name in _PLACEHOLDER.findall(spec.get("path", "")):
            if name not in path_params:
                self._problem(
                    (*where, "path"), f"placeholder {{{name}}} has no path input in params"
                )
        if not body and spec.get("kind", "http") == "http":
            for name in properties:
                if name not in placed:
                    self._problem(
                        (*where, "params"),
                        f"input {name!r} has no place: list it in params or declare body: json",
                    )

    def _trigger(
        self, key: str, spec: Mapping[str, Any], apps: Mapping[str, App]
    ) -> Trigger | None:
        where = ("triggers", key)
        app = key.split(".", 1)[0]
        if app not in apps:
            self._problem(where, f"trigger {key!r} belongs to unknown app {app!r}")
            return None
        schema = SchemaFile(dict)
        if "schema" in spec:
            found = self._schema(where, spec["schema"])
            if found is None:
                return None
            schema = found
        return Trigger(
            id=key,
            app=app,
            title=spec["title"],
            kind=spec["kind"],
            payload_schema=self._part(schema, "payload"),
            event=spec.get("event"),
            description=spec.get("description", ""),
            scopes=tuple(spec.get("scopes", ())),
            options_schema=self._part(schema, "with"),
            action=spec.get("action"),
            cursor=spec.get("cursor"),
            dedupe=tuple(spec.get("dedupe", ())),
            enrich=spec.get("enrich"),
            source=str(self.doc.file),
            match=EventMatch(tuple(match["types"]), tuple(match.get("has", ())))
            if (match := spec.get("match"))
            else None,
        )


def _app(key: str, spec: Mapping[str, Any]) -> App:
    limit = spec.get("rate_limit")
    return App(
        id=key,
        title=spec["title"],
        base_url=spec["base_url"],
        auth=tuple(spec["auth"]),
        description=spec.get("description", ""),
        headers=dict(spec.get("headers", {})),
        oauth=dict(spec.get("oauth", {})),
        rate_limit=RateLimit(limit["requests"], limit["per_seconds"], limit.get("daily"))
        if limit
        else None,
        timeout_seconds=spec.get("timeout_seconds", 30.0),
        api_key_header=spec.get("api_key_header"),
        assumptions=tuple(spec.get("assumptions", ())),
        webhooks=_webhooks(spec["webhooks"]) if "webhooks" in spec else None,
        sync_adapters={k: dict(v) for k, v in spec.get("sync_adapters", {}).items()},
        hub=bool(spec.get("hub", False)),
        polling=_polling(spec["polling"]) if "polling" in spec else None,
        sync_events=_sync_events(spec["sync_events"]) if "sync_events" in spec else None,
    )


def _polling(spec: Mapping[str, Any]) -> Polling:
    return Polling(
        search=spec["search"],
        contact_input=spec.get("contact_input", "contactId"),
        changed=spec.get("changed", "dateUpdated"),
        created=spec.get("created", "dateAdded"),
        reconcile=dict(spec.get("reconcile", {})),
        search_input=dict(spec.get("search_input", SEARCH_INPUT)),
        search_range=dict(spec.get("search_range", SEARCH_RANGE)),
        gone=tuple(Gone(g["status"], g.get("says")) for g in spec["gone"])
        if "gone" in spec
        else (Gone(404),),
    )


def _sync_events(spec: Mapping[str, Any]) -> SyncEvents:
    types = {
        name: EventType(kind["object"], bool(kind.get("deleted")), dict(kind.get("sets", {})))
        for name, kind in spec["types"].items()
    }
    return SyncEvents(
        types=types,
        type=spec.get("type", "type"),
        id=spec.get("id", "id"),
        event_id=tuple(spec.get("event_id", ())),
        time=tuple(spec.get("time", ())),
        contact=tuple(spec.get("contact", ())),
        envelope=tuple(spec.get("envelope", ())),
        reread=tuple(spec.get("reread", ())),
    )


def _webhooks(spec: Mapping[str, Any]) -> Webhooks:
    signature, envelope = spec["signature"], spec["envelope"]
    return Webhooks(
        header=signature["header"],
        algorithm=signature.get("algorithm", "hmac-sha256"),
        prefix=signature.get("prefix", ""),
        secret_env=spec.get("secret_env"),
        id=tuple(envelope["id"]),
        type=envelope["type"],
        time=envelope.get("time"),
        record=envelope["record"],
        objects=dict(spec.get("objects", {})),
        deleted=tuple(spec.get("deleted", ("deleted",))),
        updated=tuple(envelope.get("updated", ())),
        contact=tuple(envelope.get("contact", ())),
    )


def _param(name: str, raw: str | Mapping[str, str]) -> Param:
    if isinstance(raw, str):
        return Param(name, raw, name)
    return Param(name, raw["in"], raw.get("name", name))
