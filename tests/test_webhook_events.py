"""Every GHL webhook event, signed as GHL signs it, is stored by the receiver (real HTTP, real
SQLite inbox) and reaches the recipe that uses its trigger (the dispatcher routes by `type`)."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from inboxes import find
from jsonschema import Draft202012Validator

from connector.catalog import build_catalog
from connector.expressions.filters import BUILTIN_FILTERS
from connector.recipes.history import History
from connector.sandbox.keys import WebhookKeys
from connector.service.dispatcher import Dispatcher, load_routes
from connector.service.inbox import Inbox
from connector.service.receiver import ReceiverServer, Settings, open_store
from connector.service.signatures import parse_keys

# GHL's ProviderOutboundMessage is posted to a conversation provider's delivery URL with the
# message type (SMS, Email) in `type`, so it cannot be routed by `type` (docs/catalog.md).
UNROUTABLE = {"ghl.messages.provider_outbound"}


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[ReceiverServer, Inbox, WebhookKeys]]:
    keys = WebhookKeys()
    trusted = parse_keys((kind, pem.encode()) for kind, pem in keys.public_pem().items())
    store = open_store(tmp_path / "state.db", busy_timeout=1.0)
    with store, ReceiverServer(store, Settings(trusted, max_body=1 << 20, max_age=300)) as server:
        yield server, Inbox(store), keys


def test_every_webhook_event_is_stored_and_reaches_its_recipe(receiver, tmp_path: Path) -> None:
    """One recipe per GHL webhook trigger; each trigger's sample (GHL's example), delivered signed,
    is stored once and starts exactly the recipe using that trigger."""
    server, inbox, keys = receiver
    catalog = build_catalog()
    triggers = {t.id: t for t in catalog.triggers.values() if t.kind == "webhook" and t.app == "ghl"}
    assert len(triggers) >= 58
    folder = tmp_path / "recipes"
    folder.mkdir()
    for tid in triggers:
        (folder / f"{tid.replace('.', '_')}.yaml").write_text(
            f"name: {tid}\ntrigger:\n  use: {tid}\nsteps:\n  - id: read\n"
            "    use: ghl.contacts.get\n    with: {contactId: abc}\n"
        )
    routes = load_routes(folder, catalog, BUILTIN_FILTERS)

    def no_engine(location: str | None) -> Any:  # noqa: ANN401
        raise AssertionError("routing alone runs nothing")

    dispatcher = Dispatcher(catalog, routes, no_engine, History(inbox.store))
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    sent = 0
    with httpx.Client(timeout=10, trust_env=False) as client:
        for tid, trigger in sorted(triggers.items()):
            schema = trigger.payload_schema.resolve()
            samples = copy.deepcopy(schema.get("examples", []))
            if not samples:  # no example published (Price*): the schema's required fields
                samples = [{"type": trigger.event, "locationId": "L1"}]
            body_data = {**copy.deepcopy(samples[0]), "webhookId": str(uuid.uuid4()),
                         "timestamp": now}
            validator = Draft202012Validator(schema)
            assert [e.message for e in validator.iter_errors(body_data)] == [], tid
            body = json.dumps(body_data).encode()
            answer = client.post(server.url, content=body,
                                 headers={"content-type": "application/json", **keys.sign(body)})
            assert answer.status_code == 200 and answer.json()["stored"] is True, (tid, answer.text)
            sent += 1
            stored = find(inbox, body_data["webhookId"])
            assert stored is not None and stored.body == body, tid
            reached = [r.trigger.id for r in dispatcher.routes_for(stored.type)]
            if tid in UNROUTABLE:
                assert reached == [], tid
            else:
                assert reached == [tid], (tid, stored.type)
    assert sent == len(triggers)
