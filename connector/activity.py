"""The in-process activity bus: what the service is doing, as it happens.

The receiver (webhooks accepted and refused), the pollers (records found), the run history
(runs started and finished, each step), the sync audit trail (changes made and echoes skipped),
the HTTP client (429s and retries) and the token manager (refreshes) :func:`publish` small,
flat events here. The web console streams them (:mod:`connector.console.stream`) and the
metrics count them (:mod:`connector.console.metrics`).

Publishing is cheap enough for the receiver's hot path (1,000 webhooks per second): one dict,
one lock, one append to a bounded ring, and the listeners (counters). Readers never block
publishers: they poll :meth:`Bus.since` with the last sequence number they saw and get a batch.
Events carry ids, names, statuses and reasons only, never a body or a credential; free text
(errors, reasons) passes through :func:`connector.auth.redaction.redact` first.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from connector.auth.redaction import redact

__all__ = ["BUS", "RING_SIZE", "Bus", "Event", "contact_fields", "publish"]

RING_SIZE = 20_000
"""Events the bus keeps for readers that fall behind (about 20 s at 1,000 webhooks/s)."""

Event = dict[str, Any]
Listener = Callable[[Event], None]
_TEXT_FIELDS = ("reason", "error")
_CONTACT_KEYS = (("contact", ("contactId", "contact_id")), ("email", ("email",)),
                 ("phone", ("phone",)))  # fmt: skip


class Bus:
    """A bounded ring of events with increasing sequence numbers, and synchronous listeners.

    :param size: events kept for readers.
    """

    def __init__(self, size: int = RING_SIZE) -> None:
        self._ring: deque[Event] = deque(maxlen=size)
        self._seq = itertools.count(1)
        self._last = 0
        self._lock = threading.Lock()
        self._listeners: tuple[Listener, ...] = ()

    def __repr__(self) -> str:
        return f"Bus(last={self._last}, listeners={len(self._listeners)})"

    @property
    def last(self) -> int:
        """The sequence number of the newest event (0 before the first)."""
        return self._last

    def publish(self, kind: str, **fields: Any) -> Event:
        """Record one event of ``kind`` (``webhook``, ``run``, ...); returns it.

        Text in ``reason`` and ``error`` is redacted and cut to 300 characters.
        """
        for name in _TEXT_FIELDS:
            value = fields.get(name)
            if isinstance(value, str):
                fields[name] = redact(value)[:300]
        event: Event = {"kind": kind, "at": time.time(), **fields}
        with self._lock:
            self._last = event["seq"] = next(self._seq)
            self._ring.append(event)
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # noqa: BLE001, S110  # a listener's bug never stops the publisher
                pass
        return event

    def since(self, seq: int, limit: int = 500) -> tuple[list[Event], int, int]:
        """Events after sequence number ``seq``: (the newest ``limit`` of them, oldest first;
        the last sequence number; how many were skipped: over ``limit`` or gone from the ring).
        """
        with self._lock:
            last = self._last
            if last <= seq:
                return [], last, 0
            wanted = last - seq
            taken: list[Event] = []
            for event in reversed(self._ring):
                if event["seq"] <= seq or len(taken) >= limit:
                    break
                taken.append(event)
        taken.reverse()
        return taken, last, wanted - len(taken)

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` with every event from now on (in the publisher's thread)."""
        with self._lock:
            self._listeners = (*self._listeners, listener)

    def unsubscribe(self, listener: Listener) -> None:
        """Stop calling ``listener``."""
        with self._lock:
            self._listeners = tuple(x for x in self._listeners if x is not listener)


def contact_fields(payload: object) -> dict[str, str]:
    """The contact a webhook or run event is about: ``contact`` (id), ``email``, ``phone``
    where its payload has them (a contact event's own ``id`` is its contact id)."""
    if not isinstance(payload, Mapping):
        return {}
    found: dict[str, str] = {}
    for name, keys in _CONTACT_KEYS:
        for key in keys:
            value = payload.get(key)
            if isinstance(value, str) and value:
                found[name] = value[:200]
                break
    kind = payload.get("type")
    if "contact" not in found and isinstance(kind, str) and kind.startswith("Contact"):
        ident = payload.get("id")
        if isinstance(ident, str):
            found["contact"] = ident[:200]
    return found


BUS = Bus()
"""The process's bus."""


def publish(kind: str, **fields: Any) -> Event:
    """Publish on the process's bus (:data:`BUS`)."""
    return BUS.publish(kind, **fields)
