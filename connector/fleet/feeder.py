"""The serve side of the queue: inbox events into their lanes and onto the broker.

The feeder reads the inbox's unsettled events past its cursor (woken by the receiver's
writer, and every ``poll`` seconds for the pollers' events), puts each into its contact lane
(:mod:`connector.fleet.lanes`, in inbox order) and sends its id. Reading by id passes no
event: the inbox's writers draw ids in commit order
(:func:`~connector.service.inbox.order_inserts`). At start its cursor is 0, so whatever a
previous run left unsettled is sent again. Every few seconds its *sweeper* looks for events
still unsettled ``sweep_after`` seconds after they arrived whose lane nobody holds (the
message was lost, or the worker died before it took the lane) and sends them again; a
duplicate message is harmless, as the lane's holder skips settled events.

One feeder runs per fleet: a ``serve`` process feeds while it holds the feeder lease in Redis
(renewed like a lane lock), so events are put into lanes in inbox order even with several
``serve`` processes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis

from connector.errors import ConnectorError, StoreError
from connector.fleet.broker import WorkQueue
from connector.fleet.lanes import Lanes
from connector.service.inbox import Inbox, InboxEvent

__all__ = ["Feeder"]

_log = logging.getLogger(__name__)
_BATCH = 500


class Feeder:
    """Feeds the inbox's events to the queue, and sweeps for lost ones.

    :param order: an event's lane key (None: the event is its own lane).
    :param owner: this process's name (the feeder lease's holder).
    :param poll: seconds between looks at the inbox when nobody wakes the feeder.
    """

    def __init__(self, inbox: Inbox, lanes: Lanes, queue: WorkQueue,
                 order: Callable[[InboxEvent], str | None], *, owner: str,
                 poll: float = 0.5) -> None:
        self.inbox = inbox
        self.lanes = lanes
        self.queue = queue
        self.order = order
        self.owner = owner
        self.poll = poll
        self.sent = 0
        """Messages sent (first sends and the sweeper's)."""
        self.swept = 0
        """Messages the sweeper sent again."""
        self.leader = False
        """Whether this process holds the feeder lease."""
        self.healthy = True
        """False while the last round failed (Redis, the broker or the store)."""
        self.error = ""
        """Why the last round failed (empty while healthy)."""
        self._cursor = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lease = lanes.options.key("feeder")

    def __repr__(self) -> str:
        return f"Feeder({self.owner!r}, sent={self.sent}, leader={self.leader})"

    @property
    def alive(self) -> bool:
        """Whether the feeder thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        """Look at the inbox now (the receiver just stored an event)."""
        self._wake.set()

    def rescan(self) -> None:
        """Send every unsettled event again from the start of the inbox (events went back to
        pending behind the cursor: a replay); duplicates are harmless."""
        self._cursor = 0
        self._wake.set()

    def start(self) -> None:
        """Start feeding in a thread."""
        self._thread = threading.Thread(target=self._run, name="fleet-feeder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Feed what is stored, then stop (and give up the lease)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
        if self.leader:
            try:
                self.lanes.unlock_key(self._lease, self.owner)
            except redis.RedisError:
                pass

    def _run(self) -> None:
        sweep_every = max(1.0, min(5.0, self.lanes.options.sweep_after / 4))
        next_sweep = time.monotonic() + sweep_every
        while True:
            stopping = self._stop.is_set()
            try:
                if self._lead():
                    while self.feed():
                        pass
                    if time.monotonic() >= next_sweep:
                        self.sweep()
                        next_sweep = time.monotonic() + sweep_every
                self.healthy, self.error = True, ""
            except (StoreError, ConnectorError, redis.RedisError) as exc:
                self.healthy, self.error = False, f"{type(exc).__name__}: {exc}"[:300]
                _log.warning("fleet: feeding the queue failed (retrying): %s", exc)
            except Exception as exc:  # thread top level: the feeder must not die
                self.healthy, self.error = False, f"{type(exc).__name__}: {exc}"[:300]
                _log.exception("fleet: feeding the queue failed")
            if stopping:
                return
            self._wake.wait(self.poll)
            self._wake.clear()

    def _lead(self) -> bool:
        """Take or renew the feeder lease; a new leader starts from the inbox's beginning."""
        if self.leader and self.lanes.renew_key(self._lease, self.owner):
            return True
        self.leader = self.lanes.lock_key(self._lease, self.owner)
        if self.leader:
            self._cursor = 0
            _log.info("fleet: feeding the queue", extra={"fields": {"owner": self.owner}})
        return self.leader

    def feed(self) -> bool:
        """Send the next batch of new events; True if there may be more."""
        events = self.inbox.unsettled(after=self._cursor, limit=_BATCH)
        if not events:
            return False
        self._send(events)
        self._cursor = events[-1].id
        return len(events) == _BATCH

    def sweep(self) -> int:
        """Send again the events unsettled for ``sweep_after`` seconds whose lane is free.

        :returns: how many messages were sent.
        """
        before = time.time() - self.lanes.options.sweep_after
        after, found = 0, []
        while True:
            events = self.inbox.unsettled(after=after, received_before=before, limit=_BATCH)
            found += events
            if len(events) < _BATCH:
                break
            after = events[-1].id
        if not found:
            return 0
        keyed = [(self._lane(e), e) for e in found]
        lanes = sorted({lane for lane, _ in keyed})
        free = {lane for lane, held in zip(lanes, self.lanes.locked(lanes), strict=True)
                if not held}
        # One message per free lane, naming its oldest stale event.
        first: dict[str, InboxEvent] = {}
        for lane, event in keyed:
            if lane in free:
                first.setdefault(lane, event)
        self.lanes.add((lane, event.id) for lane, event in keyed if lane in free)
        for lane, event in first.items():
            self.queue.send(event.id, lane)
        self.sent += len(first)
        self.swept += len(first)
        if first:
            _log.info("fleet: sent stale events again",
                      extra={"fields": {"lanes": len(first), "events": len(found)}})
        return len(first)

    def _send(self, events: list[InboxEvent]) -> None:
        keyed = [(self._lane(e), e.id) for e in events]
        self.lanes.add(keyed)  # before the messages: a worker sees the lane's older events
        for lane, event_id in keyed:
            self.queue.send(event_id, lane)
        self.sent += len(keyed)

    def _lane(self, event: InboxEvent) -> str:
        return self.order(event) or f"event/{event.webhook_id}"
