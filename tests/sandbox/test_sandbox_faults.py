"""Fault injection: seeded error rates, forced 429 bursts, hung requests, connection resets and
ambiguous writes, set per route through the Python API or the control endpoint."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from spec_client import SpecClient

from connector.sandbox.server import SandboxServer

GET_CONTACT = "GET /contacts/{contactId}"


@pytest.fixture
def client(ghl: SandboxServer) -> Iterator[SpecClient]:
    with SpecClient(ghl.base_url, ghl.auth_headers()) as c:
        yield c


def _contact(ghl: SandboxServer) -> str:
    return next(iter(ghl.app.store.contacts))


def test_faults_error_status_for_count_requests(ghl: SandboxServer, client: SpecClient) -> None:
    """error_rate 1 with count 2 fails exactly the next two matching requests with 503."""
    ghl.set_faults({"route": GET_CONTACT, "error_rate": 1.0, "error_status": 503, "count": 2})
    path = f"/contacts/{_contact(ghl)}"
    assert [client.get(path).status_code for _ in range(3)] == [503, 503, 200]
    assert client.get("/contacts/", params={"locationId": ghl.location_id}).status_code == 200


def test_faults_are_deterministic_for_a_seed(ghl: SandboxServer, client: SpecClient) -> None:
    """The same seed and the same requests give the same mix of failures after a reset."""
    rule = {"route": "*", "error_rate": 0.5, "error_status": 502}
    runs = []
    for _ in range(2):
        ghl.reset()
        ghl.set_faults(rule)
        path = f"/contacts/{_contact(ghl)}"
        runs.append([client.get(path).status_code for _ in range(24)])
    assert runs[0] == runs[1]
    assert set(runs[0]) == {200, 502}


def test_faults_burst_429(ghl: SandboxServer, client: SpecClient) -> None:
    """burst_429 answers the next N requests with a GHL 429, counted as throttled."""
    ghl.set_faults({"burst_429": 3})
    path = f"/contacts/{_contact(ghl)}"
    answers = [client.get(path) for _ in range(4)]
    assert [a.status_code for a in answers] == [429, 429, 429, 200]
    assert answers[0].json()["statusCode"] == 429 and "x-ratelimit-max" in answers[0].headers
    assert ghl.location_stats()["throttled"] == 3


def test_faults_hang_past_client_timeout(ghl: SandboxServer, client: SpecClient) -> None:
    """A hung request times the client out; the sandbox keeps serving others meanwhile."""
    ghl.set_faults({"route": GET_CONTACT, "hang_seconds": 1.0, "count": 1})
    path = f"/contacts/{_contact(ghl)}"
    with pytest.raises(httpx.ReadTimeout):
        client.get(path, timeout=0.2)
    assert client.get(path).status_code == 200


def test_faults_connection_reset(ghl: SandboxServer, client: SpecClient) -> None:
    """reset_rate 1 closes the connection without an answer; the next request works."""
    ghl.set_faults({"route": GET_CONTACT, "reset_rate": 1.0, "count": 1})
    path = f"/contacts/{_contact(ghl)}"
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(path)
    assert client.get(path).status_code == 200


@pytest.mark.parametrize("reset", [False, True])
def test_faults_ambiguous_write_is_applied(ghl: SandboxServer, client: SpecClient,
                                           reset: bool) -> None:
    """An ambiguous write takes effect although the client sees a 5xx or a dropped connection."""
    ghl.set_faults({"route": "POST /contacts/", "ambiguous_rate": 1.0, "ambiguous_reset": reset,
                    "error_status": 500, "count": 1})
    body = {"locationId": ghl.location_id, "email": "maybe@example.com"}
    if reset:
        with pytest.raises(httpx.RemoteProtocolError):
            client.post("/contacts/", json=body)
    else:
        assert client.post("/contacts/", json=body).status_code == 500
    again = client.post("/contacts/", json=body)
    assert again.status_code == 400 and again.json()["meta"]["matchingField"] == "email"
    assert ghl.writes("POST /contacts/") == 1


def test_faults_control_endpoint(ghl: SandboxServer, client: SpecClient) -> None:
    """POST/GET/DELETE /_sandbox/faults manage rules; malformed rules are a 400."""
    control = f"{ghl.base_url}/_sandbox/faults"
    added = httpx.post(control, json={"route": GET_CONTACT, "latency_ms": 5,
                                      "error_rate": 1, "count": 1})
    assert added.status_code == 200 and added.json()["rules"][0]["latency_ms"] == 5
    assert client.get(f"/contacts/{_contact(ghl)}").status_code == 500
    assert httpx.get(control).json() == {"rules": []}
    assert httpx.post(control, json={"error_rate": 2}).status_code == 400
    assert httpx.post(control, json={"bogus": 1}).status_code == 400
    httpx.post(control, json=[{"burst_429": 5}])
    assert httpx.delete(control).json() == {"rules": []}
    assert client.get(f"/contacts/{_contact(ghl)}").status_code == 200
