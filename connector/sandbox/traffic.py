"""What the sandbox saw, per location: requests, the busiest sliding window, 429s, and per route
the requests, answers by status and successful writes (so tests can prove a side effect
happened once and no rate window was exceeded)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Traffic"]


@dataclass(slots=True)
class _Location:
    requests: int = 0
    max_window: int = 0
    throttled: int = 0
    arrivals: deque[float] = field(default_factory=deque)
    routes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def route(self, name: str) -> dict[str, Any]:
        found = self.routes.get(name)
        if found is None:
            found = self.routes[name] = {"requests": 0, "writes": 0, "statuses": {}}
        return found


class Traffic:
    """Counters per location key; ``window`` is the burst window length in seconds."""

    def __init__(self, window: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._locations: dict[str, _Location] = {}
        self.generation = 0
        """Bumped by :meth:`reset`: an answer to a request from before a reset is not counted."""

    def reset(self) -> None:
        """Forget every count (answers still due to earlier requests will not be counted)."""
        self._locations = {}
        self.generation += 1

    def _get(self, key: str) -> _Location:
        found = self._locations.get(key)
        if found is None:
            found = self._locations[key] = _Location()
        return found

    def saw(self, key: str, route: str) -> None:
        """Count one arriving request (admitted or not) and track the busiest window."""
        seen = self._get(key)
        seen.requests += 1
        seen.route(route)["requests"] += 1
        now = self._clock()
        arrivals = seen.arrivals
        arrivals.append(now)
        edge = now - self.window
        while arrivals[0] <= edge:
            arrivals.popleft()
        if len(arrivals) > seen.max_window:
            seen.max_window = len(arrivals)

    def answered(
        self, key: str, route: str, status: int, *, wrote: bool, generation: int | None = None
    ) -> None:
        """Count an answer's status (0: the connection was cut without one); ``wrote`` when it
        was a write that took effect. ``generation``: the one the request arrived in (a hung
        request answered after a reset is not counted)."""
        if generation is not None and generation != self.generation:
            return
        entry = self._get(key).route(route)
        statuses = entry["statuses"]
        statuses[status] = statuses.get(status, 0) + 1
        if status == 429:
            self._get(key).throttled += 1
        if wrote:
            entry["writes"] += 1

    def snapshot(self) -> dict[str, Any]:
        """Plain data: ``{location: {requests, max_window, throttled, routes: {route: {...}}}}``."""
        return {
            key: {
                "requests": seen.requests,
                "max_window": seen.max_window,
                "throttled": seen.throttled,
                "routes": {
                    name: {"requests": r["requests"], "writes": r["writes"],
                           "statuses": {str(s): n for s, n in sorted(r["statuses"].items())}}
                    for name, r in seen.routes.items()
                },
            }
            for key, seen in self._locations.items()
        }
