"""Benchmark: webhook-to-action latency of ``ghl-connector serve`` for a one-step recipe.

Runs the GHL sandbox (in this process) and ``python -m connector serve`` as a real process on a
fresh state file, with the recipe "ContactCreate -> create a task". Each sample creates a
contact through the API; the sandbox sends the signed ContactCreate webhook, serve stores it,
a worker runs the recipe and POSTs the task back. The latency is measured by the sandbox's own
clock: the task's ``dateAdded`` (the action arrived) minus the contact's ``dateAdded`` (the
state change), so it covers webhook delivery, signature check, durable inbox commit, claim,
run history and ledger writes, and the action's HTTP call.

``--rate R`` sends contacts open-loop at R per second (latency under load); without it, one at
a time (each waits for its task).

``--store postgresql://...`` (an empty database or schema) runs serve on the shared store.

    python bench/bench_service.py [-n 200] [--rate 0] [--workers 4] [--store URL]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connector.sandbox.config import SandboxConfig  # noqa: E402
from connector.sandbox.server import SandboxServer  # noqa: E402

sys.path.insert(0, str(ROOT / "tests"))  # the test modules import their helpers by name
from tests.serveproc import ServeProcess  # noqa: E402
from tests.test_service import ONE_STEP, create_contact  # noqa: E402


def epoch(stamp: str) -> float:
    """A sandbox timestamp (ISO 8601, ms) as epoch seconds."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def latency(ghl: SandboxServer, contact_id: str, timeout: float = 30.0) -> float:
    """Seconds from the contact's creation to its task's creation (waits for the task)."""
    deadline = time.monotonic() + timeout
    store = ghl.app.store
    while time.monotonic() < deadline:
        tasks = store.tasks.get(contact_id)
        if tasks:
            task = next(iter(tasks.values()))
            return epoch(task["dateAdded"]) - epoch(store.contacts[contact_id]["dateAdded"])
        time.sleep(0.001)
    raise TimeoutError(f"no task for contact {contact_id!r} after {timeout}s")


def measure(ghl: SandboxServer, count: int, rate: float) -> list[float]:
    """Create ``count`` contacts (one at a time, or open-loop at ``rate``/s); their latencies."""
    if rate <= 0:
        return [latency(ghl, create_contact(ghl, f"B{i}")) for i in range(count)]
    created: list[str] = []

    def produce() -> None:
        start = time.monotonic()
        for index in range(count):
            time.sleep(max(0.0, start + index / rate - time.monotonic()))
            created.append(create_contact(ghl, f"B{index}"))

    producer = threading.Thread(target=produce)
    producer.start()
    producer.join()
    return [latency(ghl, contact) for contact in created]


def report(samples: list[float], label: str) -> None:
    """Print p50/p90/p99/max in milliseconds."""
    ms = sorted(s * 1000 for s in samples)
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    print(f"{label}: n={len(ms)} p50={cuts[49]:.1f} ms p90={cuts[89]:.1f} ms"
          f" p99={cuts[98]:.1f} ms max={ms[-1]:.1f} ms mean={statistics.fmean(ms):.1f} ms")


def main() -> int:
    """Run the benchmark and print the latency percentiles."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="samples (200)")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="contacts per second, open loop (0: one at a time)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--store", metavar="URL",
                        help="serve on this (empty) postgresql://... store, not a fresh file")
    args = parser.parse_args()
    store = ("--store", args.store) if args.store else ()
    config = SandboxConfig(rate_limit_requests=100_000, rate_limit_seconds=10)
    with tempfile.TemporaryDirectory() as tmp, SandboxServer(config) as ghl:
        folder = Path(tmp) / "recipes"
        folder.mkdir()
        (folder / "call_new.yaml").write_text(ONE_STEP)
        proc = ServeProcess(folder, Path(tmp) / "home", base_url=ghl.base_url,
                            token=ghl.private_token, location_id=ghl.location_id,
                            public_keys=ghl.public_keys,
                            extra=("--rate-limit", "100000/10", "--workers", str(args.workers),
                                   *store))
        with proc:
            ghl.set_webhook_urls([proc.url])
            measure(ghl, 10, 0)  # warm-up: connections, caches
            mode = f"open loop {args.rate:g}/s" if args.rate > 0 else "one at a time"
            where = "PostgreSQL" if args.store else "SQLite"
            report(measure(ghl, args.n, args.rate), f"webhook-to-action ({mode}, {where})")
            ghl.set_webhook_urls([])
    return 0


if __name__ == "__main__":
    sys.exit(main())
