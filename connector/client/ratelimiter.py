"""The client-side rate limiter: a sliding window of send times per key (a GHL location).

GHL allows a burst of ``requests`` per ``per_seconds`` (100 per 10 s) and a daily quota
(200,000) per app and location. Every attempt to send holds a :meth:`RateLimiter.slot`, which
blocks until sending cannot break the burst limit. The server counts *arrival* times, which we
cannot see; we only know that a request arrived after we took its slot and before its slot
was given back (the response came). So a slot counts against the window while the request is
in flight, and from then on for a whole window after it is given back: then no window of
``per_seconds`` at the server can hold ``requests + 1`` arrivals, however late a thread was
scheduled or a packet delivered. A small safety margin widens the window against clock
granularity. (:meth:`RateLimiter.acquire` records a send at the moment it returns, for callers
that cannot give a slot back; it has no such guarantee against delays.)

Other processes may share the same quota, so :meth:`RateLimiter.observe` reads GHL's
``X-RateLimit-*`` response headers and holds back when the server counts more than we do.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from connector.errors import RateLimitError

__all__ = ["SAFETY_MARGIN", "Limiter", "RateLimiter"]

SAFETY_MARGIN = 0.05
"""Seconds added to every window: covers clock granularity and the trip to the server."""


class Limiter(Protocol):
    """What the HTTP client needs of a rate limiter (this module's, or a fleet's shared one in
    :mod:`connector.client.sharedlimiter`)."""

    def slot(self, key: str) -> AbstractContextManager[None]:
        """Hold one send slot for ``key`` while a request is sent and answered."""

    def observe(self, key: str, headers: Mapping[str, str]) -> None:
        """Adopt what the server's ``X-RateLimit-*`` headers say."""

    def keys(self) -> list[str]:
        """The keys (locations) seen so far."""

    def snapshot(self, key: str) -> dict[str, object]:
        """The state of ``key`` as JSON-ready data (the console's headroom)."""


@dataclass(slots=True)
class _Bucket:
    """The limiter's state for one key."""

    sends: deque[float] = field(default_factory=deque)
    in_flight: int = 0
    limit: int = 0
    window: float = 0.0
    day: date | None = None
    daily_used: int = 0
    server_daily_remaining: int | None = None


