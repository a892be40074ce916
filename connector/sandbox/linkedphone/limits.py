"""The LinkedPhone sandbox's rate limit: a sliding window per API key, with the assumed
``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` headers on every
answer and ``Retry-After`` on a 429.

(The GHL sandbox's limiter sends GHL's own header names and a daily quota, so it does not fit.)
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

__all__ = ["Headers", "RateLimit"]

Headers = list[tuple[bytes, bytes]]


class RateLimit:
    """Admits at most ``requests`` per key in any ``seconds``; refused requests use no budget.

    :param clock: monotonic seconds (tests of the limiter may pass their own).
    """

    def __init__(self, requests: int, seconds: float, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.configure(requests=requests, seconds=seconds)
        self.reset()

    def configure(self, *, requests: int | None = None, seconds: float | None = None) -> None:
        """Change the limit (admissions so far are kept).

        :raises ValueError: a value is not positive.
        """
        if requests is not None:
            if isinstance(requests, bool) or not isinstance(requests, int) or requests < 1:
                raise ValueError(f"limits: requests {requests!r} must be a positive integer")
            self.requests = requests
        if seconds is not None:
            if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
                raise ValueError(f"limits: seconds {seconds!r} must be a positive number")
            self.seconds = float(seconds)

    def reset(self) -> None:
        """Forget every admission."""
        self._windows: dict[str, deque[float]] = {}

    def admit(self, key: str) -> tuple[bool, Headers]:
        """Count one request for ``key`` if the window has room.

        :returns: whether it was admitted, and the headers to answer with (with
            ``Retry-After`` when it was not).
        """
        now = self._clock()
        window = self._window(key, now)
        allowed = len(window) < self.requests
        if allowed:
            window.append(now)
        headers = self._headers(window, now)
        if not allowed:
            headers.append((b"retry-after", str(self._reset_after(window, now)).encode()))
        return allowed, headers

    def peek(self, key: str) -> Headers:
        """The headers for ``key`` without counting a request."""
        now = self._clock()
        return self._headers(self._window(key, now), now)

    def _window(self, key: str, now: float) -> deque[float]:
        window = self._windows.setdefault(key, deque())
        while window and window[0] <= now - self.seconds:
            window.popleft()
        return window

    def _reset_after(self, window: deque[float], now: float) -> int:
        """Whole seconds until the oldest admission leaves the window (0 when there is room)."""
        if len(window) < self.requests or not window:
            return 0
        return max(1, math.ceil(window[0] + self.seconds - now))

    def _headers(self, window: deque[float], now: float) -> Headers:
        return [
            (b"x-ratelimit-limit", str(self.requests).encode()),
            (b"x-ratelimit-remaining", str(max(self.requests - len(window), 0)).encode()),
            (b"x-ratelimit-reset", str(self._reset_after(window, now)).encode()),
        ]
