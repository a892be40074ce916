"""The two-way sync engine between the GHL sandbox and the LinkedPhone sandbox (real HTTP, real
SQLite): matching, the id map, echo suppression, last writer wins, deletes, custom fields and
the audit trail."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from clocks import SteppedClock

from connector.auth.bearer import StaticBearer
from connector.auth.credentials import api_key_provider
from connector.catalog import build_catalog
from connector.client.retry import RetryPolicy
from connector.documents.manifest import pack_manifest
from connector.errors import ConnectorError, DocumentError
from connector.recipes.recipe import parse_recipe
from connector.runtime import Runtime, Settings
from connector.store import Store
from connector.sync.audit import entries
from connector.sync.engine import Change, SyncEngine
from connector.sync.events import change_from_hub, change_from_partner
from connector.sync.mapping import record_time
from connector.sync.spec import load_sync, parse_sync

WEBHOOKS = {a: app.webhooks for a, app in pack_manifest().apps.items()}
HUB_EVENTS = pack_manifest().apps["ghl"].sync_events

CATALOG = build_catalog()
ROOT = Path(__file__).resolve().parents[1]
CF_COMPANY = "cfCompany0000000001"

SPEC = f"""\
name: ghl-linkedphone
sync:
  partner: linkedphone
  redact: [last_name]
  objects:
    contacts:
      direction: two_way
      match: [email, phone]
      fields:
        firstName: first_name
        lastName: last_name
        email: email
        phone: {{partner: phone, to_ghl: "{{{{ item.phone | e164 }}}}"}}
      custom_fields:
        {CF_COMPANY}: company
      source_of_truth: {{lastName: ghl}}
      delete: {{delete}}
    tags: {{direction: two_way}}
    tasks:
      fields:
        title: title
        body: description
"""


def spec_text(delete: str = "archive") -> str:
    return SPEC.replace("{delete}", delete)


class Receiver:
    """A real webhook receiver on 127.0.0.1 keeping every body it was sent."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                receiver.bodies.append(json.loads(body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def partner_runtime(ghl, app, box):
    """A runtime for the GHL sandbox and the partner ``app``'s sandbox ``box``."""
    settings = Settings(
        strict=True,
        base_urls={"ghl": ghl.base_url, app: box.base_url},
        location_id=ghl.location_id,
        retry=RetryPolicy(attempts=2, base=0.01, cap=0.05),
    )
    bearer = StaticBearer(ghl.private_token)
    auth = api_key_provider(lambda _app, action: bearer, keys={app: box.api_key})
    return Runtime(CATALOG, settings, auth=auth)


@pytest.fixture
def runtime(ghl, lp):
    with partner_runtime(ghl, "linkedphone", lp) as rt:
        yield rt


@pytest.fixture
def store(store_location):
    with Store(store_location) as s:
        yield s


def engine_for(runtime, store, delete="archive"):
    return SyncEngine(parse_sync(spec_text(delete)), runtime, store)


def ghl_contact(runtime, **fields):
    return runtime.call("ghl.contacts.create", fields)["contact"]


def lp_contact(runtime, **fields):
    return runtime.call("linkedphone.contacts.create", fields)["contact"]


def from_ghl(record, **extra):
    return Change("ghl", "contacts", record["id"], record, **extra)


def from_lp(record, **extra):
    return Change("partner", "contacts", record["id"], record, **extra)


def lp_writes(lp):
    routes = lp.stats()["traffic"]["routes"]
    return sum(r["writes"] for r in routes.values())


def ghl_writes(ghl):
    return sum(r["writes"] for r in ghl.location_stats()["routes"].values())


