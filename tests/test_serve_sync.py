"""``ghl-connector serve`` running two-way sync documents as a real process, against real GHL,
SuperPhone and LinkedPhone sandboxes on 127.0.0.1 (signed webhooks both ways, SQLite inbox)."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.auth.bearer import StaticBearer
from connector.auth.credentials import api_key_provider
from connector.catalog import build_catalog
from connector.client.retry import RetryPolicy
from connector.demo.partners import PARTNERS
from connector.runtime import Runtime, Settings
from connector.sandbox.server import SandboxServer
from connector.service.deadletters import DeadLetters
from connector.store import Store
from connector.sync.idmap import IdMap
from connector.sync.mapping import record_time
from tests.serveproc import ROOT, ServeProcess, wait_for

CATALOG = build_catalog()
DOCS = {app: ROOT / "recipes" / f"sync_{app}.yaml" for app in ("superphone", "linkedphone")}
CREATES = "POST /contacts/"


def sync_folder(tmp_path: Path, *apps: str) -> Path:
    """A recipe folder holding the shipped sync documents of ``apps``."""
    folder = tmp_path / "recipes"
    folder.mkdir(parents=True, exist_ok=True)
    for app in apps:
        shutil.copy(DOCS[app], folder / DOCS[app].name)
    return folder


def serve_syncs(ghl: SandboxServer, tmp_path: Path, boxes: dict[str, Any]) -> ServeProcess:
    """A (not started) serve process for the syncs of ``boxes``, with their URLs and keys."""
    extra = [arg for app, box in boxes.items() for arg in ("--base-url", f"{app}={box.base_url}")]
    proc = ServeProcess(
        sync_folder(tmp_path, *boxes),
        tmp_path / "home",
        base_url=ghl.base_url,
        token=ghl.private_token,
        location_id=ghl.location_id,
        public_keys=ghl.public_keys,
        extra=tuple(extra),
    )
    for app, box in boxes.items():
        proc.env[f"CONNECTOR_{app.upper()}_API_KEY"] = box.api_key
        proc.env[f"CONNECTOR_{app.upper()}_WEBHOOK_SECRET"] = box.webhook_secret
    return proc


def hook_url(proc: ServeProcess, app: str) -> str:
    """Where ``app`` posts its webhooks to the service."""
    return proc.url.replace("/webhooks/ghl", f"/webhooks/{app}")


def wire(proc: ServeProcess, ghl: SandboxServer, boxes: dict[str, Any]) -> None:
    """Every sandbox delivers its webhooks to the service."""
    ghl.set_webhook_urls([proc.url])
    for app, box in boxes.items():
        box.set_webhook_urls([hook_url(proc, app)])


def inbox(db: Path) -> dict[str, int]:
    """The inbox's events by status."""
    with Store(db) as store:
        rows = store.query("SELECT status, COUNT(*) AS n FROM inbox GROUP BY status")
    return {str(r["status"]): int(r["n"]) for r in rows}


def settle(proc: ServeProcess, ghl: SandboxServer, boxes: dict[str, Any]) -> None:
    """Wait until every webhook sent so far, and every one it caused, is stored and done."""
    total = -1
    for _ in range(20):
        for box in (ghl, *boxes.values()):
            box.drain_webhooks()
        assert wait_for(lambda: set(inbox(proc.db)) <= {"done"}), inbox(proc.db)
        now = sum(inbox(proc.db).values())
        if now == total:
            return
        total = now
    raise AssertionError("webhooks kept coming")


def audit(db: Path, like: str = "%") -> list[dict[str, Any]]:
    """The audit rows whose event id matches ``like``."""
    with Store(db) as store:
        rows = store.query("SELECT * FROM sync_audit WHERE event_id LIKE ? ORDER BY id", (like,))
    return [dict(r) for r in rows]


def signed(secret: str, header: str, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """A body and headers signed as the partner signs them."""
    body = json.dumps(payload).encode()
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"content-type": "application/json", header: f"sha256={digest}"}


def find_ghl(runtime: Runtime, email: str) -> dict[str, Any] | None:
    """The GHL contact with this e-mail, if any."""
    found = runtime.call("ghl.contacts.find_duplicate", {"email": email}).get("contact")
    return found if isinstance(found, dict) else None


