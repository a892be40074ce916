"""Contact behaviour beyond the happy path: upsert and duplicate matching, dateUpdated on every
write, location checks, agency tokens and per-location rate limits."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from spec_client import SpecClient

from connector.sandbox.config import SandboxConfig
from connector.sandbox.server import SandboxServer

OTHER_LOCATION = "zzOtherLocation00001"


@pytest.fixture
def client(ghl: SandboxServer) -> Iterator[SpecClient]:
    c = SpecClient(ghl.base_url, ghl.auth_headers())
    yield c
    c.close()


def _make(client: SpecClient, loc: str, **fields: object) -> dict:
    answer = client.post("/contacts/", json={"locationId": loc, **fields})
    assert answer.status_code == 201, answer.text
    return answer.json()["contact"]


def test_contacts_upsert_matches_email_then_phone(ghl: SandboxServer, client: SpecClient) -> None:
    """Upsert updates the email match first, else the phone match, else creates a contact."""
    loc = ghl.location_id
    by_mail = _make(client, loc, email="m@example.com", phone="+15559990001")
    by_phone = _make(client, loc, phone="+15559990002")
    phone = client.post("/contacts/upsert", json={"locationId": loc, "phone": "555-999-0002",
                                                  "tags": ["x"]})
    assert phone.json()["contact"]["id"] == by_phone["id"]
    assert phone.json()["contact"]["tags"] == ["x"]
    both = client.post("/contacts/upsert", json={"locationId": loc, "email": "m@example.com",
                                                 "phone": "+15559990002", "city": "Rome"})
    assert both.json()["contact"]["id"] == by_mail["id"] and both.json()["new"] is False
    fresh = client.post("/contacts/upsert", json={"locationId": loc, "email": "n@example.com"})
    assert fresh.status_code == 200 and fresh.json()["new"] is True
    assert ghl.writes("POST /contacts/upsert") == 3


def test_contacts_duplicate_check_follows_updates_and_deletes(ghl: SandboxServer,
                                                              client: SpecClient) -> None:
    """After a contact's email and phone change, its old ones are free and its new ones are
    duplicates (in any case and phone format); after a delete, its email is free."""
    loc = ghl.location_id
    made = _make(client, loc, email="before@example.com", phone="+15558880001")
    changed = client.put(f"/contacts/{made['id']}",
                         json={"email": "After@Example.com", "phone": "+15558880002"})
    assert changed.status_code == 200, changed.text
    again = client.post("/contacts/", json={"locationId": loc, "email": "AFTER@example.com"})
    assert again.status_code == 400 and again.json()["meta"]["contactId"] == made["id"]
    by_phone = client.get("/contacts/search/duplicate",
                          params={"locationId": loc, "number": "(555) 888-0002"})
    assert by_phone.json()["contact"]["id"] == made["id"]
    freed = _make(client, loc, email="before@example.com", phone="+15558880001")
    assert client.delete(f"/contacts/{made['id']}").status_code == 200
    lookup = client.get("/contacts/search/duplicate",
                        params={"locationId": loc, "email": "after@example.com"})
    assert lookup.status_code == 200 and lookup.json()["contact"] is None
    assert _make(client, loc, email="after@example.com")["id"] not in (made["id"], freed["id"])


def test_contacts_duplicates_allowed_location() -> None:
    """With "Allow Duplicate Contact" on, create accepts duplicates and upsert may force new."""
    with SandboxServer(SandboxConfig(allow_duplicate_contact=True)) as ghl:
        client = SpecClient(ghl.base_url, ghl.auth_headers())
        loc = ghl.location_id
        first = _make(client, loc, email="d@example.com")
        second = _make(client, loc, email="d@example.com")
        assert first["id"] != second["id"]
        matched = client.post("/contacts/upsert", json={"locationId": loc,
                                                        "email": "d@example.com"}).json()
        assert matched["new"] is False and matched["contact"]["id"] == first["id"]
        forced = client.post("/contacts/upsert", json={
            "locationId": loc, "email": "d@example.com", "createNewIfDuplicateAllowed": True})
        assert forced.json()["new"] is True
        client.close()


def test_contacts_every_write_moves_date_updated(ghl: SandboxServer, client: SpecClient) -> None:
    """Each write to a contact sets a later dateUpdated than the one before."""
    cid = _make(client, ghl.location_id, email="w@example.com")["id"]
    stamps = [client.get(f"/contacts/{cid}").json()["contact"]["dateUpdated"]]
    for method, path, body in (
        ("PUT", f"/contacts/{cid}", {"city": "Lyon"}),
        ("POST", f"/contacts/{cid}/tags", {"tags": ["t"]}),
        ("POST", f"/contacts/{cid}/followers", {"followers": ["u"]}),
        ("POST", f"/contacts/{cid}/campaigns/c1", {}),
        ("POST", f"/contacts/{cid}/workflow/w1", {}),
    ):
        assert client.request(method, path, json=body).status_code < 300
        stamps.append(client.get(f"/contacts/{cid}").json()["contact"]["dateUpdated"])
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


def test_contacts_other_location_is_refused(ghl: SandboxServer, client: SpecClient) -> None:
    """A location token cannot act on another location: 403 (not a silent write)."""
    answer = client.post("/contacts/", json={"locationId": OTHER_LOCATION, "email": "o@x.io"})
    assert answer.status_code == 403
    assert answer.json()["message"] == "The token does not have access to this location."
    assert ghl.writes("POST /contacts/") == 0


def _agency_token(ghl: SandboxServer) -> str:
    authorize = httpx.get(f"{ghl.base_url}/oauth/chooselocation", params={
        "client_id": ghl.client_id, "redirect_uri": ghl.redirect_uris[0], "user_type": "Company",
        "scope": "contacts.readonly contacts.write"})
    code = parse_qs(urlsplit(authorize.headers["location"]).query)["code"][0]
    token = httpx.post(f"{ghl.base_url}/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "client_id": ghl.client_id,
        "client_secret": ghl.client_secret, "redirect_uri": ghl.redirect_uris[0]})
    return str(token.json()["access_token"])


def test_contacts_agency_token_limits_per_requested_location() -> None:
    """An agency token's calls count against the location each request names, separately."""
    config = SandboxConfig(location_ids=("locAAAAAAAAAAAAAAAAA", OTHER_LOCATION),
                           rate_limit_requests=2, rate_limit_seconds=60)
    with SandboxServer(config) as ghl:
        client = SpecClient(ghl.base_url, ghl.auth_headers(_agency_token(ghl)))
        statuses = []
        for loc in ("locAAAAAAAAAAAAAAAAA", OTHER_LOCATION):
            for n in range(3):
                answer = client.post("/contacts/", json={"locationId": loc,
                                                         "email": f"{n}@example.com"})
                statuses.append(answer.status_code)
        assert statuses == [201, 201, 429, 201, 201, 429]
        stats = ghl.stats()["locations"]
        assert stats[OTHER_LOCATION]["throttled"] == 1
        assert stats["locAAAAAAAAAAAAAAAAA"]["routes"]["POST /contacts/"]["writes"] == 2
        client.close()


