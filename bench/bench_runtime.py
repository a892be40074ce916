"""Benchmark: the runtime's per-call overhead, and the start-up time of the CLI.

Run: ``python bench/bench_runtime.py [--calls N]``

1. Starts the GHL sandbox as a separate process on loopback, seeded with contacts.
2. Calls ``ghl.contacts.get`` through the runtime (input validation, request building, rate
   limiter, retries, limits, output validation; sent on httpx's own transport) and with a plain
   ``httpx.Client`` GET to the same URL on httpx's default transport, interleaved in batches so
   both see the same machine load. Prints both medians and their ratio (goal: at most 1.3x),
   and the CPU time per call of each (the process's, per batch: steadier than wall time on a
   shared machine).
3. Times ``ghl-connector --help`` as a fresh process (goal: under 0.3 s).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connector.auth.bearer import StaticBearer  # noqa: E402
from connector.catalog import build_catalog  # noqa: E402
from connector.hookspecs import RateLimit  # noqa: E402
from connector.runtime import Runtime, Settings  # noqa: E402


def start_sandbox() -> tuple[subprocess.Popen[str], str, str, str]:
    """The sandbox in its own process: (process, base URL, private token, location id)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "connector.sandbox", "--port", "0", "--seed-contacts", "20",
         "--rate-limit", "1000000/10", "--daily-quota", "100000000"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    lines = []
    while True:
        line = proc.stdout.readline()
        if not line or not line.strip():
            break
        lines.append(line.strip())
    base_url = lines[0].split()[-1]
    token = next(v.split()[-1] for v in lines if "token" in v.lower() and "private" in v.lower())
    location = next(v.split()[-1] for v in lines if "location" in v.lower())
    return proc, base_url, token, location


def median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


def bench_calls(
    base_url: str, token: str, location: str, calls: int
) -> tuple[float, float, float, float]:
    """Medians of wall time, then CPU time per call, in microseconds: (ours, plain) each."""
    catalog = build_catalog()
    headers = {"Authorization": f"Bearer {token}", "Version": "2021-07-28"}
    with httpx.Client(base_url=base_url, headers=headers) as plain:
        found = plain.post("/contacts/search", json={"locationId": location, "pageLimit": 1})
        contact_id = found.json()["contacts"][0]["id"]
        url = f"/contacts/{contact_id}"
        settings = Settings(
            strict=True, base_urls={"ghl": base_url}, location_id=location,
            rate_limits={"ghl": RateLimit(1_000_000, 10)},
        )
        bearer = StaticBearer(token)
        with Runtime(catalog, settings, auth=lambda app, action: bearer) as runtime:
            for _ in range(50):  # warm both: pools, validators, caches
                plain.get(url).json()
                runtime.call("ghl.contacts.get", {"contactId": contact_id})
            ours: list[float] = []
            theirs: list[float] = []
            ours_cpu: list[float] = []
            theirs_cpu: list[float] = []
            batch = 50
            for _ in range(calls // batch):
                c0 = time.process_time()
                for _ in range(batch):
                    t0 = time.perf_counter()
                    plain.get(url).json()
                    theirs.append(time.perf_counter() - t0)
                theirs_cpu.append((time.process_time() - c0) / batch)
                c0 = time.process_time()
                for _ in range(batch):
                    t0 = time.perf_counter()
                    runtime.call("ghl.contacts.get", {"contactId": contact_id})
                    ours.append(time.perf_counter() - t0)
                ours_cpu.append((time.process_time() - c0) / batch)
    return median_us(ours), median_us(theirs), median_us(ours_cpu), median_us(theirs_cpu)


def bench_help(runs: int = 15) -> float:
    exe = shutil.which("ghl-connector")
    command = [exe, "--help"] if exe else [sys.executable, "-m", "connector", "--help"]
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls of each kind (default 2000)")
    args = parser.parse_args()
    proc, base_url, token, location = start_sandbox()
    try:
        ours, plain, ours_cpu, plain_cpu = bench_calls(base_url, token, location, args.calls)
    finally:
        proc.terminate()
        proc.wait(10)
    ratio = ours / plain
    print(f"ghl.contacts.get via runtime : median {ours:8.1f} us per call")
    print(f"plain httpx GET, same server : median {plain:8.1f} us per call")
    print(f"runtime overhead ratio       : {ratio:.2f}x   (goal <= 1.30x) "
          f"{'OK' if ratio <= 1.3 else 'MISSED'}")
    print(f"CPU per call (median of batches): runtime {ours_cpu:.1f} us, plain httpx "
          f"{plain_cpu:.1f} us, ratio {ours_cpu / plain_cpu:.2f}x")
    help_time = bench_help()
    print(f"ghl-connector --help         : median {help_time * 1000:6.1f} ms  (goal < 300 ms) "
          f"{'OK' if help_time < 0.3 else 'MISSED'}")
    print(f"(cpu count {os.cpu_count()}, python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
