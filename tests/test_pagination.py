"""pagination.iterate over a real server: cursor, page and offset styles, max_items, laziness."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from itertools import islice
from typing import Any

import pytest
from fakeapi import Answer, FakeApi, Recorded

from connector.client.httpclient import HttpClient
from connector.client.pagination import iterate
from connector.client.request import RequestSpec
from connector.errors import RemoteError

RECORDS = [{"id": f"c{n:02d}", "dateAdded": 1000 + n, "searchAfter": [1000 + n, f"c{n:02d}"]}
           for n in range(23)]


@pytest.fixture
def client(api: FakeApi) -> Iterator[HttpClient]:
    with HttpClient(base_url=api.url) as c:
        yield c


def getter(client: HttpClient, path: str, seen: list[dict[str, Any]]) -> Callable[..., Any]:
    """A ``call`` that sends its input as the query string, remembering each input."""

    def call(values: Mapping[str, Any]) -> Any:
        seen.append(dict(values))
        query = tuple((k, str(v)) for k, v in values.items())
        return client.send(RequestSpec("GET", path, query=query)).data

    return call


def poster(client: HttpClient, path: str, seen: list[dict[str, Any]]) -> Callable[..., Any]:
    """A ``call`` that sends its input as the JSON body, remembering each input."""

    def call(values: Mapping[str, Any]) -> Any:
        seen.append(dict(values))
        return client.send(RequestSpec("POST", path, json=dict(values))).data

    return call


def cursor_handler(request: Recorded) -> Answer:
    """GET /contacts/: records after startAfterId; meta carries the next cursor."""
    limit = int(request.query.get("limit", 20))
    after = request.query.get("startAfterId")
    start = next((i + 1 for i, r in enumerate(RECORDS) if r["id"] == after), 0)
    page = RECORDS[start : start + limit]
    last = page[-1] if page else None
    meta = {"startAfterId": last["id"] if last else None,
            "startAfter": last["dateAdded"] if last else None, "total": len(RECORDS)}
    return Answer(200, {"contacts": page, "meta": meta})


def search_handler(request: Recorded) -> Answer:
    """POST /contacts/search: ``page`` numbers or a ``searchAfter`` cursor, and a total."""
    body = request.json
    limit = body["pageLimit"]
    if "searchAfter" in body:
        start = next(i + 1 for i, r in enumerate(RECORDS) if r["searchAfter"] == body["searchAfter"])
    else:
        start = (body.get("page", 1) - 1) * limit
    return Answer(200, {"contacts": RECORDS[start : start + limit], "total": len(RECORDS)})


def offset_handler(request: Recorded) -> Answer:
    """GET /contacts/business/B1: skip and limit, which GHL types as strings."""
    skip, limit = int(request.query["skip"]), int(request.query["limit"])
    return Answer(200, {"contacts": RECORDS[skip : skip + limit], "count": len(RECORDS)})


CURSOR = {
    "style": "cursor",
    "items": "contacts",
    "limit": {"param": "limit", "default": 10, "max": 100},
    "next": {"startAfterId": "meta.startAfterId", "startAfter": "meta.startAfter"},
}
SEARCH = {"style": "page", "items": "contacts", "page": "page", "total": "total",
          "limit": {"param": "pageLimit", "default": 10, "max": 500}}
OFFSET = {"style": "offset", "items": "contacts", "offset": "skip",
          "limit": {"param": "limit", "default": 25, "max": 100}}


def ids(records: Iterator[Any]) -> list[str]:
    return [r["id"] for r in records]


def test_pagination_cursor_walks_all_pages(api: FakeApi, client: HttpClient) -> None:
    """Cursor style follows meta.startAfterId/startAfter until an empty page."""
    api.route("GET", "/contacts/", cursor_handler)
    seen: list[dict[str, Any]] = []
    records = iterate(getter(client, "/contacts/", seen), CURSOR, {"locationId": "L1"})
    assert ids(records) == [r["id"] for r in RECORDS]
    assert [s.get("startAfterId") for s in seen] == [None, "c09", "c19", "c22"]
    assert seen[1] == {"locationId": "L1", "limit": 10, "startAfterId": "c09", "startAfter": 1009}


def test_pagination_cursor_from_last_record(api: FakeApi, client: HttpClient) -> None:
    """A ``$last.`` cursor is read from the page's last record."""
    api.route("POST", "/contacts/search", search_handler)
    pagination = {"style": "cursor", "items": "contacts", "next": {"searchAfter": "$last.searchAfter"},
                  "limit": {"param": "pageLimit", "default": 10}}
    seen: list[dict[str, Any]] = []
    records = iterate(poster(client, "/contacts/search", seen), pagination, {"locationId": "L1"})
    assert ids(records) == [r["id"] for r in RECORDS]
    assert [s.get("searchAfter") for s in seen] == [None, [1009, "c09"], [1019, "c19"], [1022, "c22"]]