def test_sync_first_sync_matches_by_email_then_phone(runtime, store, ghl, lp):
    """Records on both sides are paired by e-mail (any case), else by E.164 phone: no duplicates."""
    by_mail = lp_contact(runtime, first_name="Ann", email="ann@example.org")
    by_phone = lp_contact(runtime, first_name="Bo", phone="+14155550123")
    engine = engine_for(runtime, store)
    created_before = lp.writes("POST /contacts")
    a = ghl_contact(runtime, firstName="Ann", email="ANN@example.org")
    b = ghl_contact(runtime, firstName="Bo", phone="(415) 555-0123")
    first = engine.apply(from_ghl(a))
    second = engine.apply(from_ghl(b))
    assert (first.action, first.partner_id) == ("link", by_mail["id"])
    assert first.reason == "matched by email ann@example.org; no change"
    assert (second.action, second.partner_id) == ("link", by_phone["id"])
    assert second.reason.startswith("matched by phone")
    assert lp.writes("POST /contacts") == created_before
    assert engine.ids.count("contacts") == 2


def test_console_looks_up_a_linked_contact_by_the_email_or_phone_it_matched(
    runtime, store, ghl, lp
):
    """A link made with no change records no changed values; the console's Syncs look-up still
    finds the contact by the e-mail (any case) or phone (any format) it was matched by."""
    from connector.console.server import ConsoleServer

    lp_contact(runtime, first_name="Gil", email="gil@example.com")
    lp_contact(runtime, first_name="Hal", phone="+14155550199")
    engine = engine_for(runtime, store)
    gil = ghl_contact(runtime, firstName="Gil", email="gil@example.com")
    hal = ghl_contact(runtime, firstName="Hal", phone="(415) 555-0199")
    assert engine.apply(from_ghl(gil)).action == "link"
    assert engine.apply(from_ghl(hal)).action == "link"
    with ConsoleServer(store) as server, httpx.Client(timeout=10) as client:
        base = server.url.rstrip("/")
        for query, contact in (("GIL@example.com", gil), ("+14155550199", hal),
                               ("(415) 555-0199", hal)):
            page = client.get(base + "/syncs", params={"q": query})
            assert page.status_code == 200
            assert "Nothing in the sync id map" not in page.text, query
            assert contact["id"] in page.text, query
            assert "no change" in page.text, query


def test_sync_repeated_event_creates_once(runtime, store, ghl, lp):
    """The id map makes a redelivered event an update with nothing to change, not a second create."""
    engine = engine_for(runtime, store)
    c = ghl_contact(runtime, firstName="Cy", email="cy@example.org", tags=["VIP"])
    change = from_ghl(c, event_id="evt-1")
    assert engine.apply(change).action == "create"
    again = engine.apply(change)
    assert (again.action, again.reason) == ("skip", "no change")
    assert lp.writes("POST /contacts") == 1
    created = lp.record("contacts", again.partner_id)
    assert (created["first_name"], created["email"], created["tags"]) == (
        "Cy",
        "cy@example.org",
        ["vip"],
    )


def test_sync_two_way_echo_is_suppressed(runtime, store, ghl, lp, receiver):
    """A change copied to one side comes back by webhook and is not sent again, both ways."""
    ghl.set_webhook_urls([receiver.url])
    lp.set_webhook_urls([receiver.url])
    engine = engine_for(runtime, store)
    c = ghl_contact(runtime, firstName="Di", email="di@example.org")
    created = engine.apply(from_ghl(c))
    lp.drain_webhooks()
    echo = change_from_partner(_last(receiver, "contact.created"), WEBHOOKS["linkedphone"])
    out = engine.apply(echo)
    assert out.action == "skip" and out.reason.startswith("echo")
    # partner edit -> GHL update -> GHL webhook comes back -> suppressed
    ghl_before, lp_before = ghl_writes(ghl), lp_writes(lp)
    edited = runtime.call(
        "linkedphone.contacts.update", {"contact_id": created.partner_id, "first_name": "Dee"}
    )["contact"]
    assert engine.apply(from_lp(edited)).action == "update"
    ghl.drain_webhooks()
    back = change_from_hub(_last(receiver, "ContactUpdate"), HUB_EVENTS)
    out = engine.apply(back)
    assert out.action == "skip" and out.reason.startswith("echo")
    assert ghl_writes(ghl) == ghl_before + 1
    assert lp_writes(lp) == lp_before + 1
    assert runtime.call("ghl.contacts.get", {"contactId": c["id"]})["contact"]["firstName"] == "Dee"