@pytest.fixture
def runtime(ghl: SandboxServer, sp: Any, lp: Any) -> Iterator[Runtime]:
    """A runtime calling all three sandboxes (the test's own hands, not the service's)."""
    settings = Settings(
        strict=True,
        location_id=ghl.location_id,
        base_urls={"ghl": ghl.base_url, "superphone": sp.base_url, "linkedphone": lp.base_url},
        retry=RetryPolicy(attempts=3, base=0.01, cap=0.05),
    )
    bearer = StaticBearer(ghl.private_token)
    keys = {"superphone": sp.api_key, "linkedphone": lp.api_key}
    with Runtime(CATALOG, settings, auth=api_key_provider(lambda a, b: bearer, keys=keys)) as rt:
        yield rt


def test_serve_sync_partner_contact_change_reaches_ghl(
    ghl: SandboxServer, sp: Any, runtime: Runtime, tmp_path: Path
) -> None:
    """A contact created, then renamed, in SuperPhone is created, then renamed, in GHL."""
    kit = PARTNERS["superphone"]
    boxes = {"superphone": sp}
    with serve_syncs(ghl, tmp_path, boxes) as proc:
        assert "  ghl-superphone: ghl <-> superphone (contacts, tasks, notes)" in "\n".join(
            proc.summary
        )
        wire(proc, ghl, boxes)
        email = f"ana-{uuid.uuid4().hex[:6]}@example.org"
        made = kit.create_contact(runtime, {"first": "Ana", "last": "Lee", "email": email})
        settle(proc, ghl, boxes)
        copy = find_ghl(runtime, email)
        assert copy is not None and copy["firstName"] == "Ana"
        kit.update_contact(runtime, str(made["id"]), {"first": "Anna"})
        settle(proc, ghl, boxes)
        ghl.set_webhook_urls([])
    assert (find_ghl(runtime, email) or {}).get("firstName") == "Anna"
    assert ghl.writes(CREATES) == 1
    actions = [r["action"] for r in audit(proc.db, "superphone:%")]
    assert actions == ["create", "update"]


def test_serve_sync_ghl_change_reaches_every_partner(
    ghl: SandboxServer, sp: Any, lp: Any, runtime: Runtime, tmp_path: Path
) -> None:
    """One GHL contact reaches SuperPhone and LinkedPhone: a GHL event feeds every sync."""
    boxes = {"superphone": sp, "linkedphone": lp}
    with serve_syncs(ghl, tmp_path, boxes) as proc:
        wire(proc, ghl, boxes)
        contact = runtime.call("ghl.contacts.create", {
            "firstName": "Ria", "lastName": "Kent",
            "email": f"ria-{uuid.uuid4().hex[:6]}@example.org"})["contact"]  # fmt: skip
        settle(proc, ghl, boxes)
        ghl.set_webhook_urls([])
    with Store(proc.db) as store:
        for app in boxes:
            link = IdMap(store, f"ghl-{app}").find("contacts", "ghl", contact["id"])
            assert link is not None, app
            kit = PARTNERS[app]
            copy = kit.get_contact(runtime, link.partner_id)
            assert copy is not None and copy[kit.first] == "Ria"
    assert sp.writes("createContact") == 1


def test_serve_sync_task_of_an_unseen_contact_pulls_the_contact_first(
    ghl: SandboxServer, sp: Any, runtime: Runtime, tmp_path: Path
) -> None:
    """A SuperPhone task whose contact the sync never heard of: the contact, then the task,
    reach GHL (the task is not skipped for a parent not linked yet)."""
    kit = PARTNERS["superphone"]
    boxes = {"superphone": sp}
    email = f"tia-{uuid.uuid4().hex[:6]}@example.org"
    made = kit.create_contact(runtime, {"first": "Tia", "email": email})  # no webhook sent yet
    with serve_syncs(ghl, tmp_path, boxes) as proc:
        wire(proc, ghl, boxes)
        task = kit.add_task(runtime, str(made["id"]), "Call Tia", "2030-01-01T10:00:00Z")
        settle(proc, ghl, boxes)
        ghl.set_webhook_urls([])
    contact = find_ghl(runtime, email)
    assert contact is not None and contact["firstName"] == "Tia"
    with Store(proc.db) as store:
        link = IdMap(store, "ghl-superphone").find("tasks", "partner", str(task["id"]))
    assert link is not None
    copy = runtime.call("ghl.tasks.get", {"contactId": contact["id"], "taskId": link.ghl_id})
    assert copy["task"]["title"] == "Call Tia"
    rows = audit(proc.db, "superphone:%")
    assert [(r["object"], r["action"]) for r in rows] == [
        ("contacts", "create"),
        ("tasks", "create"),
    ]
    assert rows[0]["event_id"] == rows[1]["event_id"] + "#parent"


