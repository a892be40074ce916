"""The webhook receiver over real HTTP on 127.0.0.1 with a real SQLite inbox: what it refuses
(nothing stored, service still up), what it stores (once), 429 when the inbox cannot be written,
kill -9 safety of the receiver process, and the sandbox's signed webhooks end to end."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from inboxes import find, webhook_ids

from connector.sandbox.keys import WebhookKeys
from connector.sandbox.server import SandboxServer
from connector.service.inbox import Inbox
from connector.service.receiver import ReceiverServer, Settings, open_store
from connector.service.signatures import ED25519_HEADER, RSA_HEADER, PublicKeys, parse_keys

ROOT = Path(__file__).resolve().parents[1]
LOCK_SECONDS = 1.2


def trusted(pems: dict[str, str]) -> PublicKeys:
    return parse_keys((kind, pem.encode()) for kind, pem in pems.items())


def payload(**extra: object) -> dict[str, object]:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"type": "ContactCreate", "locationId": "L1", "id": "c1",
            "webhookId": str(uuid.uuid4()), "timestamp": now, **extra}


def encode(data: object) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


class Receiver:
    """A receiver in a thread of this process, with its inbox and a signing key pair."""

    def __init__(self, server: ReceiverServer, inbox: Inbox, keys: WebhookKeys) -> None:
        self.server, self.inbox, self.keys = server, inbox, keys
        self.url = server.url
        self.health_url = server.url.replace("/webhooks/ghl", "/healthz")
        self.client = httpx.Client(timeout=10, trust_env=False)

    def post(self, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        """POST ``body`` signed with both keys unless ``headers`` says otherwise."""
        sent = self.keys.sign(body) if headers is None else headers
        return self.client.post(self.url, content=body, headers=sent)

    def healthy(self) -> bool:
        return self.client.get(self.health_url).status_code == 200


@pytest.fixture(scope="module")
def keys() -> WebhookKeys:
    return WebhookKeys()


@pytest.fixture
def receiver(tmp_path: Path, keys: WebhookKeys) -> Iterator[Receiver]:
    store = open_store(tmp_path / "state.db", busy_timeout=0.1)
    settings = Settings(trusted(keys.public_pem()), max_body=64 * 1024, max_age=300)
    with store, ReceiverServer(store, settings) as server:
        running = Receiver(server, Inbox(store), keys)
        yield running
        running.client.close()


def assert_refused(receiver: Receiver, response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert "error" in response.json()
    assert webhook_ids(receiver.inbox) == set()
    assert receiver.healthy()


def test_receiver_stores_signed_event(receiver: Receiver) -> None:
    """A signed event is answered 200 only with its exact bytes already in the inbox."""
    body = encode(payload())
    answer = receiver.post(body)
    assert answer.status_code == 200 and answer.json()["stored"] is True
    stored = find(receiver.inbox, json.loads(body)["webhookId"])
    assert stored is not None and stored.body == body and stored.status == "pending"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"content-type": "application/json"},
        {ED25519_HEADER: "%%%"},
        {ED25519_HEADER: "AAAA"},
        {RSA_HEADER: "AAAA"},
    ],
    ids=["none", "unrelated", "not-base64", "ed25519-wrong", "rsa-wrong"],
)
def test_receiver_refuses_missing_or_bad_signature(receiver: Receiver,
                                                   headers: dict[str, str]) -> None:
    """Unsigned or wrongly signed requests get 401 and nothing is stored."""
    assert_refused(receiver, receiver.post(encode(payload()), headers), 401)


def test_receiver_refuses_reserialised_body(receiver: Receiver, keys: WebhookKeys) -> None:
    """Signatures made over the compact body do not cover the same JSON with other spacing."""
    data = payload()
    headers = keys.sign(encode(data))
    answer = receiver.post(json.dumps(data, indent=1).encode(), headers)
    assert_refused(receiver, answer, 401)


def test_receiver_refuses_another_signer(receiver: Receiver) -> None:
    """Bodies signed by keys the receiver does not trust are refused."""
    body = encode(payload())
    assert_refused(receiver, receiver.post(body, WebhookKeys().sign(body)), 401)


def test_receiver_accepts_rsa_only(receiver: Receiver, keys: WebhookKeys) -> None:
    """Without x-ghl-signature the legacy RSA signature is checked and accepted."""
    body = encode(payload())
    answer = receiver.post(body, {RSA_HEADER: keys.sign(body)[RSA_HEADER]})
    assert answer.status_code == 200
    assert webhook_ids(receiver.inbox) == {json.loads(body)["webhookId"]}


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe{}", b"[" * 50_000, b""],
    ids=["broken", "array", "string", "not-utf8", "deep", "empty"],
)
def test_receiver_refuses_malformed_json(receiver: Receiver, body: bytes) -> None:
    """Correctly signed bodies that are not a JSON object get 400, nothing stored."""
    assert_refused(receiver, receiver.post(body), 400)


def test_receiver_refuses_huge_bodies(receiver: Receiver) -> None:
    """Over max_body: 413, whether announced by Content-Length or streamed in chunks."""
    huge = encode(payload(padding="x" * 70_000))
    assert_refused(receiver, receiver.post(huge), 413)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(huge), 8192):
            yield huge[start:start + 8192]

    streamed = receiver.client.post(receiver.url, content=chunks(), headers=receiver.keys.sign(huge))
    assert_refused(receiver, streamed, 413)
    assert receiver.post(encode(payload())).status_code == 200


@pytest.mark.parametrize(
    ("moment", "status"),
    [
        (lambda: (datetime.now(UTC) - timedelta(minutes=6)).isoformat(), 401),
        (lambda: (datetime.now(UTC) + timedelta(minutes=6)).isoformat(), 401),
        (lambda: int((time.time() - 3600) * 1000), 401),
        (lambda: "yesterday", 400),
        (lambda: [2024], 400),
    ],
    ids=["old-iso", "future-iso", "old-epoch-ms", "not-a-date", "wrong-type"],
)
def test_receiver_refuses_stale_or_unreadable_timestamp(receiver: Receiver, moment, status: int) -> None:
    """A signed body whose timestamp is over 5 minutes off is a replay (401); junk is 400."""
    # Times are taken when the test runs, not when it is collected (the suite takes minutes).
    assert_refused(receiver, receiver.post(encode(payload(timestamp=moment()))), status)


@pytest.mark.parametrize(
    "moment",
    [lambda: None, lambda: int(time.time() * 1000), lambda: time.time() - 60],
    ids=["absent", "epoch-ms-now", "epoch-s-minute-ago"],
)
def test_receiver_accepts_fresh_or_absent_timestamp(receiver: Receiver, moment) -> None:
    """No timestamp, or one within the window (epoch seconds or milliseconds), is accepted."""
    value = moment()
    data = payload(timestamp=value)
    if value is None:
        del data["timestamp"]
    assert receiver.post(encode(data)).status_code == 200
    assert len(webhook_ids(receiver.inbox)) == 1


def test_receiver_stores_redeliveries_once(receiver: Receiver) -> None:
    """The same webhook delivered 5 times, some at once, is answered 200 each time, stored once."""
    body = encode(payload())
    headers = receiver.keys.sign(body)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: receiver.post(body, headers), range(4)))
    answers.append(receiver.post(body, headers))
    assert [a.status_code for a in answers] == [200] * 5
    assert [a.json()["stored"] for a in answers].count(True) == 1
    assert receiver.inbox.counts() == {"pending": 1}


def test_receiver_answers_other_routes_without_storing(receiver: Receiver) -> None:
    """Unknown paths are 404 and other methods 405; the health check says ok."""
    assert receiver.client.get(receiver.url).status_code == 405
    assert receiver.client.post(receiver.health_url).status_code == 405
    assert receiver.client.post(receiver.url + "/x", content=b"{}").status_code == 404
    assert receiver.client.get(receiver.health_url).json() == {"status": "ok"}
    assert webhook_ids(receiver.inbox) == set()


def test_receiver_healthz_answers_head_like_get(receiver: Receiver) -> None:
    """HEAD /healthz: GET's status and headers, no body (load balancers probe with HEAD)."""
    got = receiver.client.get(receiver.health_url)
    head = receiver.client.head(receiver.health_url)
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == got.headers["content-length"] == str(len(got.content))
    assert head.headers["content-type"] == got.headers["content-type"]


