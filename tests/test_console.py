"""The web console and /metrics of a real ``serve`` process, over HTTP (the browser tests are in
test_console_browser.py): pages, the live event stream, metrics, login beyond loopback, CSRF,
escaping, the canary secret, replay and discard."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from connector.activity import Bus, contact_fields
from connector.auth.connection import Connection, ConnectionStore
from connector.console.access import is_loopback
from connector.console.stream import Filters
from connector.sandbox.server import SandboxServer
from connector.store import Store
from tests.serveproc import ROOT, ServeProcess, wait_for
from tests.test_replay_cli import FRAGILE
from tests.test_service import TASKS, create_contact, inbox_counts, post_signed, runs, serve_for

CANARY = "canary-" + "9f3b7c1e5d2a4f60" * 2


def base_of(proc: ServeProcess) -> str:
    return proc.url.removesuffix("/webhooks/ghl")


def metrics_of(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics answer, parsed by prometheus_client's own parser."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def read_stream(url: str, found: list[dict[str, Any]], stop: threading.Event,
                raw: list[str]) -> None:
    """Collect the events of an SSE stream until ``stop``."""
    with httpx.stream("GET", url, timeout=httpx.Timeout(10, read=30)) as answer:
        for line in answer.iter_lines():
            raw.append(line)
            if line.startswith("data: "):
                found.extend(json.loads(line[6:])["events"])
            if stop.is_set():
                return


def store_canary(home: Path) -> None:
    """A stored connection whose tokens and secret are the canary."""
    home.mkdir(parents=True, exist_ok=True)
    with Store(home / "state.db") as store:
        ConnectionStore(store).save(Connection(
            name="canary-conn", kind="oauth", user_type="Location", base_url="http://127.0.0.1:9",
            access_token=CANARY, refresh_token=CANARY + "-r", client_secret=CANARY + "-s",
            client_id="client-1", location_id="LocCanary", scopes=frozenset({"contacts.readonly"}),
            expires_at=time.time() + 3600,
        ))


def test_console_shows_webhooks_runs_and_metrics_and_never_the_canary(
        ghl: SandboxServer, tmp_path: Path) -> None:
    """Loopback serve: the stream shows accepted and refused webhooks and the run they cause,
    pages show the run step by step with HTML as text under a CSP, /metrics parses, a POST
    without the CSRF token is refused, and the canary stored in a connection is nowhere."""
    proc = serve_for(ghl, tmp_path)
    store_canary(proc.home)
    with proc:
        base = base_of(proc)
        assert f"console: {base}/console/" in proc.summary
        contact = create_contact(ghl, "Ada")
        found: list[dict[str, Any]] = []
        raw: list[str] = []
        stop = threading.Event()
        reader = threading.Thread(target=read_stream, daemon=True,
                                  args=(f"{base}/console/events", found, stop, raw))
        reader.start()
        assert wait_for(lambda: any("connected" in line for line in raw), timeout=10)
        evil = "<img src=x onerror=alert(1)>"
        webhook_id = f"wh-{uuid.uuid4()}"
        reply = post_signed(ghl, proc.url, {
            "type": "ContactCreate", "locationId": ghl.location_id, "id": contact,
            "firstName": evil, "email": "ada@example.com", "webhookId": webhook_id})
        assert reply.status_code == 200
        bad = httpx.post(proc.url, content=b'{"type": "ContactCreate"}',
                         headers={"content-type": "application/json"}, timeout=5)
        assert bad.status_code == 401
        run_id = f"{webhook_id}:call_new"
        assert wait_for(lambda: any(e.get("run_id") == run_id and e["status"] == "succeeded"
                                    and e["kind"] == "run" for e in found))
        stop.set()
        accepted = [e for e in found if e["kind"] == "webhook" and e["status"] == "accepted"
                    and e.get("webhook_id", "").endswith(webhook_id)]
        assert accepted and accepted[0]["email"] == "ada@example.com"
        assert any(e["kind"] == "webhook" and e.get("code") == "signature" for e in found)
        assert any(e["kind"] == "step" and e["action"] == "ghl.tasks.create" for e in found)

        page = httpx.get(f"{base}/console/runs/{run_id}", timeout=10)
        assert page.status_code == 200
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "ghl.tasks.create" in page.text and "Request sent" in page.text
        # Each step's HTTP requests: method, redacted URL (host, path) and the status answered.
        sent = re.search(r'<tr class="http"><td>1</td><td>POST</td><td class="url">'
                         + re.escape(f"{ghl.base_url.rstrip('/')}/contacts/{contact}/tasks")
                         + r'</td><td class="status succeeded">(\d{3})</td>', page.text)
        assert sent is not None and sent.group(1) in ("200", "201"), page.text[-3000:]
        assert "HTTP requests (1)" in page.text and "Status answered" in page.text
        assert evil not in page.text and "&lt;img src=x onerror=alert(1)&gt;" in page.text
        listing = httpx.get(f"{base}/console/runs", timeout=10)
        assert run_id in listing.text

        scraped = httpx.get(f"{base}/metrics", timeout=10)
        assert scraped.status_code == 200
        samples = metrics_of(scraped.text)
        assert samples[("ghl_connector_webhooks_received_total", (("app", "ghl"),))] >= 1
        assert samples[("ghl_connector_webhooks_refused_total", (("reason", "signature"),))] == 1
        assert samples[("ghl_connector_runs_total",
                        (("recipe", "Call new contacts"), ("status", "succeeded")))] >= 1
        assert samples[("ghl_connector_action_latency_seconds_count",
                        (("action", "ghl.tasks.create"),))] >= 1
        assert ("ghl_connector_inbox_oldest_pending_age_seconds", ()) in samples
        assert ("ghl_connector_dead_letters", ()) in samples

        forged = httpx.post(f"{base}/console/deadletters", data={"action": "discard", "id": "1"},
                            timeout=5)
        assert forged.status_code == 403
        csrf = re.search(r'data-csrf="([^"]+)"',
                         httpx.get(f"{base}/console/deadletters", timeout=5).text)
        assert csrf is not None
        cross = httpx.post(f"{base}/console/deadletters", timeout=5,
                           data={"action": "discard", "csrf": csrf.group(1)},
                           headers={"origin": "http://evil.example"})
        assert cross.status_code == 403

        seen = [page.text, listing.text, scraped.text, "\n".join(raw)]
        for path in ("/", "/runs", "/syncs?q=ada@example.com",
                     "/deadletters", "/connections", "/static/console.js"):
            answer = httpx.get(f"{base}/console{path}", timeout=10)
            assert answer.status_code == 200, (path, answer.text[:300])
            seen.append(answer.text)
        connections = seen[-2]
        assert "canary-conn" in connections and "LocCanary" in connections
        assert "<td>env</td>" in connections  # the $CONNECTOR_TOKEN connection, facts only
        for text in seen:
            assert CANARY not in text and ghl.private_token not in text


def test_console_beyond_loopback_needs_a_token_login(ghl: SandboxServer, tmp_path: Path) -> None:
    """Bound to 0.0.0.0, every page, the stream and /metrics refuse a request without login
    (even from 127.0.0.1); a console token logs in (cookie) or authorizes (bearer)."""
    proc = serve_for(ghl, tmp_path, "--host", "0.0.0.0")
    with proc:
        base = f"http://127.0.0.1:{proc.port}"
        assert httpx.get(f"{base}/console/runs", timeout=5).status_code == 303
        assert httpx.get(f"{base}/console/events", timeout=5).status_code == 401
        assert httpx.get(f"{base}/metrics", timeout=5).status_code == 401
        made = subprocess.run(
            [sys.executable, "-m", "connector", "console", "token", "--db", str(proc.db)],
            capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert made.returncode == 0, made.stderr
        token = made.stdout.split()[0]
        with Store(proc.db) as store:
            stored = [str(r["digest"]) for r in store.query("SELECT digest FROM console_tokens")]
        assert stored and token not in stored[0]
        bearer = {"authorization": f"Bearer {token}"}
        assert httpx.get(f"{base}/metrics", headers=bearer, timeout=5).status_code == 200
        for wrong in ({}, {"authorization": "Bearer gct_wrong"}, {"authorization": token}):
            bare = httpx.get(f"{base}/healthz", headers=wrong, timeout=5)
            assert (bare.status_code, bare.json()) == (200, {"status": "ok"})
        detailed = httpx.get(f"{base}/healthz", headers=bearer, timeout=5).json()
        assert detailed["status"] == "ok" and "inbox" in detailed
        assert httpx.get(f"{base}/metrics", headers={"authorization": "Bearer gct_wrong"},
                         timeout=5).status_code == 401
        with httpx.Client(base_url=base, timeout=10) as browser:
            form = browser.get("/console/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert csrf is not None
            wrong = browser.post("/console/login", data={"csrf": csrf.group(1), "token": "nope"})
            assert wrong.status_code == 401
            done = browser.post("/console/login", data={"csrf": csrf.group(1), "token": token})
            assert done.status_code == 303
            cookie = done.headers["set-cookie"].lower()
            assert "httponly" in cookie and "samesite=strict" in cookie
            assert browser.get("/console/runs").status_code == 200
            assert browser.get("/console/connections").status_code == 200


def test_console_replays_and_discards_dead_letters(ghl: SandboxServer, tmp_path: Path) -> None:
    """Replay from the console re-queues a dead event and it succeeds; discard gives one up."""
    ghl.set_faults({"route": TASKS, "error_rate": 1.0})
    with serve_for(ghl, tmp_path, call_new=FRAGILE) as proc:
        base = base_of(proc)
        ghl.set_webhook_urls([proc.url])
        create_contact(ghl, "Ida")
        create_contact(ghl, "Jo")
        assert wait_for(lambda: inbox_counts(proc.db) == {"dead": 2})
        ghl.clear_faults()
        with httpx.Client(base_url=base, timeout=10) as browser:
            page = browser.get("/console/deadletters")
            ids = re.findall(r'name="id" value="([^"]+)"', page.text)
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert len(ids) == 2 and csrf is not None
            done = browser.post("/console/deadletters",
                                data={"csrf": csrf.group(1), "action": "replay", "id": ids[0]})
            assert done.status_code == 303 and "replayed=1" in done.headers["location"]
            assert wait_for(lambda: inbox_counts(proc.db) == {"dead": 1, "done": 1})
            gone = browser.post("/console/deadletters",
                                data={"csrf": csrf.group(1), "action": "discard", "id": ids[1]})
            assert "discarded=1" in gone.headers["location"]
            assert "No dead letters." in browser.get("/console/deadletters").text
        ghl.set_webhook_urls([])
    statuses = sorted(r["status"] for r in runs(proc.db))
    assert statuses == ["failed", "succeeded"]
    assert ghl.writes(TASKS) == 1


def test_bus_batches_filters_and_redacts() -> None:
    """The bus keeps order, says how many a reader missed, redacts free text; filters match
    location, contact (e-mail, phone or id, any case), recipe, status and kind."""
    bus = Bus(size=5)
    for n in range(8):
        bus.publish("webhook", status="accepted", n=n, reason="Authorization: Bearer abc123xyz")
    events, last, skipped = bus.since(0, limit=3)
    assert [e["n"] for e in events] == [5, 6, 7] and last == 8 and skipped == 5
    assert "abc123xyz" not in events[0]["reason"]
    assert bus.since(8) == ([], 8, 0)
    about = contact_fields({"type": "ContactCreate", "id": "c1", "email": "A@x.io"})
    assert about == {"contact": "c1", "email": "A@x.io"}
    event = {"kind": "run", "status": "failed", "recipe": "r", "location": "L", **about}
    assert Filters.of({"contact": "a@X.IO", "status": "failed", "location": "L"}).match(event)
    assert not Filters.of({"recipe": "other"}).match(event)
    assert not Filters.of({"kind": "webhook"}).match(event)
    assert not Filters()


def test_loopback_rule_and_console_cli(tmp_path: Path) -> None:
    """Which bind addresses need no login; `console` prints the URL and opens nothing."""
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1")
    done = subprocess.run([sys.executable, "-m", "connector", "console", "--port", "9"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("http://127.0.0.1:9/console/\n")
    assert "nothing answers there yet" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "connector", "console", "--port", "x"],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=80))
def test_pages_show_any_text_as_text(text: str) -> None:
    """Whatever a recipe name, step input or error holds, it reaches the page escaped: no tag,
    attribute or entity of its own survives."""
    from connector.console import pages
    from connector.recipes.history import RunRecord, StepRecord

    hostile = f"<script>{text}</script>\"'&"
    sent = {"total": 9, "requests": [{"method": hostile, "url": f"https://h/{hostile}",
                                      "status": 429, "outcome": hostile, "attempt": 1}]}
    step = StepRecord(hostile, 0, 0, "ghl.tasks.create", "failed", 1, json.dumps({"t": hostile}),
                      hostile, False, hostile, 0.0, 1.0, json.dumps(sent))
    run = RunRecord("r1", hostile, None, "t", json.dumps({"n": hostile}), "failed", hostile, 1,
                    0.0, 1.0, (step,))
    page = pages.run_detail(run) + pages.runs("/console", [run], hostile, hostile)
    assert "<script>" not in page and "\"'&\"" not in page
    assert "&lt;script&gt;" in page
    assert "HTTP requests (9)" in page and "8 more requests not kept" in page
    assert all(c not in pages.e(text) for c in "<>\"'")


@pytest.fixture(scope="module")
def lone_console(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The console alone (as the demo runs it) over a fresh state file."""
    from connector.console.server import ConsoleServer

    with Store(tmp_path_factory.mktemp("lone") / "state.db") as store, \
            ConsoleServer(store) as server:
        yield server


