"""The fleet's rate limiter in Redis: processes sharing a location never exceed its window,
and GHL's X-RateLimit-* headers hold for every process."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis

from connector.client.sharedlimiter import SharedRateLimiter
from tests.fleetprocs import REDIS_URL, cleanup, need, new_queue


@pytest.fixture
def prefix() -> Iterator[str]:
    need(6379)
    queue = new_queue()
    yield f"{queue}:limits:ghl"
    cleanup(queue)


def limiter(prefix: str, requests: int, seconds: float) -> SharedRateLimiter:
    return SharedRateLimiter(redis.Redis.from_url(REDIS_URL), prefix, requests=requests,
                             per_seconds=seconds)


def test_two_limiters_share_one_window(prefix: str) -> None:
    """Two limiters (as two processes would) with four threads each: the sends they let
    through, counted from each slot's start to its end plus a window, never exceed the limit
    in any window, and the window is the bottleneck."""
    requests, seconds = 5, 0.5
    limiters = [limiter(prefix, requests, seconds), limiter(prefix, requests, seconds)]
    spans: list[tuple[float, float]] = []
    lock = threading.Lock()

    def send(which: SharedRateLimiter) -> None:
        for _ in range(4):
            with which.slot("loc-1"):
                start = time.monotonic()
                time.sleep(0.01)
            with lock:
                spans.append((start, time.monotonic()))

    threads = [threading.Thread(target=send, args=(limiters[i % 2],)) for i in range(8)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    elapsed = time.monotonic() - began
    assert len(spans) == 32
    starts = sorted(start for start, _ in spans)
    for i, start in enumerate(starts):
        inside = [s for s in starts[i:] if s < start + seconds]
        assert len(inside) <= requests, (i, inside)
    # 32 sends at 5 per 0.5 s need at least 6 full windows after the first burst.
    assert elapsed >= 6 * seconds


def test_rate_limit_headers_hold_for_the_whole_fleet(prefix: str) -> None:
    """A 'Remaining: 0' seen by one process makes another wait for the window; a stricter
    'Max' one process sees is adopted by the other."""
    one, other = limiter(prefix, 10, 0.6), limiter(prefix, 10, 0.6)
    one.observe("loc-1", {"X-RateLimit-Remaining": "0", "X-RateLimit-Max": "10",
                          "X-RateLimit-Interval-Milliseconds": "600"})
    began = time.monotonic()
    with other.slot("loc-1"):
        waited = time.monotonic() - began
    assert waited >= 0.5
    one.observe("loc-2", {"X-RateLimit-Max": "2"})
    began = time.monotonic()
    for _ in range(3):
        with other.slot("loc-2"):
            pass
    assert time.monotonic() - began >= 0.5


def test_daily_quota_is_shared(prefix: str) -> None:
    """The daily quota counts every process's sends."""
    from connector.errors import RateLimitError

    one = SharedRateLimiter(redis.Redis.from_url(REDIS_URL), prefix, requests=100,
                            per_seconds=10, daily=3)
    other = SharedRateLimiter(redis.Redis.from_url(REDIS_URL), prefix, requests=100,
                              per_seconds=10, daily=3)
    for which in (one, other, one):
        which.acquire("loc-3")
    with pytest.raises(RateLimitError, match="daily quota used up"):
        other.acquire("loc-3")


def test_snapshot_reports_the_fleets_window(prefix: str) -> None:
    """The console's headroom for a shared limiter: every process's sends and in-flight
    requests, the adopted limit, the daily count."""
    one, other = limiter(prefix, 4, 2.0), limiter(prefix, 4, 2.0)
    for _ in range(2):
        one.acquire("loc-9")
    with other.slot("loc-9"):
        seen = one.snapshot("loc-9")
        assert seen["in_window"] == 2 and seen["in_flight"] == 1 and seen["limit"] == 4
        assert seen["daily_used"] == 3 and seen["wait_seconds"] == 0 and seen["shared"]
    other.acquire("loc-9")
    full = other.snapshot("loc-9")
    assert full["in_window"] == 4 and full["in_flight"] == 0
    assert 1.5 < float(str(full["wait_seconds"])) <= 2.1
    assert one.keys() == ["loc-9"] and other.keys() == ["loc-9"]
