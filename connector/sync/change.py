"""What the sync engine works on and answers: a :class:`Change`, an :class:`Outcome`.

Also the small decisions that need no state: the outcome shape, which of two changes is older
(ties go to GHL on both sides), which side owns a field, and the ids of a link.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connector.expressions.syntax import JSON
from connector.sync.idmap import Link
from connector.sync.spec import ObjectSync, Side

__all__ = ["Change", "Changes", "Outcome", "both_ids", "is_older", "make_outcome", "owner"]

Changes = Mapping[str, tuple[JSON, JSON]]
"""Field -> (before, after)."""


@dataclass(frozen=True, slots=True)
class Change:
    """A record created or updated (``record`` given) or deleted (``record`` None) on ``side``.

    :param updated_at: the source's update time (epoch seconds); None reads it from the record.
    :param parent_id: the parent contact's id on ``side`` (tasks, notes), if the record lacks it.
    """

    side: Side
    object: str
    record_id: str
    record: Mapping[str, Any] | None = None
    updated_at: float | None = None
    event_id: str | None = None
    parent_id: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What :meth:`SyncEngine.apply` did: ``action`` (create, update, link, delete, archive,
    skip, or failed: the other app refused the write), why, the ids on both sides, and
    ``changes`` (field -> before, after)."""

    action: str
    reason: str
    ghl_id: str | None = None
    partner_id: str | None = None
    changes: Changes = field(default_factory=dict)


def make_outcome(
    action: str, reason: str, ids: Mapping[str, str], changes: Changes | None = None
) -> Outcome:
    """An outcome with the ids of both sides taken from ``ids``."""
    return Outcome(action, reason, ids.get("ghl"), ids.get("partner"), dict(changes or {}))


def is_older(when: float | None, theirs: float | None, source: Side) -> bool:
    """Whether a change from ``source`` at ``when`` is older than the other side's last
    change at ``theirs``; a tie (the same millisecond on both apps) goes to GHL, so that
    both sides decide it the same way."""
    if when is None or theirs is None:
        return False
    return when < theirs or (when == theirs and source == "partner")


def both_ids(link: Link) -> dict[str, str]:
    """The ids a link pairs, by side."""
    return {"ghl": link.ghl_id, "partner": link.partner_id}


def owner(obj: ObjectSync, side: Side, name: str) -> Side | None:
    """The source of truth of the field called ``name`` on ``side`` (None: last writer wins)."""
    fmap = next((f for f in obj.fields if f.name(side) == name), None)
    return None if fmap is None else fmap.source_of_truth
