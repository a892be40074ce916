"""The SuperPhone app: its catalog entries, and every action called through the runtime against
the SuperPhone sandbox with strict output checking."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from graphql import OperationDefinitionNode, parse, validate
from jsonschema import Draft202012Validator

from connector.auth.credentials import api_key_provider
from connector.catalog import build_catalog
from connector.errors import AuthError, RemoteError
from connector.runtime import Runtime, Settings
from connector.sandbox.superphone.schema import build as build_sandbox_schema

ROOT = Path(__file__).resolve().parents[1]
ACTIONS = {
    "superphone.contacts.get", "superphone.contacts.find", "superphone.contacts.list",
    "superphone.contacts.create", "superphone.contacts.update", "superphone.contacts.upsert",
    "superphone.contacts.delete", "superphone.tags.add", "superphone.tags.remove",
    "superphone.notes.create", "superphone.notes.list", "superphone.notes.update",
    "superphone.tasks.get", "superphone.tasks.list", "superphone.tasks.create",
    "superphone.tasks.update", "superphone.tasks.complete",
}
TRIGGERS = {
    "superphone.contacts.created": "contact.created",
    "superphone.contacts.updated": "contact.updated",
    "superphone.contacts.deleted": "contact.deleted",
    "superphone.notes.created": "note.created",
    "superphone.notes.updated": "note.updated",
    "superphone.tasks.created": "task.created",
    "superphone.tasks.updated": "task.updated",
    "superphone.tasks.completed": "task.completed",
}
SCHEMA_FILES = sorted((ROOT / "schemas").glob("*/superphone.*.json"))


@pytest.fixture(scope="module")
def catalog():
    return build_catalog()


# -- catalog -------------------------------------------------------------------------------


def test_catalog_lists_every_superphone_action_and_trigger(catalog):
    """The built-in plugins register exactly the declared SuperPhone actions and triggers."""
    assert {a for a in catalog.actions if a.startswith("superphone.")} == ACTIONS
    assert {t for t in catalog.triggers if t.startswith("superphone.")} == set(TRIGGERS)
    for trigger_id, event in TRIGGERS.items():
        trigger = catalog.trigger(trigger_id)
        assert (trigger.kind, trigger.event) == ("webhook", event)
    assert {catalog.action(a).kind for a in ACTIONS} == {"graphql"}
    assert "graphql" in catalog.executors


def test_app_declares_api_key_auth_limits_and_assumptions(catalog):
    """The app takes an API key in its header, has a rate limit and lists its assumptions."""
    app = catalog.app("superphone")
    assert app.auth == ("api_key",)
    assert app.api_key_header == "X-Api-Key"
    assert app.rate_limit is not None and app.rate_limit.requests > 0
    assert app.timeout_seconds > 0
    assert any("X-Api-Key" in text for text in app.assumptions)
    assert any("tasks" in text.lower() for text in app.assumptions)


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.name)
def test_schema_is_valid_closed_and_described(path):
    """Each SuperPhone schema is valid 2020-12, named by $id, closed inputs, all described."""
    document = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(document)
    assert document["$id"] == path.relative_to(ROOT / "schemas").as_posix()
    parts = document["properties"]
    expected = {"input", "output"} if path.parent.name == "actions" else {"payload", "with"}
    assert set(parts) == expected
    opened = parts.get("input", parts.get("with"))
    assert opened["additionalProperties"] is False
    problems = []
    for where, node in walk(document):
        for name, prop in node.get("properties", {}).items():
            if where and not prop.get("description"):
                problems.append(f"{where}.{name}: no description")
        for example in node.get("examples", []):
            for error in Draft202012Validator(node).iter_errors(example):
                problems.append(f"{where}: example {example!r}: {error.message}")
    assert problems == []


def walk(node, where=""):
    """Every subschema of ``node`` with a dotted location."""
    yield where, node
    for name, sub in node.get("properties", {}).items():
        yield from walk(sub, f"{where}.{name}" if where else name)
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{where}[]")


@pytest.mark.parametrize("action_id", sorted(ACTIONS))
def test_document_is_valid_against_the_sandbox_schema(catalog, action_id):
    """Each declared document validates against the sandbox's SDL; its variables are the inputs."""
    action = catalog.action(action_id)
    options = action.options["graphql"]
    document = parse(options["document"])
    assert validate(build_sandbox_schema(), document) == []
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    assert operation.operation.value == ("mutation" if options.get("mutation") else "query")
    variables = {v.variable.name.value for v in operation.variable_definitions}
    assert variables == set(action.input_schema["properties"])


