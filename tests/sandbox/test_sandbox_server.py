"""Running the sandbox: the child process and its banner, the thread runner's Python API, and
OAuth wired into every Contacts route (code flow, scopes, expiry) over real HTTP."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

from connector.sandbox.config import SandboxConfig
from connector.sandbox.process import SandboxProcess
from connector.sandbox.server import SandboxServer


def _oauth_token(ghl: SandboxServer, scope: str) -> dict:
    """Run the authorization-code flow over HTTP; return the token response."""
    authorize = httpx.get(f"{ghl.base_url}/oauth/chooselocation", params={
        "response_type": "code", "client_id": ghl.client_id,
        "redirect_uri": ghl.redirect_uris[0], "scope": scope, "state": "s1"})
    assert authorize.status_code == 302, authorize.text
    query = parse_qs(urlsplit(authorize.headers["location"]).query)
    assert query["state"] == ["s1"]
    token = httpx.post(f"{ghl.base_url}/oauth/token", data={
        "grant_type": "authorization_code", "code": query["code"][0],
        "client_id": ghl.client_id, "client_secret": ghl.client_secret,
        "redirect_uri": ghl.redirect_uris[0]})
    assert token.status_code == 200, token.text
    return dict(token.json())


def test_server_subprocess_prints_banner_and_serves() -> None:
    """``python -m connector.sandbox --port 0`` prints its URL first and serves seeded data."""
    with SandboxProcess("--seed-contacts", "3", "--rate-limit", "50/5") as child:
        assert child.base_url.startswith("http://127.0.0.1:")
        assert {"client_id", "client_secret", "location_id", "private_token"} <= set(child.info)
        headers = {"Authorization": f"Bearer {child.private_token}", "Version": "2021-07-28"}
        found = httpx.post(f"{child.base_url}/contacts/search", headers=headers,
                           json={"locationId": child.info["location_id"], "pageLimit": 10})
        assert found.status_code == 200 and found.json()["total"] == 3
        assert found.headers["x-ratelimit-max"] == "50"
        assert found.headers["x-ratelimit-interval-milliseconds"] == "5000"


def test_server_oauth_code_flow_token_works_on_contacts(ghl: SandboxServer) -> None:
    """An access token from the code flow reads and writes contacts; a refresh rotates it."""
    token = _oauth_token(ghl, "contacts.readonly contacts.write")
    headers = ghl.auth_headers(token["access_token"])
    made = httpx.post(f"{ghl.base_url}/contacts/", headers=headers,
                      json={"locationId": ghl.location_id, "email": "oauth@example.com"})
    assert made.status_code == 201
    form = {"grant_type": "refresh_token", "refresh_token": token["refresh_token"],
            "client_id": ghl.client_id, "client_secret": ghl.client_secret}
    assert httpx.post(f"{ghl.base_url}/oauth/token", data=form).status_code == 200
    reused = httpx.post(f"{ghl.base_url}/oauth/token", data=form)
    assert reused.status_code in (400, 401)


def test_server_scopes_are_enforced_per_operation(ghl: SandboxServer) -> None:
    """A read-only token may read but every write (bulk ones too) answers GHL's scope 401."""
    headers = ghl.auth_headers(_oauth_token(ghl, "contacts.readonly")["access_token"])
    cid = next(iter(ghl.app.store.contacts))
    assert httpx.get(f"{ghl.base_url}/contacts/{cid}", headers=headers).status_code == 200
    for method, path, body in (
        ("PUT", f"/contacts/{cid}", {"city": "x"}),
        ("POST", "/contacts/bulk/business", {"locationId": ghl.location_id, "ids": [cid],
                                             "businessId": "b"}),
    ):
        answer = httpx.request(method, f"{ghl.base_url}{path}", headers=headers, json=body)
        assert answer.status_code == 401
        assert answer.json()["message"] == "The token is not authorized for this scope."
    assert ghl.writes("PUT /contacts/{contactId}") == 0


def test_server_expired_tokens_are_refused(ghl: SandboxServer) -> None:
    """After expire_tokens() an OAuth access token gets 401; the private token still works."""
    headers = ghl.auth_headers(_oauth_token(ghl, "contacts.readonly")["access_token"])
    cid = next(iter(ghl.app.store.contacts))
    assert ghl.expire_tokens() >= 1
    assert httpx.get(f"{ghl.base_url}/contacts/{cid}", headers=headers).status_code == 401
    ok = httpx.get(f"{ghl.base_url}/contacts/{cid}", headers=ghl.auth_headers())
    assert ok.status_code == 200


def test_server_thread_runner_starts_and_stops_cleanly() -> None:
    """A SandboxServer starts on a free port, answers, stops, and keeps secrets out of reprs."""
    config = SandboxConfig(private_token="pit-secret-value", client_secret="shh")
    with SandboxServer(config, seed_contacts=2) as server:
        assert httpx.get(f"{server.base_url}/_sandbox/stats").json()["contacts"] == 2
        assert server.private_token == "pit-secret-value"
        text = repr(server) + repr(server.config) + repr(server.app)
        assert "pit-secret-value" not in text and "shh" not in text
        url = server.base_url
    try:
        httpx.get(f"{url}/_sandbox/stats", timeout=1)
    except httpx.ConnectError:
        pass
    else:
        raise AssertionError("the server still answers after stop()")


def test_server_appointments_control_endpoint(ghl: SandboxServer) -> None:
    """/_sandbox/appointments books, changes and deletes what the Contacts API then lists."""
    control = f"{ghl.base_url}/_sandbox/appointments"
    cid = next(iter(ghl.app.store.contacts))
    booked = httpx.post(control, json={"contactId": cid, "title": "Intro"})
    assert booked.status_code == 201
    event_id = booked.json()["appointment"]["id"]
    moved = httpx.put(f"{control}/{event_id}", json={"title": "Intro 2"})
    assert moved.json()["appointment"]["title"] == "Intro 2"
    listed = httpx.get(f"{ghl.base_url}/contacts/{cid}/appointments",
                       headers=ghl.auth_headers()).json()["events"]
    assert [e["title"] for e in listed if e["id"] == event_id] == ["Intro 2"]
    assert httpx.delete(f"{control}/{event_id}").json() == {"succeded": True}
    assert httpx.delete(f"{control}/{event_id}").status_code == 404
    assert httpx.post(control, json={"contactId": "nope"}).status_code == 404
    assert httpx.post(control, json={"contactId": cid, "colour": "red"}).status_code == 400
