"""The shipped ``recipes/`` folder, everything at once, under ``serve --sandbox``: no loop, no
dead letter.

The documented command runs as a real process (GHL, SuperPhone and LinkedPhone sandboxes in it,
11 recipes and two two-way syncs). The test makes changes on each app as a person would
(contacts, tasks, notes, tags, an appointment), then waits for the service to go quiet and
checks that it stays quiet: the inbox stops growing, GHL sees no more writes, nothing is dead.
Before the pack recognised its own echoes, one new SuperPhone contact kept creating GHL tasks
for as long as the service ran.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.auth.bearer import StaticBearer
from connector.auth.credentials import api_key_provider, ghl_only
from connector.catalog import build_catalog
from connector.runtime import Runtime, Settings

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


class Service:
    """``serve --recipes recipes --sandbox`` and what its summary says."""

    def __init__(self, home: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
        env.update({"CONNECTOR_HOME": str(home), "PYTHONPATH": str(ROOT)})
        self.db = home / "state.db"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "connector", "serve", "--recipes", str(ROOT / "recipes"),
             "--sandbox", "--port", "0"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.errors: list[str] = []
        assert self.process.stderr is not None and self.process.stdout is not None
        threading.Thread(target=self._drain, daemon=True).start()
        self.summary: list[str] = []
        deadline = time.monotonic() + 90
        for line in iter(self.process.stdout.readline, ""):
            self.summary.append(line.rstrip("\n"))
            if line.strip() == "ready" or time.monotonic() > deadline:
                break
        assert self.summary[-1:] == ["ready"], (self.summary, self.errors[-20:])

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if '"level": "ERROR"' in line or "Traceback" in line:
                self.errors.append(line)

    def line(self, start: str) -> str:
        return next(line for line in self.summary if line.startswith(start))

    def counts(self) -> dict[str, int]:
        with sqlite3.connect(self.db) as db:
            rows = db.execute("SELECT status, COUNT(*) FROM inbox GROUP BY status").fetchall()
        return {str(status): int(n) for status, n in rows}

    def dead_runs(self) -> list[tuple[str, str]]:
        with sqlite3.connect(self.db) as db:
            rows = db.execute("SELECT recipe, error FROM runs WHERE status = 'dead_letter'")
            return [(str(r), str(e)) for r, e in rows.fetchall()]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    running = Service(tmp_path / "home")
    try:
        yield running
    finally:
        running.stop()


def _runtime(service: Service) -> tuple[Runtime, str]:
    ghl = re.search(r"^ghl sandbox: (\S+) \(location (\S+), private token (\S+),",
                    service.line("ghl sandbox:"))  # fmt: skip
    assert ghl, service.summary
    urls = {"ghl": ghl.group(1)}
    keys = {}
    for app in ("superphone", "linkedphone"):
        found = re.search(r"sandbox: (\S+) \(api key (\S+),", service.line(f"{app} sandbox:"))
        assert found, service.summary
        urls[app], keys[app] = found.group(1), found.group(2)
    auth = api_key_provider(ghl_only(StaticBearer(ghl.group(3))), keys=keys)
    settings = Settings(base_urls=urls, location_id=ghl.group(2))
    return Runtime(build_catalog(), settings, auth=auth), urls["ghl"]


def _ghl_writes(base_url: str) -> int:
    stats: dict[str, Any] = httpx.get(f"{base_url}/_sandbox/stats").json()
    return sum(
        route["writes"] for location in stats["locations"].values()
        for route in location["routes"].values()
    )  # fmt: skip


def _quiet(service: Service, ghl_url: str, *, settle: float = 6.0, limit: float = 120.0) -> int:
    """Wait until nothing is pending and neither the inbox nor GHL's writes moved for
    ``settle`` seconds; returns the inbox size then (fails after ``limit`` seconds)."""
    deadline = time.monotonic() + limit
    last: tuple[int, int] | None = None
    since = time.monotonic()
    while time.monotonic() < deadline:
        counts = service.counts()
        state = (sum(counts.values()), _ghl_writes(ghl_url))
        busy = counts.get("pending", 0) + counts.get("processing", 0)
        if state != last or busy:
            last, since = state, time.monotonic()
        elif time.monotonic() - since >= settle:
            return state[0]
        time.sleep(0.5)
    pytest.fail(f"the service never went quiet: inbox {service.counts()}, state {last}")


def test_the_shipped_folder_runs_without_loops_or_dead_letters(service: Service) -> None:
    # Nothing shipped copies what another shipped file copies (the partner recipes, which do
    # what the syncs do, live in recipes/partner-recipes/): each change is copied once.
    assert "copied both ways" not in "\n".join(service.summary)
    runtime, ghl_url = _runtime(service)
    with runtime:
        # SuperPhone: a contact, its task and its note.
        sp = runtime.call("superphone.contacts.create", {
            "firstName": "Sue", "lastName": "Phone", "email": "sue@example.com",
            "phone": "+14155550101"})  # fmt: skip
        runtime.call("superphone.tasks.create", {"contactId": sp["id"], "title": "Call Sue",
                                                 "dueAt": "2026-12-09T10:00:00Z"})
        runtime.call("superphone.notes.create", {"contactId": sp["id"], "body": "Met at a fair"})
        # LinkedPhone: a contact with tags, and a task.
        lp = runtime.call("linkedphone.contacts.create", {
            "first_name": "Lin", "last_name": "Ked", "email": "lin@example.com",
            "phone": "+14155550102", "tags": ["vip"]})["contact"]  # fmt: skip
        runtime.call("linkedphone.tasks.create", {"contact_id": lp["id"], "title": "Demo",
                                                  "due_at": "2026-12-10T10:00:00Z"})
        # GHL: a contact, a task, a note, a tag, a completed task and an appointment.
        ghl = runtime.call("ghl.contacts.create", {
            "firstName": "Gil", "lastName": "Hall", "email": "gil@example.com",
            "phone": "+14155550103"})["contact"]  # fmt: skip
        task = runtime.call("ghl.tasks.create", {
            "contactId": ghl["id"], "title": "Send quote", "dueDate": "2026-12-11T10:00:00Z",
            "completed": False})["task"]  # fmt: skip
        runtime.call("ghl.notes.create", {"contactId": ghl["id"], "body": "Wants a quote"})
        runtime.call("ghl.tags.add", {"contactId": ghl["id"], "tags": ["hot"]})
        runtime.call("ghl.tasks.complete", {"contactId": ghl["id"], "taskId": task["id"],
                                            "completed": True})
        httpx.post(f"{ghl_url}/_sandbox/appointments",
                   json={"contactId": ghl["id"], "title": "Intro call"}).raise_for_status()
    size = _quiet(service, ghl_url)
    assert size < 150, f"{size} events for eleven changes: something still echoes"
    with runtime:  # each record once on each side: no recipe copies what a sync copies
        gil = runtime.call("superphone.contacts.find", {"email": "gil@example.com"})["contact"]
        notes = runtime.call("superphone.notes.list", {"contactId": gil["id"]})
        bodies = [n["body"] for n in notes["nodes"] if n["body"].startswith("Wants a quote")]
        assert len(bodies) == 1, notes
        sue = runtime.call("ghl.contacts.search", {"query": "sue@example.com", "pageLimit": 10})
        assert len(sue["contacts"]) == 1, sue
    assert service.dead_runs() == []
    assert service.counts().get("dead", 0) == 0
    assert service.errors == []


def test_a_restarted_sandbox_service_draws_new_ids(tmp_path: Path) -> None:
    """`serve --sandbox` starts empty sandboxes each time over the same state file: their ids
    must not repeat, or the id map of the earlier run links new records to old ones (found by
    a user: after a restart, new contacts were skipped as 'no change')."""
    seen: list[set[str]] = []
    for _ in range(2):
        running = Service(tmp_path / "home")
        try:
            runtime, _ = _runtime(running)
            with runtime:
                made = runtime.call("ghl.contacts.create", {"email": "same@example.com"})
                found = runtime.call("superphone.contacts.create", {"email": "same@example.com"})
                seen.append({made["contact"]["id"], found["id"]})
        finally:
            running.stop()
    assert not seen[0] & seen[1], seen
