"""REST hooks through ``ghl-connector serve`` as a real process: sandbox webhooks reach a
subscribed target, and a kill -9 between the inbox and the delivery loses no event."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from hooktarget import HookTarget

from connector.api.delivery import delivery_counts, message_id
from connector.api.subscriptions import subscribe
from connector.catalog import Catalog
from connector.client.urlguard import allowing
from connector.sandbox.server import SandboxServer
from connector.service.inbox import Inbox, NewEvent
from connector.store import Store
from tests.serveproc import wait_for
from tests.test_service import create_contact, serve_for


def counts(db: Path) -> dict[str, int]:
    with Store(db) as store:
        return delivery_counts(store)


@pytest.mark.slow
def test_rest_hooks_serve_delivers_and_a_kill_9_loses_no_event(
    ghl: SandboxServer, tmp_path: Path, catalog: Catalog
) -> None:
    """A subscription made before serve starts gets the sandbox's ContactCreate, verified
    by the Standard Webhooks library. serve is killed -9 while the target holds that POST
    unanswered, and an event is stored in the inbox while serve is down (as if it died right
    after storing it): the restarted serve sends the first one again with the same
    webhook-id and delivers the second; the subscription outlived both processes."""
    proc = serve_for(ghl, tmp_path)
    proc.env["CONNECTOR_HTTP_ALLOW"] = "127.0.0.1"
    with HookTarget() as target:
        with Store(proc.db) as store, allowing("127.0.0.1"):
            sub = subscribe(store, "ghl.contacts.created", target.url, catalog=catalog)
        target.secret = sub.secret
        target.hold.clear()
        with proc:
            ghl.set_webhook_urls([proc.url])
            try:
                contact = create_contact(ghl, "Ada")
                assert wait_for(lambda: len(target.received) == 1)
                assert proc.health().json()["hooks"] == {"sending": 1}
                proc.kill9()
            finally:
                ghl.set_webhook_urls([])
        first = target.received[0]
        assert first.verified, first.error
        assert first.json()["data"]["id"] == contact
        assert counts(proc.db) == {"sending": 1}

        late: dict[str, Any] = {"type": "ContactCreate", "locationId": ghl.location_id,
                                "id": contact, "webhookId": str(uuid.uuid4())}
        with Store(proc.db) as store:
            body = json.dumps(late).encode()
            assert Inbox(store).add(NewEvent.from_payload(body, late, time.time()))
        target.hold.set()
        with proc:
            assert wait_for(lambda: counts(proc.db) == {"delivered": 2})
            assert proc.health().json()["hooks"] == {"delivered": 2}
        ids = [r.id for r in target.received]
        assert ids.count(first.id) == 2, ids
        assert message_id(sub.id, late["webhookId"]) in ids
        assert all(r.verified for r in target.received)
        assert sub.secret not in "\n".join(proc.logs)


def polled_once(db: Path, trigger_id: str) -> bool:
    with Store(db) as store:
        return bool(store.query("SELECT 1 FROM poll_cursors WHERE trigger_id = ?",
                                (trigger_id,)))


@pytest.mark.slow
def test_rest_hooks_serve_polls_a_polling_trigger_subscribed_while_running(
    ghl: SandboxServer, tmp_path: Path, catalog: Catalog
) -> None:
    """No recipe polls ghl.contacts.added; a subscription to it made while serve runs starts
    its poller, and a contact added afterwards is delivered as that trigger's event."""
    proc = serve_for(ghl, tmp_path, "--poll-interval", "0.3", "--poll-location", ghl.location_id)
    proc.env["CONNECTOR_HTTP_ALLOW"] = "127.0.0.1"
    with HookTarget() as target, proc:
        assert "pollers: none" in proc.summary
        with Store(proc.db) as store, allowing("127.0.0.1"):
            sub = subscribe(store, "ghl.contacts.added", target.url, catalog=catalog)
        target.secret = sub.secret
        assert wait_for(lambda: polled_once(proc.db, "ghl.contacts.added"))
        contact = create_contact(ghl, "Polly")
        assert wait_for(lambda: counts(proc.db) == {"delivered": 1})
        [got] = target.received
        assert got.verified, got.error
        assert got.json()["type"] == "ghl.contacts.added"
        assert got.json()["data"]["id"] == contact
