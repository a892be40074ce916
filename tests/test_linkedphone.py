"""The LinkedPhone partner app: its catalog entries, and every action called through the Runtime
against the LinkedPhone sandbox with strict output checking (pagination, auth, 429 handling)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from conftest import run_cli
from jsonschema import Draft202012Validator

from connector.auth.credentials import api_key_provider
from connector.documents.manifest import pack_manifest
from connector.errors import AuthError, InputError, RateLimitError, RemoteError
from connector.runtime import Runtime, Settings
from connector.sandbox.linkedphone.app import catalog_actions
from connector.sandbox.linkedphone.operations import HANDLERS
from connector.sandbox.linkedphone.routes import build_routes

ROOT = Path(__file__).resolve().parents[1]
ACTIONS = {
    "linkedphone.contacts.get", "linkedphone.contacts.find", "linkedphone.contacts.list",
    "linkedphone.contacts.create", "linkedphone.contacts.update",
    "linkedphone.tasks.list", "linkedphone.tasks.get", "linkedphone.tasks.create",
    "linkedphone.tasks.update", "linkedphone.tasks.complete",
    "linkedphone.notes.list", "linkedphone.notes.create",
    "linkedphone.tags.add", "linkedphone.tags.remove",
}
TRIGGERS = {
    "linkedphone.contacts.created", "linkedphone.contacts.updated", "linkedphone.tasks.created",
    "linkedphone.tasks.updated", "linkedphone.tasks.completed", "linkedphone.notes.created",
    "linkedphone.contacts.changed", "linkedphone.tasks.changed",
}
PAGED = {"linkedphone.contacts.list", "linkedphone.tasks.list", "linkedphone.notes.list"}


def schema_document(kind: str, item_id: str) -> dict:
    return json.loads((ROOT / "schemas" / kind / f"{item_id}.json").read_text(encoding="utf-8"))


# -- the catalog -------------------------------------------------------------------------------


def test_catalog_lists_linkedphone_actions_and_triggers(lp_catalog):
    """The catalog holds every LinkedPhone action and trigger, and nothing else under the app."""
    assert {a for a in lp_catalog.actions if a.startswith("linkedphone.")} == ACTIONS
    assert {t for t in lp_catalog.triggers if t.startswith("linkedphone.")} == TRIGGERS
    assert all(lp_catalog.action(a).kind == "http" for a in ACTIONS)


def test_app_declares_api_key_rate_limit_and_assumptions(lp_catalog):
    """The app takes an API key in X-Api-Key, has a rate limit and a timeout, and lists its
    assumptions as data."""
    app = lp_catalog.app("linkedphone")
    assert app.auth == ("api_key",)
    assert app.api_key_header == "X-Api-Key"
    assert app.rate_limit is not None and app.rate_limit.requests == 120
    assert app.timeout_seconds == 30
    assert len(app.assumptions) >= 5
    assert any("X-Api-Key" in text for text in app.assumptions)


@pytest.mark.parametrize("kind,item_id", [("actions", a) for a in sorted(ACTIONS)]
                         + [("triggers", t) for t in sorted(TRIGGERS)])
def test_schema_file_is_valid_closed_and_described(kind, item_id):
    """Each schema is valid 2020-12 with $id = its path; inputs and options are closed, every
    property is described, and every example fits its own subschema."""
    document = schema_document(kind, item_id)
    Draft202012Validator.check_schema(document)
    assert document["$id"] == f"{kind}/{item_id}.json"
    parts = {"actions": {"input", "output"}, "triggers": {"payload", "with"}}[kind]
    assert set(document["properties"]) == parts
    closed = document["properties"]["input" if kind == "actions" else "with"]
    assert closed["additionalProperties"] is False
    problems = []
    stack = [("", document)]
    while stack:
        where, node = stack.pop()
        for name, sub in node.get("properties", {}).items():
            if "description" not in sub:
                problems.append(f"{where}.{name}: no description")
            stack.append((f"{where}.{name}", sub))
        if isinstance(node.get("items"), dict):
            stack.append((f"{where}[]", node["items"]))
        for example in node.get("examples", []):
            problems += [f"{where}: {e.message}" for e in
                         Draft202012Validator(node).iter_errors(example)]
    assert problems == []


def test_polling_triggers_name_a_paged_action_and_its_cursor_field(lp_catalog):
    """Polling triggers poll a paginated list action taking updated_since, and their cursor
    and dedupe fields exist in that action's records."""
    polling = [lp_catalog.trigger(t) for t in TRIGGERS if lp_catalog.trigger(t).kind == "polling"]
    assert {t.id for t in polling} == {"linkedphone.contacts.changed", "linkedphone.tasks.changed"}
    for trigger in polling:
        action = lp_catalog.action(trigger.action)
        assert action.pagination is not None
        assert "updated_since" in action.input_schema["properties"]
        items = action.pagination["items"]
        record = action.output_schema["properties"][items]["items"]["properties"]
        assert trigger.cursor in record and set(trigger.dedupe) <= set(record)
        assert set(trigger.options_schema.get("properties", {})) <= set(
            action.input_schema["properties"])