def test_pagination_cursor_stops_when_not_advancing(api: FakeApi, client: HttpClient) -> None:
    """A server that returns the same cursor again does not loop forever."""
    page = {"contacts": RECORDS[:2], "meta": {"startAfterId": "c01", "startAfter": 1001}}
    api.route("GET", "/contacts/", lambda request: Answer(200, page))
    seen: list[dict[str, Any]] = []
    records = list(iterate(getter(client, "/contacts/", seen), CURSOR, {}))
    assert len(records) == 4
    assert len(api.requests) == 2


def test_pagination_cursor_stops_when_next_missing(api: FakeApi, client: HttpClient) -> None:
    """A response without one of the ``next`` values ends the walk after its records."""
    api.add("GET", "/contacts/", json={"contacts": RECORDS[:3], "meta": {"startAfterId": "c02"}})
    api.add("GET", "/contacts/", json={"contacts": RECORDS[3:6], "meta": {}})
    records = iterate(getter(client, "/contacts/", []), CURSOR, {})
    assert ids(records) == [r["id"] for r in RECORDS[:3]]
    assert len(api.requests) == 1


def test_pagination_cursor_max_items_fetches_only_needed_pages(
    api: FakeApi, client: HttpClient
) -> None:
    """max_items stops fetching: 15 records at 10 per page take exactly 2 requests."""
    api.route("GET", "/contacts/", cursor_handler)
    seen: list[dict[str, Any]] = []
    records = iterate(getter(client, "/contacts/", seen), CURSOR, {}, max_items=15)
    assert ids(records) == [r["id"] for r in RECORDS[:15]]
    assert len(api.requests) == 2


def test_pagination_is_lazy(api: FakeApi, client: HttpClient) -> None:
    """Nothing is fetched until records are asked for, and then one page at a time."""
    api.route("GET", "/contacts/", cursor_handler)
    records = iterate(getter(client, "/contacts/", []), CURSOR, {})
    assert api.requests == []
    assert ids(islice(records, 10)) == [r["id"] for r in RECORDS[:10]]
    assert len(api.requests) == 1
    next(records)
    assert len(api.requests) == 2


def test_pagination_page_numbers_until_short_page(api: FakeApi, client: HttpClient) -> None:
    """Page style sends page 1, 2, 3 and stops after the short third page."""
    api.route("POST", "/contacts/search", search_handler)
    seen: list[dict[str, Any]] = []
    pagination = {k: v for k, v in SEARCH.items() if k != "total"}
    records = iterate(poster(client, "/contacts/search", seen), pagination, {"locationId": "L1"})
    assert ids(records) == [r["id"] for r in RECORDS]
    assert [(s["page"], s["pageLimit"]) for s in seen] == [(1, 10), (2, 10), (3, 10)]