def _last(receiver, event_type):
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = [b for b in receiver.bodies if b.get("type") == event_type]
        if found:
            return found[-1]
        time.sleep(0.01)
    raise AssertionError(f"no {event_type} webhook")


def test_sync_last_writer_wins_with_source_of_truth(runtime, store, ghl, lp):
    """An older GHL change loses to a later partner edit, except for fields GHL owns."""
    engine = engine_for(runtime, store)
    clock = SteppedClock()
    for sandbox in (ghl, lp):
        sandbox.use_clock(clock)  # both sides stamp by one clock, stepped below
    c = ghl_contact(runtime, firstName="Ed", lastName="Old", email="ed@example.org")
    partner_id = engine.apply(from_ghl(c)).partner_id
    clock.advance()
    runtime.call("linkedphone.contacts.update", {"contact_id": partner_id, "first_name": "Eddie"})
    # Dated by GHL's own clock at the create: a step before the partner edit.
    stale = {**c, "firstName": "Edward", "lastName": "New"}
    out = engine.apply(from_ghl(stale))
    assert out.action == "update"
    assert out.reason == "older, but ghl is the source of truth for these fields"
    assert set(out.changes) == {"last_name"}
    now = lp.record("contacts", partner_id)
    assert (now["first_name"], now["last_name"]) == ("Eddie", "New")
    clock.advance()
    newer = engine.apply(from_ghl(stale, updated_at=clock()))
    assert (newer.action, set(newer.changes)) == ("update", {"first_name"})
    assert lp.record("contacts", partner_id)["first_name"] == "Edward"


def test_sync_partner_change_never_overwrites_a_ghl_owned_field(runtime, store, ghl, lp):
    """lastName's source of truth is GHL: a partner edit to it is not copied."""
    engine = engine_for(runtime, store)
    c = ghl_contact(runtime, firstName="Fay", lastName="Ghl", email="fay@example.org")
    pid = engine.apply(from_ghl(c)).partner_id
    edited = runtime.call(
        "linkedphone.contacts.update", {"contact_id": pid, "last_name": "Partner"}
    )["contact"]
    out = engine.apply(from_lp(edited))
    assert (out.action, out.reason) == ("skip", "no change")
    assert runtime.call("ghl.contacts.get", {"contactId": c["id"]})["contact"]["lastName"] == "Ghl"


@pytest.mark.parametrize(
    ("policy", "action", "tags", "exists"),
    [
        ("propagate", "delete", None, False),
        ("ignore", "skip", [], True),
        ("archive", "archive", ["sync-archived"], True),
    ],
)
def test_sync_delete_policies(runtime, store, ghl, lp, policy, action, tags, exists):
    """A partner delete deletes, leaves alone, or tags the GHL record, as the policy says."""
    engine = engine_for(runtime, store, delete=policy)
    lp_record = lp_contact(runtime, first_name="Gus", email="gus@example.org")
    ghl_id = engine.apply(from_lp(lp_record)).ghl_id
    out = engine.apply(Change("partner", "contacts", lp_record["id"], None))
    assert out.action == action
    assert ghl.writes("DELETE /contacts/{contactId}") == (0 if exists else 1)
    if exists:
        got = runtime.call("ghl.contacts.get", {"contactId": ghl_id})["contact"]
        assert got["tags"] == tags
    again = engine.apply(Change("partner", "contacts", lp_record["id"], None))
    assert again.action == "skip"


