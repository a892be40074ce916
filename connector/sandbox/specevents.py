"""The webhook events a spec-answered write sends, found by rule from the pack's webhook
triggers, with payloads built from each trigger's schema and example.

An operation of resource ``R`` (its action id is ``ghl.R.<verb>``) that creates a record sends
the event of trigger ``ghl.R.created``; one that changes a record sends ``ghl.R.updated`` and,
for each trigger ``ghl.R.<field>_updated`` whose field words appear in a changed input's name,
that one too (``status`` -> ``OpportunityStatusUpdate``, ``pipelineStageId`` ->
``OpportunityStageUpdate``); one that deletes sends ``ghl.R.deleted``. Resources without such
triggers send nothing. The payload is the trigger's example (or a schema-built value) with the
record's fields laid over it where the payload schema takes them, ``type`` the event name,
``locationId`` the record's location, and a fresh ``webhookId`` and ``timestamp``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connector.documents.lazyschema import plain
from connector.hookspecs import Trigger
from connector.sandbox.specvalues import fit, instance

__all__ = ["EventRule", "event_rules", "payload"]

_KINDS = ("created", "updated", "deleted")


@dataclass(frozen=True, slots=True)
class EventRule:
    """The events one resource's writes send: by kind, and the field-change ones."""

    created: Trigger | None = None
    updated: Trigger | None = None
    deleted: Trigger | None = None
    fields: tuple[tuple[str, Trigger], ...] = ()
    """``(field words joined, lower case, trigger)``: ``("stage", OpportunityStageUpdate)``."""

    def for_change(self, kind: str, changed: Iterable[str]) -> list[Trigger]:
        """The triggers a write of ``kind`` (``created``/``updated``/``deleted``) sends."""
        main = {"created": self.created, "updated": self.updated, "deleted": self.deleted}[kind]
        found = [main] if main is not None else []
        if kind == "updated":
            names = [name.lower() for name in changed]
            found += [t for words, t in self.fields if any(words in n for n in names)]
        return found


def event_rules(triggers: Iterable[Trigger]) -> dict[str, EventRule]:
    """The rule of every resource some GHL webhook trigger names (``opportunities``)."""
    grouped: dict[str, dict[str, Any]] = {}
    for trigger in triggers:
        if trigger.app != "ghl" or trigger.kind != "webhook" or not trigger.event:
            continue
        _, resource, name = trigger.id.split(".", 2)
        found = grouped.setdefault(resource, {"fields": []})
        if name in _KINDS:
            found[name] = trigger
        elif name.endswith("_updated"):
            words = name.removesuffix("_updated").replace("_", "")
            found["fields"].append((words, trigger))
    return {
        resource: EventRule(parts.get("created"), parts.get("updated"), parts.get("deleted"),
                            tuple(sorted(parts["fields"], key=lambda p: p[1].id)))
        for resource, parts in grouped.items()
    }


def payload(trigger: Trigger, record: Mapping[str, Any], location_id: str) -> dict[str, Any]:
    """The body the sandbox posts for ``trigger``'s event about ``record``."""
    schema = plain(trigger.payload_schema)
    body = fit(dict(record), schema)
    if not isinstance(body, dict):
        body = instance(schema)
    body = dict(body) if isinstance(body, dict) else {}
    props = schema.get("properties") or {}
    if "id" in props and isinstance(record.get("id"), str):
        body["id"] = record["id"]
    body["type"] = trigger.event
    body["locationId"] = str(record.get("locationId") or location_id)
    body["webhookId"] = str(uuid.uuid4())
    body["timestamp"] = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return body
