"""The two-way sync engine: one change from either side, copied to the other side, or not.

:meth:`SyncEngine.apply` takes a :class:`Change` (a record created, updated or deleted on GHL
or on the partner app) and decides, in this order:

1. direction: does the object (and field) copy anything from that side?
2. stale: a change older than one already seen from that side is dropped;
3. echo: a record whose synced fields (those copied to or from that side) hash to one of the
   states the sync itself lately wrote there is its own write coming back (late or not): it
   is not sent again, so two-way sync never ping-pongs, and an edit to a field that side owns
   is never mistaken for one;
4. pairing: the id map, else a match on the other side by e-mail, then phone (E.164), else
   a new record is created (so nothing is created twice);
5. last writer wins: if the other side's record changed after the incoming change, only the
   fields whose source of truth is the incoming side are written (a create copies every
   field that flows that way: the source of truth only arbitrates updates);
6. deletes follow the object's policy: propagate, ignore, or archive with a tag.

Every decision (write or skip, and why) is appended to the audit trail in the same
transaction as the id-map update (:mod:`connector.sync.audit`, :mod:`connector.sync.idmap`).
A write that cannot be made at all, because the other app refuses its input (a required field
the source record lacks, a value of the wrong type) or the mapping cannot compute it, is
audited as ``failed`` (:data:`FAILED`) and logged at WARNING: trying again would give the same
answer, so it is not raised for a retry, and ``serve`` dead-letters its event
(:class:`connector.sync.syncs.Syncs`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from connector.errors import ConnectorError, InputError, RemoteError
from connector.expressions.syntax import JSON, ExpressionError
from connector.runtime import Runtime
from connector.store import Store
from connector.sync.audit import AuditEntry, record, redacted
from connector.sync.change import Change, Changes, Outcome, both_ids, is_older, make_outcome, owner
from connector.sync.idmap import IdMap, Link
from connector.sync.mapping import (
    canonical,
    differences,
    digest,
    mapped,
    projection,
    read_field,
    record_time,
    synced_names,
)
from connector.sync.sides import SyncSide, gone
from connector.sync.spec import ObjectSync, Side, SyncSpec, other

__all__ = ["FAILED", "Change", "Outcome", "SyncEngine"]

FAILED = "failed"
"""The audit action of a write the other app refuses (or the mapping cannot compute): not a
skip, the change is lost until someone fixes the record or the sync document and applies it
again (``ghl-connector replay`` of its dead-lettered event)."""
_log = logging.getLogger(__name__)

_DELETED = "\x00deleted"
"""What :meth:`SyncEngine._parent` answers for a parent whose link is marked deleted."""


class SyncEngine:
    """Applies changes for one :class:`SyncSpec`, one at a time (thread-safe).

    :param runtime: calls GHL actions (and the partner's, unless ``partner_runtime`` is given).
    :param store: the state file holding the id map and the audit trail.
    :raises ConnectorError: an adapter names an action the catalog does not have.
    """

    def __init__(
        self,
        spec: SyncSpec,
        runtime: Runtime,
        store: Store,
        *,
        partner_runtime: Runtime | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.spec = spec
        self.store = store
        self.ids = IdMap(store, spec.name)
        self._sides: dict[Side, SyncSide] = {
            "ghl": SyncSide(runtime),
            "partner": SyncSide(partner_runtime or runtime),
        }
        self._clock = clock
        # One change at a time: two changes of one new record at once could both create it.
        self._lock = threading.Lock()
        for obj in spec.objects.values():
            for side, adapter in obj.adapters.items():
                self._sides[side].check(adapter)

    def apply(self, change: Change) -> Outcome:
        """Copy ``change`` to the other side as the spec says, and audit the decision.

        :raises ConnectorError: the object is not synced, or a call failed (nothing is
            recorded then, so the change can be applied again). An input the other app's
            create or update action refuses (a required field the record lacks) is not
            raised: it is audited and logged as :data:`FAILED` (see the module docstring).
        """
        obj = self._object(change.object)
        with self._lock:
            return self._apply(change, obj)

    def _apply(self, change: Change, obj: ObjectSync, *, listed: bool = False) -> Outcome:
        """:param listed: the record comes from a list action, so it is whole."""
        if not obj.allows(change.side):
            reason = f"direction {obj.direction}: nothing is copied from {self._app(change.side)}"
            return self._finish(change, None, self._ids(change, None, "skip", reason))
        link = self.ids.find(obj.name, change.side, change.record_id)
        if change.record is None:
            return self._delete(change, obj, link)
        rec: Mapping[str, Any] | None = change.record
        if not listed:
            rec = self._sides[change.side].complete(
                obj, change.side, change.record_id, change.record, change.parent_id
            )
        if rec is None:
            reason = f"the record is gone from {self._app(change.side)}"
            return self._finish(change, None, self._ids(change, link, "skip", reason))
        return self._upsert(replace(change, record=rec), obj, link, rec)

    def backfill(
        self, side: Side, name: str, *, since: str | None = None, max_items: int | None = None
    ) -> list[Outcome]:
        """Apply every record of ``side``'s list action (a first sync, or a catch-up).

        Records already on both sides are paired by the object's match keys; records the sync
        wrote are recognised as echoes, so running it again changes nothing.

        :param since: only records changed since this ISO 8601 time, if the app can filter.
        """
        adapter = self._object(name).adapters[side]
        outcomes = []
        for rec in self._sides[side].listing(adapter, since, max_items):
            change = Change(side, name, str(rec[adapter.id_field]), rec, event_id="backfill")
            with self._lock:
                outcomes.append(self._apply(change, self._object(name), listed=True))
        return outcomes

    # -- creates and updates ----------------------------------------------------------------

    def _upsert(
        self, change: Change, obj: ObjectSync, link: Link | None, rec: Mapping[str, Any]
    ) -> Outcome:
        source, target = change.side, other(change.side)
        when = change.updated_at
        if when is None:
            when = record_time(read_field(rec, obj.adapters[source].updated_field))
        seen = link.seen(source) if link else None
        if link and when is not None and seen is not None and when < seen:
            reason = f"stale: a newer change from {self._app(source)} was already handled"
            return self._finish(change, None, self._ids(change, link, "skip", reason))
        shown = digest(projection(obj, source, rec), self._region)
        echoed = link.echoing(source, shown, when) if link else None
        if echoed is not None:
            reason = "echo: these are the values the sync wrote; not sent back"
            return self._finish(
                change,
                echoed.noting(source, when, echo=True),
                self._ids(change, echoed, "skip", reason),
            )
        try:
            desired = mapped(obj, source, rec)
            whole = mapped(obj, source, rec, create=True) if link is None else desired
        except ExpressionError as exc:
            reason = f"mapping failed: {exc}"
            return self._finish(change, None, self._ids(change, link, FAILED, reason))
        parent = self._parent(change, obj, rec)
        if obj.parent and (parent is None or parent is _DELETED):
            state = "was deleted" if parent is _DELETED else "is not linked yet"
            reason = f"its parent {obj.parent} record {state}"
            return self._finish(change, None, self._ids(change, link, "skip", reason))
        if link is None:
            found, how = self._sides[target].match(
                obj, source, rec, self._region, self.spec.redact
            )
            if found is None:
                return self._create(change, obj, whole, parent, when)
            found_id = str(found[obj.adapters[target].id_field])
            taken = self.ids.find(obj.name, target, found_id)
            ids: dict[str, str] = {source: change.record_id, target: found_id}
            if taken is not None:
                reason = f"matched {found_id!r} by {how}, but it is linked to another record"
                return self._finish(change, None, make_outcome("skip", reason, ids))
            link = Link(self.spec.name, obj.name, ids["ghl"], ids["partner"])
            return self._update(
                change, obj, link, desired, found, parent, when, f"matched by {how}; "
            )
        current = self._sides[target].get(obj.adapters[target], link.id(target), parent)
        if current is None:
            reason = f"the linked record is gone from {self._app(target)}"
            return self._finish(change, None, self._ids(change, link, "skip", reason))
        return self._update(change, obj, link, desired, current, parent, when, "")

    def _update(
        self,
        change: Change,
        obj: ObjectSync,
        link: Link,
        desired: Mapping[str, JSON],
        current: Mapping[str, Any],
        parent: str | None,
        when: float | None,
        prefix: str,
    ) -> Outcome:
        source, target = change.side, other(change.side)
        ids = {"ghl": link.ghl_id, "partner": link.partner_id}
        diffs = differences(desired, current, self._region)
        reason = "changed"
        stamp = record_time(read_field(current, obj.adapters[target].updated_field))
        if not current:
            # The target cannot be read (no get action): what the sync wrote there, unless
            # changed since, and the newest change seen from it stand in for the record.
            wrote = {**dict.fromkeys(synced_names(obj, target)), **desired}
            if link.hash(target) == digest(wrote, self._region):
                diffs = {}
            stamp = link.seen(target)
        held = digest(projection(obj, target, current), self._region) if current else None
        theirs = link.last_changed(target, stamp, held)
        if diffs and is_older(when, theirs, source):
            kept = {k: v for k, v in diffs.items() if owner(obj, target, k) == source}
            if not kept:
                reason = f"older: the {self._app(target)} record changed later (last writer wins)"
                return self._finish(
                    change,
                    link.noting(source, when),
                    make_outcome("skip", prefix + reason, ids, diffs),
                )
            diffs = kept
            reason = f"older, but {self._app(source)} is the source of truth for these fields"
        if not diffs:
            action = "link" if prefix else "skip"
            return self._finish(
                change, link.noting(source, when), make_outcome(action, prefix + "no change", ids)
            )
        # The target now holds content as of the later of the two times (a partial write
        # leaves its newer fields in place).
        content = max(when, theirs) if when is not None and theirs is not None else when
        after, outcome = self._write(
            change, obj, link, diffs, current, parent, content, prefix + reason
        )
        return self._finish(change, after.noting(source, when) if after else None, outcome)

    def _write(
        self,
        change: Change,
        obj: ObjectSync,
        link: Link,
        diffs: Changes,
        current: Mapping[str, Any],
        parent: str | None,
        content: float | None,
        reason: str,
    ) -> tuple[Link | None, Outcome]:
        """Write ``diffs`` on the other side: the link to keep (None: keep none) and the outcome."""
        target = other(change.side)
        ids = {"ghl": link.ghl_id, "partner": link.partner_id}
        values = {k: after for k, (_, after) in diffs.items()}
        adapter = obj.adapters[target]
        try:
            written, left = self._sides[target].update(
                adapter, link.id(target), parent, values, current
            )
        except InputError as exc:
            reason = f"{reason}; cannot update on {self._app(target)}: {exc}"
            return None, make_outcome(FAILED, reason, ids, diffs)
        except RemoteError as exc:
            if not gone(exc):
                raise
            # An app that cannot read the record (no get action) learns it is gone here.
            reason = f"the linked record is gone from {self._app(target)}"
            return None, make_outcome("skip", reason, ids)
        if left:
            reason += f"; not writable on {self._app(target)}: {', '.join(left)}"
            diffs = {k: v for k, v in diffs.items() if k not in left}
        action = "update" if diffs else "skip"
        after = self._after_write(link, obj, target, written, content) if diffs else link
        return after, make_outcome(action, reason, ids, diffs)

    def _create(
        self,
        change: Change,
        obj: ObjectSync,
        desired: Mapping[str, JSON],
        parent: str | None,
        when: float | None,
    ) -> Outcome:
        source, target = change.side, other(change.side)
        adapter = obj.adapters[target]
        values = {k: v for k, v in desired.items() if canonical(k, v) is not None}
        try:
            created, left = self._sides[target].create(adapter, values, parent)
        except InputError as exc:
            reason = f"cannot create on {self._app(target)}: {exc}"
            return self._finish(change, None, self._ids(change, None, FAILED, reason))
        except RemoteError as exc:
            if not (obj.parent and parent and gone(exc) and self._orphan(obj, target, parent)):
                raise
            reason = f"its parent {obj.parent} record is gone from {self._app(target)}"
            return self._finish(change, None, self._ids(change, None, "skip", reason))
        ids: dict[str, str] = {source: change.record_id, target: str(created[adapter.id_field])}
        link = Link(self.spec.name, obj.name, ids["ghl"], ids["partner"])
        after = self._after_write(link, obj, target, created, when)
        changes = {k: (None, v) for k, v in values.items() if k not in left}
        reason = f"no match on {self._app(target)}"
        if left:
            reason += f"; not writable there: {', '.join(left)}"
        return self._finish(
            change, after.noting(source, when), make_outcome("create", reason, ids, changes)
        )

    def _after_write(
        self,
        link: Link,
        obj: ObjectSync,
        target: Side,
        state: Mapping[str, Any],
        when: float | None,
    ) -> Link:
        """The link remembering what the target holds now (its hash and update time)."""
        adapter = obj.adapters[target]
        return link.remembering(
            target, digest(projection(obj, target, state), self._region)
        ).with_side(
            target, written=record_time(read_field(state, adapter.updated_field)), applied=when
        )

    # -- deletes --------------------------------------------------------------------------------

    def _delete(self, change: Change, obj: ObjectSync, link: Link | None) -> Outcome:
        source, target = change.side, other(change.side)
        if link is None:
            return self._finish(
                change,
                None,
                self._ids(change, None, "skip", "delete of a record that was never synced"),
            )
        if link.deleted:
            return self._finish(
                change, None, self._ids(change, link, "skip", f"already deleted on {link.deleted}")
            )
        if obj.delete == "ignore":
            return self._finish(
                change, None, self._ids(change, link, "skip", "delete policy: ignore")
            )
        adapter = obj.adapters[target]
        side = self._sides[target]
        parent = self._parent(change, obj, {})
        if parent is _DELETED:
            reason = f"its parent {obj.parent} record was deleted"
            return self._finish(change, None, self._ids(change, link, "skip", reason))
        marked = replace(link, deleted=self._app(source))
        if obj.delete == "propagate" and adapter.delete:
            side.delete(adapter, link.id(target), parent)
            return self._finish(
                change, marked, self._ids(change, link, "delete", f"deleted on {self._app(source)}")
            )
        if obj.delete == "archive" and adapter.tags_add:
            side.tag(adapter, adapter.tags_add, link.id(target), parent, [obj.archive_tag])
            changes: Changes = {adapter.tags_field: (None, [obj.archive_tag])}
            reason = f"deleted on {self._app(source)}; tagged {obj.archive_tag!r}"
            return self._finish(
                change, marked, make_outcome("archive", reason, both_ids(link), changes)
            )
        reason = f"delete policy {obj.delete}: {self._app(target)} has no action for it"
        return self._finish(change, None, self._ids(change, link, "skip", reason))

    def _parent(self, change: Change, obj: ObjectSync, rec: Mapping[str, Any]) -> str | None:
        """The parent contact's id on the other side (tasks, notes), if linked; ``_DELETED``
        when the link is marked deleted."""
        if obj.parent is None:
            return None
        source = change.side
        own = change.parent_id or read_field(rec, obj.adapters[source].parent_input or "contactId")
        if not isinstance(own, str):
            return None
        link = self.ids.find(obj.parent, source, own)
        if link is not None and link.deleted:
            return _DELETED
        return None if link is None else link.id(other(source))

    def _orphan(self, obj: ObjectSync, side: Side, parent: str) -> bool:
        """Whether the parent record ``parent`` of ``obj`` no longer exists on ``side``."""
        adapter = self.spec.objects[str(obj.parent)].adapters[side]
        return self._sides[side].get(adapter, parent, None) is None

    # -- bookkeeping ----------------------------------------------------------------------------

    def _object(self, name: str) -> ObjectSync:
        obj = self.spec.objects.get(name)
        if obj is None:
            known = ", ".join(sorted(self.spec.objects)) or "none"
            raise ConnectorError(
                f"sync {self.spec.name!r}: object {name!r} is not synced [synced: {known}]"
            )
        return obj

    @property
    def _region(self) -> str:
        return self.spec.phone_region

    def _app(self, side: Side) -> str:
        return self.spec.app(side)

    def _ids(self, change: Change, link: Link | None, action: str, reason: str) -> Outcome:
        ids: dict[str, str] = both_ids(link) if link else {change.side: change.record_id}
        return make_outcome(action, reason, ids)

    def _finish(self, change: Change, link: Link | None, outcome: Outcome) -> Outcome:
        """Save ``link`` (if given) and audit ``outcome``, in one transaction (a failed write
        is logged at WARNING too)."""
        if outcome.action == FAILED:
            _log.warning(
                "sync %s: %s %s %s (%s -> %s, event %s) failed: %s",
                self.spec.name, self._app(change.side), change.object, change.record_id,
                self._app(change.side), self._app(other(change.side)), change.event_id,
                outcome.reason,
            )  # fmt: skip
        entry = AuditEntry(
            at=self._clock(),
            sync=self.spec.name,
            event_id=change.event_id,
            object=change.object,
            direction=f"{self._app(change.side)}->{self._app(other(change.side))}",
            action=outcome.action,
            reason=outcome.reason,
            ghl_id=outcome.ghl_id,
            partner_id=outcome.partner_id,
            changes=redacted(outcome.changes, self.spec.redact),
        )
        with self.store.transaction() as db:
            if link is not None:
                IdMap.save(db, link)
            record(db, entry)
        return outcome
