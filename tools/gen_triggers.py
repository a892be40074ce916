"""Generator of the GHL triggers: manifest entries and schemas/triggers/*.json.

Webhook triggers are built from GHL's per-event payload schemas and examples
(``../shared/ghl-openapi/webhook-events/<Event>.schema.json`` and ``.example.json``): the schema is
kept, the fields every delivery carries (``webhookId``, ``timestamp``) are added, every property
gets a description (the source has none) and an example taken from the event's example file.
Polling triggers take their payload from the output of the action they poll. Everything
hand-written is data under ``triggers:`` in ``tools/catalog_overrides.yaml``; ``gen_catalog.py``
calls :func:`build_triggers` and writes the results.

Every other event of the folder becomes a trigger by rule (:func:`auto_config`; docs/catalog.md,
"Webhook events"): its id, title, description, routing ``type`` and scopes are derived, each
guess written to the report; ``triggers.auto`` in the overrides settles the rest by hand.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path

from catalog_ids import guess_description, words
from catalog_json import DRAFT, CatalogError, Json, apply_fix, ordered
from catalog_report import Report
from webhook_events import EventFiles, event_names, read_event

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
    "match",
)
_MISSING = object()


class Describer:
    """Finds a description for a payload property: ``<Group>.<path>``, then the name."""

    def __init__(
        self, own: Mapping[str, str], shared: Mapping[str, str], report: Report | None = None
    ) -> None:
        self.own = own
        self.shared = shared
        self.report = report
        self.missing: list[str] = []

    def text(self, group: str, path: str, name: str) -> str:
        """The description of ``path`` (dotted, ``[]`` for array items) in ``group``'s payloads.

        With a ``report`` (events made by rule) only ``<group>.<path>`` entries are used and a
        missing one is written from the name and reported; without, the by-name tables are
        tried too and a missing one is an error (the hand-configured events must describe all).
        """
        keys = [(f"{group}.{path}", self.own)]
        if self.report is None:  # the by-name tables are about contacts, notes, tasks
            keys += [(name, self.own), (name, self.shared)]
        for key, table in keys:
            if key in table:
                return table[key]
        if self.report is not None:
            self.report.add("descriptions", f"trigger {group}: {path}")
            return guess_description(name)
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
    files: EventFiles,
    tcfg: Mapping[str, Json],
    cfg: Mapping[str, Json],
    describer: Describer,
    report: Report,
) -> tuple[str, dict[str, Json], Json]:
    """Build one webhook trigger's manifest entry and schema document from the event files."""
    event = files.name
    tid, group = tcfg["id"], tcfg["group"]
    source = copy.deepcopy(files.schema)
    example = copy.deepcopy(files.examples[tcfg.get("sample", 0)]) if files.examples else _MISSING
    shared = cfg["groups"].get(group, {}).get("schema_fixes", [])
    for fix in [*shared, *tcfg.get("schema_fixes", [])]:
        apply_fix(source, fix)
    for fix in tcfg.get("example_fixes", []):
        apply_fix(example, fix)
    props = source.setdefault("properties", {})
    if clash := sorted(set(cfg["common"]) & set(props)):
        report.add("triggers", f"{event}: declares {clash} itself; its own schema is kept")
    props.update({k: copy.deepcopy(v) for k, v in cfg["common"].items() if k not in props})
    kind_type = tcfg.get("type", event)
    if example is not _MISSING and "type" not in example:
        report.add("triggers", f"{event}: the example has no `type`; the sample adds {kind_type!r}")
        example = {"type": kind_type, **example}
    payload = annotate(source, example, group, "", describer)
    kind = payload["properties"].setdefault("type", {"type": "string"})
    if "description" not in kind or event not in cfg["webhook"]:
        kind["description"] = f"Event type, {kind_type} for this trigger."
    kind["description"] = kind["description"].replace("{event}", kind_type)
    if "type_description" in tcfg:  # the body's `type` is not the event's name (by hand)
        kind["description"] = tcfg["type_description"].strip()
    payload["description"] = (
        f"The JSON body GHL posts for each {event} event: its published schema plus `webhookId` "
        "and `timestamp`. Open: GHL may add fields."
    )
    payload["required"] = _required(files, cfg["required"], report)
    if example is not _MISSING:
        payload["examples"] = [example]
    description = tcfg["description"].strip()
    if "scope_note" in tcfg:
        description += "\n\n" + tcfg["scope_note"].strip()
    options = options_schema(tcfg["options"], cfg["options"])
    entry = {
        "title": tcfg["title"],
        "description": description,
        "kind": "webhook",
        "event": kind_type,
        "scopes": list(tcfg["scopes"]),
        "schema": f"schemas/triggers/{tid}.json",
    }
    if "enrich" in tcfg:
        entry["enrich"] = copy.deepcopy(tcfg["enrich"])
    if "match" in tcfg:  # the body's `type` is not the event's name: how the receiver knows it
        entry["match"] = copy.deepcopy(tcfg["match"])
    return tid, entry, document(tid, tcfg["title"], description, ordered(payload), options)


def _required(files: EventFiles, wanted: list[str], report: Report) -> list[str]:
    """``wanted`` less the fields some official example of the event lacks (reported)."""
    kept = []
    for name in wanted:
        if all(name in e for e in files.examples if isinstance(e, Mapping)):
            kept.append(name)
        else:
            report.add("triggers", f"{files.name}: not every example has `{name}`: not required")
    return kept