# -- every action through the runtime --------------------------------------------------------


def test_contact_create_get_update_find_delete(sp, sp_runtime):
    """Contacts are created, read, changed, found by email and phone, and deleted."""
    created = sp_runtime.call("superphone.contacts.create", {
        "firstName": "Ada", "email": "ADA@example.com", "phone": "+15551230001",
        "tags": ["ghl"], "externalId": "ghl-1",
    })
    assert created["email"] == "ada@example.com" and created["tags"] == ["ghl"]
    got = sp_runtime.call("superphone.contacts.get", {"id": created["id"]})
    assert got == created
    changed = sp_runtime.call("superphone.contacts.update", {"id": created["id"], "lastName": "L"})
    assert changed["lastName"] == "L" and changed["firstName"] == "Ada"
    assert changed["updatedAt"] > created["updatedAt"]
    by_phone = sp_runtime.call("superphone.contacts.find", {"phone": "+15551230001"})
    by_email = sp_runtime.call("superphone.contacts.find", {"email": "ada@example.com"})
    assert by_phone["contact"]["id"] == by_email["contact"]["id"] == created["id"]
    assert sp_runtime.call("superphone.contacts.find", {"email": "x@nowhere.io"}) == {
        "contact": None
    }
    gone = sp_runtime.call("superphone.contacts.delete", {"id": created["id"]})
    assert gone == {"id": created["id"], "deleted": True}
    assert sp.writes("createContact") == sp.writes("updateContact") == 1
    assert sp.writes("deleteContact") == 1


def test_contact_upsert_creates_once_then_updates(sp, sp_runtime):
    """Upserting the same email twice leaves one contact, its tags merged."""
    first = sp_runtime.call("superphone.contacts.upsert", {"email": "u@example.com",
                                                           "tags": ["a"]})
    second = sp_runtime.call("superphone.contacts.upsert", {"email": "u@example.com",
                                                            "firstName": "U", "tags": ["b"]})
    assert (first["created"], second["created"]) == (True, False)
    assert second["contact"]["id"] == first["contact"]["id"]
    assert second["contact"]["tags"] == ["a", "b"]
    assert sp.stats()["events"] == {"contact.created": 1, "contact.updated": 1}


def test_null_inputs_mean_no_value_on_create_and_clear_on_update(sp, sp_runtime):
    """A GHL contact without a phone upserts (null = left out); null in an update clears."""
    synced = sp_runtime.call("superphone.contacts.upsert", {
        "email": "np@example.com", "phone": None, "lastName": "N", "tags": None,
    })
    contact = synced["contact"]
    assert (synced["created"], contact["phone"], contact["tags"]) == (True, None, [])
    again = sp_runtime.call("superphone.contacts.upsert", {"email": "np@example.com",
                                                           "lastName": None})
    assert again["contact"]["lastName"] == "N"
    cleared = sp_runtime.call("superphone.contacts.update", {"id": contact["id"],
                                                             "lastName": None})
    assert cleared["lastName"] is None
    with pytest.raises(RemoteError, match=r"needs an email or a phone \(BAD_USER_INPUT\)"):
        sp_runtime.call("superphone.contacts.update", {"id": contact["id"], "email": None})


def test_contact_list_walks_every_page(sp, sp_runtime):
    """contacts.list pages by cursor; --all-pages semantics yield every contact once."""
    page = sp_runtime.call("superphone.contacts.list", {"first": 2})
    assert len(page["nodes"]) == 2 and page["pageInfo"]["hasNextPage"] is True
    assert page["totalCount"] == 5
    records = list(sp_runtime.iterate("superphone.contacts.list", {"first": 2}))
    assert len({r["id"] for r in records}) == len(records) == 5
    # Pages of 2, 2 and 1, then an empty page ends the walk (the cursor style stops there).
    assert sp.requests("contacts") == 1 + 4


