"""Benchmark: the receiver at 1,000 webhooks/s with the console's live stream open vs without
(goal: with the stream open it keeps >= 90% of its throughput).

Each phase starts a fresh receiver process the way ``serve`` runs it (the webhook receiver with
``/console`` and ``/metrics`` in front, every accepted webhook published on the activity bus),
on a fresh SQLite file, and sends pre-signed ContactCreate webhooks from the load generator of
``bench_receiver.py`` (keep-alive connections, one request in flight each):

- paced: ``--rate`` webhooks per second (1,000) for ``--seconds`` seconds: the rate reached
  and the latency;
- flat out: as fast as the receiver answers: its throughput.

Both once without a console page and once with one open (a client reading
``/console/events`` the whole time, counting the events the stream delivered). A third,
reference line is the bare receiver (no console mounted), as ``bench_receiver.py`` measures.

    python bench/bench_console.py [--rate 1000] [--seconds 8] [-c 32] [-n 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_receiver as harness  # noqa: E402  # the receiver benchmark's load generator

ROOT = Path(__file__).resolve().parents[1]
GOAL = 0.90


def child(db: str, key_file: str, mode: str) -> None:
    """The receiver process of one phase (``mode``: bare or console)."""
    from connector.activity import BUS
    from connector.console.app import ServiceApp
    from connector.console.metrics import Metrics
    from connector.console.state import ConsoleState
    from connector.service.inbox import Inbox, InboxWriter
    from connector.service.listener import bind_socket, guarded_server, serve_forever, socket_url
    from connector.service.receiver import ReceiverApp, Settings, open_store
    from connector.service.signatures import load_keys

    with open_store(db) as store:
        sock = bind_socket("127.0.0.1", 0)
        with InboxWriter(Inbox(store)) as writer:
            receiver = ReceiverApp(writer, Settings(load_keys([key_file])))
            app: object = receiver
            if mode == "console":
                app = ServiceApp(ConsoleState(store), receiver, Metrics(store, BUS))
            server = guarded_server(app, log_config=None, timeout_graceful_shutdown=1)
            print(socket_url(sock, "/webhooks/ghl"), flush=True)
            serve_forever(server, sock)


def start(folder: Path, key_file: Path, mode: str) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", mode, "--db", str(folder / "state.db"),
         "--key", str(key_file)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=folder,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        proc.kill()
        raise SystemExit(f"bench: the receiver did not start (printed {url!r})")
    return proc, url


async def paced_worker(host: str, port: int, requests: list[bytes], every: float,
                       statuses: dict[int, int], latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    begin = time.perf_counter()
    try:
        for n, request in enumerate(requests):
            delay = begin + n * every - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            started = time.perf_counter()
            writer.write(request)
            status = await harness.read_response(reader)
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


async def paced(url: str, requests: list[bytes], connections: int,
                rate: float) -> tuple[float, dict[int, int], list[float]]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    shares = [requests[i::connections] for i in range(connections)]
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    every = connections / rate
    started = time.perf_counter()
    await asyncio.gather(*(paced_worker(host, port, s, every, statuses, latencies)
                           for s in shares))
    return time.perf_counter() - started, statuses, latencies


async def watch(url: str, counted: list[int], stop: asyncio.Event) -> None:
    """Read the console's event stream as a browser would, counting the events delivered."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(f"GET /console/events HTTP/1.1\r\nhost: {parts.netloc}\r\n"
                 "accept: text/event-stream\r\n\r\n".encode())
    try:
        while not stop.is_set():
            try:
                line = await asyncio.wait_for(reader.readline(), 0.5)
            except TimeoutError:
                continue
            if not line:
                return
            if line.startswith(b"data: "):
                counted[0] += len(json.loads(line[6:])["events"])
                counted[1] += json.loads(line[6:])["skipped"]
                counted[2] += 1
    finally:
        writer.close()