_PAST = {
    "create": "created",
    "update": "updated",
    "delete": "deleted",
    "install": "installed",
    "uninstall": "uninstalled",
    "complete": "completed",
    "change": "changed",
}


def _plural(word: str) -> str:
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return word[:-1] + "ies"
    return word if word.endswith("s") else word + "s"


def _routing_type(files: EventFiles, report: Report) -> str:
    """The ``type`` GHL sends: the one all examples agree on (``string`` is a placeholder),
    else the event's name."""
    seen = {e.get("type") for e in files.examples if isinstance(e, Mapping)} - {None, "string"}
    if len(seen) == 1 and (only := str(seen.pop())) != files.name:
        report.add("triggers", f"{files.name}: the examples' `type` is {only!r}: routed by it")
        return only
    if len(seen) > 1:
        shown = ", ".join(sorted(map(str, seen)))
        report.add(
            "triggers",
            f"{files.name}: examples disagree on `type` ({shown}): routed by {files.name!r}",
        )
    return files.name


def _resource_scopes(resource: str, actions: Mapping[str, Json]) -> list[str]:
    """The read scope the ``resource``'s actions use most (ties: the first by name)."""
    counts: dict[str, int] = {}
    for aid, entry in actions.items():
        if aid.startswith(f"ghl.{resource}."):
            for scope in entry.get("scopes", []):
                if scope.endswith(".readonly"):
                    counts[scope] = counts.get(scope, 0) + 1
    if not counts:
        return []
    return [min(counts, key=lambda s: (-counts[s], s))]


def auto_config(
    files: EventFiles,
    hand: Mapping[str, Json],
    actions: Mapping[str, Json],
    report: Report,
) -> dict[str, Json]:
    """The trigger config of an event no ``triggers.webhook`` entry configures, by rule:

    - id ``ghl.<first word, plural>.<other words, snake_case>``, a last verb in the past tense
      (``OpportunityStageUpdate`` -> ``ghl.opportunities.stage_updated``); title alike;
    - ``type`` (what the dispatcher routes by): :func:`_routing_type`;
    - scopes: the read scope most of the resource's actions use (:func:`_resource_scopes`);
    - ``hand`` (``triggers.auto.<Event>``) overrides any of them (each with its reason).
    """
    event = files.name
    parts = words(event)
    if parts and parts[-1] in _PAST:
        parts[-1] = _PAST[parts[-1]]
    resource = _plural(parts[0])
    tid = hand.get("id") or f"ghl.{resource}.{'_'.join(parts[1:]) or 'event'}"
    resource = tid.split(".")[1]
    title = hand.get("title") or " ".join(parts).capitalize()
    scopes = hand["scopes"] if "scopes" in hand else _resource_scopes(resource, actions)
    if not scopes and "scopes" not in hand:
        raise CatalogError(
            f"{event}: no {resource} actions to take a scope from"
            f" [add triggers.auto.{event}.scopes with a reason]"
        )
    if "scopes" in hand:
        shown = ", ".join(scopes) or "no scope"
        note = f"Scope: GHL's files do not say; {shown} is set by hand: {hand['reason'].strip()}"
    else:
        note = (
            f"Scope: GHL's files do not say; {', '.join(scopes)} is assumed, the read scope"
            f" of the {resource} actions (not documented; verify on a real app)."
        )
        report.add("triggers", f"{event}: scopes {scopes} assumed (read scope of ghl.{resource}.*)")
    how = "from the overrides" if "id" in hand else "by rule"
    report.add("triggers", f"{event}: id {tid!r} {how}; title and description by rule")
    return {
        "id": tid,
        "title": title,
        "group": event,
        "description": hand.get("description") or f"GHL's {event} webhook event.",
        "scopes": scopes,
        "scope_note": note,
        "options": ["locationId"],
        "type": hand.get("type") or _routing_type(files, report),
        **({"sample": hand["sample"]} if "sample" in hand else {}),
        **({"type_description": hand["type_description"]} if "type_description" in hand else {}),
        **({"match": copy.deepcopy(hand["match"])} if "match" in hand else {}),
    }


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
    guessing = Describer(cfg["descriptions"], overrides["descriptions"], report)
    hand: Mapping[str, Json] = cfg.get("auto", {})
    schema_from = {e: c["schema_from"] for e, c in hand.items() if "schema_from" in c}
    entries: dict[str, dict[str, Json]] = {}
    documents: dict[str, Json] = {}
    for event in event_names(events):
        files = read_event(events, event, schema_from, report)
        if event in cfg["webhook"]:
            tcfg, desc = cfg["webhook"][event], describer
        else:
            tcfg, desc = auto_config(files, hand.get(event, {}), actions, report), guessing
        tid, entry, doc = webhook_trigger(files, tcfg, cfg, desc, report)
        if tid in entries or tid in actions:
            raise CatalogError(
                f"{event}: trigger id {tid!r} is taken [set triggers.auto.{event}.id]"
            )
        entries[tid], documents[f"{tid}.json"] = entry, doc
    for tid, tcfg in cfg["polling"].items():
        entry, doc = polling_trigger(tid, tcfg, cfg, actions, action_schemas)
        entries[tid], documents[f"{tid}.json"] = entry, doc
    if describer.missing:
        raise CatalogError(f"trigger payload properties without a description: {describer.missing}")
    clean = {tid: {k: e[k] for k in TRIGGER_KEYS if k in e} for tid, e in sorted(entries.items())}
    return clean, dict(sorted(documents.items()))
