"""Benchmark: signed webhooks accepted durably per second by the receiver (goal >= 1,500/s).

Starts ``python -m connector.service.receiver`` as a real process on a fresh SQLite file
(synchronous
FULL unless ``--synchronous`` says otherwise), pre-signs N distinct ContactCreate events with
a fresh Ed25519 key, posts them over keep-alive connections from an asyncio load generator
(raw HTTP/1.1, one request in flight per connection, like a webhook sender), then checks that
the inbox holds exactly N events and prints the rate.

Every request carries both signature headers, as GHL sends them; the RSA one is filler of the
real length (the receiver only reads it when there is no Ed25519 signature, and RSA-signing
20,000 bodies would make the setup slower than the run).

``--store postgresql://...`` (an empty database or schema) measures the shared store instead.

    python bench/bench_receiver.py [-n 20000] [-c 32] [--synchronous FULL] [--store URL]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
GOAL = 1500

from connector.store import Store  # noqa: E402


def make_event(index: int) -> bytes:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    payload = {
        "type": "ContactCreate",
        "locationId": "ve9EPM428h8vShlRW1KT",
        "id": f"contact{index:08d}",
        "address1": "3535 1st St N",
        "city": "ruDolomitebhamru",
        "state": "AL",
        "companyName": "Loram ipsum",
        "country": "DE",
        "source": "xyz form",
        "dateAdded": now,
        "email": f"person{index}@example.com",
        "name": f"Person {index}",
        "firstName": "Person",
        "lastName": str(index),
        "phone": "+919509597501",
        "postalCode": "452001",
        "tags": ["nisi sint commodo amet", "consequat"],
        "website": "https://www.tesla.com",
        "attachments": [],
        "assignedTo": "nisi sint commodo amet",
        "customFields": [{"id": "BcdmQEsNgz6AVpgLVUJ0", "value": "XYZ Corp"}],
        "webhookId": str(uuid.uuid4()),
        "timestamp": now,
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def build_requests(count: int, key: Ed25519PrivateKey, host: str) -> list[bytes]:
    filler = base64.b64encode(os.urandom(256)).decode()
    out = []
    for index in range(count):
        body = make_event(index)
        signature = base64.b64encode(key.sign(body)).decode()
        head = (
            f"POST /webhooks/ghl HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
            f"user-agent: bench\r\nx-ghl-signature: {signature}\r\nx-wh-signature: {filler}\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        )
        out.append(head.encode() + body)
    return out


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def worker(host: str, port: int, requests: list[bytes], statuses: dict[int, int],
                 latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for request in requests:
            started = time.perf_counter()
            writer.write(request)
            status = await read_response(reader)
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


async def load(url: str, requests: list[bytes], connections: int) -> tuple[float, dict[int, int],
                                                                          list[float]]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    shares = [requests[i::connections] for i in range(connections)]
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    started = time.perf_counter()
    await asyncio.gather(*(worker(host, port, s, statuses, latencies) for s in shares))
    return time.perf_counter() - started, statuses, latencies


def start_receiver(folder: Path, key_file: Path, synchronous: str,
                   store: str) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "connector.service.receiver", "--port", "0", "--db",
         store, "--public-key", str(key_file), "--synchronous", synchronous],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=folder,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        proc.kill()
        raise SystemExit(f"bench: the receiver did not start (printed {url!r})")
    return proc, url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--events", type=int, default=20_000)
    parser.add_argument("-c", "--connections", type=int, default=32)
    parser.add_argument("--synchronous", default="FULL", choices=("FULL", "NORMAL"))
    parser.add_argument("--store", metavar="URL",
                        help="an empty postgresql://... store instead of a fresh SQLite file")
    args = parser.parse_args()
    key = Ed25519PrivateKey.generate()
    with tempfile.TemporaryDirectory(prefix="bench-receiver-") as tmp:
        folder = Path(tmp)
        key_file = folder / "ed25519.pub.pem"
        key_file.write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        store = args.store or str(folder / "state.db")
        proc, url = start_receiver(folder, key_file, args.synchronous, store)
        try:
            requests = build_requests(args.events, key, urlsplit(url).netloc)
            try:
                import uvloop
                runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
            except ImportError:
                runner = asyncio.Runner()
            with runner:
                elapsed, statuses, latencies = runner.run(load(url, requests, args.connections))
        finally:
            proc.terminate()
            proc.wait(10)
        with Store(store) as db:
            row = db.query("SELECT COUNT(*), COUNT(DISTINCT webhook_id) FROM inbox")[0]
            stored = (int(row[0]), int(row[1]))
    rate = args.events / elapsed
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)]
    print(f"receiver: {args.events} signed webhooks over {args.connections} connections,"
          f" synchronous={args.synchronous}, store={'PostgreSQL' if args.store else 'SQLite'}")
    print(f"  answers: {dict(sorted(statuses.items()))}; inbox rows: {stored[0]}"
          f" ({stored[1]} distinct)")
    print(f"  {rate:,.0f} accepted/s in {elapsed:.2f}s; latency p50"
          f" {statistics.median(latencies) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"
          f" (goal >= {GOAL:,}/s)")
    ok = statuses.get(200) == args.events and stored == (args.events, args.events)
    if not ok:
        print("  FAIL: the inbox does not hold exactly one row per event")
    return 0 if ok and rate >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
