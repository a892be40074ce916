"""Every one of the 32 Contacts operations, driven for real and validated against the spec."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from spec_client import CHECKED, SpecClient

from connector.sandbox.routes import OPERATIONS
from connector.sandbox.server import SandboxServer


@pytest.fixture
def client(ghl: SandboxServer) -> Iterator[SpecClient]:
    c = SpecClient(ghl.base_url, ghl.auth_headers())
    yield c
    c.close()


def _contact_lifecycle(client: SpecClient, loc: str) -> str:
    made = client.post("/contacts/", json={"locationId": loc, "firstName": "Rita",
                                           "lastName": "Levi", "email": "rita@example.com",
                                           "phone": "(555) 010-2030", "tags": ["VIP", "vip"]})
    assert made.status_code == 201
    contact = made.json()["contact"]
    assert contact["phone"] == "+15550102030" and contact["tags"] == ["vip"]
    cid = contact["id"]
    assert client.get(f"/contacts/{cid}").json()["contact"]["name"] == "Rita Levi"
    changed = client.put(f"/contacts/{cid}", json={"city": "Turin", "tags": ["a"]}).json()
    assert changed["succeded"] is True and changed["contact"]["city"] == "Turin"
    up = client.post("/contacts/upsert", json={"locationId": loc, "email": "RITA@example.com",
                                               "lastName": "Levi-M"}).json()
    assert up["new"] is False and up["contact"]["id"] == cid and up["traceId"]
    dup = client.get("/contacts/search/duplicate", params={"locationId": loc,
                                                           "email": "rita@example.com"})
    assert dup.json()["contact"]["id"] == cid
    none = client.get("/contacts/search/duplicate", params={"locationId": loc,
                                                            "email": "nobody@example.com"})
    assert none.json() == {"contact": None}
    return str(cid)


def _tasks_and_notes(client: SpecClient, cid: str) -> None:
    task = client.post(f"/contacts/{cid}/tasks", json={
        "title": "Call", "dueDate": "2030-01-01T10:00:00Z", "completed": False}).json()["task"]
    tid = task["id"]
    assert client.get(f"/contacts/{cid}/tasks").json()["tasks"] == [task]
    assert client.get(f"/contacts/{cid}/tasks/{tid}").json()["task"]["title"] == "Call"
    assert client.put(f"/contacts/{cid}/tasks/{tid}", json={"title": "Call back"}
                      ).json()["task"]["title"] == "Call back"
    assert client.put(f"/contacts/{cid}/tasks/{tid}/completed", json={"completed": True}
                      ).json()["task"]["completed"] is True
    assert client.delete(f"/contacts/{cid}/tasks/{tid}").json() == {"succeded": True}
    note = client.post(f"/contacts/{cid}/notes", json={"body": "hello"}).json()["note"]
    nid = note["id"]
    assert client.get(f"/contacts/{cid}/notes").json()["notes"][0]["id"] == nid
    assert client.get(f"/contacts/{cid}/notes/{nid}").json()["note"]["body"] == "hello"
    assert client.put(f"/contacts/{cid}/notes/{nid}", json={"body": "bye"}
                      ).json()["note"]["body"] == "bye"
    assert client.delete(f"/contacts/{cid}/notes/{nid}").json() == {"succeded": True}


def _memberships(client: SpecClient, cid: str, loc: str) -> None:
    assert client.post(f"/contacts/{cid}/tags", json={"tags": ["b", "c"]}).json() == {
        "tags": ["a", "b", "c"]}
    assert client.request("DELETE", f"/contacts/{cid}/tags", json={"tags": ["b"]}).json() == {
        "tags": ["a", "c"]}
    added = client.post(f"/contacts/{cid}/followers", json={"followers": ["u1", "u2"]}).json()
    assert added == {"followers": ["u1", "u2"], "followersAdded": ["u1", "u2"]}
    removed = client.request("DELETE", f"/contacts/{cid}/followers",
                             json={"followers": ["u1"]}).json()
    assert removed == {"followers": ["u2"], "followersRemoved": ["u1"]}
    assert client.post(f"/contacts/{cid}/campaigns/camp1", json={}).status_code == 201
    assert client.delete(f"/contacts/{cid}/campaigns/camp1").json() == {"succeded": True}
    assert client.delete(f"/contacts/{cid}/campaigns/removeAll").json() == {"succeded": True}
    assert client.post(f"/contacts/{cid}/workflow/wf1",
                       json={"eventStartTime": "2030-01-01T10:00:00Z"}).status_code == 200
    assert client.request("DELETE", f"/contacts/{cid}/workflow/wf1", json={}).status_code == 200
    bulk = client.post("/contacts/bulk/tags/update/add",
                       json={"locationId": loc, "contacts": [cid, "missing"], "tags": ["z"]})
    assert bulk.status_code == 201
    assert bulk.json() == {"succeded": False, "errorCount": 1, "responses": [cid]}
    business = client.post("/contacts/bulk/business",
                           json={"locationId": loc, "ids": [cid], "businessId": "biz1"})
    assert business.json() == {"success": True, "ids": [cid]}
    listed = client.get("/contacts/business/biz1", params={"locationId": loc}).json()
    assert [c["id"] for c in listed["contacts"]] == [cid] and listed["count"] == 1


def test_conformance_all_32_operations_validate_against_the_spec(ghl: SandboxServer,
                                                                  client: SpecClient) -> None:
    """Each of the 32 operations answers with a status and body the official spec allows."""
    loc = ghl.location_id
    cid = _contact_lifecycle(client, loc)
    _tasks_and_notes(client, cid)
    _memberships(client, cid, loc)
    seeded = client.post("/contacts/search", json={"locationId": loc, "pageLimit": 3}).json()
    assert seeded["total"] == 13 and len(seeded["contacts"]) == 3
    with_events = next(c["id"] for c in client.get(
        "/contacts/", params={"locationId": loc, "limit": 100}).json()["contacts"]
        if client.get(f"/contacts/{c['id']}/appointments").json()["events"])
    assert with_events
    assert client.delete(f"/contacts/{cid}").json() == {"succeded": True}
    assert client.get(f"/contacts/{cid}").status_code == 400
    covered = {route for route, _ in CHECKED}
    assert covered >= {op.route for op in OPERATIONS}, sorted(
        {op.route for op in OPERATIONS} - covered)


def test_conformance_error_answers_validate_against_the_spec(ghl: SandboxServer,
                                                              client: SpecClient) -> None:
    """400, 401 and 422 answers carry the spec's common error DTO shapes."""
    missing = client.get("/contacts/nope")
    assert missing.status_code == 400 and missing.json()["message"] == "Contact not found"
    bad = client.post("/contacts/", json={"locationId": ghl.location_id, "email": 5})
    assert bad.status_code == 422
    assert bad.json() == {"statusCode": 422, "message": ["email must be a string"],
                          "error": "Unprocessable Entity"}
    anonymous = client.get("/contacts/nope", headers={"Authorization": ""})
    assert anonymous.status_code == 401 and anonymous.json()["message"]
    search_bad = client.post("/contacts/search", json={"locationId": ghl.location_id})
    assert search_bad.status_code == 400 and "pageLimit" in search_bad.json()["message"]
