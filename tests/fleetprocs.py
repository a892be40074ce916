"""A fleet for tests and benchmarks: ``serve --broker`` and ``worker`` processes against the
sandbox, on the real Redis and RabbitMQ of this machine, each test on its own queue name (so its
own Redis keys and RabbitMQ queues), removed afterwards."""

from __future__ import annotations

import json
import socket
import sys
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.sandbox.server import SandboxServer
from tests.serveproc import ServeProcess

REDIS_URL = "redis://127.0.0.1:6379/15"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"

NOTE_PER_UPDATE = """\
name: Note every update
trigger:
  use: ghl.contacts.updated
on_error: {retry: 10, backoff: 0.3, then: dead_letter}
steps:
  - id: note
    use: ghl.notes.create
    with:
      contactId: "{{ trigger.id }}"
      body: "{{ trigger.firstName }}"
"""


def reachable(port: int) -> bool:
    """Whether something listens on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def need(*ports: int) -> None:
    """Skip the test, saying why, when Redis (6379) or RabbitMQ (5672) is not running."""
    names = {6379: "Redis", 5672: "RabbitMQ"}
    missing = [f"{names.get(p, p)} on 127.0.0.1:{p}" for p in ports if not reachable(p)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (the fleet's tests use the real services)")


def new_queue() -> str:
    """A queue name (and Redis key prefix) no other test uses."""
    return f"t-{uuid.uuid4().hex[:12]}"


def cleanup(queue: str) -> None:
    """Remove the queue's Redis keys and RabbitMQ queues."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{queue}:*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start:start + 500])
    client.close()
    if reachable(5672):
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        channel = connection.channel()
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            channel.queue_delete(name)
        connection.close()


def fleet_args(broker: str, queue: str, *more: str) -> tuple[str, ...]:
    """The fleet options of one process (short lane ttl and sweep, for tests)."""
    redis = () if broker.startswith("redis") else ("--redis", REDIS_URL)
    return ("--broker", broker, *redis, "--queue", queue, "--lane-ttl", "3", "--sweep-after",
            "4", *more)


class WorkerProcess(ServeProcess):
    """``python -m connector worker`` with the same folder, home and sandbox as a serve."""

    def command(self) -> list[str]:
        return [sys.executable, "-m", "connector", "worker", "--recipes", str(self.recipes),
                "--base-url", self.base_url, "--health-port", "0", "--workers", "4",
                *self.extra]

    def start(self) -> WorkerProcess:
        self.health_url = self.launch("worker")["health"]
        return self


class Fleet:
    """One serve and ``workers`` worker processes sharing a state file, broker and queue."""

    def __init__(self, ghl: SandboxServer, tmp_path: Path, broker: str, *, workers: int,
                 recipes: dict[str, str], extra: Sequence[str] = (),
                 store: str | None = None) -> None:
        folder = tmp_path / "recipes"
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in recipes.items():
            (folder / f"{name}.yaml").write_text(text)
        self.queue = new_queue()
        args = fleet_args(broker, self.queue, *extra, *(("--store", store) if store else ()))
        common: dict[str, Any] = {"base_url": ghl.base_url, "token": ghl.private_token,
                                  "location_id": ghl.location_id,
                                  "public_keys": ghl.public_keys}
        self.common = {**common, "extra": args}
        self.serve = ServeProcess(folder, tmp_path / "home", extra=args, **common)
        self.workers = [WorkerProcess(folder, tmp_path / "home", extra=args, **common)
                        for _ in range(workers)]
        self.db: Path | str = store or self.serve.db
        """The store every process shares: the SQLite file, or the PostgreSQL URL given."""

    def __enter__(self) -> Fleet:
        self.serve.start()
        if self.workers:
            with ThreadPoolExecutor(len(self.workers)) as pool:
                list(pool.map(lambda w: w.start(), self.workers))
        return self

    def __exit__(self, *exc_info: object) -> None:
        for proc in [*self.workers, self.serve]:
            if proc.process is not None and proc.process.poll() is None:
                proc.stop()
        cleanup(self.queue)


def update_payload(ghl: SandboxServer, contact: str, seq: int) -> dict[str, Any]:
    """A ContactUpdate whose firstName is ``<contact>-<seq>`` (the note the recipe writes)."""
    return {"type": "ContactUpdate", "locationId": ghl.location_id, "id": contact,
            "firstName": f"{contact}-{seq}", "webhookId": str(uuid.uuid4())}


def send_updates(ghl: SandboxServer, url: str, contacts: Sequence[str], per_contact: int,
                 *, senders: int = 8) -> int:
    """POST ``per_contact`` signed ContactUpdates for each contact, one contact's in order
    (each waits for the previous one's 200), contacts spread over ``senders`` threads;
    returns how many were accepted."""
    bodies: dict[str, list[bytes]] = {
        c: [json.dumps(update_payload(ghl, c, i)).encode() for i in range(per_contact)]
        for c in contacts}

    def send(share: Sequence[str]) -> int:
        done = 0
        with httpx.Client(timeout=30) as client:
            for step in range(per_contact):
                for contact in share:
                    body = bodies[contact][step]
                    headers = {"content-type": "application/json", **ghl.app.keys.sign(body)}
                    reply = client.post(url, content=body, headers=headers)
                    assert reply.status_code == 200, reply.text
                    done += 1
        return done

    shares = [contacts[i::senders] for i in range(senders)]
    with ThreadPoolExecutor(senders) as pool:
        return sum(pool.map(send, shares))


def notes_by_contact(ghl: SandboxServer) -> dict[str, list[str]]:
    """Each contact's note bodies, in the order the sandbox created them."""
    return ghl.call(lambda: {c: [str(n.get("body")) for n in notes.values()]
                             for c, notes in ghl.app.store.notes.items()})


def create_contacts(ghl: SandboxServer, count: int) -> list[str]:
    """``count`` contacts in the sandbox (no webhook is sent while no URL is set)."""
    found: list[str] = []
    with httpx.Client(timeout=30) as client:
        for i in range(count):
            reply = client.post(f"{ghl.base_url}/contacts/", headers=ghl.auth_headers(), json={
                "locationId": ghl.location_id, "firstName": f"F{i}",
                "email": f"f{i}-{uuid.uuid4().hex[:8]}@example.com"})
            assert reply.status_code in (200, 201), reply.text
            found.append(str(reply.json()["contact"]["id"]))
    return found