def test_receiver_answers_429_while_inbox_locked(receiver: Receiver) -> None:
    """With the database locked by another connection: 429 (nothing stored, health 503);
    once unlocked, the retried deliveries are stored, none lost."""
    bodies = [encode(payload()) for _ in range(3)]
    blocker = sqlite3.connect(receiver.inbox.store.path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        answers = [receiver.post(body) for body in bodies]
        assert [a.status_code for a in answers] == [429] * 3
        assert answers[0].headers["retry-after"] == "1"
        assert receiver.client.get(receiver.health_url).status_code == 503
        head = receiver.client.head(receiver.health_url)
        assert head.status_code == 503 and head.content == b""
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert webhook_ids(receiver.inbox) == set()
    assert [receiver.post(body).status_code for body in bodies] == [200] * 3
    assert webhook_ids(receiver.inbox) == {json.loads(b)["webhookId"] for b in bodies}
    assert receiver.healthy()


def test_receiver_answers_429_while_disk_full(receiver: Receiver) -> None:
    """When SQLite reports the disk full mid-transaction: 429 and nothing stored; once space
    is back, the same deliveries are stored."""
    store = receiver.inbox.store
    pages = store.query("PRAGMA page_count")[0][0]
    store.query(f"PRAGMA max_page_count = {pages}")
    bodies = [encode(payload(padding="x" * 20_000)) for _ in range(2)]
    try:
        assert [receiver.post(body).status_code for body in bodies] == [429, 429]
        assert webhook_ids(receiver.inbox) == set()
    finally:
        store.query("PRAGMA max_page_count = 1073741823")
    assert [receiver.post(body).status_code for body in bodies] == [200, 200]
    assert len(webhook_ids(receiver.inbox)) == 2


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.binary(max_size=300), st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=4),
    max_leaves=12).map(lambda data: json.dumps(data).encode())))
