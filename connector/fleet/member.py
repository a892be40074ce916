"""A process's membership of the fleet: its Redis, lanes, heartbeat, queue and shared limits.

:class:`Member` is what ``serve --broker`` and ``worker`` both hold; :class:`ServeMember` adds
the serve side (the :class:`~connector.fleet.feeder.Feeder`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from connector.client.sharedlimiter import SharedRateLimiter
from connector.fleet.broker import WorkQueue
from connector.fleet.feeder import Feeder
from connector.fleet.identity import StoreIdentity, recipe_digests
from connector.fleet.lanes import Lanes, connect
from connector.fleet.options import FleetOptions
from connector.fleet.peers import Peers
from connector.hookspecs import RateLimit
from connector.service.inbox import Inbox, InboxEvent

__all__ = ["Member", "ServeMember"]


class Member:
    """The fleet's shared parts, as one process uses them.

    :param role: ``serve`` or ``worker`` (in the peer list).
    :param info: what each heartbeat adds (in flight, threads).
    :param identity: this process's store (its identity is in each heartbeat and message).
    :raises ConnectorError: Redis cannot be reached, or the broker URL is unusable.
    """

    def __init__(self, options: FleetOptions, role: str,
                 info: Callable[[], dict[str, Any]] | None = None, *,
                 identity: StoreIdentity | None = None) -> None:
        self.options = options
        self.identity = identity
        self.client = connect(options)
        self.lanes = Lanes(self.client, options)
        more = info or dict
        ident: dict[str, Any] = ({} if identity is None else
                                 {"store_id": identity.id, "store": identity.where})
        self.peers = Peers(self.client, options, role, lambda: {**ident, **more()})
        self.name = self.peers.name
        self.queue: WorkQueue | None = None

    def __repr__(self) -> str:
        return f"Member({self.name!r}, {self.options!r})"

    def open_queue(self, run: Callable[[int, str], None] | None = None) -> WorkQueue:
        """Connect to the broker (``run``: this process runs the actor)."""
        self.queue = WorkQueue(self.options, run,
                               store_id=self.identity.id if self.identity else None)
        return self.queue

    def limiter(self, app_id: str, limit: RateLimit) -> SharedRateLimiter:
        """``app_id``'s rate limiter, shared by the fleet (the runtime's ``limiter``)."""
        return SharedRateLimiter(self.client, self.options.key("limits", app_id),
                                 requests=limit.requests, per_seconds=limit.per_seconds,
                                 daily=limit.daily)

    def rate_limits(self, limit_of: Callable[[str], RateLimit | None]
                    ) -> dict[str, list[dict[str, object]]]:
        """The fleet's rate-limit state of every app and location any process called (found
        in Redis), by app id, as the console shows it; ``limit_of`` gives each app's limit."""
        prefix = self.options.key("limits", "")
        found: dict[str, set[str]] = {}
        try:
            for raw in self.client.scan_iter(f"{prefix}*", count=1000):
                name = raw.decode() if isinstance(raw, bytes) else str(raw)
                app_id, _, rest = name[len(prefix):].partition(":")
                key = re.sub(r":(slots|meta|day:\d+)$", "", rest)
                if app_id and key and key != rest:
                    found.setdefault(app_id, set()).add(key)
        except redis.RedisError as exc:
            return {"fleet": [{"key": "-", "shared": True, "error": f"Redis: {exc}"}]}
        states: dict[str, list[dict[str, object]]] = {}
        for app_id, keys in sorted(found.items()):
            limit = limit_of(app_id)
            if limit is not None:
                limiter = self.limiter(app_id, limit)
                states[app_id] = [limiter.snapshot(key) for key in sorted(keys)[:200]]
        return states

    def health(self) -> dict[str, Any]:
        """What ``/healthz`` adds: this process's name, the queue, and the live peers (a peer
        on another store than this process's is marked ``"problem"``)."""
        found = self.peers.health()
        for peer in found.get("peers", []):
            if self.identity is not None and peer.get("store_id") not in (None,
                                                                         self.identity.id):
                peer["problem"] = f"another store: {peer.get('store')}"
        return {"fleet": {"name": self.name, "queue": self.options.queue}, **found}

    def other_stores(self) -> list[dict[str, Any]]:
        """The live ``serve`` peers whose store is not this process's (empty when Redis
        cannot be reached or nobody reported a store)."""
        if self.identity is None:
            return []
        found = self.peers.health().get("peers", [])
        return [p for p in found if p.get("role") == "serve"
                and p.get("store_id") not in (None, self.identity.id)]

    def close(self) -> None:
        """Leave the peer list and close the connections."""
        self.peers.leave()
        if self.queue is not None:
            self.queue.close()
        self.client.close()


class ServeMember(Member):
    """``serve --broker``: feeds the inbox's events to the queue."""

    def __init__(self, options: FleetOptions, inbox: Inbox,
                 order: Callable[[InboxEvent], str | None], *,
                 identity: StoreIdentity | None = None, recipes: Path | None = None) -> None:
        # The recipes' digests are read again at each beat: serve reloads a changed folder.
        super().__init__(options, "serve", identity=identity, info=lambda: {
            "sent": self.feeder.sent, "feeding": self.feeder.leader,
            **({} if recipes is None else {"recipes": recipe_digests(recipes)})})
        self.feeder = Feeder(inbox, self.lanes, self.open_queue(), order, owner=self.name)

    @property
    def alive(self) -> bool:
        """Whether the feeder runs."""
        return self.feeder.alive and self.feeder.healthy

    def wake(self) -> None:
        """An event was stored: feed it now."""
        self.feeder.wake()

    def rescan(self) -> None:
        """Events went back to pending (a replay): send every unsettled event again."""
        self.feeder.rescan()

    def live_peers(self) -> list[dict[str, Any]]:
        """The fleet's live processes (empty when Redis cannot be reached)."""
        found = self.peers.health().get("peers")
        return found if isinstance(found, list) else []

    def start(self) -> None:
        """Start the heartbeat and the feeder."""
        self.peers.start()
        self.feeder.start()

    def stop(self) -> None:
        """Feed what is stored, stop, and leave."""
        self.feeder.stop()
        self.close()
