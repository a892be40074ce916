"""The shipped sync documents (recipes/sync_superphone.yaml, recipes/sync_linkedphone.yaml) load,
start a sync engine, and keep GHL and each partner sandbox in step through the demo's webhook
relay (real HTTP, real signatures, real SQLite)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx
import pytest
from conftest import ROOT

from connector.auth.bearer import StaticBearer
from connector.auth.credentials import api_key_provider
from connector.catalog import build_catalog
from connector.client.retry import RetryPolicy
from connector.demo.partners import PARTNERS
from connector.demo.relay import Applied, Lane, Relay, ghl_check, hmac_check, hub_reader
from connector.runtime import Runtime, Settings
from connector.service.signatures import parse_keys
from connector.store import Store
from connector.sync.audit import entries
from connector.sync.engine import SyncEngine
from connector.sync.spec import load_sync

CATALOG = build_catalog()
DOCS = {"superphone": ROOT / "recipes" / "sync_superphone.yaml",
        "linkedphone": ROOT / "recipes" / "sync_linkedphone.yaml"}  # fmt: skip


@pytest.fixture(params=sorted(DOCS))
def partner(request, ghl, sp, lp):
    """(app id, its sandbox) for each partner in turn."""
    return request.param, {"superphone": sp, "linkedphone": lp}[request.param]


@pytest.fixture
def runtime(ghl, partner):
    app, box = partner
    settings = Settings(
        strict=True,
        base_urls={"ghl": ghl.base_url, app: box.base_url},
        location_id=ghl.location_id,
        retry=RetryPolicy(attempts=2, base=0.01, cap=0.05),
    )
    bearer = StaticBearer(ghl.private_token)
    auth = api_key_provider(lambda a, action: bearer, keys={app: box.api_key})
    with Runtime(CATALOG, settings, auth=auth) as rt:
        yield rt


@pytest.fixture
def engine(runtime, partner, tmp_path):
    with Store(tmp_path / "state.db") as store:
        yield SyncEngine(load_sync(DOCS[partner[0]]), runtime, store)


@pytest.fixture
def applied() -> list[Applied]:
    """Every change the relay's lane applied, in order."""
    return []


@pytest.fixture
def relay(ghl, partner, engine, runtime, applied):
    app, box = partner
    pems = [(name, pem.encode()) for name, pem in ghl.public_keys.items()]
    lane = Lane(engine, applied.append, prepare={"ghl": hub_reader(runtime)})
    checks = {
        "ghl": ghl_check(parse_keys(pems)),
        app: hmac_check(box.webhook_secret, PARTNERS[app].signature_header),
    }
    with Relay(checks, {"ghl": [lane], app: [lane]}) as made:
        ghl.set_webhook_urls([made.url("ghl")])
        box.set_webhook_urls([made.url(app)])
        yield made


def settle(relay, *boxes):
    """Wait until every webhook sent so far, and every one it caused, has been applied."""
    for _ in range(20):
        before = relay.received
        for box in boxes:
            box.drain_webhooks()
        relay.join()
        if relay.received == before:
            return
    raise AssertionError("webhooks kept coming")


@pytest.mark.parametrize("app", sorted(DOCS))
def test_sync_recipes_load_and_start_an_engine(app, ghl, tmp_path):
    """Each document loads (contacts, tasks, notes, per-field owners) and starts an engine."""
    spec = load_sync(DOCS[app])
    assert spec.partner == app and set(spec.objects) == {"contacts", "tasks", "notes"}
    contacts = spec.objects["contacts"]
    assert contacts.match == ("email", "phone") and contacts.direction == "two_way"
    owners = {str(f.ghl): f.source_of_truth for f in contacts.fields if f.source_of_truth}
    assert owners["lastName"] == "ghl"
    assert [o for g, o in owners.items() if g.startswith("customFields.")] == ["partner"]
    assert contacts.delete == ("propagate" if app == "superphone" else "archive")
    with Store(tmp_path / "s.db") as store, Runtime(CATALOG, Settings()) as rt:
        assert SyncEngine(spec, rt, store).spec is spec