def test_sync_delete_without_partner_action_is_audited_not_done(runtime, store, ghl, lp):
    """LinkedPhone has no delete action: a propagated GHL delete is skipped with the reason."""
    engine = engine_for(runtime, store, delete="propagate")
    c = ghl_contact(runtime, firstName="Hal", email="hal@example.org")
    engine.apply(from_ghl(c))
    out = engine.apply(Change("ghl", "contacts", c["id"], None))
    assert out.action == "skip"
    assert out.reason == "delete policy propagate: linkedphone has no action for it"


def test_sync_custom_fields_mapped_both_ways(runtime, store, ghl, lp):
    """A GHL custom field maps to a partner field and back; other custom fields are kept."""
    engine = engine_for(runtime, store)
    c = ghl_contact(
        runtime,
        firstName="Ivy",
        email="ivy@example.org",
        customFields=[{"id": CF_COMPANY, "field_value": "Acme"}, {"id": "other", "value": "x"}],
    )
    pid = engine.apply(from_ghl(c)).partner_id
    assert lp.record("contacts", pid)["company"] == "Acme"
    edited = runtime.call("linkedphone.contacts.update", {"contact_id": pid, "company": "Globex"})[
        "contact"
    ]
    out = engine.apply(from_lp(edited))
    assert out.changes == {f"customFields.{CF_COMPANY}": ("Acme", "Globex")}
    fields = runtime.call("ghl.contacts.get", {"contactId": c["id"]})["contact"]["customFields"]
    assert {f["id"]: f["value"] for f in fields} == {CF_COMPANY: "Globex", "other": "x"}


def test_sync_tags_follow_with_tag_actions(runtime, store, ghl, lp):
    """A GHL tag change reaches LinkedPhone (whose update takes no tags) through tag actions."""
    engine = engine_for(runtime, store)
    c = ghl_contact(runtime, firstName="Jo", email="jo@example.org", tags=["a", "b"])
    pid = engine.apply(from_ghl(c)).partner_id
    updated = runtime.call("ghl.contacts.update", {"contactId": c["id"], "tags": ["b", "c"]})
    engine.apply(from_ghl(updated["contact"], updated_at=time.time()))
    assert sorted(lp.record("contacts", pid)["tags"]) == ["b", "c"]
    assert lp.writes("POST /contacts/{contact_id}/tags") == 1
    assert lp.writes("DELETE /contacts/{contact_id}/tags") == 1


def test_sync_tasks_need_their_contact_linked_first(runtime, store, ghl, lp):
    """A GHL task is created under the linked LinkedPhone contact; without one it is skipped."""
    engine = engine_for(runtime, store)
    c = ghl_contact(runtime, firstName="Kim", email="kim@example.org")
    task = runtime.call(
        "ghl.tasks.create",
        {
            "contactId": c["id"],
            "title": "Call",
            "body": "about x",
            "dueDate": "2026-12-01T00:00:00Z",
            "completed": False,
        },
    )["task"]
    early = engine.apply(Change("ghl", "tasks", task["id"], task))
    assert (early.action, early.reason) == ("skip", "its parent contacts record is not linked yet")
    pid = engine.apply(from_ghl(c)).partner_id
    out = engine.apply(Change("ghl", "tasks", task["id"], task))
    assert out.action == "create"
    made = lp.record("tasks", out.partner_id)
    assert (made["contact_id"], made["title"], made["description"]) == (pid, "Call", "about x")


def test_sync_one_way_direction_skips_the_other_side(runtime, store, ghl, lp):
    """With ghl_to_partner, partner changes are audited as skipped and nothing is written."""
    text = spec_text().replace(
        "direction: two_way\n      match", "direction: ghl_to_partner\n      match"
    )
    engine = SyncEngine(parse_sync(text), runtime, store)
    r = lp_contact(runtime, first_name="Lu", email="lu@example.org")
    out = engine.apply(from_lp(r))
    assert out.action == "skip"
    assert out.reason == "direction ghl_to_partner: nothing is copied from linkedphone"
    assert ghl.writes("POST /contacts/") == 0


