"""HttpClient against a real local server: replies, errors, retries, timeouts, connection failures."""

from __future__ import annotations

import logging
import socket
from collections.abc import Generator, Iterator

import httpx
import pytest
from fakeapi import FakeApi

from connector.client.httpclient import HttpClient
from connector.client.request import RequestSpec
from connector.client.retry import RetryPolicy, parse_retry_after
from connector.errors import AuthError, RateLimitError, RemoteError

FAST = RetryPolicy(attempts=3, base=0.01, cap=0.5, seed=1)
TOKEN = "secret-token-abc123"


class BearerAuth(httpx.Auth):
    """The shape of the auth layer's flow: adds a bearer token on every attempt."""

    def __init__(self) -> None:
        self.calls = 0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.calls += 1
        request.headers["Authorization"] = f"Bearer {TOKEN}"
        yield request


@pytest.fixture
def client(api: FakeApi) -> Iterator[HttpClient]:
    with HttpClient(base_url=api.url, headers={"Version": "2021-07-28"}, retry=FAST) as c:
        yield c


def test_http_send_builds_request_and_parses_json(api: FakeApi, client: HttpClient) -> None:
    """App headers, request headers, query and JSON body go out; the JSON reply comes back."""
    api.add("POST", "/contacts/", 201, json={"contact": {"id": "c1"}}, headers={"X-Trace": "t1"})
    spec = RequestSpec(
        "POST", "/contacts/", query=(("locationId", "L1"),), json={"email": "a@b.c"},
        headers={"X-Extra": "1"},
    )
    reply = client.send(spec, auth=BearerAuth())
    assert (reply.status, reply.data) == (201, {"contact": {"id": "c1"}})
    assert reply.headers["x-trace"] == "t1"
    (seen,) = api.requests
    assert (seen.method, seen.path, seen.query, seen.json) == (
        "POST", "/contacts/", {"locationId": "L1"}, {"email": "a@b.c"},
    )
    assert seen.headers["version"] == "2021-07-28"
    assert seen.headers["x-extra"] == "1"
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"


def test_http_send_empty_and_text_bodies(api: FakeApi, client: HttpClient) -> None:
    """An empty body gives data None; a non-JSON body gives its text."""
    api.add("DELETE", "/x", 204)
    api.add("GET", "/y", body="plain words")
    assert client.send(RequestSpec("DELETE", "/x")).data is None
    assert client.send(RequestSpec("GET", "/y")).data == "plain words"


def test_http_error_message_has_ghl_message(api: FakeApi, client: HttpClient) -> None:
    """A 422 names method, path (no query), status, reason and GHL's message list."""
    body = {"statusCode": 422, "message": ["phone invalid", "email invalid"], "error": "x"}
    api.add("POST", "/contacts/", 422, json=body)
    spec = RequestSpec("POST", "/contacts/", query=(("locationId", "L1"),), json={})
    with pytest.raises(RemoteError) as info:
        client.send(spec, auth=BearerAuth())
    assert str(info.value) == (
        "POST /contacts/ -> 422 Unprocessable Entity: phone invalid; email invalid"
    )
    assert info.value.status == 422
    assert TOKEN not in str(info.value)


def test_http_error_body_is_cut(api: FakeApi, client: HttpClient) -> None:
    """A long non-JSON error body is cut to 200 characters, on one line."""
    api.add("GET", "/big", 400, body="line one\n" + "x" * 1000)
    with pytest.raises(RemoteError) as info:
        client.send(RequestSpec("GET", "/big"))
    message = str(info.value)
    assert message.startswith("GET /big -> 400 Bad Request: line one xxx")
    assert "\n" not in message
    detail = message.split(": ", 1)[1]
    assert len(detail) == 200 and detail.endswith("…")


def test_http_401_and_403_raise_auth_error(api: FakeApi, client: HttpClient) -> None:
    """401 and 403 raise AuthError without retrying."""
    api.add("GET", "/a", 401, json={"statusCode": 401, "message": "Invalid JWT"})
    api.add("GET", "/b", 403, json={"message": "scope missing"})
    with pytest.raises(AuthError, match=r"^GET /a -> 401 Unauthorized: Invalid JWT$"):
        client.send(RequestSpec("GET", "/a"), auth=BearerAuth())
    with pytest.raises(AuthError, match=r"^GET /b -> 403 Forbidden: scope missing$"):
        client.send(RequestSpec("GET", "/b"))
    assert len(api.requests) == 2


