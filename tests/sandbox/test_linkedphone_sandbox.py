"""The LinkedPhone sandbox over raw HTTP: state, API-key auth, rate limits, signed webhooks to a
real receiver, the polling cursor, fault injection, control endpoints and the ``-m`` entry."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from connector.documents.manifest import pack_manifest
from connector.sandbox.linkedphone.config import LinkedPhoneConfig
from connector.sandbox.linkedphone.operations import HANDLERS
from connector.sandbox.linkedphone.seed import seed_contacts
from connector.sandbox.linkedphone.store import Store
from connector.sandbox.linkedphone.webhooks import sign, verify

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def client():
    """One HTTP client for the module (a client per request costs an SSL context each)."""
    with httpx.Client() as http:
        yield http


@pytest.fixture
def api(lp, client):
    """Raw requests to the sandbox with its API key."""
    return Api(lp, client)


class Api:
    def __init__(self, lp, client):
        self.lp, self.client = lp, client

    def request(self, method, path, **kw):
        kw.setdefault("headers", self.lp.headers())
        return self.client.request(method, f"{self.lp.base_url}{path}", **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, json=None, **kw):
        return self.request("POST", path, json=json, **kw)

    def patch(self, path, json):
        return self.request("PATCH", path, json=json)


def new_contact(api, **fields):
    answer = api.post("/contacts", {"email": "x@example.com", **fields})
    assert answer.status_code == 201, answer.text
    return answer.json()["contact"]


# -- auth and routing --------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"X-Api-Key": "lp_wrong"}, {"Authorization": "Bearer x"}])
def test_requests_without_the_api_key_get_401(lp, api, headers):
    """No key, a wrong key, or a bearer token instead: 401 with an error body; nothing written."""
    answer = api.post("/contacts", {"email": "a@example.com"}, headers=headers)
    assert answer.status_code == 401
    assert answer.json() == {"error": "unauthorized",
                             "message": "missing or invalid X-Api-Key header"}
    assert lp.writes("POST /contacts") == 0 and lp.stats()["records"]["contacts"] == 3


def test_unknown_path_is_404_and_wrong_method_405(lp, api):
    """A path no action declares is 404; a declared path with another method is 405."""
    assert api.get("/calls").status_code == 404
    answer = api.request("PUT", "/contacts")
    assert answer.status_code == 405 and answer.json()["error"] == "method_not_allowed"


def test_requests_are_checked_against_the_catalog_input_schema(lp, api):
    """The sandbox accepts what the catalog declares: unknown fields, a contact without email or
    phone, an out-of-range limit and bad JSON are refused."""
    extra = api.post("/contacts", {"email": "a@example.com", "nickname": "A"})
    assert extra.status_code == 422 and "nickname" in extra.json()["message"]
    assert api.post("/contacts", {"first_name": "A"}).status_code == 422
    assert api.get("/contacts", params={"limit": 500}).status_code == 422
    bad = api.request("POST", "/contacts", content=b"{")
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_json"
    assert lp.writes("POST /contacts") == 0


# -- state ----------------------------------------------------------------------------------------


def test_contact_state_updated_at_and_uniqueness(lp, api):
    """A contact is stored, PATCH changes only given fields and moves updated_at (not
    created_at), a taken email is 409, and an unknown id is 404."""
    made = new_contact(api, first_name="Ann", tags=["a", "a", "b"])
    assert made["tags"] == ["a", "b"] and made["created_at"] == made["updated_at"]
    changed = api.patch(f"/contacts/{made['id']}", {"last_name": "Lee"}).json()["contact"]
    assert changed["first_name"] == "Ann" and changed["last_name"] == "Lee"
    assert changed["created_at"] == made["created_at"] < changed["updated_at"]
    assert api.get(f"/contacts/{made['id']}").json()["contact"] == changed
    assert api.post("/contacts", {"email": "X@example.com"}).status_code == 409
    cleared = api.patch(f"/contacts/{made['id']}", {"email": None})
    assert cleared.status_code == 422  # no email and no phone left
    missing = api.get("/contacts/ct_nope")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def test_email_and_phone_follow_a_contact_update(lp, api):
    """After PATCH changes a contact's email and phone, its old ones are free for a new
    contact and its new ones are taken (409) and found by lookup, in any case."""
    made = new_contact(api, email="old@example.com", phone="+14155550199")
    changed = api.patch(f"/contacts/{made['id']}",
                        {"email": "New@Example.com", "phone": "+14155550198"})
    assert changed.status_code == 200, changed.text
    assert api.get("/contacts/lookup", params={"email": "old@example.com"}).json() == {
        "contact": None}
    other = new_contact(api, email="old@example.com", phone="+14155550199")
    taken = api.post("/contacts", {"email": "new@EXAMPLE.com"})
    assert taken.status_code == 409 and made["id"] in taken.json()["message"]
    assert api.post("/contacts", {"phone": "+14155550198"}).status_code == 409
    found = api.get("/contacts/lookup", params={"email": "NEW@example.com"}).json()["contact"]
    assert found["id"] == made["id"]
    by_phone = api.get("/contacts/lookup", params={"phone": "+14155550199"}).json()["contact"]
    assert by_phone["id"] == other["id"]


def test_task_status_and_completion(lp, api):
    """Completing sets completed_at once (the second call writes nothing); reopening clears it;
    a task for an unknown contact is 422."""
    contact = new_contact(api)
    task = api.post("/tasks", {"contact_id": contact["id"], "title": "Call"}).json()["task"]
    done = api.post(f"/tasks/{task['id']}/complete").json()["task"]
    assert done["status"] == "completed" and done["completed_at"] == done["updated_at"]
    assert api.post(f"/tasks/{task['id']}/complete").json()["task"] == done
    assert lp.writes("POST /tasks/{task_id}/complete") == 1
    reopened = api.patch(f"/tasks/{task['id']}", {"status": "open"}).json()["task"]
    assert reopened["status"] == "open" and reopened["completed_at"] is None
    assert api.post("/tasks", {"contact_id": "ct_nope", "title": "x"}).status_code == 422


def test_tags_change_state_only_when_they_change(lp, api):
    """Adding a tag the contact has, or removing one it lacks, is not a write."""
    contact = new_contact(api, tags=["vip"])
    path = f"/contacts/{contact['id']}/tags"
    assert api.post(path, {"tags": ["vip"]}).json() == {"tags": ["vip"]}
    removed = api.request("DELETE", path, json={"tags": ["gone"]})
    assert removed.json() == {"tags": ["vip"]}
    assert api.post(path, {"tags": ["new"]}).json() == {"tags": ["vip", "new"]}
    assert lp.writes("POST /contacts/{contact_id}/tags") == 1
    assert lp.writes("DELETE /contacts/{contact_id}/tags") == 0
    after = api.get(f"/contacts/{contact['id']}").json()["contact"]
    assert after["updated_at"] > contact["updated_at"]


# -- paging and the polling cursor -------------------------------------------------------------


def test_pages_follow_next_cursor_without_gaps_or_repeats(lp, api):
    """limit=2 over 5 contacts gives pages 2, 2, 1 and a null next_cursor at the end; a
    malformed cursor is 400."""
    for n in range(2):
        new_contact(api, email=f"c{n}@example.com")
    seen, cursor, sizes = [], None, []
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = api.get("/contacts", params=params).json()
        sizes.append(len(body["contacts"]))
        seen += [c["id"] for c in body["contacts"]]
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            break
    assert sizes == [2, 2, 1] and len(set(seen)) == 5
    assert api.get("/contacts", params={"cursor": "%%%"}).status_code == 400


def test_polling_cursor_sees_each_change_once_after_dedupe(lp, api):
    """Polling contacts with updated_since = the last updated_at seen, deduplicating on
    (id, updated_at) as the trigger declares, yields exactly the new and changed records."""
    trigger = pack_manifest().triggers["linkedphone.contacts.changed"]
    seen: set[tuple[str, ...]] = set()

    def poll(since):
        params = {"updated_since": since} if since else {}
        records = api.get("/contacts", params={**params, "limit": 100}).json()["contacts"]
        fresh = [r for r in records if tuple(r[k] for k in trigger.dedupe) not in seen]
        seen.update(tuple(r[k] for k in trigger.dedupe) for r in records)
        cursor = max((r[trigger.cursor] for r in records), default=since)
        return [r["id"] for r in fresh], cursor

    first, cursor = poll(None)
    assert len(first) == 3
    assert poll(cursor)[0] == []
    added = new_contact(api)
    old = first[0]
    api.patch(f"/contacts/{old}", {"company": "Changed"})
    changed, cursor = poll(cursor)
    assert changed == [added["id"], old]
    assert poll(cursor)[0] == []


def test_pages_keep_change_order_through_many_updates():
    """Store level: after thousands of updates (enough to rebuild each change log), every
    table pages in exact (updated_at, id) order, from any cursor and any updated_since."""
    ticks = iter(range(10**9))
    store = Store(seed=3, clock=lambda: 1_700_000_000 + next(ticks) / 3000)
    seed_contacts(store, 6)
    ids = list(store.contacts)
    for n in range(3000):
        HANDLERS["linkedphone.contacts.update"](
            store, {"contact_id": ids[n * 7 % 6], "company": f"c{n}"})
        if n % 500 == 0:
            HANDLERS["linkedphone.notes.create"](store, {"contact_id": ids[0], "body": "b"})
    for kind in ("contacts", "tasks", "notes"):
        table = getattr(store, kind)
        ordered = sorted(table.values(), key=lambda r: (r["updated_at"], r["id"]))
        since = ordered[len(ordered) // 2]["updated_at"]
        for floor in (None, since):
            seen, cursor = [], None
            while True:
                items, cursor = store.changes[kind].page(limit=2, cursor=cursor, since=floor)
                seen += [r["id"] for r in items]
                if cursor is None:
                    break
            want = [r["id"] for r in ordered if floor is None or r["updated_at"] >= floor]
            assert seen == want, kind


def test_task_polling_filters_by_status(lp, api):
    """GET /tasks?status=completed&updated_since=... returns tasks completed since then."""
    tasks = api.get("/tasks").json()["tasks"]
    since = max(t["updated_at"] for t in tasks)
    api.post(f"/tasks/{tasks[1]['id']}/complete")
    found = api.get("/tasks", params={"status": "completed", "updated_since": since}).json()
    assert [t["id"] for t in found["tasks"]] == [tasks[1]["id"]]
    assert api.get("/tasks", params={"updated_since": "yesterday"}).status_code == 422


# -- rate limit --------------------------------------------------------------------------------


def test_rate_limit_answers_429_with_headers(lp, api):
    """Past the window's budget: 429 with Retry-After and X-RateLimit-Remaining 0; refused
    requests use no budget; every answer carries the X-RateLimit-* headers."""
    lp.set_limits(requests=2, seconds=60)
    first = api.get("/contacts")
    assert first.headers["x-ratelimit-limit"] == "2"
    assert first.headers["x-ratelimit-remaining"] == "1"
    assert api.get("/contacts").status_code == 200
    refused = api.get("/contacts")
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited"
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert 55 <= int(refused.headers["retry-after"]) <= 60
    assert lp.stats()["traffic"]["throttled"] == 1


def test_limits_can_be_changed_over_http(lp, api):
    """POST /_sandbox/limits changes the limit; bad values are 400."""
    answer = api.post("/_sandbox/limits", {"requests": 1})
    assert answer.json() == {"requests": 1, "seconds": 60.0}
    assert api.get("/contacts").status_code == 200
    assert api.get("/contacts").status_code == 429
    bad = api.post("/_sandbox/limits", {"requests": 0})
    assert bad.status_code == 400


def test_default_limit_is_the_catalogs():
    """The sandbox's default rate limit is the one the catalog declares for the app."""
    declared = pack_manifest().apps["linkedphone"].rate_limit
    config = LinkedPhoneConfig()
    assert declared is not None
    assert (config.rate_limit_requests, config.rate_limit_seconds) == (
        declared.requests, declared.per_seconds)