def test_sync_audit_accounts_for_every_change_and_skip(runtime, store, ghl, lp):
    """One audit row per applied change, with reasons, before/after of changed fields only, and
    no unmapped personal data or redacted values."""
    engine = engine_for(runtime, store)
    c = ghl_contact(
        runtime,
        firstName="Mo",
        lastName="Secretson",
        email="mo@example.org",
        dateOfBirth="1990-01-01",
        address1="1 Main St",
    )
    outs = [engine.apply(from_ghl(c, event_id="e1")), engine.apply(from_ghl(c, event_id="e2"))]
    edited = {**c, "firstName": "Moe"}
    outs.append(engine.apply(from_ghl(edited, event_id="e3", updated_at=time.time())))
    found = entries(store)
    assert [(e.event_id, e.action, e.reason) for e in found] == [
        ("e1", "create", "no match on linkedphone"),
        ("e2", "skip", "no change"),
        ("e3", "update", "changed"),
    ]
    assert [o.action for o in outs] == [e.action for e in found]
    assert found[2].changes == {"first_name": ("Mo", "Moe")}
    assert found[0].changes["last_name"] == (None, "****")
    dumped = json.dumps([e.as_json() for e in found])
    assert "1990-01-01" not in dumped and "Main St" not in dumped and "Secretson" not in dumped
    assert all(e.direction == "ghl->linkedphone" and e.sync == "ghl-linkedphone" for e in found)


def test_sync_spec_in_a_recipe_and_its_errors(tmp_path):
    """A recipe may carry a sync section; a bad expression in it is reported at its line."""
    recipe = parse_recipe(
        "name: r\ntrigger: {use: ghl.contacts.updated}\n"
        "steps: [{id: a, use: ghl.contacts.get, with: {contactId: '{{ trigger.id }}'}}]\n"
        "sync:\n  partner: linkedphone\n  objects:\n    contacts:\n"
        "      fields: {email: email}\n"
    )
    assert recipe.sync is not None and recipe.sync.objects["contacts"].match == ("email", "phone")
    bad = (
        "name: s\nsync:\n  partner: linkedphone\n  objects:\n    contacts:\n      fields:\n"
        "        phone: '{{ item.phone | nosuch }}'\n"
    )
    with pytest.raises(DocumentError, match=r"s\.yaml:7:.*nosuch"):
        parse_sync(bad, file="s.yaml")
    with pytest.raises(DocumentError, match="no adapter for 'contacts'"):
        parse_sync("name: s\nsync:\n  partner: nosuchapp\n  objects: {contacts: {}}\n")


SUPERPHONE_SPEC = """\
name: ghl-superphone
sync:
  partner: superphone
  objects:
    contacts:
      fields: {firstName: firstName, lastName: lastName, email: email, phone: phone}
      delete: propagate
    tags: {}
    tasks:
      fields: {title: title, body: description, completed: completed}
"""


@pytest.fixture
def sp_engine(ghl, sp, store):
    with partner_runtime(ghl, "superphone", sp) as rt:
        yield SyncEngine(parse_sync(SUPERPHONE_SPEC), rt, store), rt


def test_sync_superphone_create_with_tags_and_echo(sp_engine, ghl, sp, receiver):
    """A GHL contact reaches SuperPhone (GraphQL) once, tags included; its webhook is an echo."""
    engine, rt = sp_engine
    sp.set_webhook_urls([receiver.url])
    c = ghl_contact(rt, firstName="Nia", email="nia@example.org", tags=["lead"])
    out = engine.apply(from_ghl(c))
    assert out.action == "create"
    got = rt.call("superphone.contacts.get", {"id": out.partner_id})
    assert (got["firstName"], got["tags"]) == ("Nia", ["lead"])
    sp.drain_webhooks()
    echo = engine.apply(change_from_partner(_last(receiver, "contact.created"), WEBHOOKS["superphone"]))
    assert echo.reason.startswith("echo")
    assert sp.writes("createContact") == 1
    assert ghl.writes("PUT /contacts/{contactId}") == 0


