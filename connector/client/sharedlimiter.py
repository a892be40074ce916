"""The rate limiter a fleet shares through Redis: GHL's per-location limits for every process.

The same rule as :class:`connector.client.ratelimiter.RateLimiter`, kept in Redis so every
``serve`` and ``worker`` process of a fleet, on any machine, draws from one window per app and
location: an attempt holds a slot, which counts while the request is in flight and for a whole
window (plus :data:`~connector.client.ratelimiter.SAFETY_MARGIN`) after it ends, so no window
of the server can see more than the limit. Each key is one sorted set of slots scored by the
time they leave the window (an in-flight slot by its deadline, so a killed process's slots
expire); taking, ending and adopting the server's headers are Lua scripts, atomic in Redis and
timed by Redis's clock, so machines' clocks do not matter. The daily quota is a counter per UTC
day. ``X-RateLimit-*`` headers are obeyed as the local limiter does: a stricter max or interval
is adopted for the whole fleet, and a ``Remaining`` below what the fleet counts adds the
difference as sends made now.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import redis

from connector.client.ratelimiter import SAFETY_MARGIN, _int
from connector.errors import RateLimitError, RemoteError

__all__ = ["SharedRateLimiter"]

# The longest wait before looking again (an in-flight slot may end any time).
_POLL = 0.1
# How long an in-flight slot may count before it is presumed dead (a killed process).
_IN_FLIGHT_TTL_MS = 300_000

# KEYS: slots zset, meta hash, daily counter. ARGV: token, limit, window_ms, daily (0: none),
# in-flight ttl ms. Returns {0, 0} when taken, {1, wait_ms} when full, {2, 0} when the daily
# quota is used up.
_TAKE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local m = redis.call('HMGET', KEYS[2], 'limit', 'window', 'server_daily')
if m[1] and tonumber(m[1]) < limit then limit = tonumber(m[1]) end
if m[2] and tonumber(m[2]) > window then window = tonumber(m[2]) end
local daily = tonumber(ARGV[4])
local used = tonumber(redis.call('GET', KEYS[3]) or '0')
if (daily > 0 and used >= daily) or (m[3] and tonumber(m[3]) <= 0) then return {2, 0} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local count = redis.call('ZCARD', KEYS[1])
if count >= limit then
  local nth = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
  return {1, tonumber(nth[2]) - now}
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[5]) + window, ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[5]) + 2 * window)
redis.call('INCR', KEYS[3])
redis.call('PEXPIRE', KEYS[3], 172800000)
if m[3] then redis.call('HINCRBY', KEYS[2], 'server_daily', -1) end
return {0, 0}
"""

# KEYS: slots zset, meta hash. ARGV: token, window_ms. The slot now leaves a window from now.
_END = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local window = tonumber(ARGV[2])
local w = redis.call('HGET', KEYS[2], 'window')
if w and tonumber(w) > window then window = tonumber(w) end
redis.call('ZADD', KEYS[1], 'XX', now + window, ARGV[1])
return 0
"""

# KEYS: slots zset, meta hash. ARGV: limit, window_ms, header max (-1), header interval ms
# (-1), header remaining (-1), header daily remaining (-1), token prefix, seconds to midnight.
_OBSERVE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local most = tonumber(ARGV[3])
local interval = tonumber(ARGV[4])
local remaining = tonumber(ARGV[5])
local m = redis.call('HMGET', KEYS[2], 'limit', 'window')
if m[1] then limit = math.min(limit, tonumber(m[1])) end
if m[2] then window = math.max(window, tonumber(m[2])) end
if most > 0 and most < limit then
  limit = most
  redis.call('HSET', KEYS[2], 'limit', most)
end
if interval >= 0 and interval > window then
  window = interval
  redis.call('HSET', KEYS[2], 'window', interval)
end
if tonumber(ARGV[6]) >= 0 then
  redis.call('HSET', KEYS[2], 'server_daily', ARGV[6])
end
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[8]))
if remaining >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  local ours = limit - redis.call('ZCARD', KEYS[1])
  for i = 1, ours - remaining do
    redis.call('ZADD', KEYS[1], now + window, ARGV[7] .. i)
  end
end
return 0
"""


# KEYS: slots zset, meta hash, daily counter. ARGV: limit, window_ms, in-flight ttl ms.
# Returns {in window, in flight, limit, window ms, daily used, server daily (-1), wait ms}.
_SNAPSHOT = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local m = redis.call('HMGET', KEYS[2], 'limit', 'window', 'server_daily')
if m[1] and tonumber(m[1]) < limit then limit = tonumber(m[1]) end
if m[2] and tonumber(m[2]) > window then window = tonumber(m[2]) end
local total = redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
local flying = redis.call('ZCOUNT', KEYS[1], '(' .. (now + window), '+inf')
local wait = 0
if total >= limit then
  local nth = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES', 'LIMIT',
                         total - limit, 1)
  wait = math.min(tonumber(nth[2]) - now, window)
end
return {total - flying, flying, limit, window, tonumber(redis.call('GET', KEYS[3]) or '0'),
        tonumber(m[3] or '-1'), wait}
