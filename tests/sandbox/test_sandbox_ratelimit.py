"""GHL's per-location rate limits: the X-RateLimit-* headers, 429s past the burst window or the
daily quota, and the counters tests use to prove a client stayed within limits."""

from __future__ import annotations

import httpx
import pytest
from spec_client import SpecClient

from connector.sandbox.config import parse_rate_limit
from connector.sandbox.server import SandboxServer


def _get(ghl: SandboxServer, client: SpecClient, contact_id: str) -> httpx.Response:
    return client.get(f"/contacts/{contact_id}")


def _client(ghl: SandboxServer) -> SpecClient:
    return SpecClient(ghl.base_url, ghl.auth_headers())


def _some_contact(ghl: SandboxServer) -> str:
    return next(iter(ghl.app.store.contacts))


def test_ratelimit_headers_on_every_answer(ghl: SandboxServer) -> None:
    """200s and 4xx alike carry the five X-RateLimit-* headers with GHL's default limits."""
    with _client(ghl) as client:
        ok = _get(ghl, client, _some_contact(ghl))
        missing = _get(ghl, client, "nope")
    for answer in (ok, missing):
        assert answer.headers["x-ratelimit-max"] == "100"
        assert answer.headers["x-ratelimit-interval-milliseconds"] == "10000"
        assert answer.headers["x-ratelimit-limit-daily"] == "200000"
    assert ok.headers["x-ratelimit-remaining"] == "99"
    assert missing.headers["x-ratelimit-remaining"] == "98"
    assert missing.headers["x-ratelimit-daily-remaining"] == "199998"


def test_ratelimit_burst_window_answers_429_and_counts_it(ghl: SandboxServer) -> None:
    """Past N requests in the window the sandbox answers 429; stats show the excess."""
    ghl.set_limits(requests=5, seconds=60)
    contact_id = _some_contact(ghl)
    with _client(ghl) as client:
        answers = [_get(ghl, client, contact_id) for _ in range(7)]
    assert [a.status_code for a in answers] == [200] * 5 + [429] * 2
    assert [a.headers["x-ratelimit-remaining"] for a in answers[:5]] == ["4", "3", "2", "1", "0"]
    assert answers[5].json() == {"statusCode": 429, "message": "Too Many Requests",
                                 "error": "Too Many Requests"}
    assert not ghl.within_limits()
    seen = ghl.location_stats()
    assert seen["requests"] == 7 and seen["throttled"] == 2 and seen["max_window"] == 7
    route = seen["routes"]["GET /contacts/{contactId}"]
    assert route["statuses"] == {"200": 5, "429": 2}


def test_ratelimit_daily_quota(ghl: SandboxServer) -> None:
    """The daily quota refuses requests once used up, whatever the burst window allows."""
    ghl.set_limits(daily=3)
    contact_id = _some_contact(ghl)
    with _client(ghl) as client:
        answers = [_get(ghl, client, contact_id) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[2].headers["x-ratelimit-daily-remaining"] == "0"


def test_ratelimit_reset_restores_limits_and_counts(ghl: SandboxServer) -> None:
    """reset() brings back the configured limits and zero counters."""
    ghl.set_limits(requests=1, seconds=60)
    contact_id = _some_contact(ghl)
    with _client(ghl) as client:
        assert [_get(ghl, client, contact_id).status_code for _ in range(2)] == [200, 429]
        ghl.reset()
        assert _get(ghl, client, _some_contact(ghl)).status_code == 200
    assert ghl.location_stats()["requests"] == 1 and ghl.within_limits()
    assert ghl.stats()["rate_limit"] == {"requests": 100, "seconds": 10.0, "daily": 200000}


def test_ratelimit_writes_counted_once_per_effect(ghl: SandboxServer) -> None:
    """Per-route write counts grow only for writes that took effect (not for refused ones)."""
    with _client(ghl) as client:
        body = {"locationId": ghl.location_id, "email": "once@example.com"}
        assert client.post("/contacts/", json=body).status_code == 201
        assert client.post("/contacts/", json=body).status_code == 400
    assert ghl.writes("POST /contacts/") == 1
    statuses = ghl.location_stats()["routes"]["POST /contacts/"]["statuses"]
    assert statuses == {"201": 1, "400": 1}


def test_ratelimit_control_endpoint_reports_stats(ghl: SandboxServer) -> None:
    """GET /_sandbox/stats needs no token and reports the same counters as the Python API."""
    with _client(ghl) as client:
        _get(ghl, client, _some_contact(ghl))
    answer = httpx.get(f"{ghl.base_url}/_sandbox/stats")
    assert answer.status_code == 200
    assert answer.json()["locations"][ghl.location_id]["requests"] == 1
    limits = httpx.post(f"{ghl.base_url}/_sandbox/limits", json={"requests": 0})
    assert limits.status_code == 400


def test_ratelimit_parse_rate_limit_text() -> None:
    """``N/SECONDS`` parses for the CLI; nonsense is a ValueError naming the text."""
    assert parse_rate_limit("100/10") == (100, 10.0)
    assert parse_rate_limit("5") == (5, 10.0)
    for text in ("0/10", "x/1", "5/-1"):
        with pytest.raises(ValueError, match=repr(text)):
            parse_rate_limit(text)
