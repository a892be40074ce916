"""The ``sync:`` section: which objects a two-way sync keeps in step, and how, as frozen data.

```yaml
name: GHL <-> Acme
sync:
  partner: acme
  objects:
    contacts:
      direction: two_way            # or ghl_to_partner / partner_to_ghl
      match: [email, phone]         # how records that exist on both sides are paired at first
      fields:
        firstName: first_name       # <GHL field>: <partner field>
        phone: {partner: phone, to_ghl: "{{ item.phone | e164 }}"}
      custom_fields:
        6dvNaf7VhkQ9snc5vnjJ: loyalty_tier    # <GHL custom field id>: <partner field>
      source_of_truth: {email: ghl}
      delete: archive               # propagate / ignore / archive (adds archive_tag)
    tags: {direction: two_way}      # the contact's tag list
```

The section is validated by ``schemas/recipe.schema.json`` (``$defs/sync``), either inside a
recipe or as a document of its own (:func:`load_sync`). How each app reads and writes an object
(action ids, id and update-time fields) is data: each app's ``sync_adapters`` in its manifest
(:attr:`connector.hookspecs.App.sync_adapters`), which a section may override under
``adapters``. Expressions see the source record as ``item``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from connector.documents.document import Document, JsonPath, load_yaml, load_yaml_file, pointer
from connector.documents.schema import Validator, compile_validator, document_problems, load_schema
from connector.errors import DocumentError, Location, Problem
from connector.expressions.syntax import ExpressionError
from connector.expressions.template import CompiledValue, Template, compile_value, parse_template
from connector.hookspecs import App

__all__ = [
    "Adapter",
    "FieldMap",
    "ObjectSync",
    "Side",
    "SyncSpec",
    "build_sync",
    "load_sync",
    "other",
    "parse_sync",
]

Side = Literal["ghl", "partner"]
SIDES: tuple[Side, Side] = ("ghl", "partner")
CUSTOM_PREFIX = "customFields."
"""GHL-side field names ``customFields.<id>`` stand for one custom field's value."""

_PARENT = {"tasks": "contacts", "notes": "contacts"}


def other(side: Side) -> Side:
    """The side that is not ``side``."""
    return "partner" if side == "ghl" else "ghl"


@dataclass(frozen=True, slots=True)
class Adapter:
    """How the engine reads and writes one object type in one app.

    Action ids for each operation (None: the app cannot do it), the input that names the
    record, where outputs hold the record (``record_key``; None: the output is the record),
    its id and update-time fields, the inputs ``find`` takes per match key, the input naming
    the parent contact (tasks, notes), the tag actions used for tag lists and archiving, and
    the paginated action listing every record (``list``, with fixed inputs ``list_input`` and
    the input ``since_input`` that keeps only records changed since a time), and the action
    listing one parent contact's records (``parent_list``, given ``parent_input``; its output
    holds them at ``list_key``, or is the list).
    """

    app: str
    create: str
    get: str | None = None
    update: str | None = None
    delete: str | None = None
    find: str | None = None
    find_key: str | None = None
    find_inputs: Mapping[str, str] = field(default_factory=dict)
    id_input: str = "id"
    id_field: str = "id"
    record_key: str | None = None
    updated_field: str = "updatedAt"
    parent_input: str | None = None
    tags_add: str | None = None
    tags_remove: str | None = None
    tags_field: str = "tags"
    tags_input: str | None = None
    list: str | None = None
    list_input: Mapping[str, Any] = field(default_factory=dict)
    since_input: str | None = None
    parent_list: str | None = None
    list_key: str | None = None

    @property
    def tag_target(self) -> str:
        """The input naming the contact in the tag actions."""
        return self.tags_input or self.id_input


@dataclass(frozen=True, slots=True)
class FieldMap:
    """One synced field: its GHL name, its partner name, optional value transforms per
    direction (expressions over the source record as ``item``), the directions it flows in,
    the side whose value always wins (None: the last writer wins), and the value written when
    the source record has none (``default``: a value or an expression over ``item``)."""

    ghl: str | None
    partner: str | None
    to_ghl: Template | None
    to_partner: Template | None
    direction: str
    source_of_truth: Side | None
    default: CompiledValue | None = None

    def name(self, side: Side) -> str | None:
        """The field's name on ``side``."""
        return self.ghl if side == "ghl" else self.partner

    def flows(self, source: Side) -> bool:
        """Whether a change on ``source`` is copied to the other side's existing record."""
        return self.reaches(source) and self.source_of_truth != other(source)

    def reaches(self, source: Side) -> bool:
        """Whether a record created from ``source`` gets this field on the other side (the
        source of truth only arbitrates updates)."""
        if self.name(other(source)) is None:
            return False
        return self.direction in ("two_way", f"{source}_to_{other(source)}")

    def transform(self, source: Side) -> Template | None:
        """The expression computing the other side's value from a ``source`` record."""
        return self.to_partner if source == "ghl" else self.to_ghl


