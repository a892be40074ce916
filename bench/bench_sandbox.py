"""Benchmark: GET /contacts/{id} requests per second against the GHL sandbox on loopback.

Starts the sandbox as a child process (``python -m connector.sandbox``) with limits high
enough not to throttle, then drives it from several raw keep-alive HTTP/1.1 connections on
one asyncio loop for a few seconds (bounded request count), and prints the rate and the goal.

Run: ``python bench/bench_sandbox.py [--seconds 3] [--connections 8] [--max-requests 40000]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connector.sandbox.process import SandboxProcess  # noqa: E402

GOAL = 2000.0


def first_contact_id(base_url: str, token: str, location_id: str) -> str:
    """Find a seeded contact to fetch (one search request)."""
    body = json.dumps({"locationId": location_id, "pageLimit": 1}).encode()
    request = urllib.request.Request(
        f"{base_url}/contacts/search", data=body, method="POST",
        headers={"Authorization": f"Bearer {token}", "Version": "2021-07-28",
                 "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return str(json.loads(answer.read())["contacts"][0]["id"])


async def one_connection(host: str, port: int, request: bytes, deadline: float,
                         budget: list[int], counts: list[int]) -> None:
    """Send requests one after another on one keep-alive connection until time or budget end."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline and budget[0] > 0:
            budget[0] -= 1
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            counts[0 if status == 200 else 1] += 1
    finally:
        writer.close()


async def drive(base_url: str, token: str, contact_id: str, seconds: float, connections: int,
                max_requests: int) -> tuple[int, int, float]:
    """Run the load; return (ok answers, other answers, elapsed seconds)."""
    host, port = base_url.removeprefix("http://").split(":")
    request = (
        f"GET /contacts/{contact_id} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {token}\r\nVersion: 2021-07-28\r\n"
        "Accept: application/json\r\n\r\n"
    ).encode()
    budget, counts = [max_requests], [0, 0]
    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.gather(*(one_connection(host, int(port), request, deadline, budget, counts)
                           for _ in range(connections)))
    return counts[0], counts[1], time.perf_counter() - start


def _run(coroutine):
    """Run on uvloop when it is installed (the client must not be the bottleneck)."""
    with contextlib.suppress(ImportError):
        import uvloop

        return uvloop.run(coroutine)
    return asyncio.run(coroutine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--max-requests", type=int, default=40_000)
    args = parser.parse_args()
    with SandboxProcess("--seed-contacts", "100", "--rate-limit", "100000000/10",
                        "--daily-quota", "1000000000") as sandbox:
        token = sandbox.private_token
        contact_id = first_contact_id(sandbox.base_url, token, sandbox.info["location_id"])
        _run(drive(sandbox.base_url, token, contact_id, 0.5, args.connections, 2000))
        ok, other, elapsed = _run(drive(sandbox.base_url, token, contact_id,
                                               args.seconds, args.connections,
                                               args.max_requests))
    rate = ok / elapsed
    verdict = "OK" if rate >= GOAL and other == 0 else "BELOW GOAL"
    print(f"GET /contacts/{{id}}: {ok} ok, {other} other answers in {elapsed:.2f} s "
          f"over {args.connections} connections")
    print(f"rate: {rate:,.0f} requests/s (goal >= {GOAL:,.0f}/s): {verdict}")


if __name__ == "__main__":
    main()