def test_http_429_then_success(api: FakeApi, client: HttpClient) -> None:
    """A 429 is retried and the later success is returned; auth runs on every attempt."""
    api.add("GET", "/c", 429, json={"message": "Too Many Requests"})
    api.add("GET", "/c", json={"ok": True})
    auth = BearerAuth()
    assert client.send(RequestSpec("GET", "/c"), auth=auth).data == {"ok": True}
    assert len(api.requests) == 2
    assert auth.calls == 2
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in api.requests)


def test_http_429_exhausted_raises_rate_limit_error(api: FakeApi, client: HttpClient) -> None:
    """Only 429s: RateLimitError after all attempts."""
    api.add("GET", "/c", 429, json={"message": "Too Many Requests"}, times=3)
    with pytest.raises(RateLimitError, match=r"^GET /c -> 429 Too Many Requests"):
        client.send(RequestSpec("GET", "/c"))
    assert len(api.requests) == 3


def test_http_retry_after_longer_than_cap_gives_up(api: FakeApi, client: HttpClient) -> None:
    """A Retry-After beyond the policy's cap is not waited for: the error says so."""
    api.add("GET", "/c", 429, json={"message": "slow down"}, headers={"Retry-After": "120"})
    with pytest.raises(RateLimitError, match=r"retry after 120s\]$"):
        client.send(RequestSpec("GET", "/c"))
    assert len(api.requests) == 1


def test_http_get_retried_after_500_post_not(api: FakeApi, client: HttpClient) -> None:
    """GET is retried after a 500; POST is not (the server saw exactly one POST)."""
    api.add("GET", "/r", 500, json={"message": "boom"})
    api.add("GET", "/r", json={"ok": 1})
    assert client.send(RequestSpec("GET", "/r")).data == {"ok": 1}
    api.add("POST", "/r", 500, json={"message": "boom"})
    api.add("POST", "/r", json={"ok": 2})
    with pytest.raises(RemoteError, match=r"^POST /r -> 500 Internal Server Error: boom$"):
        client.send(RequestSpec("POST", "/r", json={}))
    assert [r.method for r in api.requests] == ["GET", "GET", "POST"]


def test_http_post_retried_after_429(api: FakeApi, client: HttpClient) -> None:
    """A 429 means GHL did nothing, so even a POST is retried."""
    api.add("POST", "/p", 429, json={"message": "Too Many Requests"})
    api.add("POST", "/p", 201, json={"id": 1})
    assert client.send(RequestSpec("POST", "/p", json={"a": 1})).data == {"id": 1}
    assert [r.json for r in api.requests] == [{"a": 1}, {"a": 1}]


def test_http_post_retry_unsafe_retried_after_500(api: FakeApi, client: HttpClient) -> None:
    """With retry_unsafe=True (an upsert) a POST is retried after a 503."""
    api.add("POST", "/upsert", 503, json={"message": "unavailable"})
    api.add("POST", "/upsert", json={"new": False})
    reply = client.send(RequestSpec("POST", "/upsert", json={}), retry_unsafe=True)
    assert reply.data == {"new": False}
    assert len(api.requests) == 2


def test_http_post_not_retried_after_reset(api: FakeApi, client: HttpClient) -> None:
    """A POST whose connection drops after sending is not retried: it may have been done."""
    api.add("POST", "/drop", drop=True)
    api.add("POST", "/drop", 201, json={"id": 1})
    with pytest.raises(RemoteError, match=r"^POST /drop -> connection lost \("):
        client.send(RequestSpec("POST", "/drop", json={}))
    assert len(api.requests) == 1


def test_http_get_retried_after_reset(api: FakeApi, client: HttpClient) -> None:
    """A GET whose connection drops is retried."""
    api.add("GET", "/drop", drop=True)
    api.add("GET", "/drop", json={"ok": True})
    assert client.send(RequestSpec("GET", "/drop")).data == {"ok": True}
    assert len(api.requests) == 2


def test_http_timeout_message(api: FakeApi) -> None:
    """A server slower than the client's timeout gives a clear RemoteError, POST tried once."""
    api.add("POST", "/slow", json={}, delay=1.5, times=3)
    with HttpClient(base_url=api.url, timeout=0.5, retry=FAST) as client:
        with pytest.raises(RemoteError) as info:
            client.send(RequestSpec("POST", "/slow", query=(("q", "1"),), json={}))
    assert str(info.value) == "POST /slow -> timed out after 0.5s"
    assert info.value.status is None
    assert len(api.requests) == 1