def test_tags_add_and_remove(sp, sp_runtime):
    """Tags are added by name (no duplicates) and removed by name."""
    contact = sp_runtime.call("superphone.contacts.create", {"email": "t@example.com",
                                                             "tags": ["a"]})
    added = sp_runtime.call("superphone.tags.add", {"contactId": contact["id"],
                                                    "tags": ["a", "vip"]})
    assert added["tags"] == ["a", "vip"]
    removed = sp_runtime.call("superphone.tags.remove", {"contactId": contact["id"],
                                                         "tags": ["a", "zzz"]})
    assert removed["tags"] == ["vip"]
    assert sp.writes("addTags") == sp.writes("removeTags") == 1


def test_notes_create_list_update(sp, sp_runtime):
    """Notes are added to a contact, listed by page, and their text replaced."""
    contact = sp_runtime.call("superphone.contacts.create", {"phone": "+15551230002"})
    notes = [
        sp_runtime.call("superphone.notes.create", {"contactId": contact["id"], "body": f"n{i}"})
        for i in range(3)
    ]
    listed = list(sp_runtime.iterate("superphone.notes.list",
                                     {"contactId": contact["id"], "first": 2}))
    assert [n["body"] for n in listed] == ["n0", "n1", "n2"]
    updated = sp_runtime.call("superphone.notes.update", {"id": notes[1]["id"], "body": "new"})
    assert updated["body"] == "new" and updated["contactId"] == contact["id"]
    assert sp.writes("createNote") == 3 and sp.writes("updateNote") == 1


def test_tasks_create_get_list_update_complete(sp, sp_runtime):
    """Tasks are created, read, filtered by state, changed and completed."""
    contact = sp_runtime.call("superphone.contacts.create", {"phone": "+15551230003"})
    task = sp_runtime.call("superphone.tasks.create", {
        "contactId": contact["id"], "title": "Call back", "dueAt": "2026-01-20T09:00:00Z",
    })
    other = sp_runtime.call("superphone.tasks.create", {"contactId": contact["id"],
                                                        "title": "Email"})
    assert task["completed"] is False and task["completedAt"] is None
    assert sp_runtime.call("superphone.tasks.get", {"id": task["id"]}) == task
    moved = sp_runtime.call("superphone.tasks.update", {"id": task["id"], "title": "Call"})
    assert moved["title"] == "Call" and moved["dueAt"] == "2026-01-20T09:00:00Z"
    done = sp_runtime.call("superphone.tasks.complete", {"id": task["id"]})
    assert done["completed"] is True and done["completedAt"]
    open_tasks = sp_runtime.call("superphone.tasks.list", {"contactId": contact["id"],
                                                           "completed": False})
    assert [t["id"] for t in open_tasks["nodes"]] == [other["id"]]
    assert sp.stats()["events"]["task.completed"] == 1


# -- errors, auth and retries -----------------------------------------------------------------


def test_graphql_error_names_path_message_and_code(sp, sp_runtime):
    """A GraphQL error in a 200 answer fails the call with its path, message and code."""
    with pytest.raises(RemoteError, match=(
        r"^superphone\.contacts\.get: POST /graphql -> 200: GraphQL error at 'contact': "
        r"contact 'ct_nope' not found \(NOT_FOUND\)$"
    )) as caught:
        sp_runtime.call("superphone.contacts.get", {"id": "ct_nope"})
    assert caught.value.status == 200 and "NOT_FOUND" in caught.value.body
    sp_runtime.call("superphone.contacts.create", {"email": "dup@example.com"})
    with pytest.raises(RemoteError, match=r"GraphQL error at 'createContact': .*\(CONFLICT\)"):
        sp_runtime.call("superphone.contacts.create", {"email": "dup@example.com"})


def test_missing_api_key_is_a_clear_auth_error(sp, clean_environ):
    """Without a key the call fails before sending, naming the variable to set."""
    runtime = Runtime(build_catalog(), Settings(base_urls={"superphone": sp.base_url}),
                      auth=api_key_provider(keys={}))
    with runtime, pytest.raises(AuthError, match=(
        r"no API key for app 'superphone' \[set CONNECTOR_SUPERPHONE_API_KEY"
    )):
        runtime.call("superphone.contacts.list", {})
    assert sp.stats()["anonymous"] == 0 and sp.requests("contacts") == 0


