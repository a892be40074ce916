"""Finding contacts: search filters, query, page and searchAfter paging, the deprecated list's
cursor, and listing by business; every answer validated against the spec."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from spec_client import SpecClient

from connector.sandbox.server import SandboxServer


@pytest.fixture
def client(ghl: SandboxServer) -> Iterator[SpecClient]:
    c = SpecClient(ghl.base_url, ghl.auth_headers())
    yield c
    c.close()


def _search(client: SpecClient, loc: str, **body: object) -> dict:
    answer = client.post("/contacts/search", json={"locationId": loc, "pageLimit": 50, **body})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _make(client: SpecClient, loc: str, **fields: object) -> dict:
    answer = client.post("/contacts/", json={"locationId": loc, **fields})
    assert answer.status_code == 201, answer.text
    return answer.json()["contact"]


def test_search_filters_by_email_phone_and_tags(ghl: SandboxServer, client: SpecClient) -> None:
    """eq filters match email case-insensitively, phones in any format, and tags."""
    loc = ghl.location_id
    one = _make(client, loc, email="Find.Me@Example.com", phone="+1 555 777 0001", tags=["gold"])
    by_email = _search(client, loc, filters=[{"field": "email", "operator": "eq",
                                              "value": "find.me@example.com"}])
    assert [c["id"] for c in by_email["contacts"]] == [one["id"]] and by_email["total"] == 1
    by_phone = _search(client, loc, filters=[{"field": "phone", "operator": "eq",
                                              "value": "(555) 777-0001"}])
    assert [c["id"] for c in by_phone["contacts"]] == [one["id"]]
    by_tag = _search(client, loc, filters=[{"field": "tags", "operator": "eq", "value": "gold"}])
    assert [c["id"] for c in by_tag["contacts"]] == [one["id"]]
    either = _search(client, loc, filters=[{"group": "OR", "filters": [
        {"field": "tags", "operator": "eq", "value": "gold"},
        {"field": "email", "operator": "contains", "value": "nobody"}]}])
    assert either["total"] == 1


def test_search_date_ranges_and_free_text_query(ghl: SandboxServer, client: SpecClient) -> None:
    """dateUpdated ranges select recent changes; query matches names and emails."""
    loc = ghl.location_id
    before = _search(client, loc)["contacts"][0]["dateAdded"]
    new = _make(client, loc, firstName="Zebulon", email="zeb@example.com")
    recent = _search(client, loc, filters=[{"field": "dateUpdated", "operator": "range",
                                            "value": {"gt": before}}])
    assert [c["id"] for c in recent["contacts"]] == [new["id"]]
    assert [c["id"] for c in _search(client, loc, query="zebul")["contacts"]] == [new["id"]]
    old = _search(client, loc, filters=[{"field": "dateAdded", "operator": "range",
                                         "value": {"lte": before}}])
    assert new["id"] not in {c["id"] for c in old["contacts"]} and old["total"] == 12


def test_search_pages_and_search_after_walk_every_contact_once(ghl: SandboxServer,
                                                               client: SpecClient) -> None:
    """page/pageLimit and searchAfter each visit all 12 seed contacts exactly once, in order."""
    loc = ghl.location_id
    paged = [c["id"] for p in (1, 2, 3) for c in _search(client, loc, pageLimit=5,
                                                          page=p)["contacts"]]
    seen: list[str] = []
    after = None
    while True:
        body = {"pageLimit": 5, "sort": [{"field": "dateUpdated", "direction": "asc"}]}
        page = _search(client, loc, **body, **({"searchAfter": after} if after else {}))
        if not page["contacts"]:
            break
        seen += [c["id"] for c in page["contacts"]]
        after = page["contacts"][-1]["searchAfter"]
    assert len(paged) == len(set(paged)) == 12
    assert len(seen) == len(set(seen)) == 12 and set(seen) == set(paged)


def test_search_pages_see_writes_made_between_pages(ghl: SandboxServer,
                                                  client: SpecClient) -> None:
    """A write between two pages (a rename that moves a contact in the sort, a new contact, a
    delete) shows in the very next page and in the total: orderings are not kept stale."""
    loc = ghl.location_id
    by_name = {"pageLimit": 5, "sort": [{"field": "firstName", "direction": "asc"}]}
    first = _search(client, loc, **by_name)
    assert first["total"] == 12
    last = first["contacts"][-1]
    moved = client.put(f"/contacts/{first['contacts'][0]['id']}", json={"firstName": "Zzz"})
    assert moved.status_code == 200, moved.text
    made = _make(client, loc, firstName="Zzzz", email="zzzz@example.com")
    gone = first["contacts"][1]["id"]
    assert client.delete(f"/contacts/{gone}").status_code == 200
    seen: list[str] = []
    after = last["searchAfter"]
    while after is not None:
        page = _search(client, loc, **by_name, searchAfter=after)
        assert page["total"] == 12
        seen += [c["id"] for c in page["contacts"]]
        after = page["contacts"][-1]["searchAfter"] if page["contacts"] else None
    assert len(seen) == 9  # the 7 after the cursor, the renamed one and the new one
    assert seen[-2:] == [first["contacts"][0]["id"], made["id"]] and gone not in seen


def test_search_rejects_page_with_search_after_and_big_page_limit(ghl: SandboxServer,
                                                                  client: SpecClient) -> None:
    """page and searchAfter together, or pageLimit over 500, are GHL 400s."""
    both = client.post("/contacts/search", json={"locationId": ghl.location_id, "pageLimit": 5,
                                                 "page": 1, "searchAfter": [1, "x"]})
    assert both.status_code == 400
    big = client.post("/contacts/search", json={"locationId": ghl.location_id,
                                                "pageLimit": 501})
    assert big.status_code == 400 and "pageLimit" in big.json()["message"]


def test_legacy_list_follows_start_after_cursor(ghl: SandboxServer, client: SpecClient) -> None:
    """GET /contacts/ pages with startAfter/startAfterId from meta until nextPageUrl is null."""
    loc = ghl.location_id
    seen: list[str] = []
    params: dict[str, object] = {"locationId": loc, "limit": 5}
    for _ in range(5):
        answer = client.get("/contacts/", params=params).json()
        seen += [c["id"] for c in answer["contacts"]]
        meta = answer["meta"]
        assert answer["count"] == meta["total"] == 12
        if meta["nextPageUrl"] is None:
            break
        params = {"locationId": loc, "limit": 5, "startAfter": meta["startAfter"],
                  "startAfterId": meta["startAfterId"]}
    assert len(seen) == len(set(seen)) == 12 and meta["currentPage"] == 3
    too_many = client.get("/contacts/", params={"locationId": loc, "limit": 101})
    assert too_many.status_code == 422


def test_by_business_pages_with_skip_and_limit(ghl: SandboxServer, client: SpecClient) -> None:
    """GET /contacts/business/{id} lists only that business's contacts, skip/limit paged."""
    loc = ghl.location_id
    ids = [c["id"] for c in _search(client, loc, pageLimit=4)["contacts"]]
    client.post("/contacts/bulk/business", json={"locationId": loc, "ids": ids,
                                                 "businessId": "acme"})
    first = client.get("/contacts/business/acme", params={"locationId": loc, "limit": "3"})
    rest = client.get("/contacts/business/acme", params={"locationId": loc, "skip": "3"})
    got = [c["id"] for c in first.json()["contacts"] + rest.json()["contacts"]]
    assert sorted(got) == sorted(ids) and first.json()["count"] == 4
    client.post("/contacts/bulk/business", json={"locationId": loc, "ids": ids[:1],
                                                 "businessId": None})
    after = client.get("/contacts/business/acme", params={"locationId": loc}).json()
    assert after["count"] == 3
