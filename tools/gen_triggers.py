"""Generator of the GHL triggers: manifest entries and schemas/triggers/*.json.

Webhook triggers are built from GHL's per-event payload schemas and examples
(``../shared/ghl-openapi/webhook-events/<Event>.schema.json`` and ``.example.json``): the schema is
kept, the fields every delivery carries (``webhookId``, ``timestamp``) are added, every property
gets a description (the source has none) and an example taken from the event's example file.
Polling triggers take their payload from the output of the action they poll. Everything
hand-written is data under ``triggers:`` in ``tools/catalog_overrides.yaml``; ``gen_catalog.py``
calls :func:`build_triggers` and writes the results.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path

from catalog_json import DRAFT, CatalogError, Json, apply_fix, load_json, ordered
from catalog_report import Report

TRIGGER_KEYS = (
    "title",
    "description",
    "kind",
    "event",
    "scopes",
    "schema",
    "action",
    "cursor",
    "dedupe",
    "enrich",
)
_MISSING = object()


class Describer:
    """Finds a description for a payload property: ``<Group>.<path>``, then the name."""

    def __init__(self, own: Mapping[str, str], shared: Mapping[str, str]) -> None:
        self.own = own
        self.shared = shared
        self.missing: list[str] = []

    def text(self, group: str, path: str, name: str) -> str:
        """The description of ``path`` (dotted, ``[]`` for array items) in ``group``'s payloads."""
        for key, table in ((f"{group}.{path}", self.own), (name, self.own), (name, self.shared)):
            if key in table:
                return table[key]
        self.missing.append(f"{group}.{path}")
        return ""


def annotate(node: Json, example: Json, group: str, where: str, describer: Describer) -> Json:
    """Copy a payload schema, adding descriptions and examples (from ``example``) to properties."""
    out = dict(node)
    if isinstance(node.get("properties"), Mapping):
        props = {}
        for name, sub in node["properties"].items():
            path = f"{where}.{name}" if where else name
            value = example.get(name, _MISSING) if isinstance(example, Mapping) else _MISSING
            prop = annotate(sub, value, group, path, describer)
            if "description" not in prop:
                prop["description"] = describer.text(group, path, name)
            props[name] = ordered(prop)
        out["properties"] = props
    if isinstance(node.get("items"), Mapping):
        first = example[0] if isinstance(example, list) and example else _MISSING
        out["items"] = annotate(node["items"], first, group, f"{where}[]", describer)
    if _is_leaf_example(example) and "examples" not in node:
        out["examples"] = [copy.deepcopy(example)]
    return ordered(out)


def _is_leaf_example(value: Json) -> bool:
    """Whether ``value`` is worth an ``examples`` entry: a scalar or a list of scalars."""
    if value is _MISSING or isinstance(value, Mapping):
        return False
    if isinstance(value, list):
        return bool(value) and not any(isinstance(v, Mapping | list) for v in value)
    return True


def options_schema(names: list[str], options: Mapping[str, Json]) -> Json:
    """The ``with`` schema: the named options, all optional, nothing else allowed."""
    return {
        "description": "Options of the trigger in a recipe (its `with:` block); all optional.",
        "type": "object",
        "properties": {name: ordered(copy.deepcopy(options[name])) for name in names},
        "additionalProperties": False,
    }


def document(tid: str, title: str, description: str, payload: Json, options: Json) -> Json:
    """The schema file of one trigger: ``payload`` and ``with``."""
    return {
        "$schema": DRAFT,
        "$id": f"triggers/{tid}.json",
        "title": title,
        "description": description,
        "type": "object",
        "properties": {"payload": payload, "with": options},
    }


