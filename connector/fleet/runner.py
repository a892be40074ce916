"""The worker side of the queue: a message's lane, run in order under the lane's lock.

:meth:`LaneRunner.run` is the actor. It takes the lane's lock (if another worker holds it, the
message comes back after the lock's remaining life, in case that worker died), then runs the
lane's events from the oldest: each is claimed in the inbox (taking over a dead holder's
claim), run by the worker pool's :meth:`~connector.service.workers.WorkerPool.run_event`
(retries in place, dead letters) and taken out of the lane once settled. When the lane is
empty it releases the lock, and sends one more message if an event arrived meanwhile, so no
event waits for the sweeper while its lane is free.

Draining (SIGTERM): a lane stops before its next event, gives its lock back and sends its
message again, so the event runs on another worker at once.
"""

from __future__ import annotations

import logging
import threading
import time

import dramatiq
import redis

from connector.errors import ConnectorError, StoreError
from connector.fleet.broker import WorkQueue, message_store
from connector.fleet.lanes import Lanes, Renewer
from connector.service.inbox import Inbox
from connector.service.workers import WorkerPool

__all__ = ["LaneRunner"]

_log = logging.getLogger(__name__)
_MIN_DELAY = 0.2
_FOREIGN_LOG_EVERY = 60.0
_FOREIGN_RETRY_MS = 10_000


class LaneRunner:
    """Runs the messages a worker process receives.

    :param pool: runs one claimed event (not started: only its ``run_event`` is used).
    :param owner: this process's name (lock holder and inbox claimer).
    :param store_id: the identity of this worker's store; a message naming another one is
        not run (:mod:`connector.fleet.identity`).
    """

    def __init__(self, inbox: Inbox, lanes: Lanes, pool: WorkerPool, owner: str, *,
                 store_id: str | None = None) -> None:
        self.store_id = store_id
        self.foreign: tuple[float, str] | None = None
        """When (monotonic) the last message of another store came, and its store id."""
        self._foreign_logged = -_FOREIGN_LOG_EVERY
        self.inbox = inbox
        self.lanes = lanes
        self.pool = pool
        self.owner = owner
        self.queue: WorkQueue | None = None
        """Where lanes send their message again; set once the queue exists."""
        self.draining = threading.Event()
        self.renewer = Renewer(lanes, owner)
        self._lock = threading.Lock()
        self._running: dict[str, int | None] = {}

    def __repr__(self) -> str:
        return f"LaneRunner({self.owner!r}, lanes={len(self._running)})"

    @property
    def in_flight(self) -> int:
        """Lanes held now."""
        with self._lock:
            return len(self._running)

    def running(self) -> dict[str, int | None]:
        """Lane -> the event it runs now (None between events)."""
        with self._lock:
            return dict(self._running)

    def run(self, event_id: int, lane: str) -> None:
        """The actor: run ``lane`` (which holds ``event_id``) if nobody else does.

        A message that is not ``(int, str)`` (not the feeder's) is logged and dropped. A
        message naming another store than this worker's (its ``ghl_store`` option) is not run:
        it is logged (at most once a minute) and handed back to Dramatiq to be retried, so a
        worker on the right store may take it.
        """
        store = message_store()
        if store is not None and self.store_id is not None and store != self.store_id:
            self._refuse(event_id, store)
        if (not isinstance(event_id, int) or isinstance(event_id, bool)
                or not isinstance(lane, str) or not lane or len(lane) > 10_000):
            _log.error("%s: dropped a message that is not (event id, lane): %r", self.owner,
                       (str(event_id)[:80], str(lane)[:80]))
            return
        if self.draining.is_set():
            self._resend(event_id, lane, _MIN_DELAY)
            return
        if not self.lanes.lock(lane, self.owner):
            self._resend(event_id, lane, max(_MIN_DELAY, self.lanes.locked_for(lane)))
            return
        self.renewer.hold(lane)
        with self._lock:
            self._running[lane] = None
        try:
            last, delay = self._drain(lane)
        finally:
            with self._lock:
                self._running.pop(lane, None)
            self.renewer.drop(lane)
            self.lanes.unlock(lane, self.owner)
        if last is not None:
            self._resend(last, lane, delay)
        elif self.lanes.size(lane):
            head = self.lanes.head(lane)
            if head is not None:
                self._resend(head, lane, None)

    @property
    def foreign_recently(self) -> str | None:
        """The store id of a message of another store received in the last minute."""
        found = self.foreign
        if found is None or time.monotonic() - found[0] > _FOREIGN_LOG_EVERY:
            return None
        return found[1]

    def _refuse(self, event_id: int, store: str) -> None:
        now = time.monotonic()
        self.foreign = (now, store)
        if now - self._foreign_logged >= _FOREIGN_LOG_EVERY:
            self._foreign_logged = now
            _log.error("%s: event %s is in another store (id %s) than this worker's (id %s):"
                       " not run [give the worker the --store serve uses]", self.owner,
                       event_id, store, self.store_id)
        raise dramatiq.Retry(f"event {event_id}: another store", delay=_FOREIGN_RETRY_MS)

    def _drain(self, lane: str) -> tuple[int | None, float | None]:
        """Run the lane's events in order; the event left unfinished (handed back, or waiting
        for a later time), if any, and when its message should come back."""
        while True:
            event_id = self.lanes.head(lane)
            if event_id is None:
                return None, None
            if self.draining.is_set():
                return event_id, _MIN_DELAY
            event = self.inbox.claim_event(event_id, self.owner, lease=0)
            if event is None:
                stored = self.inbox.get(event_id)
                if stored is None or stored.status in ("done", "dead"):
                    self.lanes.remove(lane, event_id)
                    continue
                # Pending until a later time (a retry someone scheduled): come back then.
                return event_id, max(_MIN_DELAY, stored.available_at - time.time())
            with self._lock:
                self._running[lane] = event.id
            ended = self.pool.run_event(event)
            with self._lock:
                self._running[lane] = None
            if ended in ("done", "dead"):
                self.lanes.remove(lane, event_id)
            else:
                return event_id, _MIN_DELAY

    def _resend(self, event_id: int, lane: str, delay: float | None) -> None:
        if self.queue is None:
            raise ConnectorError(f"{self.owner}: no queue to send lane {lane!r} back to")
        self.queue.send(event_id, lane, delay=delay)

    def hand_back(self) -> int:
        """After a drain that ran out of grace: give the inbox back every claim this process
        still holds, and send their lanes again (their runs were cut off; the ledger makes
        the re-runs skip what they did)."""
        running = [(lane, eid) for lane, eid in self.running().items() if eid is not None]
        try:
            released = self.inbox.release(self.owner)
        except StoreError as exc:
            _log.warning("%s: could not hand back claims (they are taken over when their lane"
                         " frees): %s", self.owner, exc)
            return 0
        for lane, event_id in running:
            try:
                self.lanes.unlock(lane, self.owner)
                self._resend(event_id, lane, None)
            except (ConnectorError, redis.RedisError) as exc:
                _log.warning("%s: lane %r waits for the sweeper: %s", self.owner, lane, exc)
        return released