class RateLimiter:
    """A thread-safe sliding-window limiter, one window per key.

    :param requests: most sends allowed in any window of ``per_seconds``.
    :param per_seconds: the window length in seconds.
    :param daily: the daily quota per key (reset at UTC midnight), or ``None`` for none.
    :param clock: a monotonic clock in seconds (injectable for tests).
    :param sleep: how to wait (injectable for tests; must advance ``clock``).
    :param wall: Unix time in seconds, to tell which UTC day it is.
    """

    def __init__(
        self,
        *,
        requests: int,
        per_seconds: float,
        daily: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if requests < 1 or per_seconds <= 0:
            raise ValueError(
                f"RateLimiter: need requests >= 1 and per_seconds > 0, "
                f"not {requests!r} per {per_seconds!r}"
            )
        self.requests = requests
        self.per_seconds = per_seconds
        self.daily = daily
        self._clock = clock
        self._sleep = sleep
        self._wall = wall
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}

    def __repr__(self) -> str:
        return (
            f"RateLimiter(requests={self.requests!r}, per_seconds={self.per_seconds!r}, "
            f"daily={self.daily!r})"
        )

    def acquire(self, key: str) -> None:
        """Block until one more send for ``key`` fits, then count it as sent now.

        :param key: the quota's owner, e.g. a location id.
        :raises RateLimitError: if the daily quota for ``key`` is used up.
        """
        self._take(key, in_flight=False)

    @contextmanager
    def slot(self, key: str) -> Iterator[None]:
        """Hold one send slot for ``key`` while the block sends a request and reads its response.

        Blocks until a slot is free. The slot counts as used while the block runs, and for a
        whole window after it ends.

        :param key: the quota's owner, e.g. a location id.
        :raises RateLimitError: if the daily quota for ``key`` is used up.
        """
        bucket = self._take(key, in_flight=True)
        try:
            yield
        finally:
            with self._lock:
                bucket.in_flight -= 1
                bucket.sends.append(self._clock())

    def _take(self, key: str, *, in_flight: bool) -> _Bucket:
        """Wait for a free slot, then record it: as in flight, or as sent now."""
        while True:
            with self._lock:
                bucket = self._bucket(key)
                self._check_daily(key, bucket)
                now = self._clock()
                wait = self._wait_time(bucket, now)
                if wait <= 0:
                    bucket.daily_used += 1
                    if bucket.server_daily_remaining is not None:
                        bucket.server_daily_remaining -= 1
                    if in_flight:
                        bucket.in_flight += 1
                    else:
                        bucket.sends.append(now)
                    return bucket
            self._sleep(wait)

    def observe(self, key: str, headers: Mapping[str, str]) -> None:
        """Adjust ``key``'s state to the server's ``X-RateLimit-*`` headers.

        A stricter ``X-RateLimit-Max``/``-Interval-Milliseconds`` than ours is adopted. When
        ``X-RateLimit-Remaining`` is below what we think remains, the difference is counted as
        sends made just now (by someone else sharing the quota), so at 0 the next send waits
        for a slot to leave the window.

        :param key: the quota's owner, as given to :meth:`acquire`.
        :param headers: the response headers (any case).
        """
        lower = {name.lower(): value for name, value in headers.items()}
        remaining = _int(lower.get("x-ratelimit-remaining"))
        most = _int(lower.get("x-ratelimit-max"))
        interval_ms = _int(lower.get("x-ratelimit-interval-milliseconds"))
        daily_remaining = _int(lower.get("x-ratelimit-daily-remaining"))
        with self._lock:
            bucket = self._bucket(key)
            now = self._clock()
            if most is not None and 0 < most < bucket.limit:
                bucket.limit = most
            if interval_ms is not None and interval_ms / 1000 + SAFETY_MARGIN > bucket.window:
                bucket.window = interval_ms / 1000 + SAFETY_MARGIN
            self._expire(bucket, now)
            if remaining is not None:
                ours = bucket.limit - len(bucket.sends) - bucket.in_flight
                if remaining < ours:
                    bucket.sends.extend([now] * (ours - max(0, remaining)))
            if daily_remaining is not None:
                self._roll_day(bucket)
                bucket.server_daily_remaining = daily_remaining

    def snapshot(self, key: str) -> dict[str, object]:
        """The state of ``key`` as JSON-ready data (for ``--json`` output and stats).

        :returns: ``in_window`` (sends in the window), ``in_flight``, ``limit``,
            ``window_seconds``, ``daily_used``,
            ``daily_remaining`` (``None`` if unknown) and ``wait_seconds`` (until a send fits).
        """
        with self._lock:
            bucket = self._bucket(key)
            self._roll_day(bucket)
            now = self._clock()
            wait = self._wait_time(bucket, now)
            return {
                "key": key,
                "in_window": len(bucket.sends),
                "in_flight": bucket.in_flight,
                "limit": bucket.limit,
                "window_seconds": round(bucket.window, 3),
                "daily_used": bucket.daily_used,
                "daily_remaining": self._daily_remaining(bucket),
                "wait_seconds": round(max(0.0, wait), 3),
            }

    def keys(self) -> list[str]:
        """The keys (locations) this limiter has seen, sorted."""
        with self._lock:
            return sorted(self._buckets)

    def _bucket(self, key: str) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(limit=self.requests, window=self.per_seconds + SAFETY_MARGIN)
            self._buckets[key] = bucket
        return bucket

    @staticmethod
    def _expire(bucket: _Bucket, now: float) -> None:
        while bucket.sends and bucket.sends[0] <= now - bucket.window:
            bucket.sends.popleft()

    def _wait_time(self, bucket: _Bucket, now: float) -> float:
        """Seconds until a send fits (<= 0: it fits now)."""
        self._expire(bucket, now)
        excess = len(bucket.sends) + bucket.in_flight - bucket.limit
        if excess < 0:
            return 0.0
        if excess < len(bucket.sends):
            # The send that must leave the window before one more fits.
            return bucket.sends[excess] + bucket.window - now
        # Every slot is in flight: none frees before a whole window from now.
        return bucket.window

    def _roll_day(self, bucket: _Bucket) -> None:
        today = datetime.fromtimestamp(self._wall(), UTC).date()
        if bucket.day != today:
            bucket.day = today
            bucket.daily_used = 0
            bucket.server_daily_remaining = None

    def _daily_remaining(self, bucket: _Bucket) -> int | None:
        ours = None if self.daily is None else max(0, self.daily - bucket.daily_used)
        theirs = bucket.server_daily_remaining
        if ours is None or theirs is None:
            return theirs if ours is None else ours
        return min(ours, theirs)

    def _check_daily(self, key: str, bucket: _Bucket) -> None:
        self._roll_day(bucket)
        remaining = self._daily_remaining(bucket)
        if remaining is not None and remaining <= 0:
            assert bucket.day is not None
            resets = datetime.combine(bucket.day + timedelta(days=1), datetime.min.time())
            raise RateLimitError(
                f"rate limit {key!r}: daily quota used up "
                f"[resets at {resets:%Y-%m-%d %H:%M} UTC]"
            )


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None