def webhook_trigger(
    event: str,
    tcfg: Mapping[str, Json],
    cfg: Mapping[str, Json],
    events: Path,
    describer: Describer,
) -> tuple[str, dict[str, Json], Json]:
    """Build one webhook trigger's manifest entry and schema document from the event files."""
    tid, group = tcfg["id"], tcfg["group"]
    source = load_json(events / f"{event}.schema.json")
    example = load_json(events / f"{event}.example.json")
    shared = cfg["groups"].get(group, {}).get("schema_fixes", [])
    for fix in [*shared, *tcfg.get("schema_fixes", [])]:
        apply_fix(source, fix)
    for fix in tcfg.get("example_fixes", []):
        apply_fix(example, fix)
    props = source.setdefault("properties", {})
    if clash := sorted(set(cfg["common"]) & set(props)):
        raise CatalogError(
            f"{event}.schema.json now declares {clash} [drop them from triggers.common]"
        )
    props.update(copy.deepcopy(cfg["common"]))
    payload = annotate(source, example, group, "", describer)
    kind = payload["properties"]["type"]
    kind["description"] = kind["description"].replace("{event}", event)
    payload["description"] = (
        f"The JSON body GHL posts for each {event} event: its published schema plus `webhookId` "
        "and `timestamp`. Open: GHL may add fields."
    )
    payload["required"] = list(cfg["required"])
    payload["examples"] = [example]
    description = tcfg["description"].strip()
    if "scope_note" in tcfg:
        description += "\n\n" + tcfg["scope_note"].strip()
    options = options_schema(tcfg["options"], cfg["options"])
    entry = {
        "title": tcfg["title"],
        "description": description,
        "kind": "webhook",
        "event": event,
        "scopes": list(tcfg["scopes"]),
        "schema": f"schemas/triggers/{tid}.json",
    }
    if "enrich" in tcfg:
        entry["enrich"] = copy.deepcopy(tcfg["enrich"])
    return tid, entry, document(tid, tcfg["title"], description, ordered(payload), options)


def polling_trigger(
    tid: str,
    tcfg: Mapping[str, Json],
    cfg: Mapping[str, Json],
    actions: Mapping[str, Json],
    action_schemas: Mapping[str, Json],
) -> tuple[dict[str, Json], Json]:
    """Build one polling trigger: its payload is one record of the polled action's output."""
    aid = tcfg["action"]
    if aid not in actions:
        raise CatalogError(f"triggers.polling.{tid}: unknown action {aid!r}")
    node = action_schemas[f"{aid}.json"]["properties"]["output"]
    for part in tcfg["records"].split("."):
        node = node["properties"][part]
    record = copy.deepcopy(node["items"])
    # Without a cursor the records are listed per changed contact (connector/service/pollers.py).
    fields = [*([tcfg["cursor"]] if "cursor" in tcfg else []), *tcfg["dedupe"]]
    if unknown := [f for f in fields if f not in record.get("properties", {})]:
        raise CatalogError(f"triggers.polling.{tid}: {aid} records have no field {unknown}")
    record["description"] = (
        f"One record of {aid}'s `{tcfg['records']}` output, as that action returns it."
    )
    description = tcfg["description"].strip()
    entry = {
        "title": tcfg["title"],
        "description": description,
        "kind": "polling",
        "scopes": list(actions[aid]["scopes"]),
        "schema": f"schemas/triggers/{tid}.json",
        "action": aid,
        "cursor": tcfg.get("cursor"),
        "dedupe": list(tcfg["dedupe"]),
    }
    if entry["cursor"] is None:
        del entry["cursor"]
    options = options_schema(tcfg["options"], cfg["options"])
    return entry, document(tid, tcfg["title"], description, ordered(record), options)


def build_triggers(
    overrides: Mapping[str, Json],
    events: Path,
    actions: Mapping[str, Json],
    action_schemas: Mapping[str, Json],
    report: Report,
) -> tuple[dict[str, Json], dict[str, Json]]:
    """Return the manifest's trigger entries by id and their schema documents by file name.

    :param overrides: the whole overrides file (``triggers`` and the shared ``descriptions``).
    :param events: the folder of GHL's webhook-event schemas and examples.
    :param actions: the generated manifest action entries by id.
    :param action_schemas: the generated action schema documents by file name.
    :raises CatalogError: an event file or a fix no longer matches, or a description is missing.
    """
    cfg = overrides["triggers"]
    describer = Describer(cfg["descriptions"], overrides["descriptions"])
    entries: dict[str, dict[str, Json]] = {}
    documents: dict[str, Json] = {}
    for event, tcfg in cfg["webhook"].items():
        tid, entry, doc = webhook_trigger(event, tcfg, cfg, events, describer)
        entries[tid], documents[f"{tid}.json"] = entry, doc
    for tid, tcfg in cfg["polling"].items():
        entry, doc = polling_trigger(tid, tcfg, cfg, actions, action_schemas)
        entries[tid], documents[f"{tid}.json"] = entry, doc
    if describer.missing:
        raise CatalogError(f"trigger payload properties without a description: {describer.missing}")
    clean = {tid: {k: e[k] for k in TRIGGER_KEYS if k in e} for tid, e in sorted(entries.items())}
    return clean, dict(sorted(documents.items()))