@dataclass(frozen=True, slots=True)
class ObjectSync:
    """One object type kept in step (contacts, tasks or notes)."""

    name: str
    direction: str
    fields: tuple[FieldMap, ...]
    match: tuple[str, ...]
    delete: str
    archive_tag: str
    adapters: Mapping[Side, Adapter]
    parent: str | None

    def allows(self, source: Side) -> bool:
        """Whether changes on ``source`` are copied at all."""
        return self.direction == "two_way" or self.direction == f"{source}_to_{other(source)}"

    def fields_into(self, target: Side) -> tuple[FieldMap, ...]:
        """The fields a sync writes on ``target`` (those flowing from the other side)."""
        return tuple(f for f in self.fields if f.flows(other(target)))


@dataclass(frozen=True, slots=True)
class SyncSpec:
    """A whole sync: its name (keys the id map and the audit), the partner app, the objects,
    the region for phone numbers written without a country code, field names whose values
    the audit never stores, and the hub app (the catalog's; the fixed side, role ``ghl``)."""

    name: str
    partner: str
    objects: Mapping[str, ObjectSync]
    phone_region: str = "US"
    redact: frozenset[str] = frozenset()
    hub: str = ""

    def app(self, side: Side) -> str:
        """The app id on ``side``: the hub's on the hub side (role ``ghl``), else the partner's."""
        return self.partner if side == "partner" else self.hub


# -- building -------------------------------------------------------------------------------


def build_sync(
    data: Mapping[str, Any],
    *,
    name: str,
    doc: Document | None = None,
    at: JsonPath = ("sync",),
    apps: Mapping[str, App] | None = None,
) -> SyncSpec:
    """Build a :class:`SyncSpec` from a schema-valid ``sync:`` mapping.

    :param name: the sync's name (the recipe's or document's ``name``).
    :param doc: the document, to place expression errors at their line.
    :param apps: the catalog's apps, whose ``sync_adapters`` say how each side is read and
        written (default: the apps of every installed plugin).
    :raises DocumentError: an expression does not parse, or an app has no adapter.
    """
    apps = _installed_apps() if apps is None else apps
    problems: list[Problem] = []
    partner = str(data["partner"])
    hub = _hub_of(apps)
    tags = data["objects"].get("tags")
    objects: dict[str, ObjectSync] = {}
    for kind, spec in data["objects"].items():
        if kind == "tags":
            continue
        path = (*at, "objects", kind)
        declared = data.get("adapters", {})
        adapters = _adapters(apps, (hub, partner), kind, declared, doc, path, problems)
        fields = _fields(spec, path, doc, problems)
        if kind == "contacts" and tags is not None:
            fields.append(_tag_field(tags, adapters))
        if adapters is None:
            continue
        objects[kind] = ObjectSync(
            name=kind,
            direction=spec.get("direction", "two_way"),
            fields=tuple(fields),
            match=tuple(spec.get("match", ["email", "phone"] if kind == "contacts" else [])),
            delete=spec.get("delete", "ignore"),
            archive_tag=spec.get("archive_tag", "sync-archived"),
            adapters=MappingProxyType(adapters),
            parent=_PARENT.get(kind),
        )
    if problems:
        raise DocumentError(problems)
    return SyncSpec(
        name=name,
        partner=partner,
        objects=MappingProxyType(objects),
        phone_region=str(data.get("phone_region", "US")),
        redact=frozenset(data.get("redact", ())),
        hub=hub,
    )


def _tag_field(spec: Mapping[str, Any], adapters: Mapping[Side, Adapter] | None) -> FieldMap:
    names = {side: adapters[side].tags_field if adapters else "tags" for side in SIDES}
    return FieldMap(
        names["ghl"],
        names["partner"],
        None,
        None,
        spec.get("direction", "two_way"),
        spec.get("source_of_truth"),
    )


def _hub_of(apps: Mapping[str, App]) -> str:
    from connector.catalog import hub_of  # the catalog sits above the documents it reads

    return hub_of(apps) or ""


def _installed_apps() -> Mapping[str, App]:
    from connector.catalog import build_catalog  # the catalog sits above the documents it reads

    return build_catalog().apps