def test_pagination_names_real_inputs_and_outputs(lp_catalog):
    """Each paginated action's limit and cursor inputs exist, and its items and next paths
    exist in its output schema."""
    assert {a for a in ACTIONS if lp_catalog.action(a).pagination} == PAGED
    for aid in PAGED:
        action = lp_catalog.action(aid)
        page = action.pagination
        inputs = action.input_schema["properties"]
        assert {page["limit"]["param"], *page["next"]} <= set(inputs)
        output = action.output_schema["properties"]
        assert output[page["items"]]["type"] == "array"
        assert page["next"]["cursor"] == "meta.next_cursor"
        assert "next_cursor" in output["meta"]["properties"]
        assert inputs["limit"]["maximum"] == page["limit"]["max"]


def test_every_catalog_action_has_a_sandbox_route(lp):
    """The sandbox serves exactly the catalog's LinkedPhone actions, at their method and path."""
    served = httpx.get(f"{lp.base_url}/_sandbox/routes").json()
    declared = [
        {"action": a.id, "method": a.method, "path": a.path}
        for a in pack_manifest().actions.values() if a.app == "linkedphone"
    ]
    assert sorted(served, key=lambda r: r["action"]) == sorted(declared, key=lambda r: r["action"])


def test_sandbox_refuses_a_catalog_it_does_not_implement():
    """Building the routes fails, naming the action, when the catalog declares one without a
    handler (the server and the catalog cannot drift)."""
    handlers = {k: v for k, v in HANDLERS.items() if k != "linkedphone.tasks.complete"}
    with pytest.raises(ValueError, match=r"no handler for \['linkedphone\.tasks\.complete'\]"):
        build_routes(catalog_actions(), handlers)


# -- every action through the Runtime ----------------------------------------------------------


