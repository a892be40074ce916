"""Footprints compare an event with the write's answer too: a person's change of a field the
pack did not write, within the echo window, is not taken for the pack's echo (and dropped).

Against the GHL sandbox on 127.0.0.1 with a real state file: the pack's writes are made inside
:func:`acting`, a person's with the same runtime outside it, and the events are the webhook
bodies the sandbox sent for them.
"""

from __future__ import annotations

import json
import time
from typing import Any

from connector.catalog import Catalog
from connector.recipes.engine import Engine
from connector.recipes.footprints import Footprints, Origin, acting
from connector.recipes.recipe import parse_recipe
from connector.runtime import Runtime
from connector.sandbox.server import SandboxServer
from connector.store import Store
from tests.test_footprints import TASK, _bodies, _contact, webhooks

__all__ = ["webhooks"]  # the fixture, used by name

PACK = Origin("recipe:copy", "run-1", ("recipe:copy",))
ADA = {"firstName": "Ada", "lastName": "Lovelace", "email": "Ada.Lovelace@Example.com",
       "phone": "+1 (555) 010-2000"}  # fmt: skip


def _footprints(store: Store, catalog: Catalog) -> Footprints:
    """Footprints as ``serve`` builds them: with the apps' ``sync_events``."""
    events = {app.id: app.sync_events for app in catalog.apps.values() if app.sync_events}
    return Footprints(store, events=events)


def _last(ghl: SandboxServer, kind: str) -> dict[str, Any]:
    return _bodies(ghl, kind)[-1]


TOUCH = """\
name: on contact change
trigger:
  use: ghl.contacts.updated
on_error: {retry: 0, backoff: 0}
steps:
  - id: note
    use: ghl.notes.create
    with:
      contactId: "{{ trigger.id }}"
      body: "changed"
"""


def test_a_person_editing_other_fields_after_a_pack_create_is_not_an_echo(
    webhooks: SandboxServer, runtime: Runtime, store: Store, catalog: Catalog
) -> None:
    """Repro A: the pack creates a contact; within the window a person sets its website and
    tags. GHL's ContactUpdate carries the whole contact, the written fields unchanged: it is a
    person's change, and a recipe on it runs."""
    footprints = _footprints(store, catalog)
    with acting(PACK, footprints):
        created = runtime.call("ghl.contacts.create", ADA)
    contact = created["contact"]["id"]
    # The pack's own create: its webhook is its echo (phone and email as GHL shows them).
    own = _last(webhooks, "ContactCreate")
    assert own["id"] == contact
    assert footprints.echo_of("ghl", own, time.time()) is not None

    runtime.call("ghl.contacts.update", {"contactId": contact, "website": "https://acme.example",
                                         "tags": ["human-edit"]})  # fmt: skip
    edit = _last(webhooks, "ContactUpdate")
    assert (edit["firstName"], edit["website"]) == ("Ada", "https://acme.example")
    assert footprints.echo_of("ghl", edit, time.time()) is None

    engine = Engine(catalog, runtime, store, footprints=footprints)
    recipe = parse_recipe(TOUCH, file="touch.yaml")
    echo = footprints.echo_of("ghl", edit, time.time())
    assert engine.run(recipe, edit, echo=echo).status == "succeeded"


def test_one_field_the_answer_left_out_is_a_change(
    webhooks: SandboxServer, runtime: Runtime, store: Store, catalog: Catalog
) -> None:
    """A field the create's answer did not show (GHL leaves unset fields out) but its output
    schema declares is compared as empty: a website set alone is a change; a field only the
    webhook carries (``attachments``, empty) is not compared against."""
    footprints = _footprints(store, catalog)
    with acting(PACK, footprints):
        contact = runtime.call("ghl.contacts.create", ADA)["contact"]["id"]
    runtime.call("ghl.contacts.update", {"contactId": contact, "website": "acme.example"})
    edit = _last(webhooks, "ContactUpdate")
    assert footprints.echo_of("ghl", edit, time.time()) is None
    # The same event as the pack's write left the contact: an echo.
    before = {k: v for k, v in edit.items() if k != "website"}
    assert footprints.echo_of("ghl", before, time.time()) is not None
    # The digests of the answer do not hold its values either.
    stored = " ".join(str(row["fields"]) for row in store.query("SELECT fields FROM footprints"))
    assert "@answer" in stored and "Lovelace" not in stored and "5550102000" not in stored


