"""Benchmark: what the 576-action catalog costs a process that starts, lists or calls.

Run: ``python bench/bench_catalog.py [--runs N]``

Each figure is the median of N fresh processes (the machine may be shared: medians, not
minima, and the load average is printed with them).

1. ``ghl-connector --help`` (goal: under 0.3 s).
2. ``ghl-connector catalog --json``, every action and trigger listed (goal: under 1 s).
3. ``ghl-connector call ghl.contacts.get`` against the GHL sandbox (a separate process on
   loopback): its time, and how many schema files the process read (goal: the called
   action's only, not the other 575; counted by ``connector.documents.schema.schemas_read``).
"""

from __future__ import annotations

import argparse
import json
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

from bench_runtime import start_sandbox  # noqa: E402

# `call` through the CLI's own entry point, then the count of schema files the process read.
CALL = """
import sys
from connector.cli import main
code = main(sys.argv[1:])
from connector.documents.schema import schemas_read
ghl = [name for name in schemas_read() if name.startswith("actions/ghl.")]
print(f"schemas_read={len(ghl)} {' '.join(ghl)}", file=sys.stderr)
sys.exit(code)
"""


def timed(command: list[str], runs: int, env: dict[str, str] | None = None) -> tuple[float, str]:
    """Median wall time of ``command`` over ``runs`` fresh processes, and the last stderr."""
    times, err = [], ""
    for _ in range(runs):
        t0 = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - t0)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
        err = done.stderr
    return statistics.median(times), err


def cli() -> list[str]:
    exe = shutil.which("ghl-connector")
    return [exe] if exe else [sys.executable, "-m", "connector"]


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per figure")
    args = parser.parse_args()
    actions = json.loads(
        subprocess.run(
            [*cli(), "catalog", "--json"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    )
    total = sum(1 for row in actions if row["kind"] == "action" and row["app"] == "ghl")
    help_time, _ = timed([*cli(), "--help"], args.runs)
    list_time, _ = timed([*cli(), "catalog", "--json"], args.runs)
    proc, base_url, token, location = start_sandbox()
    try:
        headers = {"Authorization": f"Bearer {token}", "Version": "2021-07-28"}
        found = httpx.post(
            f"{base_url}/contacts/search",
            headers=headers,
            json={"locationId": location, "pageLimit": 1},
        )
        contact_id = found.json()["contacts"][0]["id"]
        env = {**os.environ, "BENCH_TOKEN": token}
        call = [
            sys.executable,
            "-c",
            CALL,
            "call",
            "ghl.contacts.get",
            "--input",
            json.dumps({"contactId": contact_id}),
            "--base-url",
            base_url,
            "--token-env",
            "BENCH_TOKEN",
            "--location-id",
            location,
        ]
        call_time, err = timed(call, args.runs, env)
    finally:
        proc.terminate()
        proc.wait(10)
    read = int(err.rsplit("schemas_read=", 1)[1].split()[0])  # GHL action schema files
    print(
        f"ghl-connector --help          : median {help_time * 1000:6.0f} ms  (goal < 300 ms) "
        f"{verdict(help_time < 0.3)}"
    )
    print(
        f"ghl-connector catalog --json  : median {list_time * 1000:6.0f} ms  (goal < 1000 ms) "
        f"{verdict(list_time < 1.0)}"
    )
    print(
        f"ghl-connector call (1 action) : median {call_time * 1000:6.0f} ms, "
        f"{read} of {total} GHL schema files read  (goal: 1) {verdict(read == 1)}"
    )
    print(
        f"(load average {os.getloadavg()[0]:.1f}, cpu count {os.cpu_count()}, "
        f"python {sys.version.split()[0]}, {args.runs} runs each)"
    )


if __name__ == "__main__":
    main()
