"""The initial backfill: every GHL contact, with its notes and tasks, copied into a partner app.

GHL contacts are read page by page (lazily) by the calling thread onto a bounded queue, so
memory stays flat; a pool of worker threads takes one contact at a time, creates it on the
partner, then reads its notes and tasks from GHL and creates each one. The workers share the
runtime, hence the app's one rate limiter, and keep enough requests waiting to fill its window.

Records are mapped and remembered as the sync engine does (the spec's field mapping and id
map, with the hash of what was written), so later syncs see the copies as their own echoes
and a second backfill writes nothing. A contact is created first and, only when the partner
refuses it as a duplicate (409, or a GraphQL ``CONFLICT``), linked to the partner's contact
with the same e-mail (else phone). Every write, link and skip is audited.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from connector.errors import AuthError, ConnectorError, InputError, RemoteError, StoreError
from connector.expressions.syntax import JSON, ExpressionError
from connector.recipes.footprints import Footprints, Origin, acting
from connector.runtime import Runtime
from connector.store import Store
from connector.sync.audit import AuditEntry, record, redacted
from connector.sync.idmap import IdMap, Link
from connector.sync.mapping import canonical, digest, mapped, projection, read_field, record_time
from connector.sync.sides import SyncSide
from connector.sync.spec import ObjectSync, SyncSpec

__all__ = ["Backfill", "BackfillReport", "Progress"]

log = logging.getLogger("connector.sync.backfill")

_FATAL = (AuthError, StoreError)
"""Errors no other record would escape: the backfill stops (a re-run resumes it)."""
_KEPT_ERRORS = 5

_Done = list[tuple[Link | None, AuditEntry]]  # one contact's links (None: a skip) and audit
_Queue = queue.Queue[dict[str, Any] | None]  # contacts for the workers; None: no more


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a backfill is: contacts done (of ``total``, when known) and records written;
    ``final`` marks the report made when the run ends."""

    contacts: int
    total: int | None
    written: int
    elapsed: float
    final: bool = False


@dataclass(frozen=True, slots=True)
class BackfillReport:
    """What a backfill did.

    :param contacts: GHL contacts handled (copied, linked, already linked or skipped).
    :param created: partner records created, per object (contacts, notes, tasks).
    :param linked: GHL contacts paired with a partner contact that had the same e-mail/phone.
    :param known: records already linked by an earlier run or the sync (nothing written).
    :param skipped: records the partner cannot take (audited with the reason).
    :param failed: records whose calls failed (a re-run tries them again); ``errors`` holds
        the first few messages.
    """

    contacts: int
    created: Mapping[str, int]
    linked: int
    known: int
    skipped: int
    failed: int
    elapsed: float
    errors: tuple[str, ...] = ()

    @property
    def written(self) -> int:
        """Partner records created in all."""
        return sum(self.created.values())


@dataclass(slots=True)
class _Tally:
    """Counters the workers share."""

    started: float
    total: int | None
    ticked: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def add(self, name: str, message: str | None = None) -> None:
        with self.lock:
            self.counts[name] = self.counts.get(name, 0) + 1
            if message is not None and len(self.errors) < _KEPT_ERRORS:
                self.errors.append(message)

    def get(self, name: str) -> int:
        return self.counts.get(name, 0)

    def created(self) -> dict[str, int]:
        prefix = "created:"
        return {k[len(prefix) :]: v for k, v in self.counts.items() if k.startswith(prefix)}

    def progress(self, now: float, final: bool) -> Progress:
        with self.lock:
            written = sum(self.created().values())
            return Progress(self.get("contacts"), self.total, written, now - self.started, final)

    def report(self, now: float) -> BackfillReport:
        with self.lock:
            return BackfillReport(
                contacts=self.get("contacts"), created=self.created(),
                linked=self.get("linked"), known=self.get("known"), skipped=self.get("skipped"),
                failed=self.get("failed"), elapsed=now - self.started, errors=tuple(self.errors),
            )  # fmt: skip


@dataclass(slots=True)
class _Job:
    """One contact's work: the shared counters, and the links and audit entries to save."""

    tally: _Tally
    done: _Done = field(default_factory=list)


