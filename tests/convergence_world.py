"""The convergence test's world: GHL and SuperPhone sandboxes, a sync engine between them, a
webhook receiver, seeded random edits on both sides, and delivery with drops and duplicates."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from convergence_inbox import Inbox

from connector.errors import RemoteError
from connector.runtime import Runtime
from connector.sandbox.server import SandboxServer
from connector.sandbox.superphone import SuperPhoneSandboxServer
from connector.sync import Change, Outcome, SyncEngine
from connector.syncevent import change_from_ghl, change_from_partner
from connector.syncspec import Side

SPEC = """\
name: convergence
sync:
  partner: superphone
  objects:
    contacts:
      fields: {firstName: firstName, lastName: lastName, email: email, phone: phone}
      match: [email, phone]
      delete: propagate
    tags: {}
    tasks:
      fields: {title: title, body: description, dueDate: dueAt, completed: completed}
      delete: ignore
    notes:
      fields: {body: body}
      delete: ignore
"""

WORDS = ("alpha", "bravo", "delta", "echo", "fox", "golf", "hotel", "india", "kilo", "lima")
TAGS = ("vip", "lead", "cold", "warm", "promo", "beta")
DUES = tuple(f"2026-12-{d:02d}T10:00:00Z" for d in range(1, 29))


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
    """Both sandboxes, the engine, the inbox and a seeded random source of edits."""

    def __init__(
        self,
        seed: int,
        runtime: Runtime,
        engine: SyncEngine,
        ghl: SandboxServer,
        sp: SuperPhoneSandboxServer,
        inbox: Inbox,
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.rt = runtime
        self.engine = engine
        self.ghl = ghl
        self.sp = sp
        self.inbox = inbox
        self.tally = Tally()
        self._serial = 0

    # -- what exists ----------------------------------------------------------------------

    def links(self, obj: str) -> list[dict[str, Any]]:
        """The id map's rows for ``obj`` (live pairs: not deleted)."""
        rows = self.engine.store.query(
            "SELECT ghl_id, partner_id, deleted FROM sync_links WHERE sync = ? AND object = ?",
            (self.engine.spec.name, obj),
        )
        return [dict(r) for r in rows if not r["deleted"]]

    def ghl_contacts(self) -> list[dict[str, Any]]:
        """Every GHL contact."""
        return list(self.rt.iterate("ghl.contacts.search", {"pageLimit": 100}))

    def sp_contacts(self) -> list[dict[str, Any]]:
        """Every SuperPhone contact."""
        return list(self.rt.iterate("superphone.contacts.list", {"first": 100}))

    def ghl_children(self, obj: str, contact_id: str) -> list[dict[str, Any]]:
        """A GHL contact's tasks or notes."""
        out = self.rt.call(f"ghl.{obj}.list", {"contactId": contact_id})
        return list(out.get(obj) or [])

    def sp_children(self, obj: str, contact_id: str) -> list[dict[str, Any]]:
        """A SuperPhone contact's tasks or notes."""
        data = {"contactId": contact_id, "first": 100}
        return list(self.rt.iterate(f"superphone.{obj}.list", data))

    # -- edits ----------------------------------------------------------------------------

    def _name(self) -> str:
        return self.rng.choice(WORDS).title() + self.rng.choice(WORDS)

    def _fresh(self) -> tuple[str, str]:
        self._serial += 1
        return f"p{self.seed}x{self._serial}@conv.example.org", f"+1415555{self._serial:04d}"

    def edit(self, kinds: list[tuple[str, float]]) -> None:
        """Make one random edit of a kind drawn by weight (a refused edit is counted apart)."""
        names = [k for k, _ in kinds]
        kind = self.rng.choices(names, weights=[w for _, w in kinds])[0]
        try:
            done = int(getattr(self, f"_edit_{kind}")())
        except RemoteError:
            done = 0  # the record was deleted meanwhile: a real user would see an error too
        if done:
            self.tally.edits += done
            self.tally.edit_kinds[kind] = self.tally.edit_kinds.get(kind, 0) + 1
        else:
            self.tally.refused += 1

    def _pick(self, side: Side, obj: str) -> str | None:
        rows = self.links(obj)
        if not rows:
            return None
        return str(self.rng.choice(rows)["ghl_id" if side == "ghl" else "partner_id"])

    def _pick_child(self, side: Side, obj: str) -> tuple[str, str] | None:
        """A linked (child id, its contact id) on ``side``."""
        contact = self._pick(side, "contacts")
        if contact is None:
            return None
        found = (self.ghl_children if side == "ghl" else self.sp_children)(obj, contact)
        if not found:
            return None
        return str(self.rng.choice(found)["id"]), contact

    def _edit_ghl_create(self) -> bool:
        email, phone = self._fresh()
        self.rt.call(
            "ghl.contacts.create",
            {
                "firstName": self._name(),
                "lastName": self._name(),
                "email": email,
                "phone": phone,
                "tags": self.rng.sample(TAGS, self.rng.randint(0, 2)),
            },
        )
        return True

    def _edit_sp_create(self) -> bool:
        email, phone = self._fresh()
        self.rt.call(
            "superphone.contacts.create",
            {
                "firstName": self._name(),
                "lastName": self._name(),
                "email": email,
                "phone": phone,
                "tags": self.rng.sample(TAGS, self.rng.randint(0, 2)),
            },
        )
        return True

    def _edit_twin_create(self) -> int:
        """The same person created on both sides before any sync: must pair, not duplicate."""
        email, phone = self._fresh()
        self.rt.call(
            "ghl.contacts.create",
            {"firstName": self._name(), "lastName": "Twin", "email": email, "phone": phone},
        )
        self.rt.call(
            "superphone.contacts.create",
            {"firstName": self._name(), "email": email, "lastName": "Twin", "phone": phone},
        )
        return 2

    def _edit_ghl_update(self) -> bool:
        cid = self._pick("ghl", "contacts")
        if cid is None:
            return False
        name = self.rng.choice(("firstName", "lastName"))
        data: dict[str, Any] = {"contactId": cid, name: self._name()}
        if self.rng.random() < 0.15:
            data["email"] = self._fresh()[0]
        self.rt.call("ghl.contacts.update", data)
        return True

    def _edit_sp_update(self) -> bool:
        cid = self._pick("partner", "contacts")
        if cid is None:
            return False
        name = self.rng.choice(("firstName", "lastName"))
        data: dict[str, Any] = {"id": cid, name: self._name()}
        if self.rng.random() < 0.15:
            data["email"] = self._fresh()[0]
        self.rt.call("superphone.contacts.update", data)
        return True

    def _edit_same_record(self) -> int:
        """A concurrent edit: one linked contact changed on both sides before any delivery."""
        rows = self.links("contacts")
        if not rows:
            return 0
        row = self.rng.choice(rows)
        self.rt.call("ghl.contacts.update", {"contactId": row["ghl_id"], "firstName": self._name()})
        self.rt.call(
            "superphone.contacts.update", {"id": row["partner_id"], "firstName": self._name()}
        )
        return 2

    def _edit_ghl_tags(self) -> bool:
        cid = self._pick("ghl", "contacts")
        if cid is None:
            return False
        tags = self.rng.sample(TAGS, self.rng.randint(0, 3))
        self.rt.call("ghl.contacts.update", {"contactId": cid, "tags": tags})
        return True

    def _edit_sp_tags(self) -> bool:
        cid = self._pick("partner", "contacts")
        if cid is None:
            return False
        verb = self.rng.choice(("add", "remove"))
        tags = self.rng.sample(TAGS, self.rng.randint(1, 2))
        self.rt.call(f"superphone.tags.{verb}", {"contactId": cid, "tags": tags})
        return True

    def _edit_ghl_note(self) -> bool:
        cid = self._pick("ghl", "contacts")
        if cid is None:
            return False
        self.rt.call("ghl.notes.create", {"contactId": cid, "body": " ".join(self._words())})
        return True

    def _edit_sp_note(self) -> bool:
        cid = self._pick("partner", "contacts")
        if cid is None:
            return False
        self.rt.call("superphone.notes.create", {"contactId": cid, "body": " ".join(self._words())})
        return True

    def _edit_ghl_note_update(self) -> bool:
        found = self._pick_child("ghl", "notes")
        if found is None:
            return False
        nid, cid = found
        self.rt.call(
            "ghl.notes.update", {"contactId": cid, "id": nid, "body": " ".join(self._words())}
        )
        return True

    def _edit_sp_note_update(self) -> bool:
        found = self._pick_child("partner", "notes")
        if found is None:
            return False
        self.rt.call("superphone.notes.update", {"id": found[0], "body": " ".join(self._words())})
        return True

    def _edit_ghl_task(self) -> bool:
        cid = self._pick("ghl", "contacts")
        if cid is None:
            return False
        self.rt.call(
            "ghl.tasks.create",
            {
                "contactId": cid,
                "title": self._name(),
                "body": " ".join(self._words()),
                "dueDate": self.rng.choice(DUES),
                "completed": False,
            },
        )
        return True

    def _edit_sp_task(self) -> bool:
        cid = self._pick("partner", "contacts")
        if cid is None:
            return False
        self.rt.call(
            "superphone.tasks.create",
            {
                "contactId": cid,
                "title": self._name(),
                "description": " ".join(self._words()),
                "dueAt": self.rng.choice(DUES),
            },
        )
        return True

    def _edit_ghl_task_update(self) -> bool:
        found = self._pick_child("ghl", "tasks")
        if found is None:
            return False
        tid, cid = found
        if self.rng.random() < 0.5:
            self.rt.call("ghl.tasks.complete", {"contactId": cid, "taskId": tid, "completed": True})
        else:
            self.rt.call(
                "ghl.tasks.update", {"contactId": cid, "taskId": tid, "title": self._name()}
            )
        return True

    def _edit_sp_task_update(self) -> bool:
        found = self._pick_child("partner", "tasks")
        if found is None:
            return False
        if self.rng.random() < 0.5:
            self.rt.call("superphone.tasks.complete", {"id": found[0]})
        else:
            self.rt.call("superphone.tasks.update", {"id": found[0], "title": self._name()})
        return True

    def _edit_ghl_child_delete(self) -> bool:
        obj = self.rng.choice(("tasks", "notes"))
        found = self._pick_child("ghl", obj)
        if found is None:
            return False
        child, cid = found
        key = "taskId" if obj == "tasks" else "id"
        self.rt.call(f"ghl.{obj}.delete", {"contactId": cid, key: child})
        self.tally.ghl_deleted_children.add(child)
        return True

    def _edit_ghl_delete(self) -> bool:
        cid = self._pick("ghl", "contacts")
        if cid is None:
            return False
        self.rt.call("ghl.contacts.delete", {"contactId": cid})
        return True

    def _edit_sp_delete(self) -> bool:
        cid = self._pick("partner", "contacts")
        if cid is None:
            return False
        self.rt.call("superphone.contacts.delete", {"id": cid})
        return True

    def _words(self) -> list[str]:
        return self.rng.sample(WORDS, self.rng.randint(1, 4))

    # -- delivery -------------------------------------------------------------------------

    def collect(self) -> list[tuple[Side, dict[str, Any]]]:
        """Wait for both sandboxes' pending webhooks; the bodies that arrived since last time,
        in a stable order (by event time, then type and record id)."""
        self.ghl.drain_webhooks()
        self.sp.drain_webhooks()
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
        for side, body in queue:
            change = change_from_ghl(body) if side == "ghl" else change_from_partner(body)
            if change is None:
                continue
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
        """Writes that took effect so far on (GHL, SuperPhone)."""
        routes = self.ghl.location_stats()["routes"]
        ghl = sum(int(r.get("writes", 0)) for r in routes.values())
        sp = sum(int(v) for v in self.sp.stats()["writes"].values())
        return ghl, sp


def _stable_key(item: tuple[Side, dict[str, Any]]) -> tuple[str, str, str, str]:
    side, body = item
    data = body["data"] if isinstance(body.get("data"), dict) else body
    return (str(body.get("timestamp")), side, str(body.get("type")), str(data.get("id")))