def test_serve_sync_bad_signature_is_refused_and_not_stored(
    ghl: SandboxServer, sp: Any, tmp_path: Path
) -> None:
    """A wrong or missing HMAC gets 401 and stores nothing; an unknown app gets 404."""
    with serve_syncs(ghl, tmp_path, {"superphone": sp}) as proc:
        payload = {
            "eventId": "evt_forged",
            "type": "contact.created",
            "timestamp": "2030-01-01T00:00:00Z",
            "data": {"id": "c1"},
        }
        body, headers = signed("not-the-secret", "X-SuperPhone-Signature", payload)
        url = hook_url(proc, "superphone")
        assert httpx.post(url, content=body, headers=headers, timeout=10).status_code == 401
        bare = {"content-type": "application/json"}
        assert httpx.post(url, content=body, headers=bare, timeout=10).status_code == 401
        other = hook_url(proc, "linkedphone")
        assert httpx.post(other, content=body, headers=headers, timeout=10).status_code == 404
    assert inbox(proc.db) == {}


def test_serve_sync_duplicate_delivery_applies_once(
    ghl: SandboxServer, sp: Any, runtime: Runtime, tmp_path: Path
) -> None:
    """The same signed delivery twice: stored once, one GHL contact, one audit row."""
    made = PARTNERS["superphone"].create_contact(runtime, {
        "first": "Dup", "email": f"dup-{uuid.uuid4().hex[:6]}@example.org"})  # fmt: skip
    payload = {
        "eventId": "evt_dup",
        "type": "contact.created",
        "timestamp": made["updatedAt"],
        "data": made,
    }
    with serve_syncs(ghl, tmp_path, {"superphone": sp}) as proc:
        body, headers = signed(sp.webhook_secret, "X-SuperPhone-Signature", payload)
        url = hook_url(proc, "superphone")
        answers = [httpx.post(url, content=body, headers=headers, timeout=10) for _ in range(2)]
        assert [a.json()["stored"] for a in answers] == [True, False]
        assert wait_for(lambda: inbox(proc.db) == {"done": 1})
    assert ghl.writes(CREATES) == 1
    rows = audit(proc.db, "superphone:evt_dup")
    assert [(r["action"], r["partner_id"]) for r in rows] == [("create", made["id"])]


@pytest.mark.slow  # kill -9 of a real process: out of the quick loop
def test_serve_sync_kill9_mid_stream_then_restart_applies_each_change_once(
    ghl: SandboxServer, sp: Any, runtime: Runtime, tmp_path: Path
) -> None:
    """kill -9 while changes are being applied; after a restart each is applied exactly once."""
    kit = PARTNERS["superphone"]
    boxes = {"superphone": sp}
    ghl.set_faults({"route": CREATES, "latency_ms": 250})
    tag = uuid.uuid4().hex[:6]
    emails = [f"k{n}-{tag}@example.org" for n in range(8)]
    proc = serve_syncs(ghl, tmp_path, boxes)
    with proc:
        wire(proc, ghl, boxes)
        for n, email in enumerate(emails):
            kit.create_contact(runtime, {"first": f"K{n}", "email": email})
        assert wait_for(lambda: sum(inbox(proc.db).values()) >= len(emails))
        proc.kill9()
    left = inbox(proc.db)
    assert left.get("done", 0) < len(emails), left  # killed mid-stream
    ghl.clear_faults()
    with proc:
        wire(proc, ghl, boxes)
        settle(proc, ghl, boxes)
        ghl.set_webhook_urls([])
    assert ghl.writes(CREATES) == len(emails)
    assert all(find_ghl(runtime, email) for email in emails)
    rows = audit(proc.db, "superphone:%")
    assert len({r["event_id"] for r in rows}) == len(rows) == len(emails)
    assert {r["action"] for r in rows} <= {"create", "link"}


