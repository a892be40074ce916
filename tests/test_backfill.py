"""The initial backfill of GHL contacts with their notes and tasks into the LinkedPhone sandbox
(real HTTP to both sandboxes, a real SQLite state file): every record arrives once, a second run
writes nothing, the partner's rate limit is never exceeded, and later syncs see the copies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli

from connector.auth.credentials import StaticBearer, api_key_provider
from connector.catalog import build_catalog
from connector.client.retry import RetryPolicy
from connector.errors import AuthError
from connector.hookspecs import Action, App, RateLimit
from connector.runtime import Runtime, Settings
from connector.sandbox.config import SandboxConfig
from connector.sandbox.linkedphone.config import LinkedPhoneConfig
from connector.sandbox.linkedphone.server import LinkedPhoneSandboxServer
from connector.sandbox.server import SandboxServer
from connector.sandbox.superphone import SuperPhoneConfig, SuperPhoneSandboxServer
from connector.store import Store
from connector.sync.audit import entries
from connector.sync.backfill import Backfill, Progress
from connector.sync.engine import Change, SyncEngine
from connector.sync.spec import load_sync

ROOT = Path(__file__).resolve().parents[1]
CATALOG = build_catalog()
CONTACTS = 30
LP_LIMIT = RateLimit(requests=40, per_seconds=1.0)
GHL_LIMIT = RateLimit(requests=100_000, per_seconds=10.0)


@pytest.fixture(scope="module")
def ghl_server() -> Iterator[SandboxServer]:
    """A GHL sandbox of its own: 30 seeded contacts, a limit high enough not to matter."""
    config = SandboxConfig(seed_contacts=CONTACTS, seed=3, rate_limit_requests=GHL_LIMIT.requests)
    with SandboxServer(config) as server:
        yield server


@pytest.fixture(scope="module")
def lp_server() -> Iterator[LinkedPhoneSandboxServer]:
    """A LinkedPhone sandbox of its own, empty, with a tight limit (40 requests a second)."""
    config = LinkedPhoneConfig(
        rate_limit_requests=LP_LIMIT.requests, rate_limit_seconds=LP_LIMIT.per_seconds, seed=5
    )
    with LinkedPhoneSandboxServer(config) as server:
        yield server


@pytest.fixture
def runtime(ghl_server: SandboxServer, lp_server: LinkedPhoneSandboxServer) -> Iterator[Runtime]:
    """Both sandboxes back at their seed state, and a runtime calling both (the partner's
    client-side limit equal to the sandbox's)."""
    ghl_server.reset()
    lp_server.reset()
    settings = Settings(
        base_urls={"ghl": ghl_server.base_url, "linkedphone": lp_server.base_url},
        location_id=ghl_server.location_id,
        rate_limits={"linkedphone": LP_LIMIT, "ghl": GHL_LIMIT},
        retry=RetryPolicy(attempts=3, base=0.01, cap=1.0, seed=1),
    )
    bearer = StaticBearer(ghl_server.private_token)
    keys = api_key_provider(keys={"linkedphone": lp_server.api_key})

    def auth(app: App, action: Action) -> Any:
        return bearer if app.id == "ghl" else keys(app, action)

    with Runtime(CATALOG, settings, auth=auth) as rt:
        yield rt


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh state file."""
    with Store(tmp_path / "state.db") as opened:
        yield opened


def seed_children(rt: Runtime) -> list[dict[str, Any]]:
    """One note and one task per GHL contact (two notes for the first); returns the contacts."""
    contacts = list(rt.iterate("ghl.contacts.search", {"pageLimit": 100}))
    for n, contact in enumerate(contacts):
        for body in ["Met at the fair", "Wants a demo"][: 2 if n == 0 else 1]:
            rt.call("ghl.notes.create", {"contactId": contact["id"], "body": f"{body} #{n}"})
        rt.call("ghl.tasks.create", {
            "contactId": contact["id"], "title": f"Call back #{n}",
            "dueDate": "2026-12-01T10:00:00Z", "completed": False,
        })  # fmt: skip
    return contacts


def partner_requests(lp: LinkedPhoneSandboxServer) -> int:
    """Every request the partner sandbox received."""
    return int(lp.stats()["traffic"]["requests"])


def test_backfill_copies_every_record_once_without_429(
    runtime: Runtime, store: Store, lp_server: LinkedPhoneSandboxServer
) -> None:
    """Every contact, note and task arrives once; none is refused by the partner's limit."""
    contacts = seed_children(runtime)
    spec = load_sync(ROOT / "recipes" / "sync_linkedphone.yaml")
    seen: list[Progress] = []
    report = Backfill(spec, runtime, store, workers=6, progress=seen.append).run()

    assert report.contacts == CONTACTS
    assert dict(report.created) == {"contacts": CONTACTS, "notes": CONTACTS + 1, "tasks": CONTACTS}
    assert (report.failed, report.skipped, report.linked, report.errors) == (0, 0, 0, ())
    stats = lp_server.stats()
    assert stats["records"] == {"contacts": CONTACTS, "notes": CONTACTS + 1, "tasks": CONTACTS}
    assert stats["traffic"]["throttled"] == 0
    assert stats["traffic"]["max_window"] <= LP_LIMIT.requests
    assert lp_server.writes("POST /contacts") == CONTACTS
    emails = {c["email"] for c in contacts}
    copied = runtime.call("linkedphone.contacts.list", {"limit": 100})["contacts"]
    assert {c["email"] for c in copied} == emails
    assert seen[-1].contacts == CONTACTS and seen[-1].written == 3 * CONTACTS + 1


def test_backfill_second_run_writes_nothing(
    runtime: Runtime, store: Store, lp_server: LinkedPhoneSandboxServer
) -> None:
    """Run again, the backfill finds every record linked and sends the partner no request."""
    seed_children(runtime)
    spec = load_sync(ROOT / "recipes" / "sync_linkedphone.yaml")
    Backfill(spec, runtime, store, workers=4).run()
    before = partner_requests(lp_server)

    again = Backfill(spec, runtime, store, workers=4).run()

    assert again.contacts == CONTACTS and again.written == 0
    assert again.known == 3 * CONTACTS + 1
    assert partner_requests(lp_server) == before
    assert lp_server.stats()["records"]["contacts"] == CONTACTS


def test_backfill_links_partner_duplicate_instead_of_copying(
    runtime: Runtime, store: Store, lp_server: LinkedPhoneSandboxServer
) -> None:
    """A partner contact with the same e-mail is linked (and audited), not created twice."""
    contacts = seed_children(runtime)
    first = contacts[0]
    made = runtime.call("linkedphone.contacts.create", {"email": first["email"], "first_name": "X"})
    spec = load_sync(ROOT / "recipes" / "sync_linkedphone.yaml")

    report = Backfill(spec, runtime, store, workers=4).run(limit=5)

    assert report.contacts == 5 and report.linked == 1
    assert report.created["contacts"] == 4
    assert lp_server.stats()["records"]["contacts"] == 5
    link = [e for e in entries(store) if e.action == "link"]
    assert [(e.ghl_id, e.partner_id) for e in link] == [(first["id"], made["contact"]["id"])]
    notes = runtime.call("linkedphone.notes.list", {"contact_id": made["contact"]["id"]})
    assert len(notes["notes"]) == 2


def test_backfill_copies_are_echoes_to_the_sync_engine(
    runtime: Runtime, store: Store, lp_server: LinkedPhoneSandboxServer
) -> None:
    """The sync engine sees a backfilled contact coming back from the partner as its own echo."""
    seed_children(runtime)
    spec = load_sync(ROOT / "recipes" / "sync_linkedphone.yaml")
    Backfill(spec, runtime, store, workers=4).run(limit=3)
    copy = runtime.call("linkedphone.contacts.list", {"limit": 10})["contacts"][0]
    writes = lp_server.stats()["traffic"]["requests"]

    outcome = SyncEngine(spec, runtime, store).apply(
        Change("partner", "contacts", copy["id"], copy)
    )

    assert outcome.action == "skip" and outcome.reason.startswith("echo")
    assert lp_server.stats()["traffic"]["requests"] == writes


def test_cli_backfill_copies_and_reports(
    runtime: Runtime, ghl_server: SandboxServer, lp_server: LinkedPhoneSandboxServer, tmp_path: Path
) -> None:
    """``ghl-connector backfill`` copies contacts, notes and tasks, then nothing when run again."""
    seed_children(runtime)
    env = {
        "CONNECTOR_HOME": str(tmp_path / "home"), "CONNECTOR_TOKEN": ghl_server.private_token,
        "CONNECTOR_LOCATION_ID": ghl_server.location_id,
        "CONNECTOR_LINKEDPHONE_API_KEY": lp_server.api_key,
    }  # fmt: skip
    args = ("backfill", "--to", "linkedphone", "--limit", "10", "--workers", "4",
            "--base-url", ghl_server.base_url, "--base-url",
            f"linkedphone={lp_server.base_url}", "--rate-limit", "linkedphone=40/1",
            "--rate-limit", "ghl=100000/10")  # fmt: skip

    first = run_cli(*args, env=env)
    again = run_cli(*args, env=env)

    assert first.status == 0, first
    assert (
        "10 contacts" in first.stdout and "created 10 contacts, 11 notes, 10 tasks" in first.stdout
    )
    assert "10/10 contacts" in first.stderr
    assert (
        again.status == 0
        and "created nothing" in again.stdout
        and "31 already linked" in again.stdout
    )
    assert lp_server.stats()["records"] == {"contacts": 10, "notes": 11, "tasks": 10}


def test_cli_backfill_rejects_rate_limit_without_app() -> None:
    """A ``--rate-limit`` that names no app is a one-line error, exit 1."""
    result = run_cli(
        "backfill",
        "--to",
        "linkedphone",
        "--rate-limit",
        "300/1",
        env={"CONNECTOR_TOKEN": "t", "CONNECTOR_LINKEDPHONE_API_KEY": "k"},
    )

    assert result.status == 1
    assert result.stderr.strip() == ("error: --rate-limit '300/1': name the app [write APP=VALUE]")


def test_backfill_into_superphone_links_graphql_conflict(
    runtime: Runtime, ghl_server: SandboxServer, store: Store
) -> None:
    """Into SuperPhone, a contact refused as a GraphQL CONFLICT is linked; the rest are copied."""
    contacts = seed_children(runtime)
    limit = RateLimit(requests=50, per_seconds=1.0)
    config = SuperPhoneConfig(rate_limit_requests=limit.requests, rate_limit_seconds=1.0, seed=2)
    with SuperPhoneSandboxServer(config) as sp:
        settings = Settings(
            base_urls={"ghl": ghl_server.base_url, "superphone": sp.base_url},
            location_id=ghl_server.location_id,
            rate_limits={"superphone": limit, "ghl": GHL_LIMIT},
        )
        bearer = StaticBearer(ghl_server.private_token)
        keys = api_key_provider(keys={"superphone": sp.api_key})

        def auth(app: App, action: Action) -> Any:
            return bearer if app.id == "ghl" else keys(app, action)

        with Runtime(CATALOG, settings, auth=auth) as rt:
            rt.call("superphone.contacts.create", {"email": contacts[0]["email"]})
            spec = load_sync(ROOT / "recipes" / "sync_superphone.yaml")
            report = Backfill(spec, rt, store, workers=4).run(limit=6)
            sent = sp.stats()["traffic"]["requests"]
            again = Backfill(spec, rt, store, workers=4).run(limit=6)

        assert (report.linked, report.failed) == (1, 0)
        assert dict(report.created) == {"contacts": 5, "notes": 7, "tasks": 6}
        assert sp.stats()["records"] == {"contacts": 6, "notes": 7, "tasks": 6}
        assert sp.stats()["traffic"]["throttled"] == 0
        assert again.written == 0 and sp.stats()["traffic"]["requests"] == sent


def test_backfill_stops_on_refused_partner_key(
    ghl_server: SandboxServer, lp_server: LinkedPhoneSandboxServer, store: Store
) -> None:
    """A partner API key the partner refuses stops the whole run with an AuthError."""
    ghl_server.reset()
    lp_server.reset()
    settings = Settings(
        base_urls={"ghl": ghl_server.base_url, "linkedphone": lp_server.base_url},
        location_id=ghl_server.location_id,
        rate_limits={"linkedphone": LP_LIMIT, "ghl": GHL_LIMIT},
    )
    bearer = StaticBearer(ghl_server.private_token)
    keys = api_key_provider(keys={"linkedphone": "not-the-key"})

    def auth(app: App, action: Action) -> Any:
        return bearer if app.id == "ghl" else keys(app, action)

    spec = load_sync(ROOT / "recipes" / "sync_linkedphone.yaml")
    with Runtime(CATALOG, settings, auth=auth) as rt, pytest.raises(AuthError, match="401"):
        Backfill(spec, rt, store, workers=3).run()
    assert lp_server.stats()["records"]["contacts"] == 0
