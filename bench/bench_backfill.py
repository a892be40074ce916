"""Benchmark: the initial backfill of N GHL contacts, each with a note and a task, into LinkedPhone.

For each N (1,000 then 10,000) it starts three processes: the GHL sandbox seeded with N contacts
plus one note and one task each (seeded in Python inside that process, see ``serve-ghl``), the
LinkedPhone sandbox with the partner rate limit (``--rate``; the default, 3,500 per 5 s, 700 a
second, is scaled so that 10,000 contacts take under a minute, and is what one shared 2-CPU
machine running all three processes keeps full), and the
backfill itself (``run``: ``connector.sync.backfill.Backfill`` with the shipped
``recipes/sync_linkedphone.yaml``, a fresh state file). Peak memory is the backfill process's
own (``os.wait4`` rusage of that child alone, cross-checked with its ``VmHWM``); the sandboxes'
memory is not counted. Throughput is every request the partner sandbox received divided by the
backfill's elapsed time, as a fraction of the ceiling (requests / seconds); 429s and the busiest
window come from the partner sandbox's counters.

Run: ``python bench/bench_backfill.py [--sizes 1000,10000] [--rate 3500/5] [--workers 8]``
(``--progress`` prints the backfill's progress every 10 s).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connector.sandbox.config import SandboxConfig, parse_rate_limit  # noqa: E402

GOAL_FRACTION = 0.90
GOAL_MB = 150.0
GOAL_SECONDS = 60.0
"""The 10,000-contact run must end within this."""
GHL_LIMIT = (10_000_000, 10.0)
"""The GHL sandbox's limit (and the client's): high, so GHL reads are not the bottleneck."""
LP_KEY = "lp_bench_key_0123456789"
GHL_TOKEN = "pit-bench-0123456789abcdef"


# -- the GHL sandbox child: seeded with notes and tasks in Python ----------------------------------


def serve_ghl(contacts: int) -> None:
    """Run the GHL sandbox with ``contacts`` contacts, each with one note and one task."""
    from connector.sandbox.app import SandboxApp
    from connector.sandbox.runner import serve_app
    from connector.sandbox.server import banner

    def make(config: SandboxConfig) -> SandboxApp:
        app = SandboxApp(config)
        store = app.store
        for n, contact in enumerate(list(store.contacts.values())):
            cid, stamp = contact["id"], store.stamp()
            note = {
                "id": store.new_id(),
                "contactId": cid,
                "body": f"Met at the fair #{n}",
                "dateAdded": stamp,
                "dateUpdated": stamp,
            }
            store.notes.setdefault(cid, {})[note["id"]] = note
            task = {
                "id": store.new_id(),
                "contactId": cid,
                "title": f"Call back #{n}",
                "body": "About the quote",
                "dueDate": "2026-12-01T10:00:00.000Z",
                "completed": n % 4 == 0,
                "dateAdded": stamp,
                "dateUpdated": stamp,
            }
            store.tasks.setdefault(cid, {})[task["id"]] = task
        return app

    config = SandboxConfig(
        seed_contacts=contacts, seed=1, rate_limit_requests=GHL_LIMIT[0],
        rate_limit_seconds=GHL_LIMIT[1], daily_quota=100_000_000, private_token=GHL_TOKEN,
    )  # fmt: skip
    serve_app(make, config, sys.stdout, banner)


# -- the backfill child --------------------------------------------------------------------------


def run_backfill(args: argparse.Namespace) -> None:
    """Backfill into the partner and print one JSON line: counts, elapsed, own peak memory."""
    from connector.auth.credentials import StaticBearer, api_key_provider
    from connector.catalog import build_catalog
    from connector.hookspecs import RateLimit
    from connector.runtime import Runtime, Settings
    from connector.store import Store
    from connector.sync.backfill import Backfill
    from connector.sync.spec import load_sync

    requests, seconds = parse_rate_limit(args.rate)
    settings = Settings(
        base_urls={"ghl": args.ghl_url, "linkedphone": args.partner_url},
        location_id=args.location,
        rate_limits={"linkedphone": RateLimit(requests, seconds),
                     "ghl": RateLimit(GHL_LIMIT[0], GHL_LIMIT[1])},
    )  # fmt: skip
    bearer = StaticBearer(GHL_TOKEN)
    keys = api_key_provider(keys={"linkedphone": LP_KEY})
    runtime = Runtime(
        build_catalog(), settings,
        auth=lambda app, action: bearer if app.id == "ghl" else keys(app, action),
    )  # fmt: skip
    spec = load_sync(ROOT / "recipes" / "sync_linkedphone.yaml")
    with runtime, Store(Path(args.state)) as store:
        backfill = Backfill(
            spec,
            runtime,
            store,
            workers=args.workers,
            every=10.0,
            progress=_progress if args.progress else None,
        )
        report = backfill.run()
    print(json.dumps({
        "contacts": report.contacts, "created": dict(report.created), "failed": report.failed,
        "errors": list(report.errors), "elapsed": report.elapsed, "vm_hwm_kb": _vm_hwm_kb(),
    }))  # fmt: skip


def _progress(progress: Any) -> None:
    print(
        f"          ... {progress.contacts:,} contacts, {progress.written:,} written, "
        f"{progress.elapsed:.0f} s, {progress.written / max(progress.elapsed, 1e-9):.0f}/s",
        file=sys.stderr,
        flush=True,
    )


def _vm_hwm_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


# -- the parent ----------------------------------------------------------------------------------


def _start(command: list[str]) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """Start a sandbox child and read its banner (base URL, then ``name: value`` lines)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    stream: IO[str] | None = child.stdout
    assert stream is not None
    info = {"base_url": stream.readline().strip()}
    for line in iter(stream.readline, ""):
        if not line.strip():
            break
        name, _, value = line.partition(":")
        info[name.strip()] = value.strip()
    if not info["base_url"].startswith("http://"):
        child.kill()
        raise SystemExit(f"bench: a sandbox did not start: {command!r}")
    return child, info


