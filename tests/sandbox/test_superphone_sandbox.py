"""The SuperPhone sandbox over HTTP: state, auth, rate limit, signed webhooks, faults, control
endpoints and its ``python -m`` entry."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys

import httpx
import pytest
from fixtures_superphone import Receiver

CREATE = """mutation C($email: String, $phone: String, $tags: [String!]) {
  createContact(input: {email: $email, phone: $phone, tags: $tags}) { id email tags createdAt updatedAt }
}"""
UPDATE = """mutation U($id: ID!, $first: String) {
  updateContact(id: $id, input: {firstName: $first}) { id firstName createdAt updatedAt }
}"""


def gql(sp, query, variables=None, *, headers=None):
    """POST one operation to the sandbox with its key (unless ``headers`` say otherwise)."""
    sent = sp.auth_headers() if headers is None else headers
    return httpx.post(sp.graphql_url, json={"query": query, "variables": variables or {}},
                      headers=sent, timeout=10)


def create(sp, **variables):
    """Create a contact and return it (asserting success)."""
    answer = gql(sp, CREATE, variables)
    assert answer.status_code == 200 and "errors" not in answer.json(), answer.text
    return answer.json()["data"]["createContact"]


# -- state ----------------------------------------------------------------------------------------


def test_writes_change_state_and_move_updated_at(sp):
    """A create is stored; an update changes the record and moves updatedAt, not createdAt."""
    contact = create(sp, email="s@example.com", tags=["a", "a", "b"])
    assert contact["tags"] == ["a", "b"]
    updated = gql(sp, UPDATE, {"id": contact["id"], "first": "S"}).json()["data"]["updateContact"]
    assert updated["firstName"] == "S"
    assert updated["createdAt"] == contact["createdAt"]
    assert updated["updatedAt"] > contact["updatedAt"]
    stored = httpx.get(f"{sp.base_url}/_sandbox/records").json()["contacts"]
    assert [c for c in stored if c["id"] == contact["id"]][0]["firstName"] == "S"
    assert sp.writes("createContact") == sp.writes("updateContact") == 1


def test_rules_refuse_duplicates_and_bad_phones(sp):
    """A taken email is a CONFLICT, a non-E.164 phone BAD_USER_INPUT; nothing is written."""
    create(sp, email="d@example.com")
    taken = gql(sp, CREATE, {"email": "D@example.com"}).json()
    assert taken["errors"][0]["extensions"]["code"] == "CONFLICT"
    assert taken["errors"][0]["path"] == ["createContact"]
    bad = gql(sp, CREATE, {"phone": "555-1234"}).json()
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert sp.writes("createContact") == 1
    assert sp.stats()["records"]["contacts"] == 6


def test_email_follows_an_update_and_a_delete(sp):
    """After an update changes a contact's email, the old one is free and the new one is a
    CONFLICT and found by findContact; after a delete, findContact finds nothing."""
    contact = create(sp, email="old@example.com")
    moved = gql(sp, """mutation($id: ID!) {
      updateContact(id: $id, input: {email: "New@Example.com"}) { id email } }""",
                {"id": contact["id"]}).json()
    assert moved["data"]["updateContact"]["email"] == "new@example.com", moved
    find = "query($e: String) { findContact(email: $e) { id } }"
    assert gql(sp, find, {"e": "old@example.com"}).json()["data"]["findContact"] is None
    assert gql(sp, find, {"e": "NEW@example.com"}).json()["data"]["findContact"] == {
        "id": contact["id"]}
    taken = gql(sp, CREATE, {"email": "new@example.com"}).json()
    assert taken["errors"][0]["extensions"]["code"] == "CONFLICT"
    create(sp, email="old@example.com")
    gql(sp, "mutation($c: ID!) { deleteContact(id: $c) { deleted } }", {"c": contact["id"]})
    assert gql(sp, find, {"e": "new@example.com"}).json()["data"]["findContact"] is None


def test_deleting_a_contact_deletes_its_notes_and_tasks(sp):
    """deleteContact removes the contact's notes and tasks with it."""
    contact = create(sp, phone="+15551239999")
    gql(sp, 'mutation($c: ID!) { createNote(contactId: $c, body: "x") { id } }',
        {"c": contact["id"]})
    gql(sp, 'mutation($c: ID!) { createTask(contactId: $c, title: "y") { id } }',
        {"c": contact["id"]})
    assert sp.stats()["records"] == {"contacts": 6, "notes": 1, "tasks": 1}
    gql(sp, "mutation($c: ID!) { deleteContact(id: $c) { deleted } }", {"c": contact["id"]})
    assert sp.stats()["records"] == {"contacts": 5, "notes": 0, "tasks": 0}