def test_sync_superphone_delete_propagates_once(sp_engine, ghl, sp, receiver):
    """A GHL delete deletes the SuperPhone contact; the delete coming back is not sent again."""
    engine, rt = sp_engine
    sp.set_webhook_urls([receiver.url])
    c = ghl_contact(rt, firstName="Oz", email="oz@example.org")
    pid = engine.apply(from_ghl(c)).partner_id
    out = engine.apply(Change("ghl", "contacts", c["id"], None))
    assert (out.action, out.partner_id) == ("delete", pid)
    sp.drain_webhooks()
    back = engine.apply(change_from_partner(_last(receiver, "contact.deleted"), WEBHOOKS["superphone"]))
    assert (back.action, back.reason) == ("skip", "already deleted on ghl")
    assert sp.writes("deleteContact") == 1
    assert ghl.writes("DELETE /contacts/{contactId}") == 0


def test_sync_superphone_task_completion_flows_back_to_ghl(sp_engine, ghl, sp):
    """A GHL task is created in SuperPhone; completing it there completes the GHL task."""
    engine, rt = sp_engine
    c = ghl_contact(rt, firstName="Pam", email="pam@example.org")
    engine.apply(from_ghl(c))
    task = rt.call(
        "ghl.tasks.create",
        {
            "contactId": c["id"],
            "title": "Send quote",
            "dueDate": "2026-12-01T00:00:00Z",
            "completed": False,
        },
    )["task"]
    made = engine.apply(Change("ghl", "tasks", task["id"], task))
    assert made.action == "create"
    done = rt.call("superphone.tasks.update", {"id": made.partner_id, "completed": True})
    out = engine.apply(Change("partner", "tasks", done["id"], done))
    assert (out.action, out.changes) == ("update", {"completed": (False, True)})
    got = rt.call("ghl.tasks.get", {"contactId": c["id"], "taskId": task["id"]})["task"]
    assert got["completed"] is True


def test_sync_note_update_on_a_create_only_partner_is_audited(runtime, store, ghl, lp):
    """LinkedPhone notes can only be created: a later GHL note edit is skipped, saying why."""
    text = spec_text() + "    notes:\n      fields: {body: body}\n"
    engine = SyncEngine(parse_sync(text), runtime, store)
    c = ghl_contact(runtime, firstName="Quin", email="quin@example.org")
    pid = engine.apply(from_ghl(c)).partner_id
    note = runtime.call("ghl.notes.create", {"contactId": c["id"], "body": "first"})["note"]
    made = engine.apply(Change("ghl", "notes", note["id"], note))
    assert made.action == "create"
    assert lp.record("notes", made.partner_id)["contact_id"] == pid
    edited = {**note, "body": "second"}
    out = engine.apply(Change("ghl", "notes", note["id"], edited, updated_at=time.time()))
    assert (out.action, out.reason) == ("skip", "changed; not writable on linkedphone: body")
    assert lp.writes("POST /contacts/{contact_id}/notes") == 1


def test_sync_create_refused_by_the_target_schema_fails_loudly(sp_engine, ghl, sp, caplog):
    """A SuperPhone task cannot become a GHL task without a due date (this spec maps none):
    nothing is sent, and it is not a quiet skip: audited `failed`, logged at WARNING with the
    sync, the record and the reason."""
    engine, rt = sp_engine
    c = ghl_contact(rt, firstName="Rae", email="rae@example.org")
    pid = engine.apply(from_ghl(c)).partner_id
    task = rt.call("superphone.tasks.create", {"contactId": pid, "title": "Call back"})
    with caplog.at_level("WARNING", logger="connector.sync.engine"):
        out = engine.apply(Change("partner", "tasks", task["id"], task, event_id="ev-1"))
    assert out.action == "failed"
    assert out.reason.startswith("cannot create on ghl: invalid input for ghl.tasks.create")
    assert "dueDate" in out.reason
    assert ghl.writes("POST /contacts/{contactId}/tasks") == 0
    [row] = [e for e in entries(engine.store, obj="tasks")]
    assert (row.action, row.partner_id, row.event_id) == ("failed", task["id"], "ev-1")
    [logged] = [r for r in caplog.records if r.levelname == "WARNING"]
    text = logged.getMessage()
    assert "sync ghl-superphone" in text and task["id"] in text and "dueDate" in text, text