def test_serve_sync_missing_secret_is_a_one_line_start_error(tmp_path: Path) -> None:
    """A sync whose partner secret is not set stops the start with one line, no traceback."""
    folder = sync_folder(tmp_path, "superphone")
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "HOME": str(tmp_path),
        "CONNECTOR_HOME": str(tmp_path / "home"),
        "CONNECTOR_SUPERPHONE_API_KEY": "sp_x",
    }
    done = subprocess.run(
        [sys.executable, "-m", "connector", "serve", "--recipes", str(folder), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
    )
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if not line.startswith("{")]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: serve: sync 'ghl-superphone'")
    assert "$CONNECTOR_SUPERPHONE_WEBHOOK_SECRET" in lines[0]
    assert "Traceback" not in done.stderr and "ready" not in done.stdout


def test_serve_sync_invalid_document_is_reported_at_its_line(tmp_path: Path) -> None:
    """A sync document that fails its schema stops the start, at its file:line and field."""
    folder = sync_folder(tmp_path, "superphone")
    path = folder / DOCS["superphone"].name
    path.write_text(path.read_text().replace("direction: two_way", "direction: sideways", 1))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "connector",
            "serve",
            "--recipes",
            str(folder),
            "--port",
            "0",
            "--db",
            str(tmp_path / "state.db"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)},
    )
    assert done.returncode == 1
    line = next(n for n, t in enumerate(path.read_text().splitlines(), 1) if "sideways" in t)
    assert f"sync_superphone.yaml:{line}" in done.stderr and "sideways" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_sync_sandbox_mode_starts_the_partner_sandboxes(tmp_path: Path) -> None:
    """`serve --sandbox` starts the SuperPhone sandbox a sync names, prints its URL and key,
    and a contact made there reaches the GHL sandbox (audited as a create)."""
    folder = sync_folder(tmp_path, "superphone")
    proc = ServeProcess(
        folder,
        tmp_path / "home",
        base_url="http://127.0.0.1:9",
        token="unused",
        location_id="unused",
        public_keys={},
        extra=("--sandbox",),
    )
    with proc:
        line = next(x for x in proc.summary if x.startswith("superphone sandbox: "))
        url, _, rest = line.removeprefix("superphone sandbox: ").partition(" (api key ")
        key = rest.partition(",")[0]
        settings = Settings(strict=True, base_urls={"superphone": url})
        auth = api_key_provider(keys={"superphone": key})
        with Runtime(CATALOG, settings, auth=auth) as rt:
            PARTNERS["superphone"].create_contact(rt, {
                "first": "Sam", "email": f"sam-{uuid.uuid4().hex[:6]}@example.org"})  # fmt: skip
        assert wait_for(lambda: [r["action"] for r in audit(proc.db, "superphone:%")] == ["create"])
    assert "partner webhook URL (superphone): " in "\n".join(proc.summary)


def test_serve_missing_recipes_folder_is_the_only_message(tmp_path: Path) -> None:
    """`serve --recipes` naming no folder: one error line, exit 1, no warning before it."""
    from conftest import run_cli

    result = run_cli("serve", "--recipes", str(tmp_path / "nowhere"), "--port", "0")
    assert result.status == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'nowhere'}: not a folder of recipes"
    ]


