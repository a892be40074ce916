"""Footprints: the pack's own writes are recognised when their webhooks come back, recipes skip
them by default, and a recipe that keeps acting on one record is stopped as a loop.

Everything runs against the GHL sandbox on 127.0.0.1 with a real state file; the echo events
are the webhook bodies the sandbox itself sent for the pack's writes.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from connector.catalog import Catalog
from connector.recipes.engine import Engine
from connector.recipes.footprints import Footprints, LoopDetected, Origin, acting
from connector.recipes.recipe import parse_recipe
from connector.runtime import Runtime
from connector.sandbox.server import SandboxServer
from connector.store import Store


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhooks(ghl: SandboxServer) -> Iterator[SandboxServer]:
    """The sandbox delivering its webhooks to a sink, so ``sent_bodies`` holds them."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    ghl.set_webhook_urls([f"http://127.0.0.1:{server.server_address[1]}/hook"])
    try:
        yield ghl
    finally:
        ghl.set_webhook_urls([])
        server.shutdown()
        server.server_close()


def _bodies(ghl: SandboxServer, kind: str) -> list[dict[str, Any]]:
    ghl.drain_webhooks()
    found = [json.loads(b) for b in ghl.sent_bodies()]
    return [b for b in found if b.get("type") == kind]


def _contact(ghl: SandboxServer) -> str:
    return ghl.call(lambda: sorted(ghl.app.store.contacts))[0]


TASK = {"title": "Call Ada", "dueDate": "2026-12-01T10:00:00Z", "completed": False}


def test_the_echo_of_a_write_is_recognised(webhooks: SandboxServer, runtime: Runtime,
                                           store: Store) -> None:
    """The TaskCreate webhook of a task the pack created is its echo, naming the writer."""
    footprints = Footprints(store)
    contact = _contact(webhooks)
    origin = Origin("recipe:copy_tasks", "run-1", ("recipe:copy_tasks",))
    with acting(origin, footprints):
        created = runtime.call("ghl.tasks.create", {"contactId": contact, **TASK})
    (event,) = _bodies(webhooks, "TaskCreate")
    assert event["id"] == created["task"]["id"]
    echo = footprints.echo_of("ghl", event, time.time())
    assert echo is not None
    assert (echo.writer, echo.run, echo.chain) == ("recipe:copy_tasks", "run-1",
                                                    ("recipe:copy_tasks",))
    assert echo.as_trigger()["pack"] is True and echo.as_trigger()["by"] == "recipe"
    # The digests in the state file do not hold the values written.
    stored = store.query("SELECT fields FROM footprints")
    assert all("Call Ada" not in str(row["fields"]) for row in stored)


def test_a_person_editing_what_the_pack_wrote_is_not_an_echo(
    webhooks: SandboxServer, runtime: Runtime, store: Store
) -> None:
    """The same record with a field the pack wrote now different, another app, or a record the
    pack never wrote: none of them is an echo."""
    footprints = Footprints(store)
    contact = _contact(webhooks)
    with acting(Origin("recipe:r", "run", ("recipe:r",)), footprints):
        created = runtime.call("ghl.tasks.create", {"contactId": contact, **TASK})
    (event,) = _bodies(webhooks, "TaskCreate")
    now = time.time()
    assert footprints.echo_of("ghl", {**event, "title": "Call Ada today"}, now) is None
    assert footprints.echo_of("superphone", {"data": event}, now) is None
    assert footprints.echo_of("ghl", {**event, "id": "someOtherTask"}, now) is None
    # Later than the echo window: a person's change.
    assert footprints.echo_of("ghl", event, now + 10 * footprints.echo_window) is None
    # The contact the task was written to is not echoed by a change of the contact itself.
    contact_event = {"type": "ContactUpdate", "id": contact, "firstName": "Ada"}
    assert footprints.echo_of("ghl", contact_event, now) is None
    assert created["task"]["id"] == event["id"]


def test_writes_outside_acting_leave_no_footprint(runtime: Runtime, store: Store,
                                                  ghl: SandboxServer) -> None:
    """Reads, and writes made by hand (``call``), are not recorded."""
    Footprints(store)
    contact = _contact(ghl)
    runtime.call("ghl.tasks.create", {"contactId": contact, **TASK})
    with acting(Origin("recipe:r"), Footprints(store)):
        runtime.call("ghl.contacts.get", {"contactId": contact})
    assert store.query("SELECT COUNT(*) AS n FROM footprints")[0]["n"] == 0


RECIPE = """\
name: touch every task
trigger:
  use: ghl.tasks.created
{echoes}
on_error: {{retry: 0, backoff: 0}}
steps:
  - id: touch
    use: ghl.tasks.update
    with:
      contactId: "{{{{ trigger.contactId }}}}"
      taskId: "{{{{ trigger.id }}}}"
      title: "{{{{ trigger.title }}}} again"
"""


