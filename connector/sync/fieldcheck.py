"""The field names of a sync document, checked against the actions its adapters name.

``ghl-connector validate`` calls :func:`field_problems` for a sync document. A name on the side
a field is *written* to must be an input of that side's create or update action (its input
schema's ``properties``), exactly as the engine decides at run time
(:meth:`connector.sync.sides.SyncSide.inputs`: anything else is audited "not writable
there"); the tag list is written by the tag actions, ``customFields.<id>`` through the
``customFields`` input. A name only *read* from a side (a field copied one way) must be a
field of that side's records: the record schemas of its get, create and update outputs (at
``record_key``) and of its webhook events. When one of those schemas is loose (no
``additionalProperties: false``, as GHL's are), a record may carry more than it lists, so only a
near miss of a listed name (``frstName``) is reported, and as a warning. Every problem is placed
at its ``file:line:col`` with a did-you-mean hint.

``source_of_truth`` keys must name a mapped GHL field: the engine ignores any other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from connector.catalog import Catalog, did_you_mean
from connector.documents.document import Document, JsonPath
from connector.errors import Problem
from connector.sync.spec import CUSTOM_PREFIX, Adapter, FieldMap, ObjectSync, Side, SyncSpec, other

__all__ = ["field_problems", "readable", "writable"]


def writable(catalog: Catalog, adapter: Adapter) -> frozenset[str]:
    """The field names the engine can write on ``adapter``'s app: its create and update
    actions' inputs (and the tag list, when the adapter has a tag action)."""
    names: set[str] = set()
    for action_id in (adapter.create, adapter.update):
        action = catalog.actions.get(action_id) if action_id else None
        if action is not None:
            names.update(action.input_schema.get("properties", {}))
    if adapter.tags_add:
        names.add(adapter.tags_field)
    return frozenset(names)


def readable(
    catalog: Catalog, adapter: Adapter, kind: str, hub: bool
) -> tuple[frozenset[str], bool]:
    """The field names ``adapter``'s records are known to have, and whether that list is
    complete (every schema read says ``additionalProperties: false``)."""
    schemas: list[Mapping[str, Any]] = []
    for action_id in (adapter.get, adapter.create, adapter.update):
        action = catalog.actions.get(action_id) if action_id else None
        if action is not None:
            schemas.append(_at(action.output_schema, adapter.record_key))
    schemas += _event_records(catalog, adapter.app, kind, hub)
    names: set[str] = set()
    strict = bool(schemas)
    for schema in schemas:
        props = schema.get("properties")
        if not isinstance(props, Mapping) or not props:
            strict = False
            continue
        names.update(props)
        if schema.get("additionalProperties") is not False:
            strict = False
    return frozenset(names), strict


def _at(schema: Mapping[str, Any], key: str | None) -> Mapping[str, Any]:
    found = schema.get("properties", {}).get(key) if key else schema
    return found if isinstance(found, Mapping) else {}


def _event_records(catalog: Catalog, app_id: str, kind: str, hub: bool) -> list[Mapping[str, Any]]:
    """The record schemas of ``app_id``'s webhook events about ``kind`` records."""
    app = catalog.apps.get(app_id)
    if app is None:
        return []
    triggers = [t for t in catalog.triggers.values() if t.app == app_id and t.kind == "webhook"]
    found: list[Mapping[str, Any]] = []
    if hub and app.sync_events is not None:
        types = app.sync_events.types
        for trigger in triggers:
            event = types.get(str(trigger.event))
            if event is not None and event.object == kind:
                found.append(trigger.payload_schema)
    elif app.webhooks is not None:
        nouns = {noun for noun, obj in app.webhooks.objects.items() if obj == kind}
        for trigger in triggers:
            if str(trigger.event).partition(".")[0] in nouns:
                found.append(_at(trigger.payload_schema, app.webhooks.record))
    return found