def test_every_action_round_trips_through_the_runtime(lp, lp_runtime):
    """All 14 actions succeed against the sandbox with strict output checks, and each
    changing call is one write."""
    rt = lp_runtime
    made = rt.call("linkedphone.contacts.create", {
        "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
        "phone": "+14155550199", "tags": ["lead"],
    })["contact"]
    cid = made["id"]
    assert rt.call("linkedphone.contacts.get", {"contact_id": cid})["contact"] == made
    assert rt.call("linkedphone.contacts.find", {"email": "ADA@example.com"})["contact"]["id"] == cid
    assert rt.call("linkedphone.contacts.find", {"phone": "+14155550199"})["contact"]["id"] == cid
    assert rt.call("linkedphone.contacts.find", {"email": "nobody@example.com"}) == {
        "contact": None}
    updated = rt.call("linkedphone.contacts.update", {"contact_id": cid, "company": "Engines"})
    assert updated["contact"]["company"] == "Engines"
    assert updated["contact"]["updated_at"] > made["updated_at"]
    assert cid in {c["id"] for c in rt.call("linkedphone.contacts.list", {})["contacts"]}
    task = rt.call("linkedphone.tasks.create", {"contact_id": cid, "title": "Call back"})["task"]
    assert task["status"] == "open" and task["completed_at"] is None
    assert rt.call("linkedphone.tasks.get", {"task_id": task["id"]})["task"] == task
    renamed = rt.call("linkedphone.tasks.update", {"task_id": task["id"], "title": "Call again"})
    assert renamed["task"]["title"] == "Call again"
    done = rt.call("linkedphone.tasks.complete", {"task_id": task["id"]})["task"]
    assert done["status"] == "completed" and done["completed_at"] == done["updated_at"]
    listed = rt.call("linkedphone.tasks.list", {"contact_id": cid})
    assert [t["id"] for t in listed["tasks"]] == [task["id"]]
    note = rt.call("linkedphone.notes.create", {"contact_id": cid, "body": "Landline only"})
    assert rt.call("linkedphone.notes.list", {"contact_id": cid})["notes"] == [note["note"]]
    assert rt.call("linkedphone.tags.add", {"contact_id": cid, "tags": ["vip", "lead"]}) == {
        "tags": ["lead", "vip"]}
    assert rt.call("linkedphone.tags.remove", {"contact_id": cid, "tags": ["lead"]}) == {
        "tags": ["vip"]}
    routes = lp.stats()["traffic"]["routes"]
    declared = {f"{a.method} {a.path}" for a in catalog_actions()}
    assert set(routes) == declared
    assert all(set(r["statuses"]) <= {"200", "201"} for r in routes.values())
    for route in ("POST /contacts", "PATCH /contacts/{contact_id}", "POST /tasks",
                  "PATCH /tasks/{task_id}", "POST /tasks/{task_id}/complete",
                  "POST /contacts/{contact_id}/notes", "POST /contacts/{contact_id}/tags",
                  "DELETE /contacts/{contact_id}/tags"):
        assert lp.writes(route) == 1, route


def test_new_contact_with_notes_flow(lp, lp_runtime):
    """The brief's flow: a new contact created, then notes attached; the contact's notes come
    back in order through the paginated list."""
    cid = lp_runtime.call("linkedphone.contacts.create", {"phone": "+14155550123"})["contact"]["id"]
    for text in ("first", "second", "third"):
        lp_runtime.call("linkedphone.notes.create", {"contact_id": cid, "body": text})
    notes = list(lp_runtime.iterate("linkedphone.notes.list", {"contact_id": cid, "limit": 2}))
    assert [n["body"] for n in notes] == ["first", "second", "third"]
    assert lp.requests("GET /contacts/{contact_id}/notes") == 2


def test_task_status_change_marks_complete_once(lp, lp_runtime):
    """Completing a task twice (a retry) changes it once: same completed_at, one write."""
    contact = next(lp_runtime.iterate("linkedphone.contacts.list", {}, max_items=1))
    task = lp_runtime.call("linkedphone.tasks.create",
                           {"contact_id": contact["id"], "title": "Send quote"})["task"]
    first = lp_runtime.call("linkedphone.tasks.complete", {"task_id": task["id"]})["task"]
    again = lp_runtime.call("linkedphone.tasks.complete", {"task_id": task["id"]})["task"]
    assert first == again
    assert lp.writes("POST /tasks/{task_id}/complete") == 1
    completed = lp_runtime.call("linkedphone.tasks.list",
                                {"contact_id": contact["id"], "status": "completed"})
    assert [t["id"] for t in completed["tasks"]] == [task["id"]]


# -- pagination --------------------------------------------------------------------------------


def test_iterate_walks_every_contact_page_by_page(lp, lp_runtime):
    """Runtime.iterate follows meta.next_cursor: 3 seed + 4 new contacts in pages of 2 give
    7 distinct records in 4 requests."""
    for n in range(4):
        lp_runtime.call("linkedphone.contacts.create", {"email": f"p{n}@example.com"})
    records = list(lp_runtime.iterate("linkedphone.contacts.list", {"limit": 2}))
    assert len(records) == 7 == len({r["id"] for r in records})
    assert [r["updated_at"] for r in records] == sorted(r["updated_at"] for r in records)
    assert lp.requests("GET /contacts") == 4


