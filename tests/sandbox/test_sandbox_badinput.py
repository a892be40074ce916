"""Bad input gets GHL-shaped 4xx answers, and never crashes the sandbox or loses its state."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spec_client import SpecClient

from connector.sandbox.server import SandboxServer


@pytest.fixture
def client(ghl: SandboxServer) -> Iterator[SpecClient]:
    c = SpecClient(ghl.base_url, ghl.auth_headers())
    yield c
    c.close()


def _count(client: SpecClient, loc: str) -> int:
    return int(client.post("/contacts/search", json={"locationId": loc, "pageLimit": 1}
                           ).json()["total"])


def test_badinput_malformed_json_is_a_400(ghl: SandboxServer, client: SpecClient) -> None:
    """A body that is not JSON gets NestJS's 400 parse error."""
    answer = client.post("/contacts/", content=b'{"locationId": ',
                         headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    assert answer.json()["message"].startswith("Unexpected token in JSON")


def test_badinput_unknown_property_and_wrong_types_are_422(ghl: SandboxServer,
                                                          client: SpecClient) -> None:
    """Unknown properties, wrong types and missing required fields are listed in one 422."""
    answer = client.post(f"/contacts/{'x' * 20}/tasks",
                         json={"title": 5, "completed": "yes", "colour": "red"})
    assert answer.status_code == 422
    assert answer.json()["message"] == [
        "property colour should not exist", "dueDate should not be empty",
        "title must be a string", "completed must be a boolean value"]
    tags = client.post("/contacts/x/tags", json={"tags": ["ok", 3]})
    assert tags.json()["message"] == ["each value in tags must be a string"]
    email = client.post("/contacts/", json={"locationId": ghl.location_id, "email": "bob@"})
    assert email.json()["message"] == ["email must be an email"]


def test_badinput_json_that_is_not_an_object_is_a_422(ghl: SandboxServer,
                                                      client: SpecClient) -> None:
    """A JSON array or string where an object belongs is rejected, not crashed on."""
    for content in (b"[1, 2]", b'"text"', b"null"):
        answer = client.post("/contacts/upsert", content=content,
                             headers={"Content-Type": "application/json"})
        assert answer.status_code == 422, content


def test_badinput_oversized_body_is_a_413(ghl: SandboxServer) -> None:
    """A body over the size limit gets a 413 and the server keeps serving."""
    big = b'{"body": "' + b"x" * (ghl.config.max_body_bytes + 10) + b'"}'
    answer = httpx.post(f"{ghl.base_url}/contacts/abc/notes", content=big,
                        headers={**ghl.auth_headers(), "Content-Type": "application/json"})
    assert answer.status_code == 413
    assert answer.json() == {"statusCode": 413, "message": "request entity too large",
                             "error": "Payload Too Large"}


def test_badinput_unknown_route_is_a_ghl_404(ghl: SandboxServer) -> None:
    """A route GHL does not have answers NestJS's 404 body, with rate-limit headers."""
    answer = httpx.patch(f"{ghl.base_url}/contacts/abc", headers=ghl.auth_headers())
    assert answer.status_code == 404
    assert answer.json() == {"statusCode": 404, "message": "Cannot PATCH /contacts/abc",
                             "error": "Not Found"}
    assert "x-ratelimit-max" in answer.headers


def test_badinput_missing_version_header_is_a_400(ghl: SandboxServer) -> None:
    """GHL requires the Version header on every Contacts call."""
    answer = httpx.get(f"{ghl.base_url}/contacts/abc",
                       headers={"Authorization": f"Bearer {ghl.private_token}"})
    assert answer.status_code == 400
    assert answer.json()["message"] == "Version header was not found"


def test_badinput_never_loses_state(ghl: SandboxServer, client: SpecClient) -> None:
    """After a barrage of bad requests the contacts are all still there and it still answers."""
    loc = ghl.location_id
    before = _count(client, loc)
    junk = [b"", b"{", b"\xff\xfe", b'{"locationId": null}', b'{"locationId": 1}',
            b'{"locationId": "' + loc.encode() + b'", "tags": "notalist"}']
    for body in junk:
        for path in ("/contacts/", "/contacts/upsert", "/contacts/search"):
            answer = client.post(path, content=body, validate=False,
                                 headers={"Content-Type": "application/json"})
            assert 400 <= answer.status_code < 500, (path, body, answer.text)
    weird = client.post("/contacts/search", json={"locationId": loc, "pageLimit": 5,
                                                  "filters": [{"field": "x", "operator": "??"}]})
    assert weird.status_code == 400
    assert _count(client, loc) == before


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=6,
)
_FIELDS = st.sampled_from(["locationId", "email", "phone", "tags", "filters", "sort",
                           "searchAfter", "pageLimit", "page", "query", "customFields",
                           "dnd", "completed", "title", "dueDate", "body", "followers",
                           "contacts", "ids", "businessId", "removeAllTags"])


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["/contacts/", "/contacts/upsert", "/contacts/search",
                             "/contacts/bulk/tags/update/remove", "/contacts/bulk/business",
                             "/contacts/{cid}", "/contacts/{cid}/tasks", "/contacts/{cid}/tags"]),
       body=st.dictionaries(_FIELDS, _JSON, max_size=5))
def test_badinput_random_bodies_never_cause_a_5xx(ghl: SandboxServer, client: SpecClient,
                                                  path: str, body: dict) -> None:
    """Random JSON bodies on write routes get 2xx or GHL 4xx answers, never a 500."""
    ghl.set_limits(requests=1_000_000)
    cid = next(iter(ghl.app.store.contacts))
    body = {"locationId": ghl.location_id, **body} if "locationId" not in body else body
    method = "PUT" if path == "/contacts/{cid}" else "POST"
    answer = client.request(method, path.format(cid=cid), json=body, validate=False)
    assert answer.status_code < 500, (path, body, answer.text)
