"""Signed webhook delivery to a real receiver on 127.0.0.1: signatures, retries on 429, drops."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from connector.errors import StoreError
from connector.sandbox.keys import WebhookKeys
from connector.sandbox.webhooks import WebhookSender


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """What the receiver saw, and what it should answer next."""

    url: str
    hits: list[Hit] = field(default_factory=list)
    answer_429: int = 0
    status: int = 200


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        state = self.server.state
        headers = {k.lower(): v for k, v in self.headers.items()}
        with self.server.lock:
            state.hits.append(Hit(self.path, headers, body))
            if state.answer_429 > 0:
                state.answer_429 -= 1
                status = 429
            else:
                status = state.status
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: Receiver
    lock: threading.Lock


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.lock = threading.Lock()
    server.state = Receiver(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield server.state
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(scope="module")
def keys() -> WebhookKeys:
    return WebhookKeys()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def run(sender: WebhookSender, *payloads: dict[str, object]) -> None:
    """Emit the payloads on a fresh event loop and wait until every delivery has finished."""

    async def main() -> None:
        for payload in payloads:
            sender.emit(payload)
        await sender.aclose()

    asyncio.run(main())


def verify(keys: WebhookKeys, body: bytes, headers: dict[str, str]) -> None:
    """Check both signatures over the raw bytes with the exported public keys; raise if bad."""
    pems = keys.public_pem()
    ed_key = serialization.load_pem_public_key(pems["ed25519"].encode())
    rsa_key = serialization.load_pem_public_key(pems["rsa"].encode())
    assert isinstance(ed_key, Ed25519PublicKey) and isinstance(rsa_key, rsa.RSAPublicKey)
    ed_key.verify(base64.b64decode(headers["x-ghl-signature"]), body)
    rsa_key.verify(
        base64.b64decode(headers["x-wh-signature"]), body, padding.PKCS1v15(), hashes.SHA256()
    )


def event(n: int = 1) -> dict[str, object]:
    return {"type": "ContactCreate", "locationId": "loc-1", "id": f"c{n}", "name": "Zoë Ünal"}


def test_webhook_delivers_signed_bytes_to_every_url(receiver: Receiver, keys: WebhookKeys) -> None:
    """Each event reaches every URL as JSON whose exact bytes carry valid Ed25519 and RSA sigs."""
    sender = WebhookSender(keys, [f"{receiver.url}/a", f"{receiver.url}/b?k=1"], backoff=0.01)
    run(sender, event(1), event(2), event(3))
    assert sorted(hit.path for hit in receiver.hits) == ["/a"] * 3 + ["/b?k=1"] * 3
    for hit in receiver.hits:
        assert hit.headers["content-type"] == "application/json"
        verify(keys, hit.body, hit.headers)
        assert json.loads(hit.body)["type"] == "ContactCreate"
    ids = {json.loads(hit.body)["webhookId"] for hit in receiver.hits}
    assert len(ids) == 3  # one id per event, shared by its deliveries to both URLs
    assert sorted(sender.sent_bodies) == sorted({hit.body for hit in receiver.hits})
    assert [d["outcome"] for d in sender.deliveries] == ["delivered"] * 6
    assert {d["webhookId"] for d in sender.deliveries} == ids


def test_webhook_signature_breaks_when_body_is_reserialised(
    receiver: Receiver, keys: WebhookKeys
) -> None:
    """The same JSON with other whitespace no longer verifies: receivers must use raw bytes."""
    run(WebhookSender(keys, [receiver.url]), event())
    hit = receiver.hits[0]
    verify(keys, hit.body, hit.headers)
    pretty = json.dumps(json.loads(hit.body), indent=2).encode()
    assert json.loads(pretty) == json.loads(hit.body)
    with pytest.raises(InvalidSignature):
        verify(keys, pretty, hit.headers)
    with pytest.raises(InvalidSignature):
        verify(keys, hit.body, {**hit.headers, "x-ghl-signature": hit.headers["x-wh-signature"]})


def test_webhook_retries_429_then_delivers(receiver: Receiver, keys: WebhookKeys) -> None:
    """Two 429 answers are retried with the same signed bytes; the third attempt lands."""
    receiver.answer_429 = 2
    sender = WebhookSender(keys, [receiver.url], backoff=0.01)
    run(sender, event())
    assert len(receiver.hits) == 3
    assert len({(hit.body, hit.headers["x-ghl-signature"]) for hit in receiver.hits}) == 1
    (delivery,) = sender.deliveries
    assert (delivery["status"], delivery["attempts"], delivery["outcome"]) == (200, 3, "delivered")


def test_webhook_gives_up_after_max_retries_of_429(receiver: Receiver, keys: WebhookKeys) -> None:
    """A receiver that always answers 429 gets 1 + max_retries attempts, then the event drops."""
    receiver.answer_429 = 100
    sender = WebhookSender(keys, [receiver.url], max_retries=3, backoff=0.001)
    run(sender, event())
    assert len(receiver.hits) == 4
    (delivery,) = sender.deliveries
    assert (delivery["status"], delivery["attempts"], delivery["outcome"]) == (429, 4, "dropped")


def test_webhook_drops_on_500_after_one_attempt(receiver: Receiver, keys: WebhookKeys) -> None:
    """Any status other than 429 (here 500) is not retried, as GHL does."""
    receiver.status = 500
    sender = WebhookSender(keys, [receiver.url], backoff=0.001)
    run(sender, event())
    assert len(receiver.hits) == 1
    (delivery,) = sender.deliveries
    assert (delivery["status"], delivery["attempts"], delivery["outcome"]) == (500, 1, "dropped")


def test_webhook_drops_on_connection_refused(receiver: Receiver, keys: WebhookKeys) -> None:
    """A refused connection drops that delivery without raising; other URLs still get theirs."""
    dead = f"http://127.0.0.1:{free_port()}/hook"
    sender = WebhookSender(keys, [dead, receiver.url], backoff=0.001)
    run(sender, event())
    assert len(receiver.hits) == 1
    outcomes = {d["url"]: (d["status"], d["attempts"], d["outcome"]) for d in sender.deliveries}
    assert outcomes == {dead: (None, 1, "dropped"), receiver.url: (200, 1, "delivered")}


def test_webhook_emit_returns_before_delivery_and_snapshots_payload(
    receiver: Receiver, keys: WebhookKeys
) -> None:
    """emit() only schedules the delivery, and later changes to the payload are not sent."""
    sender = WebhookSender(keys, [receiver.url])

    async def main() -> None:
        payload = event()
        sender.emit(payload)
        payload["name"] = "changed"
        assert sender.deliveries == [] and receiver.hits == []
        await sender.aclose()

    asyncio.run(main())
    assert json.loads(receiver.hits[0].body)["name"] == "Zoë Ünal"
    assert "webhookId" in json.loads(receiver.hits[0].body)


def test_webhook_emit_never_raises(receiver: Receiver, keys: WebhookKeys) -> None:
    """Without an event loop, or with an unserialisable payload, emit() drops the event quietly."""
    sender = WebhookSender(keys, [receiver.url])
    sender.emit(event())
    run(sender, {"type": "ContactCreate", "bad": object()})
    assert receiver.hits == [] and sender.deliveries == []
    with pytest.raises(ValueError, match=r"'ftp://x' is not an http\(s\) URL"):
        sender.set_urls(["ftp://x"])


def test_webhook_keys_round_trip_through_a_directory(tmp_path: Path, keys: WebhookKeys) -> None:
    """Saved keys load back and sign verifiably; private key files are owner-only."""
    keys.save(tmp_path / "keys")
    loaded = WebhookKeys.load(tmp_path / "keys")
    assert loaded.public_pem() == keys.public_pem()
    body = b'{"type":"NoteCreate"}'
    verify(keys, body, loaded.sign(body))
    for name in ("ed25519.pem", "rsa.pem"):
        assert stat.S_IMODE((tmp_path / "keys" / name).stat().st_mode) == 0o600
    assert "PRIVATE" not in repr(keys)
    with pytest.raises(StoreError, match=r"missing.ed25519\.pem: cannot read webhook key"):
        WebhookKeys.load(tmp_path / "missing")
    (tmp_path / "keys" / "rsa.pem").write_text("garbage")
    with pytest.raises(StoreError, match=r"rsa\.pem: not a PEM private key"):
        WebhookKeys.load(tmp_path / "keys")


def test_webhook_aclose_cancels_deliveries_still_backing_off(
    receiver: Receiver, keys: WebhookKeys
) -> None:
    """aclose() gives up on a delivery waiting out a long backoff instead of hanging."""
    receiver.answer_429 = 100
    sender = WebhookSender(keys, [receiver.url], backoff=3600)

    async def main() -> None:
        sender.emit(event())
        await sender.aclose(timeout=0.2)

    asyncio.run(main())
    assert len(receiver.hits) == 1 and sender.deliveries == []


def test_webhook_history_is_bounded(receiver: Receiver, keys: WebhookKeys) -> None:
    """Only the last `history` bodies and delivery records are kept."""
    sender = WebhookSender(keys, [receiver.url], history=2)
    run(sender, event(1), event(2), event(3))
    assert len(receiver.hits) == 3
    assert len(sender.sent_bodies) == 2 and len(sender.deliveries) == 2