def test_receiver_never_fails_on_signed_junk(receiver: Receiver, body: bytes) -> None:
    """Any signed body, JSON or not, gets a deliberate answer (never 5xx) and the service lives."""
    answer = receiver.post(body)
    assert answer.status_code in (200, 400, 401), answer.text
    assert receiver.healthy()


def test_receiver_max_age_zero_accepts_old_timestamps(tmp_path: Path, keys: WebhookKeys) -> None:
    """With max_age=0 the timestamp window is off: a day-old event is stored."""
    store = open_store(tmp_path / "state.db")
    with store, ReceiverServer(store, Settings(trusted(keys.public_pem()), max_age=0)) as server:
        body = encode(payload(timestamp="2020-01-01T00:00:00Z"))
        answer = httpx.post(server.url, content=body, headers=keys.sign(body), trust_env=False)
        assert answer.status_code == 200
        assert webhook_ids(Inbox(store)) == {json.loads(body)["webhookId"]}


# -- with the sandbox ---------------------------------------------------------------------------


@pytest.fixture
def sandbox_receiver(tmp_path: Path, ghl: SandboxServer) -> Iterator[Receiver]:
    store = open_store(tmp_path / "state.db", busy_timeout=0.1)
    with store, ReceiverServer(store, Settings(trusted(ghl.public_keys))) as server:
        running = Receiver(server, Inbox(store), WebhookKeys())
        ghl.set_webhook_urls([server.url])
        try:
            yield running
        finally:
            ghl.set_webhook_urls([])
            running.client.close()


def change_contacts(ghl: SandboxServer, count: int) -> None:
    with httpx.Client(base_url=ghl.base_url, headers=ghl.auth_headers(), trust_env=False) as api:
        for index in range(count):
            made = api.post("/contacts/", json={"locationId": ghl.location_id,
                                                "email": f"r{index}-{uuid.uuid4().hex}@x.io"})
            assert made.status_code == 201, made.text
            contact = made.json()["contact"]["id"]
            assert api.put(f"/contacts/{contact}", json={"city": "Oslo"}).status_code == 200


def test_receiver_stores_sandbox_webhooks(ghl: SandboxServer, sandbox_receiver: Receiver) -> None:
    """Contact changes in the sandbox arrive signed and are all stored, byte for byte."""
    change_contacts(ghl, 3)
    deliveries = ghl.drain_webhooks()
    assert len(deliveries) >= 6
    assert {d["status"] for d in deliveries} == {200}
    stored = {find(sandbox_receiver.inbox, d["webhookId"]) for d in deliveries}
    assert None not in stored
    assert {e.body for e in stored if e} == set(ghl.sent_bodies()[-len(deliveries):])
    assert {e.type for e in stored if e} >= {"ContactCreate", "ContactUpdate"}


def test_receiver_recovers_after_lock_and_loses_nothing(ghl: SandboxServer,
                                                        sandbox_receiver: Receiver) -> None:
    """While the inbox is locked the sandbox gets 429s and retries; every event is stored."""
    blocker = sqlite3.connect(sandbox_receiver.inbox.store.path, isolation_level=None,
                              check_same_thread=False)
    blocker.execute("BEGIN EXCLUSIVE")
    sent = len(ghl.sent_bodies())
    try:
        change_contacts(ghl, 2)
        # Held until the first deliveries have met the lock, then LOCK_SECONDS more: on a
        # loaded machine they may start later than a fixed timer would release it.
        until = time.monotonic() + 20
        while len(ghl.sent_bodies()) == sent and time.monotonic() < until:
            time.sleep(0.02)
        time.sleep(LOCK_SECONDS)
    finally:
        blocker.execute("ROLLBACK")
    deliveries = ghl.drain_webhooks(timeout=20)
    blocker.close()
    assert len(deliveries) == 4
    assert all(d["status"] == 200 for d in deliveries), deliveries
    assert max(d["attempts"] for d in deliveries) > 1
    assert webhook_ids(sandbox_receiver.inbox) == {d["webhookId"] for d in deliveries}