def test_pagination_cursors_and_bad_cursor(sp):
    """Connections page by opaque cursors; a forged cursor is BAD_USER_INPUT."""
    query = ("query($after: String) { contacts(first: 3, after: $after) "
             "{ nodes { id } pageInfo { hasNextPage endCursor } totalCount } }")
    first = gql(sp, query).json()["data"]["contacts"]
    second = gql(sp, query, {"after": first["pageInfo"]["endCursor"]}).json()["data"]["contacts"]
    assert len(first["nodes"]) == 3 and len(second["nodes"]) == 2
    assert second["pageInfo"]["hasNextPage"] is False
    assert not {n["id"] for n in first["nodes"]} & {n["id"] for n in second["nodes"]}
    forged = gql(sp, query, {"after": "bm9wZQ=="}).json()
    assert forged["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_invalid_documents_and_bodies(sp):
    """An unknown field is a validation error; a body that is not JSON is a 400."""
    unknown = gql(sp, "{ contacts { nodes { shoeSize } } }")
    assert unknown.status_code == 200
    assert "shoeSize" in unknown.json()["errors"][0]["message"]
    raw = httpx.post(sp.graphql_url, content=b"{nope", headers=sp.auth_headers())
    assert raw.status_code == 400 and raw.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert httpx.get(sp.graphql_url, headers=sp.auth_headers()).status_code == 405


def test_reset_restores_seed_and_zeroes_counters(sp):
    """POST /_sandbox/reset brings back the seed contacts and clears counters and faults."""
    create(sp, email="r@example.com")
    sp.set_faults({"route": "contact", "latency_ms": 1})
    assert httpx.post(f"{sp.base_url}/_sandbox/reset").json() == {"reset": True}
    stats = sp.stats()
    assert stats["records"]["contacts"] == 5
    assert stats["writes"] == {} and stats["faults"] == [] and stats["traffic"]["requests"] == 0


# -- auth and limits ------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"X-Api-Key": "sp_wrong"}], ids=["missing", "wrong"])
def test_requests_without_the_key_are_refused(sp, headers):
    """No key or a wrong key: 401 UNAUTHENTICATED, and nothing runs."""
    answer = gql(sp, CREATE, {"email": "no@example.com"}, headers=headers)
    assert answer.status_code == 401
    assert answer.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert sp.writes("createContact") == 0 and sp.stats()["anonymous"] == 1


def test_rate_limit_answers_429_with_headers(sp):
    """Past the limit the sandbox answers 429 with Retry-After and X-RateLimit headers."""
    sp.set_limits(requests=3, seconds=60)
    statuses = [gql(sp, "{ contacts { totalCount } }").status_code for _ in range(3)]
    refused = gql(sp, "{ contacts { totalCount } }")
    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "60"
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert sp.stats()["traffic"]["throttled"] == 1


# -- webhooks -------------------------------------------------------------------------------------


def test_webhooks_are_signed_with_hmac_and_carry_event_ids(sp, sp_receiver):
    """Each change reaches a real receiver, HMAC-SHA256-signed, with a unique event id."""
    contact = create(sp, email="h@example.com")
    gql(sp, 'mutation($c: ID!) { addTags(contactId: $c, tags: ["x"]) { id } }',
        {"c": contact["id"]})
    gql(sp, 'mutation($c: ID!) { addTags(contactId: $c, tags: ["x"]) { id } }',
        {"c": contact["id"]})
    deliveries = sp.drain_webhooks()
    assert [d["outcome"] for d in deliveries] == ["delivered", "delivered"]
    payloads = []
    for body, headers in sp_receiver.received:
        expected = hmac.new(sp.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        assert headers["x-superphone-signature"] == f"sha256={expected}"
        payloads.append(json.loads(body))
        assert headers["x-superphone-event"] == payloads[-1]["type"]
    # Each delivery is its own task: they may arrive in either order.
    payloads.sort(key=lambda p: p["type"])
    assert [p["type"] for p in payloads] == ["contact.created", "contact.updated"]
    assert payloads[1]["data"]["tags"] == ["x"] and payloads[1]["timestamp"]
    assert len({p["eventId"] for p in payloads}) == 2


def test_webhook_retried_on_5xx_and_429_not_on_4xx(sp):
    """A delivery answered 503 then 429 is retried until delivered; a 400 is not retried."""
    with Receiver(statuses=[503, 429, 200]) as flaky:
        sp.set_webhook_urls([flaky.url])
        create(sp, email="f@example.com")
        first = sp.drain_webhooks()
    with Receiver(statuses=[400]) as refusing:
        sp.set_webhook_urls([refusing.url])
        create(sp, email="g@example.com")
        second = sp.drain_webhooks()
    assert (first[0]["attempts"], first[0]["outcome"]) == (3, "delivered")
    assert (second[-1]["attempts"], second[-1]["outcome"], second[-1]["status"]) == (
        1, "dropped", 400)
    assert len(flaky.received) == 3 and len(refusing.received) == 1
    assert flaky.received[0][0] == flaky.received[2][0]


# -- faults ---------------------------------------------------------------------------------------


def test_fault_rules_by_operation(sp):
    """Faults hit only their operation: an error status, then a cut connection."""
    sp.set_faults({"route": "createContact", "error_rate": 1.0, "error_status": 503, "count": 1},
                  {"route": "contacts", "reset_rate": 1.0, "count": 1})
    failed = gql(sp, CREATE, {"email": "x@example.com"})
    assert failed.status_code == 503 and sp.writes("createContact") == 0
    with pytest.raises(httpx.TransportError):
        gql(sp, "{ contacts { totalCount } }")
    assert gql(sp, "{ contacts { totalCount } }").status_code == 200
    assert sp.stats()["faults"] == []


def test_ambiguous_fault_applies_the_write_then_fails(sp):
    """An ambiguous fault stores the write and still answers 500."""
    sp.set_faults({"route": "createContact", "ambiguous_rate": 1.0, "count": 1})
    assert gql(sp, CREATE, {"email": "amb@example.com"}).status_code == 500
    assert sp.writes("createContact") == 1 and sp.stats()["records"]["contacts"] == 6


def test_control_endpoint_rejects_a_bad_fault_rule(sp):
    """POST /_sandbox/faults with an unknown key is a 400 naming it; no rule is added."""
    answer = httpx.post(f"{sp.base_url}/_sandbox/faults", json={"route": "x", "oops": 1})
    assert answer.status_code == 400 and "oops" in answer.json()["message"]
    assert httpx.get(f"{sp.base_url}/_sandbox/faults").json() == {"rules": []}


# -- the entry point ------------------------------------------------------------------------------


def test_python_m_entry_prints_url_key_and_secret_and_serves():
    """``python -m connector.sandbox.superphone`` prints its URL, key and secret, then serves."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "connector.sandbox.superphone", "--api-key", "sp_cli_key",
         "--webhook-secret", "whsec_cli", "--seed-contacts", "2"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(4)]
        base_url = lines[0]
        assert base_url.startswith("http://127.0.0.1:")
        assert lines[1:] == [f"graphql_url: {base_url}/graphql", "api_key: sp_cli_key",
                             "webhook_secret: whsec_cli"]
        answer = httpx.post(f"{base_url}/graphql", json={"query": "{ contacts { totalCount } }"},
                            headers={"X-Api-Key": "sp_cli_key"}, timeout=10)
        assert answer.json() == {"data": {"contacts": {"totalCount": 2}}}
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