def test_http_timeout_retried_for_get(api: FakeApi) -> None:
    """A GET that timed out is retried, and the later answer is returned."""
    api.add("GET", "/slow", json={}, delay=1.5)
    api.add("GET", "/slow", json={"ok": True})
    with HttpClient(base_url=api.url, timeout=0.5, retry=FAST) as client:
        assert client.send(RequestSpec("GET", "/slow")).data == {"ok": True}
    assert len(api.requests) == 2


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port bound on 127.0.0.1 but not listening: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_http_connection_refused(refused_port: int, caplog: pytest.LogCaptureFixture) -> None:
    """Connection refused: retried (even a POST: nothing was sent), then a one-line error."""
    caplog.set_level(logging.DEBUG, logger="connector.client.httpclient")
    with HttpClient(base_url=f"http://127.0.0.1:{refused_port}", retry=FAST) as client:
        with pytest.raises(RemoteError) as info:
            client.send(RequestSpec("POST", "/contacts/", json={}), auth=BearerAuth())
    assert str(info.value) == (
        f"POST /contacts/ -> cannot connect to 127.0.0.1:{refused_port} (connection refused)"
    )
    retries = [r for r in caplog.records if r.name == "connector.client.httpclient"]
    assert len(retries) == FAST.attempts - 1
    assert all(r.getMessage().startswith("retrying POST /contacts/ (attempt ") for r in retries)
    assert "after cannot connect to 127.0.0.1" in retries[0].getMessage()
    assert not any(TOKEN in r.getMessage() for r in caplog.records)


def test_http_retry_logged_at_debug(api: FakeApi, client: HttpClient,
                                    caplog: pytest.LogCaptureFixture) -> None:
    """Each retry is logged at DEBUG with method, path, status and attempt, never the token."""
    caplog.set_level(logging.DEBUG, logger="connector.client.httpclient")
    api.add("GET", "/l", 502, json={"message": "bad gateway"})
    api.add("GET", "/l", json={})
    client.send(RequestSpec("GET", "/l", query=(("k", "v"),)), auth=BearerAuth())
    (record,) = [r for r in caplog.records if r.name == "connector.client.httpclient"]
    assert record.levelno == logging.DEBUG
    message = record.getMessage()
    assert message.startswith("retrying GET /l (attempt 1 of 3) after 502; waiting ")
    assert TOKEN not in message and "Bearer" not in message


def test_http_repr_hides_headers(api: FakeApi) -> None:
    """The client's repr shows the base URL only."""
    with HttpClient(base_url=api.url, headers={"X-Api-Key": "k-123"}) as client:
        assert "k-123" not in repr(client)
        assert api.url in repr(client)


def test_http_retry_after_is_honoured(api: FakeApi, client: HttpClient) -> None:
    """A 429 with Retry-After is retried no sooner than the server asked."""
    api.add("GET", "/c", 429, json={"message": "wait"}, headers={"Retry-After": "0.3"})
    api.add("GET", "/c", json={"ok": True})
    assert client.send(RequestSpec("GET", "/c")).data == {"ok": True}
    first, second = (r.arrived for r in api.requests)
    assert second - first >= 0.3


def test_retry_backoff_full_jitter_bounds_and_seed() -> None:
    """Full jitter stays within base*2**n capped at cap; the same seed gives the same waits."""
    policy = RetryPolicy(attempts=10, base=0.5, cap=4.0, seed=7)
    waits = [policy.backoff().delay(n) for n in range(1, 9)]
    again = [policy.backoff().delay(n) for n in range(1, 9)]
    assert waits != [] and waits == again
    backoff = policy.backoff()
    for n in range(1, 9):
        for _ in range(50):
            assert 0.0 <= backoff.delay(n) <= min(4.0, 0.5 * 2 ** (n - 1))
    assert RetryPolicy(base=0.5, cap=4.0, jitter="none").backoff().delay(3) == 2.0
    assert policy.backoff().delay(1, retry_after=3.0) >= 3.0


def test_retry_parse_retry_after_seconds_and_date() -> None:
    """Retry-After is read as seconds or as an HTTP date; junk is ignored."""
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = 784111777.0  # Sun, 06 Nov 1994 08:49:37 GMT
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now=now) == 10.0
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:27 GMT", now=now) == 0.0


def test_retry_policy_rejects_nonsense() -> None:
    """attempts below 1 is a usage error."""
    with pytest.raises(ValueError, match="attempts must be >= 1"):
        RetryPolicy(attempts=0)
