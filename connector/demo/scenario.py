"""The demo's story: sample data on every side, a first sync, then live changes on both sides.

Each partner taking part is a :class:`Cast` (its app, sandbox, sync engine, and the records the
story made there). :class:`Story` plays the steps through the apps' own APIs, as users would,
and waits after each one until every webhook it caused has been applied (:meth:`Story.settle`).
What the story did is kept in :class:`Expected`, which the convergence check reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from connector.demo.partners import PartnerApp, PartnerSandbox
from connector.demo.relay import Relay
from connector.runtime import Runtime
from connector.sandbox.server import SandboxServer
from connector.sync.engine import Outcome, SyncEngine
from connector.sync.spec import CUSTOM_PREFIX

__all__ = ["Cast", "Expected", "Story"]

Say = Callable[[str], None]
_DUE = ("2030-01-15T10:00:00Z", "2030-01-20T15:00:00Z")


@dataclass
class Expected:
    """What the story leaves behind for one partner: the contact edited on both sides and the
    names that must win, the contact deleted in GHL, the tasks made and completed."""

    conflict_ghl_id: str = ""
    conflict_first: str = ""
    conflict_last: str = ""
    deleted_ghl_id: str = ""
    tasks: list[tuple[str, str]] = field(default_factory=list)
    """(GHL contact id, GHL task id) of each task that must end completed on both sides."""


@dataclass
class Cast:
    """One partner app in the demo."""

    kit: PartnerApp
    sandbox: PartnerSandbox
    engine: SyncEngine
    index: int
    expected: Expected = field(default_factory=Expected)
    twins: list[str] = field(default_factory=list)

    @property
    def custom_field(self) -> str:
        """The GHL custom field id mapped to the partner's extra field."""
        for fmap in self.engine.spec.objects["contacts"].fields:
            if fmap.partner == self.kit.extra and fmap.ghl:
                return fmap.ghl.removeprefix(CUSTOM_PREFIX)
        return ""

    def partner_id(self, obj: str, ghl_id: str) -> str:
        """The partner id linked to a GHL record (empty when none)."""
        link = self.engine.ids.find(obj, "ghl", ghl_id)
        return link.partner_id if link else ""

    def ghl_id(self, obj: str, partner_id: str) -> str:
        """The GHL id linked to a partner record (empty when none)."""
        link = self.engine.ids.find(obj, "partner", partner_id)
        return link.ghl_id if link else ""