def field_problems(
    spec: SyncSpec, doc: Document, catalog: Catalog
) -> tuple[list[Problem], list[Problem]]:
    """The problems (certainly wrong) and warnings (likely wrong) of the field names of a
    sync document built into ``spec`` from ``doc``."""
    problems: list[Problem] = []
    warnings: list[Problem] = []
    objects = doc.data["sync"]["objects"]
    for kind, obj in spec.objects.items():
        section: Mapping[str, Any] = objects.get(kind) or {}
        path: JsonPath = ("sync", "objects", kind)
        by_ghl = {f.ghl: f for f in obj.fields}
        for key in ("fields", "custom_fields"):
            for ghl, value in (section.get(key) or {}).items():
                name = ghl if key == "fields" else CUSTOM_PREFIX + ghl
                fmap = by_ghl.get(name)
                if fmap is None:
                    continue
                where: JsonPath = (*path, key, ghl)
                sides: dict[Side, tuple[str | None, JsonPath, bool]] = {
                    "ghl": (None if key == "custom_fields" else ghl, where, True),
                    "partner": (
                        fmap.partner,
                        (*where, "partner") if isinstance(value, Mapping) else where,
                        False,
                    ),
                }
                for side, (field, at, is_key) in sides.items():
                    if field is not None:
                        found = _check(catalog, spec, obj, fmap, side, field)
                        if found is not None:
                            place = doc.locate_key(at) if is_key else doc.locate(at)
                            message, hint, certain = found
                            (problems if certain else warnings).append(
                                Problem(place, message, hint)
                            )
                if key == "custom_fields":
                    problems += _custom_input(catalog, obj, fmap, doc, where)
        problems += _owners(section, path, doc)
    return problems, warnings


def _check(
    catalog: Catalog, spec: SyncSpec, obj: ObjectSync, fmap: FieldMap, side: Side, name: str
) -> tuple[str, str | None, bool] | None:
    """What is wrong with ``name`` on ``side``: (message, hint, certain), or None."""
    adapter = obj.adapters[side]
    app = spec.app(side)
    if fmap.reaches(other(side)):  # written there
        names = writable(catalog, adapter)
        if name in names:
            return None
        actions = " and ".join(a for a in (adapter.create, adapter.update) if a)
        message = (
            f"field {name!r} cannot be written on {app} {obj.name}: {actions} take no such"
            " input (at run time: not writable there)"
        )
        return message, did_you_mean(name, names) or _known(names), True
    if not fmap.reaches(side):
        return None
    known, strict = readable(catalog, adapter, obj.name, side == "ghl")
    head = name.split(".")[0]
    if not known or head in known:
        return None
    hint = did_you_mean(head, known)
    message = f"field {head!r} is not a field of {app}'s {obj.name} records"
    if strict:
        return message, hint or _known(known), True
    if hint is None:
        return None
    return message + " (as far as its schemas list them)", hint, False


def _custom_input(
    catalog: Catalog, obj: ObjectSync, fmap: FieldMap, doc: Document, where: JsonPath
) -> list[Problem]:
    """A custom field written on GHL needs the customFields input of its create or update."""
    if not fmap.reaches("partner") or "customFields" in writable(catalog, obj.adapters["ghl"]):
        return []
    message = f"{obj.name}: custom fields cannot be written on GHL (no customFields input)"
    return [Problem(doc.locate_key(where), message)]


def _owners(section: Mapping[str, Any], path: JsonPath, doc: Document) -> list[Problem]:
    """``source_of_truth`` keys that name no mapped field."""
    mapped = set(section.get("fields") or {})
    for ident in section.get("custom_fields") or {}:
        mapped.update((ident, CUSTOM_PREFIX + ident))
    found: list[Problem] = []
    for name in section.get("source_of_truth") or {}:
        if name not in mapped:
            where = doc.locate_key((*path, "source_of_truth", name))
            message = f"source_of_truth names {name!r}, which is not a mapped field"
            found.append(Problem(where, message, did_you_mean(name, mapped) or _known(mapped)))
    return found


def _known(names: Iterable[str]) -> str | None:
    listed = sorted(names)
    if not listed:
        return None
    shown = ", ".join(listed[:25]) + (", ..." if len(listed) > 25 else "")
    return f"known: {shown}"