@settings(max_examples=25, deadline=None)
@given(text=st.text(max_size=300))
@example(text="\u00b2")  # a digit to str.isdigit, not to int(): a 500 once
def test_console_answers_any_query_without_a_server_error(lone_console: Any, text: str) -> None:
    """Whatever a page is asked for (look-ups, filters, run ids, form fields), the answer is a
    page or a refusal, never a 500, and the text comes back escaped."""
    base = lone_console.url.rstrip("/")
    with httpx.Client(timeout=10) as client:
        for path, params in (("/syncs", {"q": text}), ("/runs", {"recipe": text, "status": text}),
                             ("/", {"contact": text, "location": text}),
                             ("/deadletters", {"replayed": text, "kept": text}),
                             ("/deadletters", {"discarded": text}),
                             ("/deadletters", {"missing": text})):
            answer = client.get(base + path, params=params)
            assert answer.status_code == 200, (path, answer.text[:200])
            if "<" in text:
                assert f"value=\"{text}\"" not in answer.text
        run = client.get(base + "/runs/" + quote(text, safe=""))
        assert run.status_code in (200, 404)
        resume = bytes(b for b in text.encode("latin-1", "replace") if b > 0x20 and b != 0x7F)
        with client.stream("GET", base + "/events", headers={"Last-Event-ID": resume}) as events:
            assert events.status_code == 200
        posted = client.post(base + "/deadletters", data={"csrf": text, "id": text})
        assert posted.status_code == 403


