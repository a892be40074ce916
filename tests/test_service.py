"""``ghl-connector serve`` as a real process against the sandbox: recipes run from webhooks."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fixtures_store import postgres_schema
from inboxes import webhook_ids

from connector.recipes.history import History
from connector.sandbox.server import SandboxServer
from connector.service.inbox import Inbox, NewEvent
from connector.store import Store
from tests.serveproc import ROOT, ServeProcess, wait_for

TASKS = "POST /contacts/{contactId}/tasks"

ONE_STEP = """\
name: Call new contacts
trigger:
  use: ghl.contacts.created
on_error: {retry: 4, backoff: 0.2, then: dead_letter}
steps:
  - id: task
    use: ghl.tasks.create
    with:
      contactId: "{{ trigger.id }}"
      title: "Call {{ trigger.firstName | default('someone') }}"
      dueDate: "2030-01-01T00:00:00Z"
      completed: false
"""


def write_recipes(folder: Path, **recipes: str) -> Path:
    """Write recipe files ``<name>.yaml`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in recipes.items():
        (folder / f"{name}.yaml").write_text(text)
    return folder


def serve_for(ghl: SandboxServer, tmp_path: Path, *extra: str, **recipes: str) -> ServeProcess:
    """A (not yet started) serve process for the recipes, wired to the sandbox."""
    folder = write_recipes(tmp_path / "recipes", **(recipes or {"call_new": ONE_STEP}))
    return ServeProcess(folder, tmp_path / "home", base_url=ghl.base_url,
                        token=ghl.private_token, location_id=ghl.location_id,
                        public_keys=ghl.public_keys, extra=extra)


def create_contact(ghl: SandboxServer, name: str) -> str:
    """Create a contact through the API (the sandbox then sends ContactCreate)."""
    reply = httpx.post(f"{ghl.base_url}/contacts/", headers=ghl.auth_headers(), json={
        "locationId": ghl.location_id, "firstName": name,
        "email": f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.com"}, timeout=10)
    assert reply.status_code in (200, 201), reply.text
    return str(reply.json()["contact"]["id"])


def post_signed(ghl: SandboxServer, url: str, payload: dict[str, Any]) -> httpx.Response:
    """POST a webhook body signed with the sandbox's keys, as GHL would."""
    body = json.dumps(payload).encode()
    headers = {"content-type": "application/json", **ghl.app.keys.sign(body)}
    return httpx.post(url, content=body, headers=headers, timeout=10)


def runs(db: Path | str) -> list[dict[str, Any]]:
    """Every run in the state file."""
    with Store(db) as store:
        return [r.as_dict() for r in History(store).recent(limit=10_000)]


def inbox_counts(db: Path | str, kind: str = "ContactCreate") -> dict[str, int]:
    """The inbox's events of one type by status (tasks the recipes create send TaskCreate)."""
    with Store(db) as store:
        rows = store.query(
            "SELECT status, COUNT(*) AS n FROM inbox WHERE type = ? GROUP BY status", (kind,)
        )
    return {str(r["status"]): int(r["n"]) for r in rows}


def cursors(db: Path | str) -> list[str]:
    """The triggers whose poll cursor is saved (their first poll is over)."""
    with Store(db) as store:
        rows = store.query("SELECT trigger_id FROM poll_cursors ORDER BY trigger_id")
    return [str(r["trigger_id"]) for r in rows]


def on_store(proc: ServeProcess, location: Path | str) -> ServeProcess:
    """serve on this store (a PostgreSQL URL: --store URL, and proc.db is the URL)."""
    if isinstance(location, str):
        proc.extra = (*proc.extra, "--store", location)
        proc.db = location  # type: ignore[assignment]
    return proc


@pytest.fixture
def served(ghl: SandboxServer, tmp_path: Path, store_location: Path | str
           ) -> Iterator[ServeProcess]:
    """serve with the one-step recipe, receiving the sandbox's webhooks (on SQLite, and on
    PostgreSQL with --store URL)."""
    with on_store(serve_for(ghl, tmp_path), store_location) as proc:
        ghl.set_webhook_urls([proc.url])
        yield proc
        ghl.set_webhook_urls([])


def test_serve_runs_recipe_for_each_sandbox_webhook(ghl: SandboxServer,
                                                    served: ServeProcess) -> None:
    """Contacts created in the sandbox each get their task, once, with a succeeded run."""
    for name in ("Ada", "Bob", "Cy"):
        create_contact(ghl, name)
    assert wait_for(lambda: ghl.writes(TASKS) >= 3)
    assert wait_for(lambda: inbox_counts(served.db) == {"done": 3})
    assert ghl.writes(TASKS) == 3
    found = runs(served.db)
    assert sorted(r["status"] for r in found) == ["succeeded"] * 3
    assert all(r["id"].endswith(":call_new") for r in found)


def test_serve_processes_share_one_postgresql_store(ghl: SandboxServer, tmp_path: Path) -> None:
    """Three serve processes on one PostgreSQL store, every webhook sent to all three: each
    event is stored once and run once (claims skip each other's rows), nothing left over."""
    with postgres_schema() as url:
        procs = [on_store(serve_for(ghl, tmp_path / f"p{i}"), url) for i in range(3)]
        for proc in procs:
            proc.start()
        try:
            ghl.set_webhook_urls([proc.url for proc in procs])
            made = [create_contact(ghl, f"Many{i}") for i in range(12)]
            assert wait_for(lambda: inbox_counts(url) == {"done": 12}, timeout=60)
            ghl.set_webhook_urls([])
        finally:
            for proc in procs:
                proc.stop()
        assert ghl.writes(TASKS) == 12
        found = runs(url)
        assert sorted(r["status"] for r in found) == ["succeeded"] * len(made)
        assert len({r["id"] for r in found}) == len(made)


def test_serve_summary_and_healthz_report_the_service(served: ServeProcess) -> None:
    """The start-up summary names recipes, triggers and keys; /healthz shows the inbox."""
    text = "\n".join(served.summary)
    assert "call_new: 'Call new contacts' on ghl.contacts.created" in text
    assert "triggers active: ghl.contacts.created (ContactCreate)" in text
    assert "public keys: ed25519 sha256:" in text
    reply = served.health()
    assert reply.status_code == 200
    assert reply.json()["status"] == "ok" and reply.json()["inbox"] == {}
    assert reply.json()["workers"] == 4
    rebound = httpx.get(served.health_url, headers={"host": "evil.example:8000"}, timeout=5)
    assert rebound.json() == {"status": "ok"}  # DNS rebinding: a foreign page reads no details
    head = httpx.head(served.health_url, timeout=5)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == reply.headers["content-length"]


def test_serve_logs_are_json_and_redacted(ghl: SandboxServer, served: ServeProcess) -> None:
    """Every log line is a JSON object, and the sandbox token never appears in the logs."""
    create_contact(ghl, "Dee")
    assert wait_for(lambda: inbox_counts(served.db) == {"done": 1})
    served.stop()
    assert served.logs and all(line.startswith("{") for line in served.logs)
    messages = [r["message"] for r in served.log_records()]
    assert "serve: ready" in messages and "serve: stopped" in messages
    assert ghl.private_token not in "\n".join(served.logs)


def test_serve_acknowledges_unknown_event_types_and_logs_once(
    ghl: SandboxServer, served: ServeProcess
) -> None:
    """Events no trigger declares are stored, marked done and logged once per type."""
    for _ in range(3):
        reply = post_signed(ghl, served.url, {"type": "BrandNewEventType",
                                              "locationId": ghl.location_id,
                                              "webhookId": str(uuid.uuid4()), "id": "opp1"})
        assert reply.status_code == 200
    assert wait_for(lambda: inbox_counts(served.db, "BrandNewEventType") == {"done": 3})
    served.stop()
    ignored = [r for r in served.log_records() if "BrandNewEventType" in r["message"]]
    assert len(ignored) == 1
    assert runs(served.db) == []


def test_serve_trigger_options_filter_events(ghl: SandboxServer, tmp_path: Path) -> None:
    """A trigger's `with:` filter runs a recipe only for matching events (others: skipped)."""
    def only(location: str) -> str:
        return ONE_STEP.replace("use: ghl.contacts.created",
                                f"use: ghl.contacts.created\n  with: {{locationId: {location}}}")

    with serve_for(ghl, tmp_path, here=only(ghl.location_id), there=only("elsewhere")) as proc:
        ghl.set_webhook_urls([proc.url])
        create_contact(ghl, "Gil")
        assert wait_for(lambda: inbox_counts(proc.db) == {"done": 1})
        ghl.set_webhook_urls([])
    found = {r["id"].rpartition(":")[2]: r["status"] for r in runs(proc.db)}
    assert found == {"here": "succeeded", "there": "skipped"}
    assert ghl.writes(TASKS) == 1


def test_serve_runs_one_contacts_events_in_order(ghl: SandboxServer, tmp_path: Path) -> None:
    """Many events for two contacts, sent at once: each contact's runs start in arrival order."""
    with serve_for(ghl, tmp_path) as proc:
        contacts = [create_contact(ghl, "Ord"), create_contact(ghl, "Ered")]
        sent: list[str] = []
        for index in range(12):
            webhook_id = f"order-{index:02d}"
            sent.append(webhook_id)
            assert post_signed(ghl, proc.url, {
                "type": "ContactCreate", "locationId": ghl.location_id,
                "id": contacts[index % 2], "firstName": f"n{index}", "webhookId": webhook_id,
            }).status_code == 200
        assert wait_for(lambda: inbox_counts(proc.db) == {"done": 12})
    by_contact: dict[str, list[tuple[float, str]]] = {}
    with Store(proc.db) as store:
        rows = store.query("SELECT id, event, started_at FROM runs WHERE id LIKE 'order-%'")
    for row in rows:
        contact = json.loads(row["event"])["id"]
        by_contact.setdefault(contact, []).append((row["started_at"], row["id"]))
    for started in by_contact.values():
        order = [run_id for _, run_id in sorted(started)]
        assert order == sorted(order)
    assert sum(len(v) for v in by_contact.values()) == 12


def test_serve_refuses_to_start_with_invalid_recipes(tmp_path: Path) -> None:
    """Recipes that fail validation stop the start, each problem listed at its file:line."""
    folder = write_recipes(tmp_path / "recipes", good=ONE_STEP,
                           bad=ONE_STEP.replace("ghl.tasks.create", "ghl.tasks.craete"),
                           worse=ONE_STEP.replace("ghl.contacts.created", "ghl.contact.created"))
    done = subprocess.run(
        [sys.executable, "-m", "connector", "serve", "--recipes", str(folder), "--port", "0",
         "--db", str(tmp_path / "state.db")],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)},
    )
    assert done.returncode == 1
    assert "bad.yaml:7:10: steps[0].use: unknown action 'ghl.tasks.craete'" in done.stderr
    assert "worse.yaml:3" in done.stderr and "ghl.contact.created" in done.stderr
    assert "ready" not in done.stdout


def test_serve_sigterm_finishes_and_restart_resumes(ghl: SandboxServer, tmp_path: Path) -> None:
    """SIGTERM while events wait on a failing sandbox: exit 0, nothing lost; a restart
    completes them once the sandbox recovers."""
    patient = ONE_STEP.replace("retry: 4, backoff: 0.2", "retry: 8, backoff: 4")
    with serve_for(ghl, tmp_path, "--grace", "1", call_new=patient) as proc:
        ghl.set_webhook_urls([proc.url])
        ghl.set_faults({"route": TASKS, "error_rate": 1.0, "error_status": 503})
        for name in ("Eve", "Fay"):
            create_contact(ghl, name)
        assert wait_for(lambda: proc.health().json()["in_flight"] == 2)
        assert proc.stop() == 0
    assert ghl.writes(TASKS) == 0
    assert inbox_counts(proc.db) == {"pending": 2}
    ghl.clear_faults()
    with proc:
        assert wait_for(lambda: inbox_counts(proc.db) == {"done": 2})
    ghl.set_webhook_urls([])
    assert ghl.writes(TASKS) == 2
    assert sorted(r["status"] for r in runs(proc.db)) == ["succeeded", "succeeded"]


ENRICHED = """\
name: Note each new task
trigger:
  use: ghl.tasks.created
steps:
  - id: note
    use: ghl.notes.create
    with:
      contactId: "{{ trigger.contactId }}"
      body: "{{ trigger.title }} completed={{ trigger.completed }}"
"""


def test_serve_enriches_thin_task_events(ghl: SandboxServer, tmp_path: Path) -> None:
    """TaskCreate has no `completed`: the trigger's enrich fetch reads the task back first."""
    with serve_for(ghl, tmp_path, note_task=ENRICHED) as proc:
        contact = create_contact(ghl, "Kim")
        ghl.set_webhook_urls([proc.url])
        for title, completed in (("Open", False), ("Closed", True)):
            reply = httpx.post(f"{ghl.base_url}/contacts/{contact}/tasks",
                               headers=ghl.auth_headers(), timeout=10,
                               json={"title": title, "dueDate": "2030-01-01T00:00:00Z",
                                     "completed": completed})
            assert reply.status_code == 201, reply.text
        assert wait_for(lambda: inbox_counts(proc.db, "TaskCreate") == {"done": 2})
        ghl.set_webhook_urls([])
    notes = httpx.get(f"{ghl.base_url}/contacts/{contact}/notes", headers=ghl.auth_headers(),
                      timeout=10).json()["notes"]
    assert sorted(n["body"] for n in notes) == ["Closed completed=true", "Open completed=false"]
    with Store(proc.db) as store:
        events = [json.loads(r["event"]) for r in store.query("SELECT event FROM runs")]
    assert sorted(e["completed"] for e in events) == [False, True]  # the run saw the full task
    assert sorted(r["status"] for r in runs(proc.db)) == ["succeeded", "succeeded"]


def test_serve_uses_the_connection_of_each_events_location(tmp_path: Path) -> None:
    """An install serving two locations: each event runs with its own location's connection
    (the sandbox refuses a token of one location for the other's contacts)."""
    from connector.sandbox.app import PRIVATE_TOKEN_SCOPES
    from connector.sandbox.config import SandboxConfig

    first, second = "LocationOne00000000A", "LocationTwo00000000B"
    with SandboxServer(SandboxConfig(location_ids=(first, second))) as ghl:
        token2 = ghl.call(lambda: ghl.app.provider.add_private_token(
            location_id=second, scopes=PRIVATE_TOKEN_SCOPES))
        proc = serve_for(ghl, tmp_path)
        for name, token, location in (("one", ghl.private_token, first),
                                      ("two", token2, second)):
            done = subprocess.run(
                [sys.executable, "-m", "connector", "auth", "set-token", name, "--token-env",
                 "TOK", "--location-id", location, "--base-url", ghl.base_url],
                capture_output=True, text=True, timeout=60, cwd=ROOT,
                env={**proc.env, "TOK": token, "CONNECTOR_TOKEN": ""})
            assert done.returncode == 0, done.stderr
        proc.env["CONNECTOR_TOKEN"] = ""
        with proc:
            ghl.set_webhook_urls([proc.url])
            for token, location in ((ghl.private_token, first), (token2, second)):
                reply = httpx.post(f"{ghl.base_url}/contacts/", timeout=10, json={
                    "locationId": location, "firstName": "Loc", "email": f"{location}@ex.com"},
                    headers=ghl.auth_headers(token))
                assert reply.status_code == 201, reply.text
            assert wait_for(lambda: inbox_counts(proc.db) == {"done": 2})
            ghl.set_webhook_urls([])
        assert ghl.writes(TASKS, first) == 1 and ghl.writes(TASKS, second) == 1
        assert sorted(r["status"] for r in runs(proc.db)) == ["succeeded", "succeeded"]


POLLED = ONE_STEP.replace("use: ghl.contacts.created", "use: ghl.contacts.added").replace(
    "name: Call new contacts", "name: Call polled contacts")


def test_serve_runs_polling_triggers_into_the_same_inbox(ghl: SandboxServer,
                                                         tmp_path: Path) -> None:
    """A recipe on a polling trigger: serve polls the location and runs it for new contacts."""
    with serve_for(ghl, tmp_path, "--poll-interval", "0.3", "--poll-location", ghl.location_id,
                   polled=POLLED) as proc:
        assert f"pollers: ghl.contacts.added @ {ghl.location_id}" in proc.summary
        assert wait_for(lambda: cursors(proc.db) == ["ghl.contacts.added"])  # the first poll
        create_contact(ghl, "Polly")
        assert wait_for(lambda: inbox_counts(proc.db, "ghl.contacts.added") == {"done": 1})
    assert ghl.writes(TASKS) == 1
    assert [r["status"] for r in runs(proc.db)] == ["succeeded"]


def test_dispatcher_routes_every_ghl_webhook_event_of_the_catalog(tmp_path: Path) -> None:
    """Each GHL webhook trigger of the catalog starts its recipe for its event type,
    and only that one; an undeclared type starts none."""
    from connector.catalog import build_catalog
    from connector.expressions.filters import BUILTIN_FILTERS
    from connector.service.dispatcher import Dispatcher, load_routes

    catalog = build_catalog()
    webhooks = {t.id: t.event for t in catalog.triggers.values()
                if t.kind == "webhook" and t.app == "ghl"}
    assert len(webhooks) >= 58  # every event of GHL's webhook-events folder
    folder = tmp_path / "recipes"
    for trigger_id in webhooks:
        write_recipes(folder, **{trigger_id.replace(".", "_"): (
            f"name: {trigger_id}\ntrigger:\n  use: {trigger_id}\nsteps:\n  - id: read\n"
            "    use: ghl.contacts.get\n    with: {contactId: abc}\n")})
    routes = load_routes(folder, catalog, BUILTIN_FILTERS)
    with Store(tmp_path / "state.db") as store:
        def no_engine(location: str | None) -> Any:  # noqa: ANN401
            raise AssertionError("routing alone runs nothing")

        dispatcher = Dispatcher(catalog, routes, no_engine, History(store))
        for trigger_id, event in webhooks.items():
            assert [r.trigger.id for r in dispatcher.routes_for(event)] == [trigger_id]
        assert dispatcher.routes_for("BrandNewEventType") == []


def test_serve_purges_old_done_events_and_keeps_dead_ones(ghl: SandboxServer,
                                                         tmp_path: Path) -> None:
    """A state file with done events 10 days old: serve (default --keep-events 7) purges them
    once it runs; a done event of an hour ago and a month-old dead one stay."""
    proc = serve_for(ghl, tmp_path)
    proc.home.mkdir(parents=True, exist_ok=True)
    now = time.time()
    with Store(proc.db) as store:
        inbox = Inbox(store)
        inbox.add_many([NewEvent(f"w-{n}", "ContactCreate", "L1", b"{}", 1000.0)
                        for n in range(4)])
        inbox.add(NewEvent("w-dead", "ContactCreate", "L1", b"{}", 1000.0))
        claimed = inbox.claim(5, "old-worker", now=2000.0)
        for event in claimed[:4]:
            inbox.complete(event.id)
        inbox.fail(claimed[4].id, "gave up", None)
        with store.transaction() as db:
            db.execute("UPDATE inbox SET finished_at = ? WHERE webhook_id != 'w-3'",
                       (now - 10 * 86400,))
            db.execute("UPDATE inbox SET finished_at = ? WHERE webhook_id = 'w-3'", (now - 3600,))
    with proc:
        assert wait_for(lambda: inbox_counts(proc.db) == {"done": 1, "dead": 1})
    with Store(proc.db) as store:
        assert webhook_ids(Inbox(store)) == {"w-3", "w-dead"}


def test_serve_refuses_a_keep_events_that_is_not_days(tmp_path: Path) -> None:
    """--keep-events 0 (or a word) is a one-line usage error, no traceback."""
    for bad in ("0", "soon", "-1"):
        done = subprocess.run(
            [sys.executable, "-m", "connector", "serve", "--recipes", str(tmp_path),
             "--keep-events", bad],
            capture_output=True, text=True, timeout=60, cwd=ROOT,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)},
        )
        assert done.returncode == 2
        assert f"--keep-events: {bad!r} is not a number of days above 0" in done.stderr
        assert "Traceback" not in done.stderr
