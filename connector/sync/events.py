"""Webhook events as sync changes: the hub's and the partner apps' payloads, read into a
:class:`~connector.sync.engine.Change` for :meth:`~connector.sync.engine.SyncEngine.apply`.

The hub posts flat payloads (GHL: ``{"type": "ContactUpdate", "id", ..., "webhookId",
"timestamp"}``, the record's fields at the top), read by its manifest's ``sync_events``
(:class:`~connector.hookspecs.SyncEvents`: the types and what each reports, the envelope's
keys, where the event id, the time and the parent contact are); a partner app posts envelopes
whose shape its manifest's ``webhooks`` declares (:class:`~connector.hookspecs.Webhooks`: where
the event id, the ``<noun>.<verb>`` type, the time and the record are). A type the sync does
not handle gives None.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.hookspecs import SyncEvents, Webhooks
from connector.sync.engine import Change
from connector.sync.mapping import read_field, record_time

__all__ = ["change_from_hub", "change_from_partner"]


def change_from_hub(payload: Mapping[str, Any], events: SyncEvents) -> Change | None:
    """The change a hub webhook reports, read by the hub's ``sync_events`` (its time is the
    first of the ``time`` keys present, e.g. the record's update time, else the event's)."""
    kind = events.types.get(str(payload.get(events.type)))
    if kind is None or not payload.get(events.id):
        return None
    record = None
    if not kind.deleted:
        record = {k: v for k, v in payload.items() if k not in events.envelope}
        record.update(kind.sets)  # what the event means and its payload does not carry
    return Change(
        side="ghl",
        object=kind.object,
        record_id=str(payload[events.id]),
        record=record,
        updated_at=record_time(_first(payload, events.time)),
        event_id=_text(_first(payload, events.event_id)),
        parent_id=_text(_first(payload, events.contact)),
    )


def change_from_partner(payload: Mapping[str, Any], webhooks: Webhooks) -> Change | None:
    """The change a partner's webhook reports, read by the envelope its manifest declares."""
    noun, _, verb = str(payload.get(webhooks.type, "")).partition(".")
    obj = webhooks.objects.get(noun)
    data = payload.get(webhooks.record)
    if obj is None or not isinstance(data, dict) or not data.get("id"):
        return None
    deleted = verb in webhooks.deleted
    stamp = _first(data, webhooks.updated) or payload.get(webhooks.time or "")
    return Change(
        side="partner",
        object=obj,
        record_id=str(data["id"]),
        record=None if deleted else data,
        updated_at=record_time(stamp),
        event_id=_text(_first(payload, webhooks.id)),
        parent_id=_text(_first(data, webhooks.contact)),
    )


def _first(data: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    """The value of the first of ``keys`` that ``data`` holds (not empty; dots walk into
    objects), or None."""
    return next((value for k in keys if (value := read_field(data, k))), None)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
