"""The convergence test's edits: seeded random creates, updates, tag changes, notes, tasks,
completions and deletes, made by "users" of GHL and of the partner app through the catalog."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connector.errors import RemoteError
from connector.sync.spec import Side

if TYPE_CHECKING:
    from convergence_world import World

WORDS = ("alpha", "bravo", "delta", "echo", "fox", "golf", "hotel", "india", "kilo", "lima")
TAGS = ("vip", "lead", "cold", "warm", "promo", "beta")
DUES = tuple(f"2026-12-{d:02d}T10:00:00Z" for d in range(1, 29))


class Editor:
    """Draws and makes one edit at a time on either side of ``world`` (its rng, its tally)."""

    def __init__(self, world: World) -> None:
        self.w = world
        self.rng = world.rng
        self.p = world.partner
        self._serial = 0
        self._names = 0

    def edit(self, kinds: list[tuple[str, float]]) -> None:
        """Make one random edit of a kind drawn by weight (a refused edit is counted apart)."""
        names = [k for k, _ in kinds]
        kind = self.rng.choices(names, weights=[w for _, w in kinds])[0]
        tally = self.w.tally
        try:
            done = int(getattr(self, f"_edit_{kind}")())
        except RemoteError:
            done = 0  # the record was deleted meanwhile: a real user would see an error too
        if done:
            tally.edits += done
            tally.edit_kinds[kind] = tally.edit_kinds.get(kind, 0) + 1
        else:
            tally.refused += 1

    # -- helpers ----------------------------------------------------------------------------

    def _call(self, action_id: str, data: dict[str, Any]) -> Any:  # noqa: ANN401  # JSON
        return self.w.rt.call(action_id, data)

    def _name(self) -> str:
        """A name never given before, so that every name edit really changes the record (a
        save that changes nothing is pinned by its own test)."""
        self._names += 1
        return self.rng.choice(WORDS).title() + self.rng.choice(WORDS) + str(self._names)

    def _words(self) -> str:
        return " ".join(self.rng.sample(WORDS, self.rng.randint(1, 4)))

    def _fresh(self) -> tuple[str, str]:
        self._serial += 1
        email = f"p{self.w.seed}x{self._serial}@conv.example.org"
        return email, f"{self.p.phone_prefix}{self._serial:04d}"

    def _pick(self, side: Side, obj: str) -> str | None:
        rows = self.w.links(obj)
        if not rows:
            return None
        return str(self.rng.choice(rows)["ghl_id" if side == "ghl" else "partner_id"])

    def _pick_child(self, side: Side, obj: str) -> tuple[str, str] | None:
        """A linked (child id, its contact id) on ``side``."""
        contact = self._pick(side, "contacts")
        if contact is None:
            return None
        found = self.w.children(side, obj, contact)
        if not found:
            return None
        return str(self.rng.choice(found)["id"]), contact

    def _new_contact(self) -> dict[str, Any]:
        email, phone = self._fresh()
        return {
            "firstName": self._name(),
            "lastName": self._name(),
            "email": email,
            "phone": phone,
            "tags": self.rng.sample(TAGS, self.rng.randint(0, 2)),
        }

    def _changed_name(self) -> dict[str, Any]:
        data: dict[str, Any] = {self.rng.choice(("firstName", "lastName")): self._name()}
        if self.rng.random() < 0.15:
            data["email"] = self._fresh()[0]
        return data

    # -- contacts ---------------------------------------------------------------------------

    def _edit_ghl_create(self) -> bool:
        self._call("ghl.contacts.create", self._new_contact())
        return True

    def _edit_partner_create(self) -> bool:
        self._call(self.p.action("contacts.create"), self.p.contact_input(self._new_contact()))
        return True

    def _edit_twin_create(self) -> int:
        """The same person created on both sides before any sync: must pair, not duplicate."""
        email, phone = self._fresh()
        self._call(
            "ghl.contacts.create",
            {"firstName": self._name(), "lastName": "Twin", "email": email, "phone": phone},
        )
        twin = {"firstName": self._name(), "email": email, "lastName": "Twin", "phone": phone}
        self._call(self.p.action("contacts.create"), self.p.contact_input(twin))
        return 2

    def _edit_ghl_update(self) -> bool:
        cid = self._pick("ghl", "contacts")
        if cid is None:
            return False
        self._call("ghl.contacts.update", {"contactId": cid, **self._changed_name()})
        return True

    def _edit_partner_update(self) -> bool:
        cid = self._pick("partner", "contacts")
        if cid is None:
            return False
        data = {self.p.contact_id: cid, **self.p.contact_input(self._changed_name())}
        self._call(self.p.action("contacts.update"), data)
        return True

    def _edit_same_record(self) -> int:
        """A concurrent edit: one linked contact changed on both sides before any delivery."""
        rows = self.w.links("contacts")
        if not rows:
            return 0
        row = self.rng.choice(rows)
        self._call("ghl.contacts.update", {"contactId": row["ghl_id"], "firstName": self._name()})
        name = self.p.contact_fields["firstName"]
        data = {self.p.contact_id: row["partner_id"], name: self._name()}
        self._call(self.p.action("contacts.update"), data)
        return 2

    def _edit_ghl_tags(self) -> bool:
        cid = self._pick("ghl", "contacts")
        if cid is None:
            return False
        tags = self.rng.sample(TAGS, self.rng.randint(0, 3))
        self._call("ghl.contacts.update", {"contactId": cid, "tags": tags})
        return True

    def _edit_partner_tags(self) -> bool:
        cid = self._pick("partner", "contacts")
        if cid is None:
            return False
        verb = self.rng.choice(("add", "remove"))
        tags = self.rng.sample(TAGS, self.rng.randint(1, 2))
        self._call(self.p.action(f"tags.{verb}"), {self.p.parent: cid, "tags": tags})
        return True

    def _edit_ghl_delete(self) -> bool:
        cid = self._pick("ghl", "contacts")
        if cid is None:
            return False
        self._call("ghl.contacts.delete", {"contactId": cid})
        return True

    def _edit_partner_delete(self) -> bool:
        cid = self._pick("partner", "contacts")
        if cid is None:
            return False
        self._call(self.p.action("contacts.delete"), {self.p.contact_id: cid})
        return True

    # -- notes and tasks --------------------------------------------------------------------

    def _edit_ghl_note(self) -> bool:
        cid = self._pick("ghl", "contacts")
        if cid is None:
            return False
        self._call("ghl.notes.create", {"contactId": cid, "body": self._words()})
        return True

    def _edit_partner_note(self) -> bool:
        cid = self._pick("partner", "contacts")
        if cid is None:
            return False
        self._call(self.p.action("notes.create"), {self.p.parent: cid, "body": self._words()})
        return True

    def _edit_ghl_note_update(self) -> bool:
        found = self._pick_child("ghl", "notes")
        if found is None:
            return False
        nid, cid = found
        self._call("ghl.notes.update", {"contactId": cid, "id": nid, "body": self._words()})
        return True

    def _edit_partner_note_update(self) -> bool:
        found = self._pick_child("partner", "notes")
        if found is None or self.p.note_id is None:
            return False
        self._call(self.p.action("notes.update"), {self.p.note_id: found[0], "body": self._words()})
        return True

    def _edit_ghl_task(self) -> bool:
        cid = self._pick("ghl", "contacts")
        if cid is None:
            return False
        task = {"title": self._name(), "body": self._words(), "dueDate": self.rng.choice(DUES)}
        self._call("ghl.tasks.create", {"contactId": cid, **task, "completed": False})
        return True

    def _edit_partner_task(self) -> bool:
        cid = self._pick("partner", "contacts")
        if cid is None:
            return False
        names = self.p.task_fields
        task = {
            names["title"]: self._name(),
            names["body"]: self._words(),
            names["dueDate"]: self.rng.choice(DUES),
        }
        self._call(self.p.action("tasks.create"), {self.p.parent: cid, **task})
        return True

    def _edit_ghl_task_update(self) -> bool:
        found = self._pick_child("ghl", "tasks")
        if found is None:
            return False
        tid, cid = found
        if self.rng.random() < 0.5:
            self._call("ghl.tasks.complete", {"contactId": cid, "taskId": tid, "completed": True})
        else:
            self._call("ghl.tasks.update", {"contactId": cid, "taskId": tid, "title": self._name()})
        return True

    def _edit_partner_task_update(self) -> bool:
        found = self._pick_child("partner", "tasks")
        if found is None:
            return False
        key = {self.p.task_id: found[0]}
        if self.rng.random() < 0.5:
            ways = self.p.completions
            name, extra = ways[0] if len(ways) == 1 else self.rng.choice(ways)
            self._call(self.p.action(name), {**key, **extra})
        else:
            self._call(self.p.action("tasks.update"), {**key, "title": self._name()})
        return True

    def _edit_ghl_child_delete(self) -> bool:
        obj = self.rng.choice(("tasks", "notes"))
        found = self._pick_child("ghl", obj)
        if found is None:
            return False
        child, cid = found
        key = "taskId" if obj == "tasks" else "id"
        self._call(f"ghl.{obj}.delete", {"contactId": cid, key: child})
        self.w.tally.ghl_deleted_children.add(child)
        return True