# -- webhooks ----------------------------------------------------------------------------------


def test_webhooks_are_signed_and_verified_by_a_real_receiver(lp, api, webhook_receiver):
    """Each change is POSTed with a valid HMAC-SHA256 signature, a unique event id and a
    timestamp; the types follow the changes in order."""
    lp.set_webhook_urls([webhook_receiver.url])
    contact = new_contact(api)
    task = api.post("/tasks", {"contact_id": contact["id"], "title": "Call"}).json()["task"]
    api.post(f"/tasks/{task['id']}/complete")
    api.post(f"/contacts/{contact['id']}/notes", {"body": "hello"})
    deliveries = lp.drain_webhooks()
    assert [d["outcome"] for d in deliveries] == ["delivered"] * 4
    assert all(d["valid"] for d in webhook_receiver.deliveries)
    events = sorted(webhook_receiver.events(), key=lambda e: e["timestamp"])
    assert [e["type"] for e in events] == [
        "contact.created", "task.created", "task.completed", "note.created"]
    assert len({e["id"] for e in events}) == 4
    assert events[2]["data"]["id"] == task["id"]
    assert events[2]["data"]["status"] == "completed"
    assert events[2]["timestamp"] == events[2]["data"]["updated_at"]


def test_webhook_signature_fails_for_another_secret_or_body(lp, api, webhook_receiver):
    """The signature covers the exact bytes under the shared secret only."""
    lp.set_webhook_urls([webhook_receiver.url])
    new_contact(api)
    lp.drain_webhooks()
    delivery = webhook_receiver.deliveries[0]
    assert verify(lp.webhook_secret, delivery["body"], delivery["signature"])
    assert not verify("another-secret", delivery["body"], delivery["signature"])
    assert not verify(lp.webhook_secret, delivery["body"] + b" ", delivery["signature"])
    assert delivery["signature"] == sign(lp.webhook_secret, delivery["body"])