def test_sync_recipes_two_way_round_trip(ghl, partner, engine, runtime, relay, applied):
    """Contact, task, completion and delete flow both ways through the relay, created once."""
    app, box = partner
    kit = PARTNERS[app]
    cf = next(f.ghl for f in engine.spec.objects["contacts"].fields if f.partner == kit.extra)
    contact = runtime.call("ghl.contacts.create", {
        "firstName": "Ria", "lastName": "Kent", "email": "ria@example.org", "tags": ["lead"],
        "customFields": [{"id": cf.removeprefix("customFields."), "field_value": "Web"}],
    })["contact"]  # fmt: skip
    settle(relay, ghl, box)
    pid = engine.ids.find("contacts", "ghl", contact["id"]).partner_id
    copy = kit.get_contact(runtime, pid)
    assert copy is not None
    assert (copy[kit.first], copy[kit.last], copy["tags"]) == ("Ria", "Kent", ["lead"])
    assert copy[kit.extra] == "Web"  # the partner owns it, but a create copies every field
    task = kit.add_task(runtime, pid, "Call Ria", "2030-01-01T10:00:00Z")
    settle(relay, ghl, box)
    ghl_task = engine.ids.find("tasks", "partner", str(task["id"])).ghl_id
    runtime.call(
        "ghl.tasks.complete", {"contactId": contact["id"], "taskId": ghl_task, "completed": True}
    )
    settle(relay, ghl, box)
    assert kit.task_done(kit.get_task(runtime, str(task["id"])))
    runtime.call("ghl.contacts.delete", {"contactId": contact["id"]})
    settle(relay, ghl, box)
    gone = kit.get_contact(runtime, pid)
    if app == "superphone":
        assert gone is None
    else:
        assert gone is not None and "deleted-in-ghl" in gone["tags"]
    audit = entries(engine.store, sync=engine.spec.name)
    assert [e.action for e in audit if e.object == "contacts" and e.action == "create"] == [
        "create"
    ]
    assert any(e.reason.startswith("echo") for e in audit)
    assert all(a.error is None for a in applied)
    assert relay.rejected == 0


def test_sync_recipes_partner_owned_field_flows_to_ghl(ghl, partner, engine, runtime, relay):
    """A partner-owned field changed on a partner-created contact reaches GHL's custom field."""
    app, box = partner
    kit = PARTNERS[app]
    cf = next(f.ghl for f in engine.spec.objects["contacts"].fields if f.partner == kit.extra)
    made = kit.create_contact(runtime, {"first": "Una", "email": "una@example.org"})
    settle(relay, ghl, box)
    kit.update_contact(runtime, str(made["id"]), {"extra": "Expo"})
    settle(relay, ghl, box)
    ghl_id = engine.ids.find("contacts", "partner", str(made["id"])).ghl_id
    got = runtime.call("ghl.contacts.get", {"contactId": ghl_id})["contact"]
    assert {f["id"]: f["value"] for f in got["customFields"]} == {cf[13:]: "Expo"}


def test_sync_recipes_partner_owned_field_of_ghl_contact_flows_to_ghl(
    ghl, partner, engine, runtime, relay
):
    """A change to the partner-owned field of a GHL-created contact reaches GHL (not an echo)."""
    app, box = partner
    kit = PARTNERS[app]
    contact = runtime.call("ghl.contacts.create", {"firstName": "Vi", "email": "vi@example.org"})
    settle(relay, ghl, box)
    pid = engine.ids.find("contacts", "ghl", contact["contact"]["id"]).partner_id
    kit.update_contact(runtime, pid, {"extra": "Expo"})
    settle(relay, ghl, box)
    got = runtime.call("ghl.contacts.get", {"contactId": contact["contact"]["id"]})["contact"]
    assert got["customFields"]


def test_sync_recipes_relay_refuses_unsigned_and_unknown(partner, relay, engine, applied):
    """A wrong HMAC gets 401 and an unknown app 404; a correctly signed webhook is applied."""
    app, box = partner
    body = json.dumps({"id": "evt_1", "type": "contact.updated", "timestamp": "2030-01-01T00:00:00Z",
                       "data": {"id": "ct_x", "first_name": "X"}}).encode()  # fmt: skip
    header = PARTNERS[app].signature_header
    bad = httpx.post(relay.url(app), content=body, headers={header: "sha256=" + "0" * 64})
    assert bad.status_code == 401 and relay.rejected == 1
    assert httpx.post(relay.url("nosuch"), content=body).status_code == 404
    good_sig = "sha256=" + hmac.new(box.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
    ok = httpx.post(relay.url(app), content=body, headers={header: good_sig})
    assert ok.status_code == 200 and relay.received == 1
    relay.join()
    deadline = time.monotonic() + 5
    while not applied and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(applied) == 1 and applied[0].change.record_id == "ct_x"