def test_loopback_console_refuses_a_foreign_host_header(lone_console: Any) -> None:
    """DNS rebinding: a page of evil.example whose name now resolves to 127.0.0.1 reaches the
    loopback console as a same-origin site, Host ``evil.example``. Without a login, only
    requests naming this machine (127.0.0.1, ``localhost``, ``[::1]``) are answered: pages,
    stream, /metrics and POSTs for a foreign Host are refused, so no contact data is read and no
    CSRF token is handed to that page."""
    base = lone_console.url.rstrip("/")
    port = base.split(":")[2].split("/")[0]
    with httpx.Client(timeout=10) as client:
        for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}",
                     f"localhost.evil.example:{port}"):
            for path in ("/", "/syncs?q=a", "/deadletters", "/events", "/login"):
                answer = client.get(base + path, headers={"host": host})
                assert answer.status_code == 403, (host, path, answer.status_code)
                assert 'name="csrf"' not in answer.text
            metrics = client.get(base.removesuffix("/console") + "/metrics",
                                 headers={"host": host})
            assert metrics.status_code == 403
            posted = client.post(base + "/deadletters", headers={"host": host},
                                 data={"csrf": "x", "action": "discard"})
            assert posted.status_code == 403
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST", f"[::1]:{port}"):
            assert client.get(base + "/runs", headers={"host": host}).status_code == 200, host