def test_recipes_skip_their_echoes_by_default(webhooks: SandboxServer, runtime: Runtime,
                                              store: Store, catalog: Catalog) -> None:
    """A run on an echo is skipped, saying whose write it echoes; nothing is written."""
    footprints = Footprints(store)
    engine = Engine(catalog, runtime, store, footprints=footprints)
    contact = _contact(webhooks)
    with acting(Origin("sync:s", "e1", ("sync:s",)), footprints):
        runtime.call("ghl.tasks.create", {"contactId": contact, **TASK})
    (event,) = _bodies(webhooks, "TaskCreate")
    echo = footprints.echo_of("ghl", event, time.time())
    recipe = parse_recipe(RECIPE.format(echoes=""), file="touch.yaml")
    before = webhooks.writes("PUT /contacts/{contactId}/tasks/{taskId}")
    result = engine.run(recipe, event, echo=echo)
    assert result.status == "skipped"
    assert "echo of the pack's own write (sync:s" in str(result.error)
    assert webhooks.writes("PUT /contacts/{contactId}/tasks/{taskId}") == before
    # The same event that is not an echo runs.
    assert engine.run(recipe, event).status == "succeeded"


FOLLOW_UP = """\
name: follow every task
trigger:
  use: ghl.tasks.created
  echoes: run
on_error: {retry: 0, backoff: 0}
steps:
  - id: again
    use: ghl.tasks.create
    with:
      contactId: "{{ trigger.contactId }}"
      title: "Follow-up: {{ trigger.title }}"
      dueDate: "2026-12-01T10:00:00Z"
      completed: false
"""


def test_a_recipe_that_feeds_itself_is_stopped_as_a_loop(
    webhooks: SandboxServer, runtime: Runtime, store: Store, catalog: Catalog
) -> None:
    """With ``echoes: run``, a recipe that creates what triggers it would run forever: after
    the limit the run is dead-lettered with "loop detected" and the chain, before it writes."""
    footprints = Footprints(store, loop_limit=3, loop_window=60)
    engine = Engine(catalog, runtime, store, footprints=footprints)
    recipe = parse_recipe(FOLLOW_UP, file="follow.yaml")
    contact = _contact(webhooks)
    runtime.call("ghl.tasks.create", {"contactId": contact, **TASK})
    (event,) = _bodies(webhooks, "TaskCreate")
    echo = None
    statuses = []
    for _ in range(6):
        result = engine.run(recipe, event, echo=echo)
        statuses.append(result.status)
        if result.status != "succeeded":
            break
        event = _bodies(webhooks, "TaskCreate")[-1]
        echo = footprints.echo_of("ghl", event, time.time())
        assert echo is not None and echo.writer == "recipe:follow"
        assert result.outputs["again"]["task"]["id"] == event["id"]
    assert statuses == ["succeeded"] * 3 + ["dead_letter"]
    assert result.error is not None and result.error.startswith("loop detected")
    assert "recipe:follow -> recipe:follow" in result.error
    assert webhooks.writes("POST /contacts/{contactId}/tasks") == 1 + 3
    history = store.query("SELECT status, error FROM runs WHERE status = 'dead_letter'")
    assert len(history) == 1 and "loop detected" in str(history[0]["error"])


def test_a_recipe_that_keeps_writing_one_record_is_stopped(
    ghl: SandboxServer, runtime: Runtime, store: Store, catalog: Catalog
) -> None:
    """Even when its echoes are not recognised (an app that rewrites what it is sent), one
    writer writing one record more than the limit within the window is a loop."""
    footprints = Footprints(store, loop_limit=3, loop_window=60)
    engine = Engine(catalog, runtime, store, footprints=footprints)
    recipe = parse_recipe(RENAME, file="rename.yaml")
    contact = _contact(ghl)
    event = {"type": "ContactUpdate", "locationId": ghl.location_id, "id": contact}
    statuses = [engine.run(recipe, event).status for _ in range(5)]
    assert statuses == ["succeeded"] * 3 + ["dead_letter"] * 2
    assert ghl.writes("PUT /contacts/{contactId}") == 3


RENAME = """\
name: rename
trigger:
  use: ghl.contacts.updated
on_error: {retry: 0, backoff: 0}
steps:
  - id: rename
    use: ghl.contacts.update
    with:
      contactId: "{{ trigger.id }}"
      firstName: Ada
"""


def test_a_chain_that_comes_back_to_its_writer_is_stopped(store: Store, catalog: Catalog) -> None:
    """A writer acting on a change its own writes caused, over and over, is refused before
    it sends anything."""
    footprints = Footprints(store, loop_limit=2)
    chain = ("recipe:a", "sync:s", "recipe:a", "sync:s", "recipe:a")
    with pytest.raises(LoopDetected, match="recipe:a -> sync:s -> recipe:a"):
        footprints.check(Origin("recipe:a", "r", chain), "ghl", None)
    footprints.check(Origin("recipe:a", "r", chain[:3]), "ghl", None)