def test_webhook_is_retried_after_503_with_the_same_event_id(lp, api, webhook_receiver):
    """A 503 from the receiver is retried; both attempts carry the same body and event id."""
    webhook_receiver.answers.extend([503])
    lp.set_webhook_urls([webhook_receiver.url])
    new_contact(api)
    (delivery,) = lp.drain_webhooks()
    assert delivery["attempts"] == 2 and delivery["outcome"] == "delivered"
    first, second = webhook_receiver.deliveries
    assert first["body"] == second["body"] and first["valid"] and second["valid"]


def test_no_webhook_for_a_change_that_changes_nothing(lp, api, webhook_receiver):
    """Completing an already completed task sends no second task.completed."""
    lp.set_webhook_urls([webhook_receiver.url])
    task = api.get("/tasks").json()["tasks"][0]
    api.post(f"/tasks/{task['id']}/complete")
    api.post(f"/tasks/{task['id']}/complete")
    lp.drain_webhooks()
    assert [e["type"] for e in webhook_receiver.events()] == ["task.completed"]


# -- faults ------------------------------------------------------------------------------------


def test_fault_error_then_recovery(lp, api):
    """An error fault with count 1 answers 503 once, then the route works again."""
    lp.set_faults({"route": "GET /contacts", "error_rate": 1.0, "error_status": 503, "count": 1})
    assert api.get("/contacts").status_code == 503
    assert api.get("/contacts").status_code == 200
    assert lp.statuses("GET /contacts") == {"200": 1, "503": 1}