def test_pagination_page_stops_at_total(api: FakeApi, client: HttpClient) -> None:
    """Page style stops when ``total`` records were seen, even if the last page is full."""
    api.route("POST", "/contacts/search", search_handler)
    records = iterate(poster(client, "/contacts/search", []), SEARCH, {"pageLimit": 23})
    assert len(list(records)) == 23
    assert len(api.requests) == 1


def test_pagination_page_switches_to_search_after(api: FakeApi, client: HttpClient) -> None:
    """With ``next``, page 2 onwards sends searchAfter from the last record and no page."""
    api.route("POST", "/contacts/search", search_handler)
    pagination = {**SEARCH, "next": {"searchAfter": "$last.searchAfter"}}
    seen: list[dict[str, Any]] = []
    records = iterate(poster(client, "/contacts/search", seen), pagination, {"locationId": "L1"})
    assert ids(records) == [r["id"] for r in RECORDS]
    assert seen[0] == {"locationId": "L1", "pageLimit": 10, "page": 1}
    assert seen[1] == {"locationId": "L1", "pageLimit": 10, "searchAfter": [1009, "c09"]}
    assert len(seen) == 3


def test_pagination_page_max_items(api: FakeApi, client: HttpClient) -> None:
    """Page style with max_items=12 fetches two pages and yields twelve records."""
    api.route("POST", "/contacts/search", search_handler)
    records = iterate(poster(client, "/contacts/search", []), SEARCH, {}, max_items=12)
    assert ids(records) == [r["id"] for r in RECORDS[:12]]
    assert [r.json["page"] for r in api.requests] == [1, 2]


def test_pagination_page_given_keeps_page_size(api: FakeApi, client: HttpClient) -> None:
    """Starting at a given page with a small max_items keeps the page size (page 2 stays 11-20)."""
    api.route("POST", "/contacts/search", search_handler)
    records = iterate(poster(client, "/contacts/search", []), SEARCH, {"page": 2}, max_items=3)
    assert ids(records) == ["c10", "c11", "c12"]
    assert [r.json for r in api.requests] == [{"page": 2, "pageLimit": 10}]


def test_pagination_offset_keeps_string_types(api: FakeApi, client: HttpClient) -> None:
    """Offset style advances skip by the page size, as strings when the caller used strings."""
    api.route("GET", "/contacts/business/B1", offset_handler)
    seen: list[dict[str, Any]] = []
    call = getter(client, "/contacts/business/B1", seen)
    records = iterate(call, OFFSET, {"locationId": "L1", "limit": "10"})
    assert ids(records) == [r["id"] for r in RECORDS]
    assert [(s["skip"], s["limit"]) for s in seen] == [("0", "10"), ("10", "10"), ("20", "10")]


def test_pagination_offset_numbers_and_max_items(api: FakeApi, client: HttpClient) -> None:
    """Offset style with numbers stays numeric; max_items below the page size shrinks the page."""
    api.route("GET", "/contacts/business/B1", offset_handler)
    seen: list[dict[str, Any]] = []
    call = getter(client, "/contacts/business/B1", seen)
    assert ids(iterate(call, OFFSET, {"skip": 5}, max_items=3)) == ["c05", "c06", "c07"]
    assert seen == [{"skip": 5, "limit": 3}]


def test_pagination_limit_capped_at_max(api: FakeApi, client: HttpClient) -> None:
    """A caller's limit above limit.max is capped."""
    api.route("GET", "/contacts/", cursor_handler)
    seen: list[dict[str, Any]] = []
    list(iterate(getter(client, "/contacts/", seen), CURSOR, {"limit": 500}))
    assert {s["limit"] for s in seen} == {100}
    assert len(seen) == 2


def test_pagination_items_not_a_list(api: FakeApi, client: HttpClient) -> None:
    """A response whose items path is not a list raises a RemoteError naming the path."""
    api.add("GET", "/contacts/", json={"contacts": {"id": "x"}})
    with pytest.raises(RemoteError, match=r"^pagination: the response's 'contacts' is a dict"):
        list(iterate(getter(client, "/contacts/", []), CURSOR, {}))