def test_shipped_superphone_sync_gives_a_task_without_due_date_a_default(ghl, sp, store):
    """The shipped recipes/sync_superphone.yaml: a SuperPhone task without `dueAt` reaches GHL
    due when it was created (GHL requires a due date); the SuperPhone task is left as it is,
    and applying it again writes nothing."""
    spec = load_sync(ROOT / "recipes" / "sync_superphone.yaml")
    with partner_runtime(ghl, "superphone", sp) as rt:
        engine = SyncEngine(spec, rt, store)
        contact = rt.call("superphone.contacts.create", {"firstName": "Una", "email": "una@example.org"})
        assert engine.apply(Change("partner", "contacts", contact["id"], contact)).action == "create"
        task = rt.call(
            "superphone.tasks.create", {"contactId": contact["id"], "title": "No due date"}
        )
        assert task["dueAt"] is None
        out = engine.apply(Change("partner", "tasks", task["id"], task))
        assert out.action == "create", out
        gid = engine.ids.find("contacts", "partner", contact["id"]).ghl_id
        made = rt.call("ghl.tasks.get", {"contactId": gid, "taskId": out.ghl_id})["task"]
        assert made["title"] == "No due date"
        assert record_time(made["dueDate"]) == record_time(task["createdAt"])
        assert out.changes["dueDate"] == (None, made["dueDate"])
        again = engine.apply(Change("partner", "tasks", task["id"], task, updated_at=time.time()))
        assert again.action == "skip", again
        assert ghl.writes("PUT /contacts/{contactId}/tasks/{taskId}") == 0
        assert rt.call("superphone.tasks.get", {"id": task["id"]})["dueAt"] is None


def test_sync_unknown_adapter_action_fails_at_start(runtime, store):
    """An adapter naming an action the catalog lacks is refused before any change is applied."""
    text = (
        spec_text()
        + "  adapters:\n    partner:\n      contacts: {get: linkedphone.contacts.fetch}\n"
    )
    with pytest.raises(ConnectorError, match="linkedphone.contacts.fetch"):
        SyncEngine(parse_sync(text), runtime, store)


def test_sync_backfill_both_ways_converges_without_duplicates(runtime, store, ghl, lp):
    """A first sync of every record both ways pairs, creates each missing record once, and a
    second full pass writes nothing on either side."""
    lp.set_limits(requests=1000)
    seeds = list(runtime.iterate("ghl.contacts.search", {"pageLimit": 100}))
    twin = lp_contact(runtime, first_name="Someone", email=seeds[0]["email"].upper())
    lp_total = len(list(runtime.iterate("linkedphone.contacts.list", {})))
    engine = engine_for(runtime, store)
    first = engine.backfill("ghl", "contacts")
    assert sorted(o.action for o in first) == ["create"] * (len(seeds) - 1) + ["update"]
    assert next(o for o in first if o.action == "update").partner_id == twin["id"]
    back = engine.backfill("partner", "contacts")
    created = [o for o in back if o.action == "create"]
    assert len(created) == lp_total - 1
    assert {o.reason for o in back if o.action != "create"} == {
        "echo: these are the values the sync wrote; not sent back"
    }
    writes = (ghl_writes(ghl), lp_writes(lp))
    again = engine.backfill("ghl", "contacts") + engine.backfill("partner", "contacts")
    assert {o.action for o in again} == {"skip"}
    assert (ghl_writes(ghl), lp_writes(lp)) == writes
    assert engine.ids.count("contacts") == len(seeds) + lp_total - 1


