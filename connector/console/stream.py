"""The console's live activity: the bus's events as server-sent events, in batches.

One SSE message per :data:`BATCH_SECONDS` at most (none when nothing happened), holding up to
:data:`BATCH_LIMIT` events and the count of those left out, so 1,000 webhooks per second cost
the receiver one list slice per half second per open page, and the page redraws twice a
second, not a thousand times. The ``id`` of each message is the bus sequence number: a
reconnecting ``EventSource`` sends it back (``Last-Event-ID``) and continues where it left.
Filters (query parameters) keep only the events of a location, a contact (id, e-mail or
phone), a recipe, a status or a kind.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass

from connector.activity import Bus, Event

__all__ = ["BATCH_LIMIT", "BATCH_SECONDS", "Filters", "stream"]

BATCH_SECONDS = 0.5
BATCH_LIMIT = 200
HEARTBEAT_SECONDS = 15.0
RECENT = 100
_FIELD_LIMIT = 200


@dataclass(frozen=True, slots=True)
class Filters:
    """What a page wants to see; empty strings match everything."""

    location: str = ""
    contact: str = ""
    recipe: str = ""
    status: str = ""
    kind: str = ""

    @classmethod
    def of(cls, params: Mapping[str, str]) -> Filters:
        """From query parameters (each cut to 200 characters)."""
        return cls(**{name: params.get(name, "").strip()[:_FIELD_LIMIT]
                      for name in ("location", "contact", "recipe", "status", "kind")})

    def __bool__(self) -> bool:
        return any((self.location, self.contact, self.recipe, self.status, self.kind))

    def match(self, event: Event) -> bool:
        """Whether ``event`` passes every filter given."""
        if self.kind and event.get("kind") != self.kind:
            return False
        if self.status and str(event.get("status")) != self.status:
            return False
        if self.location and event.get("location") != self.location:
            return False
        if self.recipe and event.get("recipe") != self.recipe:
            return False
        if self.contact:
            wanted = self.contact.lower()
            return any(wanted in str(event.get(k) or "").lower()
                       for k in ("contact", "email", "phone", "ghl_id", "partner_id"))
        return True


async def stream(
    bus: Bus,
    filters: Filters,
    *,
    start: int | None,
    gone: Callable[[], bool],
    interval: float = BATCH_SECONDS,
) -> AsyncIterator[bytes]:
    """SSE bytes: batches of events after sequence ``start`` (None: the last
    :data:`RECENT` events first, so a page opens with what just happened) until ``gone()``.

    :param gone: true once the client left or the server stops.
    """
    seq = max(0, bus.last - RECENT) if start is None else max(0, min(start, bus.last))
    yield b"retry: 2000\n: connected\n\n"
    quiet = 0.0
    while not gone():
        await asyncio.sleep(interval)
        events, last, skipped = bus.since(seq, BATCH_LIMIT * 5 if filters else BATCH_LIMIT)
        if last == seq:
            quiet += interval
            if quiet >= HEARTBEAT_SECONDS:
                quiet = 0.0
                yield b": heartbeat\n\n"
            continue
        seq = last
        chosen = [e for e in events if filters.match(e)] if filters else events
        if len(chosen) > BATCH_LIMIT:
            skipped += len(chosen) - BATCH_LIMIT
            chosen = chosen[-BATCH_LIMIT:]
        if not chosen and not skipped:
            continue
        quiet = 0.0
        data = json.dumps({"events": chosen, "skipped": skipped}, separators=(",", ":"),
                          default=str)
        yield f"id: {last}\nevent: batch\ndata: {data}\n\n".encode()
