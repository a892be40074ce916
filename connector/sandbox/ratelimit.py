"""GHL's rate limits, per location: a sliding burst window and a daily quota, with the
``X-RateLimit-*`` headers HighLevel sends on every answer."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["RateLimiter"]

Headers = list[tuple[bytes, bytes]]


class RateLimiter:
    """Admits or refuses requests per location key.

    The burst window is sliding: a request is refused when ``requests`` were already admitted in
    the last ``seconds``. The daily quota counts admitted requests per UTC day. Refused
    requests do not use up either budget.
    """

    def __init__(self, requests: int, seconds: float, daily: int, *,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._wall = wall
        self.configure(requests=requests, seconds=seconds, daily=daily)
        self.reset()

    def configure(self, *, requests: int | None = None, seconds: float | None = None,
                  daily: int | None = None) -> None:
        """Change the limits (counts so far are kept)."""
        if requests is not None:
            self.requests = requests
        if seconds is not None:
            self.seconds = seconds
        if daily is not None:
            self.daily = daily
        self._fixed = [
            (b"x-ratelimit-limit-daily", str(self.daily).encode()),
            (b"x-ratelimit-interval-milliseconds", str(int(self.seconds * 1000)).encode()),
            (b"x-ratelimit-max", str(self.requests).encode()),
        ]

    def load(self, data: object) -> dict[str, Any]:
        """Change the limits from JSON ``{requests, seconds, daily}`` (each optional); the
        limits in force afterwards, as data.

        :raises ValueError: unknown keys, or a value that is not a positive number
        """
        if not isinstance(data, dict) or set(data) - {"requests", "seconds", "daily"}:
            raise ValueError(f"limits: {data!r} must be an object with requests, seconds, daily")
        for name, value in data.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"limits: {name} {value!r} must be a positive number")
        self.configure(
            requests=data.get("requests"), seconds=data.get("seconds"), daily=data.get("daily")
        )
        return {"requests": self.requests, "seconds": self.seconds, "daily": self.daily}

    def reset(self) -> None:
        """Forget every count."""
        self._windows: dict[str, deque[float]] = {}
        self._days: dict[str, tuple[int, int]] = {}

    def _today(self, key: str) -> int:
        day = int(self._wall() // 86400)
        seen = self._days.get(key)
        return seen[1] if seen is not None and seen[0] == day else 0

    def admit(self, key: str) -> tuple[bool, Headers]:
        """Count one request for ``key`` if the limits allow it.

        :returns: whether it was admitted, and the rate-limit headers to send with the answer.
        """
        now = self._clock()
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = deque()
        edge = now - self.seconds
        while window and window[0] <= edge:
            window.popleft()
        used_today = self._today(key)
        allowed = len(window) < self.requests and used_today < self.daily
        if allowed:
            window.append(now)
            used_today += 1
            self._days[key] = (int(self._wall() // 86400), used_today)
        return allowed, self._headers(len(window), used_today)

    def peek(self, key: str) -> Headers:
        """The headers for ``key`` without counting a request."""
        window = self._windows.get(key, deque())
        edge = self._clock() - self.seconds
        return self._headers(sum(1 for t in window if t > edge), self._today(key))

    def _headers(self, in_window: int, used_today: int) -> Headers:
        return [
            *self._fixed,
            (b"x-ratelimit-daily-remaining", str(max(self.daily - used_today, 0)).encode()),
            (b"x-ratelimit-remaining", str(max(self.requests - in_window, 0)).encode()),
        ]