def test_sync_edit_back_to_synced_values_is_not_an_echo(runtime, store, ghl, lp):
    """After a real partner edit, editing back to what the sync once wrote is still copied."""
    engine = engine_for(runtime, store)
    c = ghl_contact(runtime, firstName="Sam", email="sam@example.org")
    pid = engine.apply(from_ghl(c)).partner_id
    for name in ("Samuel", "Sam"):
        edited = runtime.call(
            "linkedphone.contacts.update", {"contact_id": pid, "first_name": name}
        )["contact"]
        assert engine.apply(from_lp(edited)).action == "update"
        got = runtime.call("ghl.contacts.get", {"contactId": c["id"]})["contact"]
        assert got["firstName"] == name


def test_sync_partner_owned_field_change_is_not_an_echo(runtime, store, ghl, lp):
    """A partner edit to a field the partner owns, on a contact that came from GHL, reaches GHL."""
    owned = f"source_of_truth: {{lastName: ghl, {CF_COMPANY}: partner}}"
    text = spec_text().replace("source_of_truth: {lastName: ghl}", owned)
    engine = SyncEngine(parse_sync(text), runtime, store)
    c = ghl_contact(runtime, firstName="Uma", email="uma@example.org")
    pid = engine.apply(from_ghl(c)).partner_id
    edited = runtime.call("linkedphone.contacts.update", {"contact_id": pid, "company": "Expo"})
    out = engine.apply(from_lp(edited["contact"]))
    assert (out.action, out.changes) == ("update", {f"customFields.{CF_COMPANY}": (None, "Expo")})
    fields = runtime.call("ghl.contacts.get", {"contactId": c["id"]})["contact"]["customFields"]
    assert {f["id"]: f["value"] for f in fields} == {CF_COMPANY: "Expo"}


def test_sync_late_echo_of_an_earlier_write_is_not_copied_back(runtime, store, ghl, lp):
    """The webhook of the first of two writes to one record, arriving after the second, is an
    echo: it does not flip the other side back."""
    engine = engine_for(runtime, store)
    c = ghl_contact(runtime, firstName="Val", email="val@example.org")
    pid = engine.apply(from_ghl(c)).partner_id
    first = runtime.call("ghl.contacts.update", {"contactId": c["id"], "firstName": "Vera"})
    second = runtime.call("ghl.contacts.update", {"contactId": c["id"], "firstName": "Viv"})
    assert engine.apply(from_ghl(first["contact"])).action == "update"
    late = runtime.call("linkedphone.contacts.get", {"contact_id": pid})["contact"]
    assert engine.apply(from_ghl(second["contact"])).action == "update"
    writes = ghl_writes(ghl)
    out = engine.apply(from_lp(late))
    assert out.action == "skip" and out.reason.startswith("echo"), out
    assert ghl_writes(ghl) == writes
    assert runtime.call("ghl.contacts.get", {"contactId": c["id"]})["contact"]["firstName"] == "Viv"
    back = runtime.call("linkedphone.contacts.update", {"contact_id": pid, "first_name": "Vera"})
    assert engine.apply(from_lp(back["contact"])).action == "update"  # an edit back is real


def test_sync_create_copies_fields_the_other_side_owns(runtime, store, ghl, lp):
    """A partner-created contact reaches GHL with its last name, though GHL owns lastName."""
    engine = engine_for(runtime, store)
    r = lp_contact(runtime, first_name="Wes", last_name="Partner", email="wes@example.org")
    out = engine.apply(from_lp(r))
    assert out.action == "create" and out.changes["lastName"] == (None, "Partner")
    got = runtime.call("ghl.contacts.get", {"contactId": out.ghl_id})["contact"]
    assert got["lastName"] == "Partner"
    edited = runtime.call("linkedphone.contacts.update", {"contact_id": r["id"], "last_name": "X"})
    assert engine.apply(from_lp(edited["contact"])).reason == "no change"  # GHL owns updates
