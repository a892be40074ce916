"""Real state changes in the sandbox emit signed webhook events, valid against the official
event schemas, to a real receiver on 127.0.0.1; failed writes emit nothing."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import jsonschema
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from spec_client import SpecClient

from connector.sandbox.server import SandboxServer

EVENTS_DIR = Path(__file__).resolve().parents[3] / "shared" / "ghl-openapi" / "webhook-events"


class _Inbox(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.hits: list[tuple[dict[str, str], bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Handler(BaseHTTPRequestHandler):
    server: _Inbox

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        with self.server.lock:
            self.server.hits.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


@pytest.fixture
def inbox(ghl: SandboxServer) -> Iterator[_Inbox]:
    server = _Inbox()
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    ghl.set_webhook_urls([server.url])
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def client(ghl: SandboxServer) -> Iterator[SpecClient]:
    with SpecClient(ghl.base_url, ghl.auth_headers()) as c:
        yield c


def _verified_events(ghl: SandboxServer, inbox: _Inbox) -> list[dict]:
    """Every body the inbox got, after checking both signatures and the event's schema."""
    ghl.drain_webhooks()
    ed_key = serialization.load_pem_public_key(ghl.public_keys["ed25519"].encode())
    rsa_key = serialization.load_pem_public_key(ghl.public_keys["rsa"].encode())
    assert isinstance(ed_key, Ed25519PublicKey) and isinstance(rsa_key, rsa.RSAPublicKey)
    events = []
    with inbox.lock:
        hits = list(inbox.hits)
    for headers, body in hits:
        ed_key.verify(base64.b64decode(headers["x-ghl-signature"]), body)
        rsa_key.verify(base64.b64decode(headers["x-wh-signature"]), body, padding.PKCS1v15(),
                       hashes.SHA256())
        event = json.loads(body)
        schema = json.loads((EVENTS_DIR / f"{event['type']}.schema.json").read_text())
        jsonschema.validate(event, schema)
        assert event["locationId"] == ghl.location_id and event["webhookId"]
        events.append(event)
    return events


def test_emits_contact_events_for_contact_changes(ghl: SandboxServer, inbox: _Inbox,
                                                  client: SpecClient) -> None:
    """Create, update, tag, DND and delete each send their signed, schema-valid event."""
    made = client.post("/contacts/", json={"locationId": ghl.location_id,
                                           "email": "hook@example.com", "firstName": "Hook"})
    cid = made.json()["contact"]["id"]
    client.put(f"/contacts/{cid}", json={"city": "Oslo"})
    client.post(f"/contacts/{cid}/tags", json={"tags": ["hot"]})
    client.put(f"/contacts/{cid}", json={"dnd": True})
    client.delete(f"/contacts/{cid}")
    events = _verified_events(ghl, inbox)
    kinds = sorted(e["type"] for e in events)
    assert kinds == sorted(["ContactCreate", "ContactUpdate", "ContactTagUpdate",
                            "ContactUpdate", "ContactDndUpdate", "ContactDelete"])
    assert all(e["id"] == cid for e in events)
    tagged = next(e for e in events if e["type"] == "ContactTagUpdate")
    assert tagged["tags"] == ["hot"]
    assert len({e["webhookId"] for e in events}) == len(events)


def test_emits_task_note_and_appointment_events(ghl: SandboxServer, inbox: _Inbox,
                                                client: SpecClient) -> None:
    """Tasks, notes and appointments send their create/update/complete/delete events."""
    cid = next(iter(ghl.app.store.contacts))
    task = client.post(f"/contacts/{cid}/tasks", json={"title": "T", "dueDate": "2030-01-01",
                                                       "completed": False}).json()["task"]
    client.put(f"/contacts/{cid}/tasks/{task['id']}/completed", json={"completed": True})
    client.delete(f"/contacts/{cid}/tasks/{task['id']}")
    note = client.post(f"/contacts/{cid}/notes", json={"body": "n"}).json()["note"]
    client.put(f"/contacts/{cid}/notes/{note['id']}", json={"body": "m"})
    client.delete(f"/contacts/{cid}/notes/{note['id']}")
    booked = ghl.add_appointment(cid, title="Demo")
    ghl.update_appointment(booked["id"], title="Demo 2")
    ghl.delete_appointment(booked["id"])
    events = _verified_events(ghl, inbox)
    assert sorted(e["type"] for e in events) == sorted([
        "TaskCreate", "TaskComplete", "TaskDelete", "NoteCreate", "NoteUpdate", "NoteDelete",
        "AppointmentCreate", "AppointmentUpdate", "AppointmentDelete"])
    update = next(e for e in events if e["type"] == "AppointmentUpdate")
    assert update["appointment"]["title"] == "Demo 2"
    assert next(e for e in events if e["type"] == "NoteUpdate")["body"] == "m"


def test_emits_nothing_for_refused_writes_but_once_for_ambiguous(
        ghl: SandboxServer, inbox: _Inbox, client: SpecClient) -> None:
    """A rejected write sends no event; an ambiguous write (applied, answer lost) sends one."""
    assert client.post("/contacts/", json={"locationId": ghl.location_id,
                                           "bad": 1}).status_code == 422
    ghl.set_faults({"route": "POST /contacts/", "ambiguous_rate": 1.0, "count": 1})
    assert client.post("/contacts/", json={"locationId": ghl.location_id,
                                           "email": "amb@example.com"}).status_code == 500
    events = _verified_events(ghl, inbox)
    assert [e["type"] for e in events] == ["ContactCreate"]
    assert events[0]["email"] == "amb@example.com"


def test_emits_to_urls_set_through_the_control_endpoint(ghl: SandboxServer, inbox: _Inbox,
                                                        client: SpecClient) -> None:
    """POST /_sandbox/webhooks replaces the URLs; GET /_sandbox/keys gives the public keys."""
    assert httpx.post(f"{ghl.base_url}/_sandbox/webhooks", json={"urls": []}).status_code == 200
    cid = next(iter(ghl.app.store.contacts))
    client.post(f"/contacts/{cid}/notes", json={"body": "unsent"})
    assert _verified_events(ghl, inbox) == []
    keys = httpx.get(f"{ghl.base_url}/_sandbox/keys").json()
    assert keys == ghl.public_keys and "BEGIN PUBLIC KEY" in keys["ed25519"]
    bad = httpx.post(f"{ghl.base_url}/_sandbox/webhooks", json={"urls": ["ftp://x"]})
    assert bad.status_code == 400
