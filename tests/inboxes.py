"""What tests read of an inbox that the service itself never needs."""

from __future__ import annotations

from connector.service.inbox import Inbox, InboxEvent


def webhook_ids(inbox: Inbox) -> set[str]:
    """Every stored ``webhookId``."""
    return {str(r["webhook_id"]) for r in inbox.store.query("SELECT webhook_id FROM inbox")}


def find(inbox: Inbox, webhook_id: str) -> InboxEvent | None:
    """One event by its ``webhookId``."""
    rows = inbox.store.query("SELECT id FROM inbox WHERE webhook_id = ?", (webhook_id,))
    return inbox.get(int(rows[0]["id"])) if rows else None
