"""What a route handler works with: one API call's inputs, the store, and the events it causes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connector.sandbox.responses import ApiError, bad_request, error_body
from connector.sandbox.state import Record, Store

__all__ = ["Call", "Reply"]

Reply = tuple[int, dict[str, Any]]


@dataclass(slots=True)
class Call:
    """One authenticated API call as a handler sees it.

    ``location_id`` is the principal's location (a Location token), or None for an agency
    token, in which case handlers use the request's own ``locationId``. Handlers append
    ``(event type, record)`` pairs to ``events``; the app emits them once the call succeeded.
    """

    store: Store
    location_id: str | None
    params: dict[str, str]
    query: dict[str, str]
    body: Any
    base_url: str = ""
    allow_duplicates: bool = False
    events: list[tuple[str, Record, str]] = field(default_factory=list)
    acting_location: str | None = None
    query_pairs: list[tuple[str, str]] = field(default_factory=list)
    """Every query pair in order (``query`` keeps the last of a repeated name)."""
    raw_body: bytes = b""
    """The body as sent (spec-answered form and multipart operations read it)."""
    content_type: str = ""
    payloads: list[dict[str, Any]] = field(default_factory=list)
    """Whole webhook bodies to send once the call succeeded (spec-answered writes)."""

    def contact(self) -> Record:
        """The contact named by the path's ``contactId``; a GHL 400 when there is none."""
        found = self.store.contact(self.params["contactId"], self.location_id)
        if found is None:
            raise bad_request("Contact not found")
        self.acting_location = found["locationId"]
        return found

    def location(self, requested: object) -> str:
        """The location a call acts on: the token's, which a requested ``locationId`` must match.

        :raises ApiError: 403 when the token belongs to another location
        """
        if self.location_id is None:
            self.acting_location = str(requested)
            return self.acting_location
        if requested not in (None, self.location_id):
            raise ApiError(403, error_body(403, "The token does not have access to this location."))
        self.acting_location = self.location_id
        return self.location_id

    def emit(self, event_type: str, record: Record) -> None:
        """Queue a webhook event about ``record`` (sent after the call succeeds).

        The event's location is the record's own, else the location the call acted on.
        """
        location = record.get("locationId") or self.acting_location or self.location_id or ""
        self.events.append((event_type, record, str(location)))