def test_iterate_with_updated_since_returns_only_recent_tasks(lp, lp_runtime):
    """A polling-style walk of tasks.list with updated_since skips the older seed tasks."""
    seed_tasks = list(lp_runtime.iterate("linkedphone.tasks.list", {"limit": 1}))
    assert len(seed_tasks) == 3
    cursor = max(t["updated_at"] for t in seed_tasks)
    contact_id = seed_tasks[0]["contact_id"]
    fresh = [lp_runtime.call("linkedphone.tasks.create",
                             {"contact_id": contact_id, "title": f"t{n}"})["task"]["id"]
             for n in range(3)]
    found = list(lp_runtime.iterate(
        "linkedphone.tasks.list", {"updated_since": cursor, "limit": 2}))
    new = [t["id"] for t in found if t["updated_at"] > cursor]
    assert new == fresh
    assert len(found) == 4  # the record at the cursor itself comes back: dedupe drops it


def test_iterate_stops_at_max_items(lp, lp_runtime):
    """max_items asks for a smaller page and stops early: one request for one record."""
    assert len(list(lp_runtime.iterate("linkedphone.contacts.list", {}, max_items=1))) == 1
    assert lp.requests("GET /contacts") == 1


# -- auth --------------------------------------------------------------------------------------


def test_missing_api_key_is_a_clear_error_before_any_request(lp, lp_catalog, monkeypatch):
    """Without a key configured, the call fails naming the variable to set; nothing is sent."""
    monkeypatch.delenv("CONNECTOR_LINKEDPHONE_API_KEY", raising=False)
    settings = Settings(strict=True, base_urls={"linkedphone": lp.base_url})
    with Runtime(lp_catalog, settings, auth=api_key_provider(keys={})) as rt:
        with pytest.raises(AuthError, match=r"no API key for app 'linkedphone' \[set "
                                            r"CONNECTOR_LINKEDPHONE_API_KEY"):
            rt.call("linkedphone.contacts.list", {})
    assert lp.requests("GET /contacts") == 0


def test_api_key_from_environment_is_sent_in_its_header(lp, lp_catalog, monkeypatch):
    """CONNECTOR_LINKEDPHONE_API_KEY is read when no key is passed, and the sandbox accepts it."""
    monkeypatch.setenv("CONNECTOR_LINKEDPHONE_API_KEY", lp.api_key)
    settings = Settings(strict=True, base_urls={"linkedphone": lp.base_url})
    with Runtime(lp_catalog, settings, auth=api_key_provider()) as rt:
        assert len(rt.call("linkedphone.contacts.list", {})["contacts"]) == 3


def test_wrong_api_key_is_an_auth_error_without_the_key(lp, lp_catalog):
    """A rejected key raises AuthError with the server's message and never shows the key."""
    settings = Settings(strict=True, base_urls={"linkedphone": lp.base_url})
    wrong = "lp_wrong_key_0123456789"
    with Runtime(lp_catalog, settings, auth=api_key_provider(keys={"linkedphone": wrong})) as rt:
        with pytest.raises(AuthError, match=r"GET /contacts -> 401 .*invalid X-Api-Key") as info:
            rt.call("linkedphone.contacts.list", {})
    assert wrong not in str(info.value) and lp.api_key not in str(info.value)


def test_dry_run_masks_the_api_key(lp_runtime, lp):
    """A dry run shows the request with the X-Api-Key header masked."""
    preview = lp_runtime.dry_run("linkedphone.tasks.complete", {"task_id": "tk_1"})
    assert preview["method"] == "POST"
    assert preview["url"] == f"{lp.base_url}/tasks/tk_1/complete"
    assert preview["headers"]["X-Api-Key"] == "****"


# -- errors and 429 ----------------------------------------------------------------------------