def _stop(child: subprocess.Popen[str]) -> None:
    child.terminate()
    try:
        child.wait(10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    if child.stdout is not None:
        child.stdout.close()


def _cpu(pid: int) -> float:
    """CPU seconds a running child has used (user + system), from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stats(base_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base_url}/_sandbox/stats", timeout=10) as answer:
        return dict(json.loads(answer.read()))


def one_size(contacts: int, rate: str, workers: int, progress: bool) -> dict[str, Any]:
    """Run the three processes for ``contacts`` contacts; the figures of the run."""
    me = [sys.executable, str(Path(__file__).resolve())]
    ghl, ghl_info = _start([*me, "serve-ghl", "--contacts", str(contacts)])
    lp, lp_info = _start(
        [
            sys.executable,
            "-m",
            "connector.sandbox.linkedphone",
            "--port",
            "0",
            "--rate-limit",
            rate,
            "--api-key",
            LP_KEY,
        ]
    )
    try:
        with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryFile("w+") as out:
            command = [
                *me,
                "run",
                "--ghl-url",
                ghl_info["base_url"],
                "--location",
                ghl_info["location_id"],
                "--partner-url",
                lp_info["base_url"],
                "--rate",
                rate,
                "--workers",
                str(workers),
                "--state",
                f"{tmp}/state.db",
                *(["--progress"] if progress else []),
            ]
            child = subprocess.Popen(
                command, stdout=out, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}
            )
            _, status, usage = os.wait4(child.pid, 0)
            child.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            text = out.read()
        if child.returncode != 0:
            raise SystemExit(f"bench: the backfill failed (exit {child.returncode}): {text}")
        result: dict[str, Any] = json.loads(text.strip().splitlines()[-1])
        result["ru_maxrss_kb"] = usage.ru_maxrss
        result["cpu"] = usage.ru_utime + usage.ru_stime
        result["partner"] = _stats(lp_info["base_url"])
        result["sandbox_cpu"] = {"ghl": _cpu(ghl.pid), "partner": _cpu(lp.pid)}
        return result
    finally:
        _stop(lp)
        _stop(ghl)


def report(contacts: int, rate: str, result: dict[str, Any]) -> bool:
    """Print one run's figures; whether it met the goals."""
    requests, seconds = parse_rate_limit(rate)
    ceiling = requests / seconds
    traffic = result["partner"]["traffic"]
    sent, elapsed = int(traffic["requests"]), float(result["elapsed"])
    fraction = sent / elapsed / ceiling
    throttled = int(traffic["throttled"])
    peak_mb = result["ru_maxrss_kb"] / 1024
    created = result["created"]
    print(
        f"N={contacts:>6,}  partner requests sent {sent:,} ({sent / contacts:.1f} per contact; "
        f"created contacts {created.get('contacts', 0):,}, notes {created.get('notes', 0):,}, "
        f"tasks {created.get('tasks', 0):,}; failed {result['failed']})"
    )
    print(
        f"          elapsed {elapsed:.1f} s  throughput {sent / elapsed:.0f} req/s = "
        f"{fraction:.1%} of the ceiling {ceiling:.0f} req/s (goal >= {GOAL_FRACTION:.0%})"
    )
    if elapsed < 4 * seconds:
        print(
            "          (a run of few windows may pass 100%: a window admits a whole burst at once)"
        )
    if contacts >= 10_000:
        print(
            f"          elapsed {elapsed:.1f} s (goal < {GOAL_SECONDS:.0f} s for 10,000 contacts)"
        )
    print(
        f"          429s {throttled} (goal 0)  busiest {seconds:g} s window "
        f"{traffic['max_window']} of {requests}"
    )
    print(
        f"          peak RSS of the backfill process {peak_mb:.1f} MB "
        f"(VmHWM {result['vm_hwm_kb'] / 1024:.1f} MB; goal < {GOAL_MB:.0f} MB)"
    )
    cpu = result["sandbox_cpu"]
    print(
        f"          CPU time: backfill process {result['cpu']:.1f} s, GHL sandbox "
        f"{cpu['ghl']:.1f} s, partner sandbox {cpu['partner']:.1f} s ({os.cpu_count()} CPUs)"
    )
    routes = ", ".join(
        f"{name} {info['requests']:,} {info['statuses']}"
        for name, info in sorted(traffic["routes"].items())
    )
    print(f"          partner requests by route: {routes}")
    for error in result["errors"]:
        print(f"          error: {error}")
    fast = contacts < 10_000 or elapsed < GOAL_SECONDS
    return fraction >= GOAL_FRACTION and throttled == 0 and peak_mb < GOAL_MB and fast


def main() -> None:
    """Parse arguments; run a child mode, or the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", default="bench", choices=["bench", "serve-ghl", "run"])
    parser.add_argument("--sizes", default="1000,10000", help="contact counts, comma-separated")
    parser.add_argument("--rate", default="3500/5", help="the partner's limit, N/SECONDS")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--contacts", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--progress", action="store_true", help="print the backfill's progress")
    for hidden in ("--ghl-url", "--location", "--partner-url", "--state"):
        parser.add_argument(hidden, default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode == "serve-ghl":
        serve_ghl(args.contacts)
        return
    if args.mode == "run":
        run_backfill(args)
        return
    requests, seconds = parse_rate_limit(args.rate)
    print(
        f"partner rate limit (sandbox and client): {requests} requests per {seconds:g} s "
        f"= {requests / seconds:.0f} req/s; {args.workers} workers",
        flush=True,
    )
    peaks, ok = [], True
    for contacts in (int(n) for n in args.sizes.split(",")):
        started = time.perf_counter()
        result = one_size(contacts, args.rate, args.workers, args.progress)
        ok = report(contacts, args.rate, result) and ok
        peaks.append(result["ru_maxrss_kb"] / 1024)
        wall = time.perf_counter() - started
        print(f"          (wall time with start-up and seeding {wall:.1f} s)", flush=True)
    if len(peaks) > 1:
        print(
            f"peak RSS {' -> '.join(f'{p:.1f} MB' for p in peaks)} "
            f"(growth {peaks[-1] - peaks[0]:+.1f} MB)"
        )
    print("goals met" if ok else "goals NOT met")


if __name__ == "__main__":
    main()