"""


class SharedRateLimiter:
    """One app's limiter, shared by every process that uses the same Redis and ``prefix``.

    It has the :class:`~connector.client.ratelimiter.RateLimiter` interface the HTTP client
    uses (``slot``, ``acquire``, ``observe``).

    :param client: the fleet's Redis.
    :param prefix: the keys' prefix (the fleet and the app: ``<queue>:limits:<app>``).
    :param requests: most sends in any window of ``per_seconds``.
    :param daily: the daily quota per key (UTC day), or None.
    """

    def __init__(self, client: redis.Redis, prefix: str, *, requests: int,
                 per_seconds: float, daily: int | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if requests < 1 or per_seconds <= 0:
            raise ValueError(
                f"SharedRateLimiter: need requests >= 1 and per_seconds > 0, "
                f"not {requests!r} per {per_seconds!r}"
            )
        self.client = client
        self.prefix = prefix
        self.requests = requests
        self.per_seconds = per_seconds
        self.daily = daily
        self._sleep = sleep
        self._window_ms = int((per_seconds + SAFETY_MARGIN) * 1000)
        self._take_script = client.register_script(_TAKE)
        self._end_script = client.register_script(_END)
        self._observe_script = client.register_script(_OBSERVE)
        self._snapshot_script = client.register_script(_SNAPSHOT)
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"SharedRateLimiter({self.prefix!r}, requests={self.requests!r},"
                f" per_seconds={self.per_seconds!r}, daily={self.daily!r})")

    def _keys(self, key: str) -> list[str]:
        day = datetime.now(UTC).strftime("%Y%m%d")
        return [f"{self.prefix}:{key}:slots", f"{self.prefix}:{key}:meta",
                f"{self.prefix}:{key}:day:{day}"]

    def acquire(self, key: str) -> None:
        """Block until one more send fits, and count it as sent now."""
        token = self._take(key)
        self._end(key, token)

    @contextmanager
    def slot(self, key: str) -> Iterator[None]:
        """Hold one send slot for ``key`` while the block sends and reads the answer.

        :raises RateLimitError: the daily quota is used up.
        :raises RemoteError: Redis cannot be reached (nothing was sent).
        """
        token = self._take(key)
        try:
            yield
        finally:
            self._end(key, token)

    def keys(self) -> list[str]:
        """The keys (locations) this process has sent for, sorted."""
        with self._lock:
            return sorted(self._seen)

    def snapshot(self, key: str) -> dict[str, object]:
        """The fleet's state of ``key``, as :meth:`RateLimiter.snapshot
        <connector.client.ratelimiter.RateLimiter.snapshot>` gives it (``in_flight`` counts
        every process's requests in flight; ``shared`` is True)."""
        try:
            found = self._snapshot_script(keys=self._keys(key), args=[
                self.requests, self._window_ms, _IN_FLIGHT_TTL_MS])
        except redis.RedisError as exc:
            return {"key": key, "shared": True, "error": f"Redis: {exc}"}
        in_window, flying, limit, window, used, server, wait = (int(v) for v in found)
        ours = None if self.daily is None else max(0, self.daily - used)
        theirs = None if server < 0 else server
        remaining = theirs if ours is None else ours if theirs is None else min(ours, theirs)
        return {"key": key, "shared": True, "in_window": in_window, "in_flight": flying,
                "limit": limit, "window_seconds": round(window / 1000, 3),
                "daily_used": used, "daily_remaining": remaining,
                "wait_seconds": round(max(0, wait) / 1000, 3)}

    def _take(self, key: str) -> str:
        with self._lock:
            self._seen.add(key)
        token = uuid.uuid4().hex
        keys = self._keys(key)
        while True:
            try:
                status, wait_ms = self._take_script(
                    keys=keys, args=[token, self.requests, self._window_ms, self.daily or 0,
                                     _IN_FLIGHT_TTL_MS])
            except redis.RedisError as exc:
                raise RemoteError(f"rate limit {key!r}: the fleet's Redis: {exc}") from None
            if status == 0:
                return token
            if status == 2:
                resets = datetime.combine(datetime.now(UTC).date() + timedelta(days=1),
                                          datetime.min.time())
                raise RateLimitError(f"rate limit {key!r}: daily quota used up"
                                     f" [resets at {resets:%Y-%m-%d %H:%M} UTC]")
            self._sleep(min(max(int(wait_ms), 1) / 1000, _POLL))

    def _end(self, key: str, token: str) -> None:
        keys = self._keys(key)
        try:
            self._end_script(keys=keys[:2], args=[token, self._window_ms])
        except redis.RedisError:
            # The slot keeps counting until its in-flight deadline: safe, only slower.
            pass

    def observe(self, key: str, headers: Mapping[str, str]) -> None:
        """Adopt what GHL's ``X-RateLimit-*`` headers say, for the whole fleet."""
        lower = {name.lower(): value for name, value in headers.items()}
        values = [_int(lower.get(h)) for h in ("x-ratelimit-max",
                                                 "x-ratelimit-interval-milliseconds",
                                                 "x-ratelimit-remaining",
                                                 "x-ratelimit-daily-remaining")]
        if all(v is None for v in values):
            return
        most, interval, remaining, daily = (-1 if v is None else v for v in values)
        if interval >= 0:
            interval += int(SAFETY_MARGIN * 1000)
        now = datetime.now(UTC)
        midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
        keys = self._keys(key)
        try:
            self._observe_script(keys=keys[:2], args=[
                self.requests, self._window_ms, most, interval, remaining, daily,
                f"seen:{uuid.uuid4().hex}:", max(1, int((midnight - now).total_seconds()))])
        except redis.RedisError:
            pass