@pytest.mark.slow
def test_demo_keep_console_shows_the_demos_rate_limits() -> None:
    """`demo --keep`: the console's "Connections and limits" shows the headroom of the calls
    the demo made (GHL's location and the partner's), not "No call made yet"."""
    import os

    with subprocess.Popen(
        [sys.executable, "-m", "connector", "demo", "--partner", "superphone",
         "--seed-contacts", "6", "--keep"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ) as demo:
        try:
            assert demo.stdout is not None
            url = ""
            for line in iter(demo.stdout.readline, ""):
                found = re.search(r"console +(http://\S+)", line)
                url = found.group(1) if found else url
                if line.startswith("still serving"):
                    break
            assert url, "the demo printed no console URL"
            page = httpx.get(url + "connections", timeout=10).text
        finally:
            demo.terminate()
            demo.wait(20)
    assert "No call made yet" not in page
    assert re.search(r"<tr><td>ghl</td><td>[A-Za-z0-9]+</td><td>\d+ of \d+</td>", page), page
    assert "<tr><td>superphone</td>" in page


def _login(base: str, token: str, source: str, forwarded: str | None = None) -> int:
    """The status of one login attempt with ``token`` from the address ``source`` (claiming
    to forward for ``forwarded``)."""
    transport = httpx.HTTPTransport(local_address=source)
    claim = {"X-Forwarded-For": forwarded} if forwarded else {}
    with httpx.Client(base_url=base, timeout=10, transport=transport, headers=claim) as browser:
        form = browser.get("login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None
        return browser.post("login", data={"csrf": csrf.group(1), "token": token}).status_code


def test_failed_logins_from_one_address_do_not_lock_out_another(tmp_path: Path) -> None:
    """Beyond loopback, a client guessing tokens is refused after 20 failures a minute, but the
    admin logging in from another address still gets in."""
    from connector.console.access import create_token
    from connector.console.server import ConsoleServer

    with Store(tmp_path / "state.db") as store, ConsoleServer(store, host="0.0.0.0") as server:
        token = create_token(store, "admin")
        port = server.url.split(":")[2].split("/")[0]
        base = f"http://127.0.0.1:{port}/console/"
        statuses = [_login(base, "gct_guess", "127.0.0.2") for _ in range(21)]
        assert statuses[:20] == [401] * 20 and statuses[20] == 429
        assert _login(base, token, "127.0.0.2") == 429
        # X-Forwarded-For is not believed: a guesser cannot rotate its way past the hold.
        assert _login(base, token, "127.0.0.2", forwarded="198.51.100.1") == 429
        assert _login(base, token, "127.0.0.1") == 303


def test_scopes_needed_are_the_ones_validate_reports(catalog: Any) -> None:
    """Connections and limits lists, per shipped recipe, the scopes `validate` reports: its
    trigger's as well as its steps' (the triggers' were left out)."""
    from connector.console.mount import needed_scopes
    from connector.recipes.checker import validate_file
    from connector.service.dispatcher import load_routes

    routes = load_routes(ROOT / "recipes", catalog, catalog.filters)
    needed = needed_scopes(routes, catalog)
    assert needed["appointment_activity"] == ["calendars/events.readonly", "contacts.write"]
    for route in routes:
        report = validate_file(ROOT / "recipes" / f"{route.key}.yaml", catalog,
                               filters=catalog.filters)
        assert needed[route.key] == sorted(report.scopes), route.key