class Backfill:
    """Copies every GHL contact, with its notes and tasks, to the spec's partner app.

    :param spec: the sync (its name keys the id map; contacts must flow GHL -> partner; notes
        and tasks are copied when the spec syncs them in that direction).
    :param runtime: calls GHL (and the partner, unless ``partner_runtime`` is given).
    :param store: the state file holding the id map and the audit trail.
    :param workers: threads writing to the partner at once.
    :param backlog: contacts read ahead of the workers (default: four per worker).
    :param progress: called about every ``every`` seconds, and once at the end.
    :raises ConnectorError: the spec copies no contacts from GHL, or names unknown actions.
    """

    def __init__(
        self,
        spec: SyncSpec,
        runtime: Runtime,
        store: Store,
        *,
        partner_runtime: Runtime | None = None,
        workers: int = 16,
        backlog: int | None = None,
        progress: Callable[[Progress], None] | None = None,
        every: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if workers < 1 or (backlog is not None and backlog < 1):
            raise ValueError(f"Backfill: workers {workers!r} and backlog {backlog!r} must be >= 1")
        contacts = spec.objects.get("contacts")
        if contacts is None or not contacts.allows("ghl"):
            raise ConnectorError(
                f"sync {spec.name!r}: contacts are not copied from ghl [nothing to backfill]"
            )
        self.spec = spec
        self.store = store
        self.ids = IdMap(store, spec.name)
        self._writer = Origin(f"sync:{spec.name}", "backfill", (f"sync:{spec.name}",))
        self._footprints = Footprints(store)
        self.workers = workers
        self.backlog = backlog or 4 * workers
        self._contacts = contacts
        # Children (notes, tasks) are copied when the hub's adapter can list a contact's records.
        self._children = tuple(
            obj for obj in spec.objects.values()
            if obj.parent == contacts.name and obj.allows("ghl")
            and obj.adapters["ghl"].parent_list is not None
        )  # fmt: skip
        self._ghl = SyncSide(runtime)
        self._partner = SyncSide(partner_runtime or runtime)
        self._progress = progress
        self._every = every
        self._clock = clock
        self._match_lock = threading.Lock()
        for obj in (contacts, *self._children):
            self._partner.check(obj.adapters["partner"])
            self._ghl.check(obj.adapters["ghl"])

    def total(self) -> int | None:
        """How many contacts GHL holds (one search request), or None if it does not say."""
        adapter = self._contacts.adapters["ghl"]
        if adapter.list is None:
            return None
        output = self._ghl.call(adapter.list, {**adapter.list_input, "pageLimit": 1})
        found = output.get("total") if isinstance(output, dict) else None
        return found if isinstance(found, int) else None

    def run(self, *, limit: int | None = None, total: int | None = None) -> BackfillReport:
        """Copy every contact (at most ``limit``), with its notes and tasks.

        :param total: the number of contacts expected, for progress reports.
        :raises ConnectorError: reading GHL's contacts failed, or a credential or the state
            file failed (every record done so far is kept; a re-run skips them).
        """
        expected = min((n for n in (limit, total) if n is not None), default=None)
        tally = _Tally(self._clock(), expected)
        work: _Queue = queue.Queue(self.backlog)
        stop = threading.Event()
        fatal: list[BaseException] = []
        threads = [threading.Thread(target=self._work, args=(work, tally, stop, fatal),
                                    name=f"backfill-{n}", daemon=True)
                   for n in range(self.workers)]  # fmt: skip
        for thread in threads:
            thread.start()
        try:
            adapter = self._contacts.adapters["ghl"]
            for contact in self._ghl.listing(adapter, None, limit):
                while not stop.is_set():
                    try:
                        work.put(contact, timeout=self._every)
                        break
                    except queue.Full:
                        pass
                    finally:
                        self._tick(tally)
                if stop.is_set():
                    break
        except BaseException:
            stop.set()  # a failed read or an interrupt: the workers drop what is queued
            raise
        finally:
            for _ in threads:
                work.put(None)
            for thread in threads:
                while thread.is_alive():
                    thread.join(self._every)
                    self._tick(tally)
        self._tick(tally, final=True)
        if fatal:
            raise fatal[0]
        return tally.report(self._clock())

    def _tick(self, tally: _Tally, *, final: bool = False) -> None:
        """Report progress at most every ``every`` seconds (and once at the end)."""
        now = self._clock()
        if self._progress is None or (not final and now - tally.ticked < self._every):
            return
        tally.ticked = now
        self._progress(tally.progress(now, final))

    # -- workers ------------------------------------------------------------------------------

    def _work(
        self, work: _Queue, tally: _Tally, stop: threading.Event, fatal: list[BaseException]
    ) -> None:
        while True:
            contact = work.get()
            if contact is None:
                return
            if stop.is_set():
                continue  # drain, so the reader never waits on a full queue
            try:
                with acting(self._writer, self._footprints):
                    self._contact(contact, tally)
            except Exception as exc:  # the thread's top level: report it, never hang the reader
                if not isinstance(exc, _FATAL):
                    log.exception("backfill: worker failed")
                fatal.append(exc)
                stop.set()

    @contextmanager
    def _guard(self, tally: _Tally, what: str) -> Iterator[None]:
        """Count a failed call for ``what`` and go on (credential and state file errors stop)."""
        try:
            yield
        except _FATAL:
            raise
        except ConnectorError as exc:
            tally.add("failed", f"{what}: {exc}")

    def _contact(self, rec: Mapping[str, Any], tally: _Tally) -> None:
        """Copy or link one contact, then its notes and tasks.

        The links and audit entries of one contact are saved in one transaction at the end
        (also when a call failed half-way), which keeps the state file's lock out of the way
        of the other workers.
        """
        ghl_id = str(rec[self._contacts.adapters["ghl"].id_field])
        link = self.ids.find("contacts", "ghl", ghl_id)
        # A contact not linked before has no linked notes or tasks (their links need it).
        new = link is None
        job = _Job(tally)
        try:
            if link is None:
                with self._guard(tally, f"contact {ghl_id!r}"):
                    link = self._copy_contact(job, rec, ghl_id)
            else:
                tally.add("known")
            if link is not None and link.deleted is None:
                for obj in self._children:
                    self._copy_children(job, obj, ghl_id, link.partner_id, new)
        finally:
            self._save(job.done)
        tally.add("contacts")

    def _copy_contact(self, job: _Job, rec: Mapping[str, Any], ghl_id: str) -> Link | None:
        obj = self._contacts
        when = record_time(read_field(rec, obj.adapters["ghl"].updated_field))
        try:
            return self._create(job, obj, rec, ghl_id, None, when)
        except RemoteError as exc:
            if not _conflict(exc):
                raise
        return self._link_match(job, rec, ghl_id, when)

    def _copy_children(
        self, job: _Job, obj: ObjectSync, ghl_contact: str, partner_contact: str, new: bool
    ) -> None:
        """Copy the contact's ``obj`` records (notes or tasks) that are not linked yet."""
        adapter = obj.adapters["ghl"]
        action, parent_input = adapter.parent_list, adapter.parent_input or "contactId"
        assert action is not None  # only such objects are children (__init__)
        output: Any = None
        with self._guard(job.tally, f"{obj.name} of contact {ghl_contact!r}"):
            output = self._ghl.call(action, {parent_input: ghl_contact})
        key = adapter.list_key
        items = output.get(key) if key and isinstance(output, dict) else output
        for item in items if isinstance(items, list) else ():
            if not isinstance(item, dict):
                continue
            item_id = str(item[obj.adapters["ghl"].id_field])
            if not new and self.ids.find(obj.name, "ghl", item_id) is not None:
                job.tally.add("known")
                continue
            when = record_time(read_field(item, obj.adapters["ghl"].updated_field))
            with self._guard(job.tally, f"{obj.name} {item_id!r}"):
                self._create(job, obj, item, item_id, partner_contact, when)

    # -- writing one record ---------------------------------------------------------------------

    def _create(
        self,
        job: _Job,
        obj: ObjectSync,
        rec: Mapping[str, Any],
        ghl_id: str,
        parent: str | None,
        when: float | None,
    ) -> Link | None:
        """Create ``rec``'s copy on the partner (its link goes to the job); None: skipped."""
        adapter = obj.adapters["partner"]
        try:
            desired = mapped(obj, "ghl", rec, create=True)
        except ExpressionError as exc:
            self._skip(job, obj, ghl_id, f"mapping failed: {exc}")
            return None
        values = {k: v for k, v in desired.items() if canonical(k, v) is not None}
        try:
            created, left = self._partner.create(adapter, values, parent)
        except InputError as exc:
            reason = f"cannot create on {self.spec.partner}: {exc}"
            self._skip(job, obj, ghl_id, reason)
            return None
        link = Link(self.spec.name, obj.name, ghl_id, str(created[adapter.id_field]))
        link = self._written(obj, link, created, when)
        reason = f"backfill: no match on {self.spec.partner}"
        if left:
            reason += f"; not writable there: {', '.join(left)}"
        changes = {k: (None, v) for k, v in values.items() if k not in left}
        job.done.append((link, self._entry(obj, link, "create", reason, changes)))
        job.tally.add(f"created:{obj.name}")
        return link

    def _link_match(
        self, job: _Job, rec: Mapping[str, Any], ghl_id: str, when: float | None
    ) -> Link | None:
        """Link a contact the partner refused as a duplicate to the contact it matches (saved
        at once, so no other worker links the same partner contact)."""
        obj = self._contacts
        found, how = self._partner.match(
            obj, "ghl", rec, self.spec.phone_region, self.spec.redact
        )
        if found is None:
            job.tally.add("failed", f"contact {ghl_id!r}: refused as a duplicate, but none matches")
            return None
        partner_id = str(found[obj.adapters["partner"].id_field])
        link = Link(self.spec.name, obj.name, ghl_id, partner_id).noting("ghl", when)
        with self._match_lock:
            if self.ids.find(obj.name, "partner", partner_id) is not None:
                reason = f"matched {partner_id!r} by {how}, but it is linked to another record"
                self._skip(job, obj, ghl_id, reason)
                return None
            reason = f"backfill: matched by {how}; not overwritten"
            self._save([(link, self._entry(obj, link, "link", reason, {}))])
        job.tally.add("linked")
        return link

    def _written(
        self, obj: ObjectSync, link: Link, state: Mapping[str, Any], when: float | None
    ) -> Link:
        """The link remembering what the partner now holds (as the engine's own writes do)."""
        adapter = obj.adapters["partner"]
        held = digest(projection(obj, "partner", state), self.spec.phone_region)
        written = record_time(read_field(state, adapter.updated_field))
        return (
            link.remembering("partner", held)
            .with_side("partner", written=written, applied=when)
            .noting("ghl", when)
        )

    def _skip(self, job: _Job, obj: ObjectSync, ghl_id: str, reason: str) -> None:
        job.tally.add("skipped")
        job.done.append((None, self._entry(obj, None, "skip", reason, {}, ghl_id=ghl_id)))

    def _entry(
        self,
        obj: ObjectSync,
        link: Link | None,
        action: str,
        reason: str,
        changes: Mapping[str, tuple[JSON, JSON]],
        *,
        ghl_id: str | None = None,
    ) -> AuditEntry:
        return AuditEntry(
            at=time.time(), sync=self.spec.name, event_id="backfill", object=obj.name,
            direction=f"ghl->{self.spec.partner}", action=action, reason=reason,
            ghl_id=link.ghl_id if link else ghl_id, partner_id=link.partner_id if link else None,
            changes=redacted(changes, self.spec.redact),
        )  # fmt: skip

    def _save(self, done: _Done) -> None:
        """Save the links and audit entries in one transaction, not flushed to disk (a crash
        may lose the last links: run again, contacts are matched again, notes and tasks copied
        again)."""
        if not done:
            return
        with self.store.transaction(durable=False) as db:
            for link, entry in done:
                if link is not None:
                    IdMap.save(db, link)
                record(db, entry)


def _conflict(exc: RemoteError) -> bool:
    """Whether the partner refused a create as a duplicate (409, or GraphQL ``CONFLICT``)."""
    return exc.status == 409 or "(CONFLICT)" in str(exc)