# -- the receiver as a real process -------------------------------------------------------------


@contextmanager
def receiver_process(db: Path, key_dir: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``python -m connector.service.receiver`` on a free port; terminated (if still alive) on exit."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "connector.service.receiver", "--port", "0", "--db", str(db),
         "--public-key", str(key_dir / "ed25519.pem"), "--public-key", str(key_dir / "rsa.pem")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")},
    )
    assert proc.stdout is not None
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(10)
        proc.stdout.close()


def stored_ids(db: Path) -> set[str]:
    with sqlite3.connect(db) as read:
        return {row[0] for row in read.execute("SELECT webhook_id FROM inbox")}


@pytest.mark.slow  # kill -9 of a real process: out of the quick loop
def test_receiver_process_kill9_keeps_every_acknowledged_event(
    tmp_path: Path, ghl: SandboxServer
) -> None:
    """kill -9 in the middle of a webhook stream: after a restart, every event that was
    answered 200 is in the inbox, and the restarted receiver accepts new ones."""
    key_dir = tmp_path / "keys"
    key_dir.mkdir()
    for kind, pem in ghl.public_keys.items():
        (key_dir / f"{kind}.pem").write_text(pem)
    db = tmp_path / "state.db"
    ghl.set_limits(requests=100_000)
    stop = threading.Event()

    def stream() -> None:
        while not stop.is_set():
            change_contacts(ghl, 1)

    writer = threading.Thread(target=stream, daemon=True)
    with receiver_process(db, key_dir) as (proc, url):
        ghl.set_webhook_urls([url])
        writer.start()
        try:
            deadline = time.monotonic() + 60  # a loaded machine streams slowly
            while len(stored_ids(db)) < 30 and time.monotonic() < deadline:
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            time.sleep(0.2)
        finally:
            stop.set()
            writer.join(20)
            ghl.set_webhook_urls([])
    deliveries = ghl.drain_webhooks(timeout=20)
    acknowledged = {d["webhookId"] for d in deliveries if d["status"] == 200}
    assert len(acknowledged) >= 30
    assert any(d["status"] is None for d in deliveries), "the kill did not hit the stream"

    with receiver_process(db, key_dir) as (proc, url):
        assert acknowledged <= stored_ids(db)
        ghl.set_webhook_urls([url])
        try:
            change_contacts(ghl, 1)
            later = ghl.drain_webhooks()[-2:]
        finally:
            ghl.set_webhook_urls([])
        assert {d["status"] for d in later} == {200}
        assert {d["webhookId"] for d in later} <= stored_ids(db)


def test_receiver_process_reports_bad_key_file(tmp_path: Path) -> None:
    """A key file that is not a public key stops the process with a one-line error, exit 1."""
    junk = tmp_path / "junk.pem"
    junk.write_text("hello")
    done = subprocess.run(
        [sys.executable, "-m", "connector.service.receiver", "--port", "0", "--db",
         str(tmp_path / "state.db"), "--public-key", str(junk)],
        capture_output=True, text=True, cwd=ROOT, timeout=30,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == f"error: {junk}: not a PEM public key"


def test_receiver_process_types_events_by_the_hubs_data(tmp_path: Path) -> None:
    """``python -m connector.service.receiver`` reads the hub's trigger data from the catalog:
    a GHL body typed ``SMS`` with a ``messageId`` is stored as ProviderOutboundMessage (its
    trigger's ``match``), one without a ``messageId`` keeps ``SMS``."""
    keys = WebhookKeys()
    key_dir = tmp_path / "keys"
    key_dir.mkdir()
    for kind, pem in keys.public_pem().items():
        (key_dir / f"{kind}.pem").write_text(pem)
    db = tmp_path / "state.db"
    sent = {"w-provider": {"type": "SMS", "messageId": "m1", "locationId": "L1"},
            "w-plain": {"type": "SMS", "locationId": "L1"}}
    with receiver_process(db, key_dir) as (_, url):
        for webhook_id, data in sent.items():
            body = json.dumps({**data, "webhookId": webhook_id}).encode()
            answer = httpx.post(url, content=body, timeout=10, trust_env=False,
                                headers={"content-type": "application/json", **keys.sign(body)})
            assert answer.status_code == 200, answer.text
    with sqlite3.connect(db) as read:
        stored = dict(read.execute("SELECT webhook_id, type FROM inbox").fetchall())
    assert stored == {"w-provider": "ProviderOutboundMessage", "w-plain": "SMS"}
