"""Who is in the fleet: each ``serve`` and ``worker`` process beats into one Redis hash.

A beat is ``name -> {role, host, pid, started, seen, ...}``; a peer silent for three
heartbeats is gone, and one silent for a minute is pruned. ``/healthz`` lists the live peers.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from connector.fleet.options import FleetOptions

__all__ = ["Peers", "peer_name"]

_log = logging.getLogger(__name__)
_PRUNE_AFTER = 60.0


def peer_name(role: str) -> str:
    """This process's name in the fleet: ``<role>@<host>:<pid>``."""
    return f"{role}@{socket.gethostname()}:{os.getpid()}"


class Peers:
    """This process's heartbeat, and the fleet's live peers.

    :param info: what each beat reports besides the identity (in flight, threads, ...).
    """

    def __init__(self, client: redis.Redis, options: FleetOptions, role: str,
                 info: Callable[[], dict[str, Any]] | None = None) -> None:
        self.client = client
        self.options = options
        self.role = role
        self.name = peer_name(role)
        self.info = info or dict
        self.started = time.time()
        self._key = options.key("peers")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"Peers({self.name!r})"

    def beat(self) -> None:
        """Report this process as alive now."""
        record = {"name": self.name, "role": self.role, "host": socket.gethostname(),
                  "pid": os.getpid(), "started": round(self.started, 3),
                  "seen": round(time.time(), 3), **self.info()}
        self.client.hset(self._key, self.name, json.dumps(record))

    def start(self) -> None:
        """Beat every ``heartbeat`` seconds in a thread until :meth:`leave`."""

        def run() -> None:
            while True:
                try:
                    self.beat()
                except redis.RedisError as exc:
                    _log.warning("fleet: heartbeat failed: %s", exc)
                if self._stop.wait(self.options.heartbeat):
                    return

        self._thread = threading.Thread(target=run, name="fleet-heartbeat", daemon=True)
        self._thread.start()

    def leave(self) -> None:
        """Stop beating and leave the list (a drained process)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        try:
            self.client.hdel(self._key, self.name)
        except redis.RedisError as exc:
            _log.warning("fleet: could not leave the peer list: %s", exc)

    def live(self) -> list[dict[str, Any]]:
        """The peers heard from within three heartbeats (this one included), by name.

        :raises redis.RedisError: Redis cannot be reached.
        """
        now = time.time()
        found: list[dict[str, Any]] = []
        stale: list[str] = []
        raw: dict[bytes, bytes] = self.client.hgetall(self._key)  # type: ignore[assignment]
        for name, value in raw.items():
            try:
                record = json.loads(value)
                seen = float(record["seen"])
            except (ValueError, KeyError, TypeError):
                stale.append(name.decode(errors="replace"))
                continue
            if seen >= now - 3 * self.options.heartbeat:
                found.append(record)
            elif seen < now - _PRUNE_AFTER:
                stale.append(name.decode(errors="replace"))
        if stale:
            self.client.hdel(self._key, *stale)
        return sorted(found, key=lambda r: str(r.get("name")))

    def health(self) -> dict[str, Any]:
        """What ``/healthz`` adds: ``peers`` (live ones) or ``peers_error``."""
        try:
            return {"peers": self.live()}
        except redis.RedisError as exc:
            return {"peers_error": f"Redis: {exc}"}
