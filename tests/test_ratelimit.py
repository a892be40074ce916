"""RateLimiter: sliding window per key, daily quota, server headers; real threads on a real server."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from fakeapi import Answer, FakeApi

from connector.client.httpclient import HttpClient
from connector.client.ratelimiter import SAFETY_MARGIN, RateLimiter
from connector.client.request import RequestSpec
from connector.client.retry import RetryPolicy
from connector.errors import RateLimitError

NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC).timestamp()


class FakeTime:
    """A clock that only moves when the limiter sleeps (or the test says so)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.wall = NOON
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        self.wall += seconds


def limiter_on(
    fake: FakeTime, *, requests: int, per_seconds: float, daily: int | None = None
) -> RateLimiter:
    return RateLimiter(
        requests=requests, per_seconds=per_seconds, daily=daily,
        clock=fake.clock, sleep=fake.sleep, wall=lambda: fake.wall,
    )


def assert_never_more_than(times: list[float], most: int, window: float) -> None:
    ordered = sorted(times)
    for first, later in zip(ordered, ordered[most:], strict=False):
        assert later - first >= window, f"{most + 1} sends within {later - first:.3f}s"


def test_ratelimit_sliding_window_never_exceeded() -> None:
    """With a fake clock, no window of per_seconds ever holds requests+1 sends."""
    fake = FakeTime()
    limiter = limiter_on(fake, requests=3, per_seconds=1.0)
    sends = []
    for step in range(20):
        fake.now += 0.13 * (step % 4)
        limiter.acquire("L1")
        sends.append(fake.now)
    assert_never_more_than(sends, 3, 1.0)
    assert fake.slept, "the limiter never had to wait"


def test_ratelimit_keys_are_independent() -> None:
    """A full window for one location does not hold back another."""
    fake = FakeTime()
    limiter = limiter_on(fake, requests=2, per_seconds=10.0)
    limiter.acquire("L1")
    limiter.acquire("L1")
    limiter.acquire("L2")
    assert fake.slept == []
    limiter.acquire("L1")
    assert fake.slept == [pytest.approx(10.0 + SAFETY_MARGIN)]


def test_ratelimit_daily_quota_raises_until_midnight() -> None:
    """The daily quota raises RateLimitError saying when it resets, and resets at UTC midnight."""
    fake = FakeTime()
    limiter = limiter_on(fake, requests=100, per_seconds=1.0, daily=2)
    limiter.acquire("L1")
    limiter.acquire("L1")
    with pytest.raises(RateLimitError, match=r"^rate limit 'L1': daily quota used up "
                       r"\[resets at 2026-11-24 00:00 UTC\]$"):
        limiter.acquire("L1")
    assert limiter.snapshot("L1")["daily_remaining"] == 0
    fake.wall = datetime(2026, 11, 24, 0, 0, 1, tzinfo=UTC).timestamp()
    limiter.acquire("L1")
    assert limiter.snapshot("L1")["daily_used"] == 1


def test_ratelimit_slot_counts_from_its_end() -> None:
    """A slot counts while in flight, then for a whole window after it ends (not from its start)."""
    fake = FakeTime()
    limiter = limiter_on(fake, requests=2, per_seconds=1.0)
    with limiter.slot("L1"):
        fake.now += 5.0  # a slow request: far longer than the window
        with limiter.slot("L1"):
            assert limiter.snapshot("L1")["in_flight"] == 2
        fake.now += 0.5
    assert fake.slept == []
    assert limiter.snapshot("L1")["in_window"] == 2
    limiter.acquire("L1")
    assert fake.slept == [pytest.approx(0.5 + SAFETY_MARGIN)]


def test_ratelimit_observe_remaining_holds_back() -> None:
    """The server counting more sends than we did (a shared quota) fills our window."""
    fake = FakeTime()
    limiter = limiter_on(fake, requests=10, per_seconds=1.0)
    limiter.acquire("L1")
    limiter.observe("L1", {"X-RateLimit-Remaining": "2"})
    assert limiter.snapshot("L1")["in_window"] == 8
    limiter.acquire("L1")
    limiter.acquire("L1")
    assert fake.slept == []
    limiter.acquire("L1")
    assert fake.slept == [pytest.approx(1.0 + SAFETY_MARGIN)]


