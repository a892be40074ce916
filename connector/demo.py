"""The demo: the pack's main job on embedded defaults, against a local GHL sandbox.

It starts the sandbox in this process, then drives it through the runtime exactly as a real
GHL account would be driven (catalog actions, input and output validation, rate limiting,
pagination), printing each step as it goes and a summary at the end. No credentials, no
network beyond 127.0.0.1.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

from connector.catalog import build_catalog
from connector.credentials import StaticBearer
from connector.hookspecs import RateLimit
from connector.runtime import Runtime, Settings

__all__ = ["DemoOptions", "run_demo"]


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """Knobs of the demo: sandbox size and the burst limit both sides keep to."""

    seed_contacts: int = 25
    burst: int = 40
    window_seconds: float = 2.0
    lookups: int = 120
    threads: int = 8


@dataclass
class _Tally:
    latencies: list[float] = field(default_factory=list)

    def timed(self, call: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            return call()
        finally:
            self.latencies.append(time.perf_counter() - started)


def run_demo(options: DemoOptions | None = None, out: TextIO | None = None) -> int:
    """Run the demo; returns the exit status (0 when every step did what it should)."""
    from connector.sandbox.config import SandboxConfig
    from connector.sandbox.server import SandboxServer

    options = options or DemoOptions()
    out = out or sys.stdout
    config = SandboxConfig(
        seed_contacts=options.seed_contacts,
        rate_limit_requests=options.burst,
        rate_limit_seconds=options.window_seconds,
    )
    with SandboxServer(config) as ghl:
        out.write("GHL Connector Pack demo: a local HighLevel sandbox, no credentials needed\n")
        out.write(f"  sandbox  {ghl.base_url}  location {ghl.location_id}\n")
        out.write(
            f"  limits   {options.burst} requests per {options.window_seconds:g} s per location "
            "(the sandbox answers 429 past that; the connector must never get one)\n\n"
        )
        settings = Settings(
            strict=True,
            base_urls={"ghl": ghl.base_url},
            location_id=ghl.location_id,
            rate_limits={"ghl": RateLimit(options.burst, options.window_seconds)},
        )
        bearer = StaticBearer(ghl.private_token)
        tally = _Tally()
        with Runtime(build_catalog(), settings, auth=lambda app, action: bearer) as runtime:
            _steps(runtime, tally, options, out)
        seen = ghl.location_stats()
    return _summary(seen, tally, options, out)


def _call(runtime: Runtime, tally: _Tally, action: str, data: dict[str, Any]) -> Any:
    return tally.timed(lambda: runtime.call(action, data))


@contextmanager
def _step(out: TextIO, number: int, total: int, title: str) -> Iterator[list[str]]:
    out.write(f"  [{number}/{total}] {title} ... ")
    out.flush()
    result: list[str] = []
    yield result
    out.write((result[0] if result else "ok") + "\n")


def _steps(runtime: Runtime, tally: _Tally, options: DemoOptions, out: TextIO) -> None:
    total = 6
    people = [
        {
            "firstName": "Ann",
            "lastName": "Lee",
            "email": "ann@example.com",
            "phone": "+14155550101",
        },
        {"firstName": "Bo", "lastName": "Diaz", "email": "bo@example.com", "phone": "+14155550102"},
        {"firstName": "Cy", "lastName": "Park", "email": "cy@example.com", "phone": "+14155550103"},
    ]
    with _step(out, 1, total, "create 3 contacts (ghl.contacts.create)") as note:
        ids = [_call(runtime, tally, "ghl.contacts.create", p)["contact"]["id"] for p in people]
        note.append(f"ok, ids {', '.join(ids)}")
    ann = ids[0]
    with _step(
        out, 2, total, "tag Ann and upsert her by email (ghl.tags.add, ghl.contacts.upsert)"
    ) as note:
        _call(runtime, tally, "ghl.tags.add", {"contactId": ann, "tags": ["vip", "demo"]})
        upserted = _call(
            runtime,
            tally,
            "ghl.contacts.upsert",
            {"email": "ann@example.com", "companyName": "Lee & Co"},
        )
        same = upserted["contact"]["id"] == ann and not upserted["new"]
        note.append("ok, matched the existing contact" if same else "MISMATCH: created a duplicate")
    with _step(out, 3, total, "follow-up task, then complete it (ghl.tasks.*)") as note:
        task = _call(
            runtime,
            tally,
            "ghl.tasks.create",
            {
                "contactId": ann,
                "title": "Call Ann back",
                "dueDate": "2030-01-01T10:00:00Z",
                "completed": False,
            },
        )["task"]
        done = _call(
            runtime,
            tally,
            "ghl.tasks.complete",
            {"contactId": ann, "taskId": task["id"], "completed": True},
        )["task"]
        note.append("ok, completed" if done["completed"] else "MISMATCH: not completed")
    with _step(out, 4, total, "add a note (ghl.notes.create)") as note:
        _call(runtime, tally, "ghl.notes.create", {"contactId": ann, "body": "Met at the expo."})
        notes = _call(runtime, tally, "ghl.notes.list", {"contactId": ann})["notes"]
        note.append(f"ok, {len(notes)} note(s) on Ann")
    with _step(out, 5, total, "search every contact, 10 per page (ghl.contacts.search)") as note:
        found = list(runtime.iterate("ghl.contacts.search", {"pageLimit": 10}))
        expected = options.seed_contacts + len(people)
        pages = -(-len(found) // 10)
        ok = len(found) == expected and len({c["id"] for c in found}) == expected
        note.append(f"{'ok' if ok else 'MISMATCH'}, {len(found)} contacts over {pages} pages")
    title = f"{options.lookups} lookups from {options.threads} threads at once (ghl.contacts.get)"
    with _step(out, 6, total, title) as note:
        started = time.perf_counter()
        with ThreadPoolExecutor(options.threads) as pool:
            list(
                pool.map(
                    lambda i: _call(runtime, tally, "ghl.contacts.get", {"contactId": ids[i % 3]}),
                    range(options.lookups),
                )
            )
        note.append(f"ok in {time.perf_counter() - started:.1f} s, paced by the rate limiter")


def _summary(seen: dict[str, Any], tally: _Tally, options: DemoOptions, out: TextIO) -> int:
    lat = sorted(tally.latencies)
    p50 = statistics.median(lat) * 1000
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
    within = seen["max_window"] <= options.burst and seen["throttled"] == 0
    rows = [
        ("requests the sandbox saw", str(seen["requests"])),
        (
            f"most in any {options.window_seconds:g} s window",
            f"{seen['max_window']} (limit {options.burst})",
        ),
        ("429 answers", str(seen["throttled"])),
        ("call latency p50 / p99", f"{p50:.1f} ms / {p99:.1f} ms (p99 includes rate-limit waits)"),
        ("result", "OK" if within else "LIMIT EXCEEDED"),
    ]
    out.write("\nsummary\n")
    for label, value in rows:
        out.write(f"  {label:<30}{value}\n")
    return 0 if within else 1