def test_ambiguous_write_applies_then_fails(lp, api):
    """An ambiguous fault applies the write and then answers 500: the state changed once."""
    lp.set_faults({"route": "POST /contacts", "ambiguous_rate": 1.0, "count": 1})
    answer = api.post("/contacts", {"email": "amb@example.com"})
    assert answer.status_code == 500
    assert lp.writes("POST /contacts") == 1
    found = api.get("/contacts/lookup", params={"email": "amb@example.com"}).json()
    assert found["contact"]["email"] == "amb@example.com"


def test_reset_fault_cuts_the_connection(lp, api):
    """A reset fault closes the connection without an answer."""
    lp.set_faults({"route": "GET /tasks", "reset_rate": 1.0, "count": 1})
    with pytest.raises(httpx.TransportError):
        api.get("/tasks")
    assert lp.statuses("GET /tasks") == {"0": 1}


def test_faults_over_http_control_endpoints(lp, api):
    """Faults are added, listed and dropped under /_sandbox/faults; a bad rule is 400."""
    url = "/_sandbox/faults"
    added = api.post(url, {"route": "POST /tasks", "burst_429": 2}).json()
    assert added["rules"][0]["burst_429"] == 2
    assert api.get(url).json()["rules"] == added["rules"]
    assert api.post(url, {"route": "x", "nope": 1}).status_code == 400
    assert api.request("DELETE", url).json() == {"rules": []}


# -- control and the process entry ---------------------------------------------------------------


def test_reset_over_http_restores_seed_state(lp, api):
    """POST /_sandbox/reset drops new records and counters; stats show the seed counts."""
    new_contact(api)
    assert api.post("/_sandbox/reset").json() == {"reset": True}
    stats = api.get("/_sandbox/stats").json()
    assert stats["records"] == {"contacts": 3, "tasks": 3, "notes": 3}
    assert stats["traffic"]["requests"] == 0


def test_module_entry_prints_banner_and_serves():
    """``python -m connector.sandbox.linkedphone`` prints its URL, key and secret, then serves
    requests authenticated with that key."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "connector.sandbox.linkedphone", "--seed-contacts", "2",
               "--webhook-secret", "s3cret"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        info = {}
        for line in iter(proc.stdout.readline, "\n"):
            name, _, value = line.partition(": ")
            info[name] = value.strip()
        assert base_url.startswith("http://127.0.0.1:")
        assert info["webhook_secret"] == "s3cret" and info["api_key_header"] == "X-Api-Key"
        answer = httpx.get(f"{base_url}/contacts", headers={"X-Api-Key": info["api_key"]})
        assert answer.status_code == 200 and len(answer.json()["contacts"]) == 2
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