class Story:
    """Plays the demo's steps against GHL and each cast's partner app.

    :param say: prints one progress line.
    """

    def __init__(
        self,
        runtime: Runtime,
        ghl: SandboxServer,
        casts: Sequence[Cast],
        relay: Relay,
        say: Say,
    ) -> None:
        self.rt = runtime
        self.ghl = ghl
        self.casts = list(casts)
        self.relay = relay
        self.say = say
        self.seeds: list[dict[str, Any]] = []
        self.unsettled = 0
        """How many times :meth:`settle` gave up (webhooks kept coming)."""

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until every webhook sent so far, and every one they caused, has been applied
        (giving up after ``timeout`` seconds, counted in :attr:`unsettled`)."""
        deadline = time.monotonic() + timeout
        sandboxes: list[Any] = [self.ghl, *(c.sandbox for c in self.casts)]
        while time.monotonic() < deadline:
            before = self.relay.received + self.relay.ignored
            for box in sandboxes:
                box.drain_webhooks(timeout=max(0.1, deadline - time.monotonic()))
            self.relay.join()
            for box in sandboxes:
                box.drain_webhooks(timeout=max(0.1, deadline - time.monotonic()))
            if self.relay.received + self.relay.ignored == before:
                return
        self.unsettled += 1

    # -- before the sync starts -------------------------------------------------------------

    def sample_data(self) -> None:
        """Give each partner two contacts GHL already has: one with the e-mail in capitals, one
        with the phone number and no e-mail."""
        self.seeds = list(self.rt.iterate("ghl.contacts.search", {"pageLimit": 100}))
        self.seeds.sort(key=lambda c: str(c.get("email")))
        for cast in self.casts:
            by_mail, by_phone = self.seeds[2 * cast.index], self.seeds[2 * cast.index + 1]
            twin = cast.kit.create_contact(
                self.rt,
                {
                    "first": by_mail.get("firstName"),
                    "last": by_mail.get("lastName"),
                    "email": str(by_mail["email"]).upper(),
                },
            )
            other = cast.kit.create_contact(
                self.rt, {"first": by_phone.get("firstName"), "phone": by_phone["phone"]}
            )
            cast.twins = [str(twin["id"]), str(other["id"])]
            self.say(
                f"      {cast.kit.title}: {by_mail['email']} is there as "
                f"{str(by_mail['email']).upper()}; {by_phone['phone']} with no e-mail"
            )

    def first_sync(self) -> None:
        """Backfill both ways: pair what exists on both sides, create the rest once."""
        for cast in self.casts:
            title = cast.kit.title
            from_ghl = cast.engine.backfill("ghl", "contacts")
            from_partner = cast.engine.backfill("partner", "contacts")
            self.say(
                f"      {cast.engine.spec.name}: {len(from_ghl)} GHL contacts: "
                f"{_first_sync_line(from_ghl, title)}"
            )
            self.say(
                f"      {' ' * len(cast.engine.spec.name)}  {len(from_partner)} {title} "
                f"contacts: {_first_sync_line(from_partner, 'GHL')}"
            )
        self.settle()

    # -- live changes ------------------------------------------------------------------------

    def new_contacts(self) -> None:
        """A new contact in GHL and another in each partner app."""
        for cast in self.casts:
            app, n = cast.kit.app, cast.index
            self.rt.call("ghl.contacts.create", {
                "firstName": "Nia", "lastName": "Reyes", "email": f"nia.{app}@example.com",
                "phone": f"+1415555{100 + n:04d}", "tags": ["lead"],
                "customFields": [{"id": cast.custom_field, "field_value": "Website"}],
            })  # fmt: skip
            cast.kit.create_contact(self.rt, {
                "first": "Omar", "last": "Haddad", "email": f"omar.{app}@example.org",
                "phone": f"+1415555{200 + n:04d}", "extra": "Trade show", "tags": ["expo"],
            })  # fmt: skip
        self.settle()

    def edits_and_tags(self) -> None:
        """A rename and a tag in GHL; a tag and the partner-owned field in each partner app."""
        for cast in self.casts:
            seed = self.seeds[2 * cast.index + 1]
            self.rt.call("ghl.contacts.update", {"contactId": seed["id"], "firstName": "Sam"})
            self.rt.call("ghl.tags.add", {"contactId": seed["id"], "tags": ["vip"]})
            omar = self._omar(cast)
            cast.kit.add_tags(self.rt, omar, ["hot"])
            cast.kit.update_contact(self.rt, omar, {"extra": "Referral"})
        self.settle()

    def notes_and_tasks(self) -> None:
        """A note and a task on each side."""
        for cast in self.casts:
            nia = self._nia(cast)
            self.rt.call("ghl.notes.create", {"contactId": nia, "body": "Asked for a quote."})
            self.rt.call("ghl.tasks.create", {
                "contactId": nia, "title": "Send the quote", "dueDate": _DUE[0],
                "completed": False,
            })  # fmt: skip
            omar = self._omar(cast)
            cast.kit.add_note(self.rt, omar, "Met at the expo.")
            cast.kit.add_task(self.rt, omar, "Book a demo", _DUE[1])
        self.settle()

    def completions(self) -> None:
        """Each side completes the task the other side created."""
        for cast in self.casts:
            nia = self._nia(cast)
            ghl_task = self._tasks(nia)[0]
            cast.kit.complete_task(self.rt, cast.partner_id("tasks", ghl_task))
            omar = cast.ghl_id("contacts", self._omar(cast))
            copy = next(t for t in self._tasks(omar) if cast.partner_id("tasks", t))
            self.rt.call(
                "ghl.tasks.complete", {"contactId": omar, "taskId": copy, "completed": True}
            )
            cast.expected.tasks = [(nia, ghl_task), (omar, copy)]
        self.settle()

    def conflict(self) -> None:
        """The same contact edited in GHL and, a moment later, in the partner app, before
        either change is synced."""
        self.relay.hold()
        try:
            for cast in self.casts:
                seed = self.seeds[2 * cast.index]
                self.rt.call(
                    "ghl.contacts.update",
                    {"contactId": seed["id"], "firstName": "Lena", "lastName": "Ortiz"},
                )
                time.sleep(0.05)
                partner = cast.partner_id("contacts", str(seed["id"]))
                cast.kit.update_contact(self.rt, partner, {"first": "Helena", "last": "Ortiz-Diaz"})
                cast.expected.conflict_ghl_id = str(seed["id"])
                cast.expected.conflict_first, cast.expected.conflict_last = "Helena", "Ortiz"
            self.say("      (both edits made before either was synced; releasing the relay)")
        finally:
            self.relay.release()
        self.settle()

    def delete(self) -> None:
        """A contact deleted in GHL."""
        for cast in self.casts:
            seed = self.seeds[2 * len(self.casts) + cast.index]
            self.rt.call("ghl.contacts.delete", {"contactId": seed["id"]})
            cast.expected.deleted_ghl_id = str(seed["id"])
        self.settle()

    def _nia(self, cast: Cast) -> str:
        email = f"nia.{cast.kit.app}@example.com"
        found = self.rt.call("ghl.contacts.find_duplicate", {"email": email})
        return str(found["contact"]["id"])

    def _omar(self, cast: Cast) -> str:
        found = self.rt.call(
            f"{cast.kit.app}.contacts.find", {"email": f"omar.{cast.kit.app}@example.org"}
        )
        record = found.get("contact") if isinstance(found, dict) else None
        return str(record["id"]) if isinstance(record, dict) else ""

    def _tasks(self, contact_id: str) -> list[str]:
        tasks = self.rt.call("ghl.tasks.list", {"contactId": contact_id})["tasks"]
        return [str(t["id"]) for t in tasks]


def _first_sync_line(outcomes: Sequence[Outcome], target: str) -> str:
    counts: dict[str, int] = {}
    for o in outcomes:
        if o.reason.startswith("matched by "):
            key = "paired by " + o.reason.removeprefix("matched by ").split(";")[0]
        elif o.action == "create":
            key = f"created in {target}"
        else:
            key = "already in step"
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{n} {key}" for key, n in counts.items()) or "none"
