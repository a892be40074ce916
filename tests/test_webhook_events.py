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
from conftest import SHARED
from inboxes import find
from jsonschema import Draft202012Validator

from connector.catalog import build_catalog
from connector.expressions.filters import BUILTIN_FILTERS
from connector.recipes.history import History
from connector.sandbox.keys import WebhookKeys
from connector.service.dispatcher import Dispatcher, load_routes
from connector.service.inbox import EventTypes, Inbox
from connector.service.receiver import ReceiverServer, Settings, open_store
from connector.service.signatures import parse_keys


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[ReceiverServer, Inbox, WebhookKeys]]:
    keys = WebhookKeys()
    trusted = parse_keys((kind, pem.encode()) for kind, pem in keys.public_pem().items())
    store = open_store(tmp_path / "state.db", busy_timeout=1.0)
    events = EventTypes.of_catalog(build_catalog())  # the hub's triggers' `match` data
    settings = Settings(trusted, max_body=1 << 20, max_age=300, events=events)
    with store, ReceiverServer(store, settings) as server:
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
            assert reached == [tid], (tid, stored.type)
    assert sent == len(triggers)


def test_provider_outbound_message_is_typed_by_its_shape(receiver) -> None:
    """GHL's ProviderOutboundMessage says SMS or Email in `type`: both official examples, signed
    and delivered, are stored as ProviderOutboundMessage (what its trigger routes by, by its
    manifest `match`) with the body untouched; an SMS-typed body without a messageId, and GHL's
    own message events, keep their `type`."""
    server, inbox, keys = receiver
    events = SHARED / "ghl-openapi" / "webhook-events"
    examples = sorted(events.glob("ProviderOutboundMessage.example*.json"))
    if not examples:
        pytest.skip(f"no ProviderOutboundMessage examples in {events}")
    bodies = [json.loads(p.read_text(encoding="utf-8")) for p in examples]
    assert {b["type"] for b in bodies} == {"SMS", "Email"}
    plain = {"type": "SMS", "locationId": "L1", "body": "no messageId"}
    inbound = {"type": "InboundMessage", "locationId": "L1", "messageId": "m1",
               "messageType": "SMS"}
    with httpx.Client(timeout=10, trust_env=False) as client:
        for data, expected in [*((b, "ProviderOutboundMessage") for b in bodies),
                               (plain, "SMS"), (inbound, "InboundMessage")]:
            data = {**data, "webhookId": str(uuid.uuid4())}
            body = json.dumps(data).encode()
            answer = client.post(server.url, content=body,
                                 headers={"content-type": "application/json", **keys.sign(body)})
            assert answer.status_code == 200, answer.text
            stored = find(inbox, data["webhookId"])
            assert stored is not None and stored.body == body
            assert stored.type == expected, data