def test_wrong_api_key_is_refused_by_the_server(sp):
    """A wrong key draws the server's 401, an AuthError that does not show the key."""
    runtime = Runtime(build_catalog(), Settings(base_urls={"superphone": sp.base_url}),
                      auth=api_key_provider(keys={"superphone": "sp_wrong_key"}))
    with runtime, pytest.raises(AuthError, match=r"-> 401 Unauthorized") as caught:
        runtime.call("superphone.contacts.list", {})
    assert "sp_wrong_key" not in str(caught.value)


def test_mutation_is_not_retried_after_a_500(sp, sp_runtime):
    """A create whose answer is a 500 after it took effect is sent once, never twice."""
    sp.set_faults({"route": "createContact", "ambiguous_rate": 1.0, "count": 1})
    with pytest.raises(RemoteError, match=r"-> 500") as caught:
        sp_runtime.call("superphone.contacts.create", {"email": "once@example.com"})
    assert caught.value.status == 500
    assert sp.requests("createContact") == 1
    assert sp.writes("createContact") == 1


def test_query_is_retried_after_a_500(sp, sp_runtime):
    """A query answered 500 is sent again and succeeds."""
    sp.set_faults({"route": "contacts", "error_rate": 1.0, "error_status": 503, "count": 1})
    page = sp_runtime.call("superphone.contacts.list", {"first": 1})
    assert len(page["nodes"]) == 1
    assert sp.requests("contacts") == 2


def test_retry_safe_mutation_is_retried(sp, sp_runtime):
    """An upsert (retry_safe) is sent again after a 500 and still leaves one contact."""
    sp.set_faults({"route": "upsertContact", "ambiguous_rate": 1.0, "count": 1})
    result = sp_runtime.call("superphone.contacts.upsert", {"email": "safe@example.com"})
    assert result["created"] is False
    assert sp.requests("upsertContact") == 2
    assert sp.stats()["records"]["contacts"] == 6


def test_dry_run_shows_document_and_variables_with_key_masked(sp, sp_runtime):
    """--dry-run prints the document and variables; the API key is masked."""
    preview = sp_runtime.dry_run("superphone.notes.create", {"contactId": "ct_1", "body": "hi"})
    assert preview["url"] == f"{sp.base_url}/graphql"
    assert preview["headers"] == {"X-Api-Key": "****"}
    assert preview["operation"] == "mutation"
    assert preview["json"]["variables"] == {"contactId": "ct_1", "body": "hi"}
    assert "createNote(" in preview["json"]["query"]
    assert sp.api_key not in json.dumps(preview)
    assert sp.stats()["traffic"]["requests"] == 0


def test_webhook_bodies_match_their_trigger_payload_schemas(sp, sp_runtime, sp_receiver,
                                                           catalog):
    """Every event the sandbox sends validates against its trigger's payload schema."""
    contact = sp_runtime.call("superphone.contacts.create", {"email": "w@example.com"})
    sp_runtime.call("superphone.tags.add", {"contactId": contact["id"], "tags": ["x"]})
    note = sp_runtime.call("superphone.notes.create", {"contactId": contact["id"],
                                                       "body": "a"})
    sp_runtime.call("superphone.notes.update", {"id": note["id"], "body": "b"})
    task = sp_runtime.call("superphone.tasks.create", {"contactId": contact["id"],
                                                       "title": "t"})
    sp_runtime.call("superphone.tasks.update", {"id": task["id"], "title": "u"})
    sp_runtime.call("superphone.tasks.complete", {"id": task["id"]})
    sp_runtime.call("superphone.contacts.delete", {"id": contact["id"]})
    sp.drain_webhooks()
    by_event = {t.event: t for t in catalog.triggers.values() if t.app == "superphone"}
    seen = set()
    for body, _headers in sp_receiver.received:
        payload = json.loads(body)
        trigger = by_event[payload["type"]]
        errors = list(Draft202012Validator(trigger.payload_schema).iter_errors(payload))
        assert errors == [], (payload["type"], [e.message for e in errors])
        seen.add(trigger.id)
    assert seen == set(TRIGGERS)