def test_invalid_input_is_refused_before_any_request(lp, lp_runtime):
    """Inputs are checked against the schema locally: no email or phone, or no tags, fail."""
    with pytest.raises(InputError, match=r"invalid input for linkedphone\.contacts\.create"):
        lp_runtime.call("linkedphone.contacts.create", {"first_name": "Nobody"})
    with pytest.raises(InputError, match=r"tags: \[\] should be non-empty"):
        lp_runtime.call("linkedphone.tags.add", {"contact_id": "ct_x", "tags": []})
    assert lp.stats()["traffic"]["requests"] == 0


def test_unknown_record_and_conflict_are_remote_errors(lp, lp_runtime):
    """A missing task is a 404 and a taken email a 409, each with the server's message."""
    with pytest.raises(RemoteError, match=r"GET /tasks/tk_missing -> 404 .*'tk_missing' not found"):
        lp_runtime.call("linkedphone.tasks.get", {"task_id": "tk_missing"})
    lp_runtime.call("linkedphone.contacts.create", {"email": "dup@example.com"})
    with pytest.raises(RemoteError, match=r"-> 409 .*already has email") as info:
        lp_runtime.call("linkedphone.contacts.create", {"email": "dup@example.com"})
    assert info.value.status == 409
    assert lp.writes("POST /contacts") == 1


def test_a_429_is_retried_and_the_write_happens_once(lp, lp_runtime):
    """A 429 (refused before any work) is retried even for a POST; the contact is created once."""
    lp.set_faults({"route": "POST /contacts", "burst_429": 1})
    made = lp_runtime.call("linkedphone.contacts.create", {"email": "retry@example.com"})
    assert made["contact"]["email"] == "retry@example.com"
    assert lp.statuses("POST /contacts") == {"201": 1, "429": 1}
    assert lp.writes("POST /contacts") == 1


def test_exhausted_rate_limit_raises_rate_limit_error(lp, lp_runtime):
    """When another client sharing the key used up the window, the call fails with
    RateLimitError naming the wait the server asks for (longer than the policy accepts)."""
    lp.set_limits(requests=2, seconds=60)
    for _ in range(2):
        assert httpx.get(f"{lp.base_url}/contacts", headers=lp.headers()).status_code == 200
    with pytest.raises(RateLimitError, match=r"GET /contacts -> 429 .*retry after \d+s") as info:
        lp_runtime.call("linkedphone.contacts.list", {})
    assert info.value.status == 429
    assert lp.statuses("GET /contacts") == {"200": 2, "429": 1}


def test_server_errors_on_reads_are_retried(lp, lp_runtime):
    """A 503 on a GET is retried and the call succeeds."""
    lp.set_faults({"route": "GET /contacts/{contact_id}", "error_rate": 1.0,
                   "error_status": 503, "count": 1})
    contact = next(lp_runtime.iterate("linkedphone.contacts.list", {}, max_items=1))
    got = lp_runtime.call("linkedphone.contacts.get", {"contact_id": contact["id"]})
    assert got["contact"] == contact
    assert lp.statuses("GET /contacts/{contact_id}") == {"200": 1, "503": 1}


def test_cli_call_pages_with_the_key_from_the_environment(lp):
    """`ghl-connector call --all-pages` (a real process) reads CONNECTOR_LINKEDPHONE_API_KEY
    and walks every page; without the variable it exits 1 saying what to set."""
    args = ("call", "linkedphone.contacts.list", "--base-url", lp.base_url, "--strict",
            "--all-pages", "--input", '{"limit": 2}')
    done = run_cli(*args, env={"CONNECTOR_LINKEDPHONE_API_KEY": lp.api_key})
    assert done.status == 0, done
    assert len(json.loads(done.stdout)) == 3
    assert lp.requests("GET /contacts") == 2
    missing = run_cli(*args)
    assert missing.status == 1
    assert "no API key for app 'linkedphone' [set CONNECTOR_LINKEDPHONE_API_KEY" in missing.stderr