def test_serve_sync_superphone_task_without_due_date_reaches_ghl(
    ghl: SandboxServer, sp: Any, runtime: Runtime, tmp_path: Path
) -> None:
    """The user trial: the shipped SuperPhone sync, a task created in SuperPhone with no
    `dueAt`. It reaches GHL, due when it was created (GHL requires a due date), and nothing
    fails or is dead-lettered."""
    boxes = {"superphone": sp}
    email = f"noa-{uuid.uuid4().hex[:6]}@example.org"
    with serve_syncs(ghl, tmp_path, boxes) as proc:
        wire(proc, ghl, boxes)
        made = PARTNERS["superphone"].create_contact(runtime, {"first": "Noa", "email": email})
        settle(proc, ghl, boxes)
        task = runtime.call(
            "superphone.tasks.create", {"contactId": made["id"], "title": "No due date"}
        )
        settle(proc, ghl, boxes)
        ghl.set_webhook_urls([])
    assert task["dueAt"] is None
    contact = find_ghl(runtime, email)
    assert contact is not None
    with Store(proc.db) as store:
        link = IdMap(store, "ghl-superphone").find("tasks", "partner", str(task["id"]))
    assert link is not None
    copy = runtime.call("ghl.tasks.get", {"contactId": contact["id"], "taskId": link.ghl_id})
    assert copy["task"]["title"] == "No due date"
    assert record_time(copy["task"]["dueDate"]) == record_time(task["createdAt"])
    assert [r["action"] for r in audit(proc.db, "superphone:%")] == ["create", "create"]
    assert inbox(proc.db) == {"done": inbox(proc.db)["done"]}


def test_serve_sync_write_the_target_refuses_is_logged_and_dead_lettered(
    ghl: SandboxServer, sp: Any, runtime: Runtime, tmp_path: Path
) -> None:
    """A sync document that gives GHL no due date for a SuperPhone task that has none: the
    write cannot be made. It is not silent: a WARNING naming the sync, the task and the
    reason, an audit row `failed`, and the event is a dead letter at once (no retries: the
    same input would be refused again); /healthz stays up. Replaying it, once the document is
    fixed, creates the task."""
    boxes = {"superphone": sp}
    proc = serve_syncs(ghl, tmp_path, boxes)
    doc = proc.recipes / "sync_superphone.yaml"
    shipped = doc.read_text(encoding="utf-8")
    fixed = '        dueDate: {partner: dueAt, default: "{{ item.createdAt | iso }}"}\n'
    assert fixed in shipped
    doc.write_text(shipped.replace(fixed, "        dueDate: dueAt\n"), encoding="utf-8")
    email = f"pia-{uuid.uuid4().hex[:6]}@example.org"
    with proc:
        wire(proc, ghl, boxes)
        made = PARTNERS["superphone"].create_contact(runtime, {"first": "Pia", "email": email})
        settle(proc, ghl, boxes)
        task = runtime.call("superphone.tasks.create", {"contactId": made["id"], "title": "Call"})
        sp.drain_webhooks()
        assert wait_for(lambda: inbox(proc.db).get("dead") == 1), inbox(proc.db)
        assert proc.health().status_code == 200
        warned = [
            r for r in proc.log_records()
            if r.get("level") == "WARNING" and "ghl-superphone" in r["message"]
            and str(task["id"]) in r["message"]
        ]  # fmt: skip
        assert warned, proc.logs[-20:]
        assert "missing required input 'dueDate'" in warned[0]["message"]
        assert not any("retry" in r["message"] for r in proc.log_records()), proc.logs[-20:]
        ghl.set_webhook_urls([])
    [row] = [r for r in audit(proc.db, "superphone:%") if r["object"] == "tasks"]
    assert (row["action"], row["partner_id"]) == ("failed", task["id"])
    assert row["reason"].startswith("cannot create on ghl: invalid input for ghl.tasks.create")
    with Store(proc.db) as store:
        [dead] = store.query("SELECT last_error FROM inbox WHERE status = 'dead'")
    assert "ghl-superphone" in str(dead["last_error"]) and "dueDate" in str(dead["last_error"])
    assert ghl.writes("POST /contacts/{contactId}/tasks") == 0
    # Fixed document, then `replay`: the failed row does not count as applied.
    doc.write_text(shipped, encoding="utf-8")
    with Store(proc.db) as store:
        letters = DeadLetters(store)
        letters.requeue(letters.dead())
    with proc:
        assert wait_for(lambda: set(inbox(proc.db)) == {"done"}), inbox(proc.db)
    assert [r["action"] for r in audit(proc.db, "superphone:%") if r["object"] == "tasks"] == [
        "failed", "create",
    ]  # fmt: skip
    assert ghl.writes("POST /contacts/{contactId}/tasks") == 1