def test_the_pack_s_own_update_is_still_an_echo(
    webhooks: SandboxServer, runtime: Runtime, store: Store, catalog: Catalog
) -> None:
    """The pack's update of a contact a person made: GHL's ContactUpdate carries the whole
    contact (fields the pack did not write included) and is the pack's echo; its tags in
    another order, email in another case and phone in another format still match."""
    contact = _contact(webhooks)
    runtime.call("ghl.contacts.update", {"contactId": contact, "tags": ["b", "a"]})
    footprints = _footprints(store, catalog)
    with acting(PACK, footprints):
        runtime.call("ghl.contacts.update", {"contactId": contact, "firstName": "Grace",
                                             "email": "GRACE@Example.com", "tags": ["a", "b"],
                                             "phone": "555-010-3000"})  # fmt: skip
    own = _last(webhooks, "ContactUpdate")
    echo = footprints.echo_of("ghl", own, time.time())
    assert echo is not None and echo.writer == "recipe:copy"
    shown = {**own, "tags": list(reversed(own["tags"])), "email": str(own["email"]).lower()}
    assert footprints.echo_of("ghl", shown, time.time()) is not None
    # A person adding a tag right after: not an echo.
    added = {**own, "tags": [*own["tags"], "vip"]}
    assert footprints.echo_of("ghl", added, time.time()) is None


def test_a_person_completing_a_task_the_pack_created_is_not_an_echo(
    webhooks: SandboxServer, runtime: Runtime, store: Store, catalog: Catalog
) -> None:
    """Repro B: the pack creates a task; a person completes it within the window. GHL's
    TaskComplete carries only the task's text fields, all as the pack wrote them, but means
    ``completed: true``: a person's change. The pack's own completion is its echo."""
    footprints = _footprints(store, catalog)
    contact = _contact(webhooks)
    with acting(PACK, footprints):
        task = runtime.call("ghl.tasks.create", {"contactId": contact, **TASK})["task"]["id"]
    runtime.call("ghl.tasks.complete", {"contactId": contact, "taskId": task, "completed": True})
    done = _last(webhooks, "TaskComplete")
    assert done["id"] == task and "completed" not in done
    assert footprints.echo_of("ghl", done, time.time()) is None

    with acting(PACK, footprints):
        third = runtime.call("ghl.tasks.create", {"contactId": contact, **TASK})["task"]["id"]
        runtime.call("ghl.tasks.complete", {"contactId": contact, "taskId": third,
                                            "completed": True})  # fmt: skip
    own = _last(webhooks, "TaskComplete")
    assert own["id"] == third
    echo = footprints.echo_of("ghl", own, time.time())
    assert echo is not None and echo.writer == "recipe:copy"


def test_a_person_deleting_what_the_pack_created_is_not_an_echo(
    webhooks: SandboxServer, runtime: Runtime, store: Store, catalog: Catalog
) -> None:
    """A ContactDelete (all fields as the pack wrote them) echoes only the pack's delete."""
    footprints = _footprints(store, catalog)
    with acting(PACK, footprints):
        contact = runtime.call("ghl.contacts.create", ADA)["contact"]["id"]
        ours = runtime.call(
            "ghl.contacts.create", {**ADA, "email": "g@example.com", "phone": "+15550104000"}
        )["contact"]["id"]
    runtime.call("ghl.contacts.delete", {"contactId": contact})
    gone = _last(webhooks, "ContactDelete")
    assert gone["id"] == contact and gone["firstName"] == "Ada"
    assert footprints.echo_of("ghl", gone, time.time()) is None
    with acting(PACK, footprints):
        runtime.call("ghl.contacts.delete", {"contactId": ours})
    own = _last(webhooks, "ContactDelete")
    assert own["id"] == ours and footprints.echo_of("ghl", own, time.time()) is not None


def test_rows_written_before_answers_were_kept_still_match(store: Store) -> None:
    """A footprint row from before this change (written digests only) is read as before."""
    footprints = Footprints(store)
    fields = json.dumps({"title": footprints._digest("Call Ada")})
    now = time.time()
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO footprints (at, app, record, writer, run, chain, fields)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (now, "ghl", "t1", "recipe:r", "run", '["recipe:r"]', fields),
        )
    event = {"type": "TaskCreate", "id": "t1", "title": "call ada ", "body": "anything"}
    assert footprints.echo_of("ghl", event, now) is not None