def test_ratelimit_observe_adopts_stricter_server_limits() -> None:
    """A smaller X-RateLimit-Max and a longer interval from the server are obeyed."""
    fake = FakeTime()
    limiter = limiter_on(fake, requests=100, per_seconds=1.0)
    limiter.observe("L1", {"x-ratelimit-max": "2", "x-ratelimit-interval-milliseconds": "10000"})
    snap = limiter.snapshot("L1")
    assert (snap["limit"], snap["window_seconds"]) == (2, 10.0 + SAFETY_MARGIN)
    for _ in range(3):
        limiter.acquire("L1")
    assert fake.slept == [pytest.approx(10.0 + SAFETY_MARGIN)]


def test_ratelimit_observe_daily_remaining_zero_raises() -> None:
    """X-RateLimit-Daily-Remaining: 0 stops further sends even without a local daily quota."""
    fake = FakeTime()
    limiter = limiter_on(fake, requests=100, per_seconds=1.0)
    limiter.acquire("L1")
    limiter.observe("L1", {"X-RateLimit-Daily-Remaining": "0", "X-RateLimit-Remaining": "junk"})
    with pytest.raises(RateLimitError, match="daily quota used up"):
        limiter.acquire("L1")


def test_ratelimit_snapshot_shape() -> None:
    """snapshot() reports the window, the daily counts and the wait, as JSON-ready data."""
    fake = FakeTime()
    limiter = limiter_on(fake, requests=1, per_seconds=2.0, daily=5)
    limiter.acquire("L1")
    assert limiter.snapshot("L1") == {
        "key": "L1",
        "in_window": 1,
        "in_flight": 0,
        "limit": 1,
        "window_seconds": 2.0 + SAFETY_MARGIN,
        "daily_used": 1,
        "daily_remaining": 4,
        "wait_seconds": 2.0 + SAFETY_MARGIN,
    }


def test_ratelimit_threads_never_exceed_window_on_server(api: FakeApi) -> None:
    """8 threads sending at once never put more than N requests in any window, as the server saw."""
    most, window = 10, 0.5
    api.route("GET", "/contacts/", lambda request: Answer(200, {"contacts": []}))
    limiter = RateLimiter(requests=most, per_seconds=window)
    errors: list[BaseException] = []
    with HttpClient(base_url=api.url, limiter=limiter) as client:

        def work() -> None:
            try:
                for _ in range(4):
                    client.send(RequestSpec("GET", "/contacts/"), limiter_key="L1")
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    arrivals = [r.arrived for r in api.requests]
    assert len(arrivals) == 32
    assert_never_more_than(arrivals, most, window)


def test_ratelimit_server_remaining_zero_makes_client_wait(api: FakeApi) -> None:
    """After X-RateLimit-Remaining: 0 the next request waits for the server's interval."""
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Interval-Milliseconds": "400"}
    api.add("GET", "/c", json={}, headers=headers)
    api.add("GET", "/c", json={})
    limiter = RateLimiter(requests=100, per_seconds=0.1)
    with HttpClient(base_url=api.url, limiter=limiter) as client:
        client.send(RequestSpec("GET", "/c"), limiter_key="L1")
        assert limiter.snapshot("L1")["in_window"] == 100
        client.send(RequestSpec("GET", "/c"), limiter_key="L1")
    first, second = (r.arrived for r in api.requests)
    assert second - first >= 0.4


def test_ratelimit_limiter_waited_on_before_each_retry(api: FakeApi) -> None:
    """Retries pass through the limiter too: a 1-per-window limit spaces the attempts."""
    api.add("GET", "/c", 503, json={"message": "busy"})
    api.add("GET", "/c", json={"ok": True})
    limiter = RateLimiter(requests=1, per_seconds=0.3)
    retry = RetryPolicy(attempts=2, base=0.0, cap=1.0)
    with HttpClient(base_url=api.url, limiter=limiter, retry=retry) as client:
        assert client.send(RequestSpec("GET", "/c"), limiter_key="L1").data == {"ok": True}
    first, second = (r.arrived for r in api.requests)
    assert second - first >= 0.3
    assert limiter.snapshot("L1")["daily_used"] == 2