async def phase(url: str, requests: list[bytes], connections: int, rate: float | None,
                stream: bool) -> tuple[float, dict[int, int], list[float], list[int]]:
    counted = [0, 0, 0]
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch(url, counted, stop)) if stream else None
    await asyncio.sleep(0.3 if stream else 0)
    if rate is None:
        result = await harness.load(url, requests, connections)
    else:
        result = await paced(url, requests, connections, rate)
    await asyncio.sleep(1.2 if stream else 0)  # the last batch
    stop.set()
    if watcher is not None:
        await watcher
    return (*result, counted)


def run(mode: str, stream: bool, key: Ed25519PrivateKey, count: int, connections: int,
        rate: float | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        folder = Path(tmp)
        key_file = folder / "ed25519.pub.pem"
        key_file.write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        proc, url = start(folder, key_file, mode)
        try:
            requests = harness.build_requests(count, key, urlsplit(url).netloc)
            try:
                import uvloop
                runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
            except ImportError:
                runner = asyncio.Runner()
            with runner:
                elapsed, statuses, latencies, counted = runner.run(
                    phase(url, requests, connections, rate, stream))
        finally:
            proc.terminate()
            proc.wait(10)
        db = sqlite3.connect(folder / "state.db")
        stored = db.execute("SELECT COUNT(*) FROM inbox").fetchone()[0]
        db.close()
    if statuses.get(200) != count or stored != count:
        raise SystemExit(f"bench: {mode} answers {statuses}, {stored} stored of {count}")
    latencies.sort()
    return {"rate": count / elapsed, "p50": statistics.median(latencies) * 1000,
            "p99": latencies[int(len(latencies) * 0.99)] * 1000, "streamed": counted[0],
            "skipped": counted[1], "batches": counted[2]}


def line(name: str, found: dict[str, float]) -> str:
    text = (f"  {name:<34} {found['rate']:8,.0f}/s  p50 {found['p50']:6.1f} ms"
            f"  p99 {found['p99']:6.1f} ms")
    if found["batches"]:
        text += (f"  (stream: {found['streamed']:,.0f} events + {found['skipped']:,.0f} counted"
                 f" as skipped, in {found['batches']:,.0f} batches)")
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("-c", "--connections", type=int, default=32)
    parser.add_argument("-n", "--events", type=int, default=10_000,
                        help="webhooks of each flat-out phase")
    parser.add_argument("--child", choices=("bare", "console"), help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.db, args.key, args.child)
        return 0
    key = Ed25519PrivateKey.generate()
    paced_count = int(args.rate * args.seconds)
    print(f"console bench: {args.connections} connections; paced {args.rate:,.0f}/s for"
          f" {args.seconds:g}s ({paced_count:,} webhooks), then {args.events:,} flat out")
    results: dict[str, dict[str, float]] = {}
    for label, rate, count in (("paced", args.rate, paced_count), ("flat", None, args.events)):
        print(f"{label}:")
        for mode, stream, name in (("bare", False, "receiver alone (reference)"),
                                   ("console", False, "with console, no page open"),
                                   ("console", True, "with console page open (SSE)")):
            found = run(mode, stream, key, count, args.connections, rate)
            results[f"{label}:{name}"] = found
            print(line(name, found), flush=True)
    ratios = {}
    for label in ("paced", "flat"):
        without = results[f"{label}:with console, no page open"]["rate"]
        ratios[label] = results[f"{label}:with console page open (SSE)"]["rate"] / without
        bare = results[f"{label}:receiver alone (reference)"]["rate"]
        print(f"{label}: page open / no page {ratios[label]:.1%}; page open / bare receiver"
              f" {results[f'{label}:with console page open (SSE)']['rate'] / bare:.1%}")
    ok = ratios["paced"] >= GOAL
    print(f"result: {'OK' if ok else 'BELOW GOAL'} (goal: with the page open >= {GOAL:.0%} of"
          f" the throughput without, at {args.rate:,.0f} webhooks/s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
