"""The worker pool: claims inbox events, runs them in per-contact order, settles them.

One feeder thread claims ready events (oldest first, under a lease) whenever the pool has room,
and puts each on a *lane* chosen by its contact key, so the events of one contact run one after
the other, in arrival order, on the same lane; different contacts run in parallel. A lane runs an
event through a handler (the dispatcher) and settles it: ``done``, or ``dead`` (the dead-letter
list). When the handler raises (the state file is locked, an enrichment fetch failed, a bug), the
lane retries the same event in place after a jittered, doubling backoff, so later events of the
contact keep waiting behind it; after ``max_attempts`` the event is dead.

:meth:`WorkerPool.stop` is the graceful shutdown: stop claiming, hand back the events not started
yet, let the running ones finish within ``grace`` seconds, then interrupt the ones still waiting
for a retry and hand them back too (the ledger makes their re-run skip what they did). A hard
kill loses nothing either: claims left by a dead process are released at the next start
(:func:`recover`), and the events run again.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from connector.client.retry import jittered
from connector.errors import ConnectorError, StoreError
from connector.service.dispatcher import Outcome
from connector.service.inbox import Inbox, InboxEvent

__all__ = ["HandedBack", "PoolSettings", "WorkerPool", "recover"]

_log = logging.getLogger(__name__)
_SETTLE_TRIES = 5


class HandedBack(Exception):
    """Raised inside a run waiting for a retry when the pool shuts down: the event goes back
    to the inbox unfinished (not a :class:`ConnectorError`, so nothing records it as a failure)."""


@dataclass(frozen=True, slots=True)
class PoolSettings:
    """How the pool works.

    :param workers: lanes (threads running events).
    :param lease: seconds a claim is held before another claimer may take the event over.
    :param poll: seconds between looks at the inbox when nobody wakes the pool.
    :param max_attempts: tries of an event whose handler raises, before it is dead.
    :param backoff: seconds before the first retry of such an event; doubled each time, with
        full jitter, up to ``backoff_cap``.
    :param grace: seconds :meth:`WorkerPool.stop` lets running events finish.
    """

    workers: int = 4
    lease: float = 3600.0
    poll: float = 0.5
    max_attempts: int = 5
    backoff: float = 1.0
    backoff_cap: float = 60.0
    grace: float = 10.0

    def __post_init__(self) -> None:
        if self.workers < 1 or self.max_attempts < 1:
            raise ValueError(
                f"PoolSettings: workers {self.workers!r} and max_attempts"
                f" {self.max_attempts!r} must be >= 1"
            )


@dataclass
class _Lane:
    queue: collections.deque[InboxEvent] = field(default_factory=collections.deque)
    current: InboxEvent | None = None
    thread: threading.Thread | None = None


def recover(inbox: Inbox) -> int:
    """Release every claim left in ``inbox`` (by a process that died), so the events run again.

    Call it only while no other process works on the same inbox (``serve`` holds a lock).

    :returns: how many events were released.
    """
    rows = inbox.store.query(
        "SELECT DISTINCT claimed_by FROM inbox WHERE status = 'processing'"
    )
    return sum(inbox.release(str(r["claimed_by"])) for r in rows if r["claimed_by"])


class WorkerPool:
    """Threads that claim events from ``inbox`` and run ``handle`` on each.

    :param inbox: where events come from and are settled.
    :param handle: runs one event (the dispatcher's ``process``).
    :param settings: sizes and timings.
    :param name: the claimer name recorded in the inbox.
    :param order: the key whose events run in order on one lane (``serve`` passes
        :func:`~connector.service.partnerhooks.ordering`: the contact an event is about); None,
        and by default: the event runs on its own.
    """

    def __init__(
        self,
        inbox: Inbox,
        handle: Callable[[InboxEvent], Outcome],
        settings: PoolSettings | None = None,
        *,
        name: str = "worker",
        order: Callable[[InboxEvent], str | None] | None = None,
    ) -> None:
        self.inbox = inbox
        self.order = order or _alone
        self.handle = handle
        self.settings = settings or PoolSettings()
        self.name = name
        self._lanes = [_Lane() for _ in range(self.settings.workers)]
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._abandon = threading.Event()
        self._feeder: threading.Thread | None = None
        self.settled: collections.Counter[str] = collections.Counter()
        """How many events ended ``done``, ``dead``, or were handed back."""

    def __repr__(self) -> str:
        return f"WorkerPool({self.name!r}, workers={self.settings.workers})"

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the feeder and the lanes."""
        for number, lane in enumerate(self._lanes):
            lane.thread = threading.Thread(
                target=self._lane_loop, args=(lane,), name=f"{self.name}-lane-{number}",
                daemon=True,
            )
            lane.thread.start()
        self._feeder = threading.Thread(target=self._feed_loop, name=f"{self.name}-feeder",
                                        daemon=True)
        self._feeder.start()

    @property
    def alive(self) -> bool:
        """Whether the feeder and every lane run."""
        threads = [self._feeder, *(lane.thread for lane in self._lanes)]
        return all(t is not None and t.is_alive() for t in threads)

    @property
    def in_flight(self) -> int:
        """Events claimed and not settled yet (queued or running)."""
        with self._cond:
            return sum(len(lane.queue) + (lane.current is not None) for lane in self._lanes)

    def wake(self) -> None:
        """Look at the inbox now (the receiver just stored an event)."""
        self._wake.set()

    def sleep(self, seconds: float) -> None:
        """Wait between retries inside a run (the engine's ``sleep``).

        :raises HandedBack: the pool is shutting down and the grace period is over.
        """
        if self._abandon.wait(seconds):
            raise HandedBack(f"{self.name}: shutting down")

    def stop(self, grace: float | None = None) -> int:
        """Stop claiming, hand back queued events, let running ones finish within ``grace``
        seconds, then hand back the rest.

        :returns: how many events were handed back.
        """
        grace = self.settings.grace if grace is None else grace
        self._stopping.set()
        self._wake.set()
        if self._feeder is not None:
            self._feeder.join()
        with self._cond:
            queued = [e.id for lane in self._lanes for e in lane.queue]
            for lane in self._lanes:
                lane.queue.clear()
            self._cond.notify_all()
        handed = self._release(queued)
        deadline = time.monotonic() + grace
        for lane in self._lanes:
            if lane.thread is not None:
                lane.thread.join(max(0.0, deadline - time.monotonic()))
        self._abandon.set()
        for lane in self._lanes:
            if lane.thread is not None:
                lane.thread.join(2.0)
        with self._cond:
            stuck = [lane.current.id for lane in self._lanes if lane.current is not None]
        return handed + self._release(stuck)

    def _release(self, ids: list[int]) -> int:
        if not ids:
            return 0
        try:
            count = self.inbox.release(self.name, ids)
        except StoreError as exc:
            _log.warning("%s: could not hand back %d events (the next start will): %s",
                         self.name, len(ids), exc)
            return 0
        self.settled["handed back"] += count
        return count

    # -- the feeder ------------------------------------------------------------------------

    def _feed_loop(self) -> None:
        room_per_lane = 2
        while not self._stopping.is_set():
            room = room_per_lane * len(self._lanes) - self.in_flight
            claimed: list[InboxEvent] = []
            if room > 0:
                try:
                    claimed = self.inbox.claim(room, self.name, lease=self.settings.lease)
                except StoreError as exc:
                    _log.warning("%s: cannot claim events: %s", self.name, exc)
                except Exception:  # thread top level: the feeder must not die
                    _log.exception("%s: claiming events failed", self.name)
            if claimed:
                self._route(claimed)
                continue
            self._wake.wait(self.settings.poll)
            self._wake.clear()

    def _route(self, events: list[InboxEvent]) -> None:
        with self._cond:
            for event in events:
                key = self.order(event) or event.webhook_id
                lane = self._lanes[zlib.crc32(key.encode()) % len(self._lanes)]
                lane.queue.append(event)
            self._cond.notify_all()

    # -- the lanes -------------------------------------------------------------------------

    def _lane_loop(self, lane: _Lane) -> None:
        while True:
            with self._cond:
                while not lane.queue and not self._stopping.is_set():
                    self._cond.wait()
                if not lane.queue:
                    return
                event = lane.current = lane.queue.popleft()
            try:
                self.run_event(event)
            except Exception:  # thread top level: a lane must not die
                _log.exception("%s: event %r: unexpected failure", self.name, event.webhook_id)
            finally:
                with self._cond:
                    lane.current = None
                self._wake.set()  # room for more: the feeder claims now, not at its next poll

    def interrupt(self) -> None:
        """Make runs waiting for a retry hand their events back now (a shutdown's grace is
        over; :meth:`stop` does it itself)."""
        self._abandon.set()

    def run_event(self, event: InboxEvent) -> str:
        """Run one claimed event until it settles, is handed back, or runs out of attempts
        (what a lane does with each event; a queue worker calls it for its claims).

        :returns: ``done``, ``dead``, ``handed back``, or ``unsettled`` (the store refused
            the settling: the claim stays, and is taken over later).
        """
        attempt = 0
        while True:
            try:
                outcome = self.handle(event)
            except HandedBack:
                self._release([event.id])
                return "handed back"
            except ConnectorError as exc:
                error = str(exc)
            except Exception as exc:  # a bug in a recipe's plugin must not stop the lane
                _log.exception("%s: event %r failed", self.name, event.webhook_id)
                error = f"unexpected error: {exc!r}"
            else:
                return self._settle(event, outcome.status, outcome.error)
            attempt += 1
            if attempt >= self.settings.max_attempts:
                return self._settle(event, "dead", f"gave up after {attempt} attempts: {error}")
            delay = jittered(self.settings.backoff, self.settings.backoff_cap, attempt)
            _log.warning("%s: event %r (%s) failed, retry %d in %.1fs: %s", self.name,
                         event.webhook_id, event.type, attempt, delay, error)
            try:
                self.sleep(delay)
            except HandedBack:
                self._release([event.id])
                return "handed back"

    def _settle(self, event: InboxEvent, status: str, error: str | None) -> str:
        for attempt in range(_SETTLE_TRIES):
            try:
                if status == "done":
                    self.inbox.complete(event.id)
                else:
                    self.inbox.fail(event.id, error or "dead", None)
                    _log.warning("%s: event %r (%s) is a dead letter: %s", self.name,
                                 event.webhook_id, event.type, error)
                self.settled[status] += 1
                return status
            except StoreError as exc:
                _log.warning("%s: cannot settle event %r: %s", self.name, event.webhook_id, exc)
                time.sleep(0.05 * 2**attempt)
        # Still processing: the next start releases it, and the re-run finds its runs ended.
        return "unsettled"


def _alone(event: InboxEvent) -> str | None:
    """No ordering key: every event runs on its own lane."""
    return None