def _adapters(
    apps: Mapping[str, App],
    pair: tuple[str, str],
    kind: str,
    declared: Mapping[str, Any],
    doc: Document | None,
    path: JsonPath,
    problems: list[Problem],
) -> dict[Side, Adapter] | None:
    found: dict[Side, Adapter] = {}
    for side in SIDES:
        app = pair[SIDES.index(side)]
        found_app = apps.get(app)
        defaults = found_app.sync_adapters.get(kind, {}) if found_app else {}
        data = {**defaults, **declared.get(side, {}).get(kind, {})}
        if "create" not in data:
            where = doc.locate(path) if doc else _nowhere(path)
            problems.append(
                Problem(
                    where,
                    f"app {app!r} has no adapter for {kind!r}"
                    if app
                    else f"no app of the catalog is the hub, so the {side} side has no app",
                    f"declare sync.adapters.{side}.{kind} with its action ids"
                    if app
                    else "give one app `hub: true` in its manifest",
                )
            )
            continue
        found[side] = Adapter(app=app, **{k: v for k, v in data.items() if k != "app"})
    return found if len(found) == 2 else None


def _fields(
    spec: Mapping[str, Any], path: JsonPath, doc: Document | None, problems: list[Problem]
) -> list[FieldMap]:
    direction = spec.get("direction", "two_way")
    truth: Mapping[str, Side] = spec.get("source_of_truth", {})
    out: list[FieldMap] = []
    entries = [(g, v, "fields") for g, v in spec.get("fields", {}).items()]
    entries += [(g, v, "custom_fields") for g, v in spec.get("custom_fields", {}).items()]
    for ghl, value, section in entries:
        ghl_name = ghl if section == "fields" else CUSTOM_PREFIX + ghl
        where: JsonPath = (*path, section, ghl)
        lone = isinstance(value, str) and "{{" in value
        if isinstance(value, str):
            value = {"to_ghl": value} if lone else {"partner": value}
        out.append(
            FieldMap(
                ghl=ghl_name,
                partner=value.get("partner"),
                to_ghl=_template(
                    value.get("to_ghl"), where if lone else (*where, "to_ghl"), doc, problems
                ),
                to_partner=_template(
                    value.get("to_partner"), (*where, "to_partner"), doc, problems
                ),
                direction=value.get("direction", direction),
                source_of_truth=truth.get(ghl, truth.get(ghl_name)),
                default=_default(value, (*where, "default"), doc, problems),
            )
        )
    return out


def _default(
    value: Mapping[str, Any], path: JsonPath, doc: Document | None, problems: list[Problem]
) -> CompiledValue | None:
    if "default" not in value:
        return None
    try:
        return compile_value(value["default"], env=())
    except ExpressionError as exc:
        where = doc.locate(path) if doc else _nowhere(path)
        problems.append(Problem(where, exc.detail))
        return None


def _template(
    text: str | None, path: JsonPath, doc: Document | None, problems: list[Problem]
) -> Template | None:
    if text is None:
        return None
    try:
        return parse_template(text, env=())
    except ExpressionError as exc:
        where = doc.locate(path) if doc else _nowhere(path)
        problems.append(Problem(where, exc.detail))
        return None


def _nowhere(path: JsonPath) -> Location:
    return Location(None, pointer=pointer(path))


# -- standalone sync documents ---------------------------------------------------------------


@cache
def _document_validator() -> Validator:
    schema = load_schema("recipe.schema.json")
    # The same $id as the recipe schema: its references may already have been made absolute
    # ("recipe.schema.json#/$defs/...") by fastjsonschema, which rewrites them in place.
    wrapper = {
        "$schema": schema["$schema"],
        "$id": schema["$id"],
        "$ref": "#/$defs/sync_document",
        "$defs": copy.deepcopy(schema["$defs"]),
    }
    return compile_validator(wrapper, source="recipe.schema.json#/$defs/sync_document", check=False)


def _from_document(doc: Document, apps: Mapping[str, App] | None) -> SyncSpec:
    found = document_problems(_document_validator(), doc)
    if found:
        raise DocumentError(found)
    return build_sync(doc.data["sync"], name=str(doc.data["name"]), doc=doc, apps=apps)


def load_sync(path: Path, *, apps: Mapping[str, App] | None = None) -> SyncSpec:
    """Read a sync document (``name``, optional ``description``, ``sync``) from ``path``.

    :param apps: the catalog's apps (default: those of every installed plugin).
    :raises DocumentError: listing every problem at its file:line.
    """
    return _from_document(load_yaml_file(path), apps)


def parse_sync(
    text: str, *, file: str | None = None, apps: Mapping[str, App] | None = None
) -> SyncSpec:
    """Like :func:`load_sync`, for text already in memory."""
    return _from_document(load_yaml(text, file=file), apps)