def test_contacts_bulk_tags_add_remove_and_remove_all(ghl: SandboxServer,
                                                      client: SpecClient) -> None:
    """Bulk tags add and remove on many contacts; removeAllTags only works with remove."""
    loc = ghl.location_id
    ids = [_make(client, loc, email=f"bulk{n}@example.com", tags=["keep"])["id"]
           for n in range(3)]
    url = "/contacts/bulk/tags/update/{}"
    added = client.post(url.format("add"), json={"locationId": loc, "contacts": ids,
                                                 "tags": ["Promo"]})
    assert added.json() == {"succeded": True, "errorCount": 0, "responses": ids}
    tags = [client.get(f"/contacts/{i}").json()["contact"]["tags"] for i in ids]
    assert tags == [["keep", "promo"]] * 3
    client.post(url.format("remove"), json={"locationId": loc, "contacts": ids[:1],
                                            "tags": ["promo"]})
    assert client.get(f"/contacts/{ids[0]}").json()["contact"]["tags"] == ["keep"]
    wrong = client.post(url.format("add"), json={"locationId": loc, "contacts": ids,
                                                 "tags": [], "removeAllTags": True})
    assert wrong.status_code == 422
    assert wrong.json()["message"] == ["removeAllTags can only be used with remove type"]
    client.post(url.format("remove"), json={"locationId": loc, "contacts": ids, "tags": [],
                                            "removeAllTags": True})
    assert [client.get(f"/contacts/{i}").json()["contact"]["tags"] for i in ids] == [[]] * 3
    unknown = client.post(url.format("toggle"), json={"locationId": loc, "contacts": ids,
                                                      "tags": ["x"]})
    assert unknown.status_code == 422
