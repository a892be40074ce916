"""The convergence test's world: a GHL sandbox and a partner's (SuperPhone or LinkedPhone), a
sync engine between them, a webhook receiver, and delivery with drops and duplicates."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from convergence_edits import Editor
from convergence_inbox import Inbox
from convergence_partner import Partner, PartnerServer

from connector.runtime import Runtime
from connector.sandbox.server import SandboxServer
from connector.sync.engine import Change, Outcome, SyncEngine
from connector.sync.events import change_from_hub, change_from_partner
from connector.sync.spec import Side
from connector.sync.syncs import hub_reader


@dataclass
class Tally:
    """What happened: edits made, changes delivered (by event id), outcomes, failures."""

    edits: int = 0
    edit_kinds: dict[str, int] = field(default_factory=dict)
    refused: int = 0
    delivered: dict[str, int] = field(default_factory=dict)
    dropped: int = 0
    duplicated: int = 0
    applied: int = 0
    polled: int = 0
    outcomes: list[Outcome] = field(default_factory=list)
    ghl_deleted_children: set[str] = field(default_factory=set)


class World:
    """Both sandboxes, the engine, the inbox and a seeded random source of edits.

    ``partner`` describes the partner app and ``peer`` is its sandbox server.
    """

    def __init__(
        self,
        seed: int,
        runtime: Runtime,
        engine: SyncEngine,
        ghl: SandboxServer,
        partner: Partner,
        peer: PartnerServer,
        inbox: Inbox,
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.rt = runtime
        self.engine = engine
        self.ghl = ghl
        self.partner = partner
        self.peer = peer
        self.inbox = inbox
        self.tally = Tally()
        self.editor = Editor(self)

    # -- what exists ----------------------------------------------------------------------

    def links(self, obj: str) -> list[dict[str, Any]]:
        """The id map's rows for ``obj`` (live pairs: not deleted)."""
        return [r for r in self._rows(obj) if not r["deleted"]]

    def dead_links(self, obj: str) -> list[dict[str, Any]]:
        """The id map's rows for ``obj`` marked deleted."""
        return [r for r in self._rows(obj) if r["deleted"]]

    def _rows(self, obj: str) -> list[dict[str, Any]]:
        rows = self.engine.store.query(
            "SELECT ghl_id, partner_id, deleted FROM sync_links WHERE sync = ? AND object = ?",
            (self.engine.spec.name, obj),
        )
        return [dict(r) for r in rows]

    def ghl_contacts(self) -> list[dict[str, Any]]:
        """Every GHL contact."""
        return list(self.rt.iterate("ghl.contacts.search", {"pageLimit": 100}))

    def partner_contacts(self) -> list[dict[str, Any]]:
        """Every partner contact."""
        return list(self.rt.iterate(self.partner.action("contacts.list"), self.partner.page))

    def ghl_children(self, obj: str, contact_id: str) -> list[dict[str, Any]]:
        """A GHL contact's tasks or notes."""
        out = self.rt.call(f"ghl.{obj}.list", {"contactId": contact_id})
        return list(out.get(obj) or [])

    def partner_children(self, obj: str, contact_id: str) -> list[dict[str, Any]]:
        """A partner contact's tasks or notes."""
        data = {self.partner.parent: contact_id, **self.partner.page}
        return list(self.rt.iterate(self.partner.action(f"{obj}.list"), data))

    def children(self, side: Side, obj: str, contact_id: str) -> list[dict[str, Any]]:
        """``side``'s tasks or notes of one of its contacts."""
        if side == "ghl":
            return self.ghl_children(obj, contact_id)
        return self.partner_children(obj, contact_id)

    # -- edits ----------------------------------------------------------------------------

    def edit(self, kinds: list[tuple[str, float]]) -> None:
        """Make one random edit of a kind drawn by weight (see :class:`Editor`)."""
        self.editor.edit(kinds)

    # -- delivery -------------------------------------------------------------------------

    def collect(self) -> list[tuple[Side, dict[str, Any]]]:
        """Wait for both sandboxes' pending webhooks; the bodies that arrived since last time,
        in a stable order (by event time, then type and record id)."""
        self.ghl.drain_webhooks()
        self.peer.drain_webhooks()
        bodies = self.inbox.take()
        return sorted(bodies, key=_stable_key)

    def deliver(
        self, bodies: list[tuple[Side, dict[str, Any]]], *, drop: float, dup: float
    ) -> None:
        """Apply the bodies as changes, shuffled, some dropped and some delivered 2-3 times."""
        queue: list[tuple[Side, dict[str, Any]]] = []
        for item in bodies:
            roll = self.rng.random()
            if roll < drop:
                self.tally.dropped += 1
                continue
            times = self.rng.randint(2, 3) if roll < drop + dup else 1
            self.tally.duplicated += times > 1
            queue.extend([item] * times)
        self._shuffle_nearby(queue)
        read_ghl = hub_reader(self.rt)
        webhooks = self.rt.catalog.app(self.partner.app).webhooks  # as the service does: GHL's own record and time
        events = self.rt.catalog.hub_app().sync_events
        assert events is not None
        for side, body in queue:
            change = (
                change_from_hub(body, events) if side == "ghl" else change_from_partner(body, webhooks)
            )
            if change is None:
                continue
            if side == "ghl":
                change = read_ghl(change)
            key = str(change.event_id)
            self.tally.delivered[key] = self.tally.delivered.get(key, 0) + 1
            self.apply(change)

    def _shuffle_nearby(self, queue: list[Any]) -> None:
        """Reorder: each item may move a few places (late and early deliveries)."""
        for i in range(len(queue) - 1, 0, -1):
            j = max(0, i - self.rng.randint(0, 4))
            queue[i], queue[j] = queue[j], queue[i]

    def apply(self, change: Change) -> Outcome:
        """Apply one change, keeping its outcome."""
        out = self.engine.apply(change)
        self.tally.applied += 1
        self.tally.outcomes.append(out)
        return out

    # -- accounting -----------------------------------------------------------------------

    def writes(self) -> tuple[int, int]:
        """Writes that took effect so far on (GHL, the partner)."""
        routes = self.ghl.location_stats()["routes"]
        ghl = sum(int(r.get("writes", 0)) for r in routes.values())
        return ghl, self.partner.counted_writes(self.peer)


def _stable_key(item: tuple[Side, dict[str, Any]]) -> tuple[str, str, str, str]:
    side, body = item
    data = body["data"] if isinstance(body.get("data"), dict) else body
    return (str(body.get("timestamp")), side, str(body.get("type")), str(data.get("id")))
