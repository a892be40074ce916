"""Contact lanes across processes: one contact's events run in order, one worker at a time.

A *lane* is the key whose events must run in order (the contact an event is about, else the
event itself). In Redis each lane has a sorted set of its unsettled inbox ids, filled by the
feeder in inbox order before it sends the messages, and a lock. A worker that gets a message
takes the lane's lock and runs the lane's events from the oldest, so a message that arrives
early, late or twice changes nothing: whoever holds the lane runs its events in order. A lock
names its holder and expires ``ttl`` seconds after its last renewal, so a killed worker's lane
is taken over; :class:`Renewer` renews the locks a live worker holds.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable, Sequence

import redis

from connector.errors import ConnectorError
from connector.fleet.options import FleetOptions, masked

__all__ = ["Lanes", "Renewer", "connect"]

_log = logging.getLogger(__name__)
_MAX_KEY = 200
# Renew or release only a lock we still hold.
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then" \
         " return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then" \
           " return redis.call('del', KEYS[1]) else return 0 end"


def connect(options: FleetOptions) -> redis.Redis:
    """A client of the fleet's Redis (checked with a PING).

    :raises ConnectorError: it cannot be reached.
    """
    client = redis.Redis.from_url(options.redis, socket_timeout=10, socket_connect_timeout=5,
                                  health_check_interval=30)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise ConnectorError(
            f"{options.redis_option} {masked(options.redis)}: cannot reach Redis: {exc}"
        ) from None
    return client


class Lanes:
    """The lanes of one fleet in Redis.

    :param ttl: seconds a lock lives without renewal.
    """

    def __init__(self, client: redis.Redis, options: FleetOptions) -> None:
        self.client = client
        self.options = options
        self.ttl_ms = int(options.lane_ttl * 1000)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def __repr__(self) -> str:
        return f"Lanes({self.options.queue!r}, ttl={self.options.lane_ttl}s)"

    def _key(self, kind: str, lane: str) -> str:
        if len(lane) > _MAX_KEY:
            lane = "sha256:" + hashlib.sha256(lane.encode()).hexdigest()
        return self.options.key(kind, lane)

    def add(self, pairs: Iterable[tuple[str, int]]) -> None:
        """Put events in their lanes (an event already there stays where it is)."""
        with self.client.pipeline(transaction=False) as pipe:
            for lane, event_id in pairs:
                pipe.zadd(self._key("lane", lane), {str(event_id): event_id}, nx=True)
            pipe.execute()

    def head(self, lane: str) -> int | None:
        """The lane's oldest event."""
        found: list[bytes] = self.client.zrange(self._key("lane", lane), 0, 0)  # type: ignore[assignment]
        return int(found[0]) if found else None

    def remove(self, lane: str, event_id: int) -> None:
        """Take a settled event out of its lane."""
        self.client.zrem(self._key("lane", lane), str(event_id))

    def size(self, lane: str) -> int:
        """How many events the lane holds."""
        return int(self.client.zcard(self._key("lane", lane)))

    def lock(self, lane: str, owner: str) -> bool:
        """Take the lane's lock for ``owner``; False if someone holds it."""
        return self.lock_key(self._key("lock", lane), owner)

    def renew(self, lane: str, owner: str) -> bool:
        """Extend ``owner``'s lock; False if it is no longer theirs."""
        return self.renew_key(self._key("lock", lane), owner)

    def unlock(self, lane: str, owner: str) -> None:
        """Release ``owner``'s lock (someone else's is left alone)."""
        self.unlock_key(self._key("lock", lane), owner)

    def lock_key(self, key: str, owner: str) -> bool:
        """Take the lock (or lease) at ``key``, expiring after the lanes' ttl."""
        return bool(self.client.set(key, owner, nx=True, px=self.ttl_ms))

    def renew_key(self, key: str, owner: str) -> bool:
        """Extend ``owner``'s lock at ``key``; False if it is no longer theirs."""
        return bool(self._renew(keys=[key], args=[owner, self.ttl_ms]))

    def unlock_key(self, key: str, owner: str) -> None:
        """Release ``owner``'s lock at ``key``."""
        self._release(keys=[key], args=[owner])

    def locked_for(self, lane: str) -> float:
        """Seconds until the lane's lock expires unless renewed (0: not locked)."""
        left = int(self.client.pttl(self._key("lock", lane)))
        return max(0, left) / 1000

    def locked(self, lanes: Sequence[str]) -> list[bool]:
        """Whether each lane is locked now."""
        with self.client.pipeline(transaction=False) as pipe:
            for lane in lanes:
                pipe.exists(self._key("lock", lane))
            return [bool(n) for n in pipe.execute()]


class Renewer:
    """Renews the lane locks one worker process holds, every third of their ttl, in a thread."""

    def __init__(self, lanes: Lanes, owner: str) -> None:
        self.lanes = lanes
        self.owner = owner
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lane-renewer", daemon=True)

    def __repr__(self) -> str:
        return f"Renewer({self.owner!r}, held={len(self._held)})"

    def start(self) -> None:
        """Start renewing."""
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing (the locks still held then expire on their own)."""
        self._stop.set()

    def hold(self, lane: str) -> None:
        """Renew ``lane`` from now on (its lock was just taken)."""
        with self._lock:
            self._held[lane] = self._held.get(lane, 0) + 1

    def drop(self, lane: str) -> None:
        """Stop renewing ``lane``."""
        with self._lock:
            count = self._held.get(lane, 0) - 1
            if count > 0:
                self._held[lane] = count
            else:
                self._held.pop(lane, None)

    def _run(self) -> None:
        while not self._stop.wait(self.lanes.options.lane_ttl / 3):
            with self._lock:
                held = list(self._held)
            for lane in held:
                try:
                    if not self.lanes.renew(lane, self.owner):
                        _log.error("fleet: lost the lock of lane %r (Redis was unreachable"
                                   " longer than --lane-ttl?)", lane)
                except redis.RedisError as exc:
                    _log.warning("fleet: cannot renew lane %r: %s", lane, exc)
