"""The web console in a real browser: Debian's headless Chromium driven by Playwright, against a
real ``serve`` process and the GHL sandbox.

Skipped (with the reason) where /usr/bin/chromium or Playwright is missing; `.ci/run` installs
both. Screenshots go to the test's folder, and also to ``$CONSOLE_SCREENSHOTS`` when it names a
folder (``docs/console/`` is made that way, see docs/console.md).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.sandbox.server import SandboxServer
from tests.serveproc import ROOT, ServeProcess, wait_for
from tests.test_replay_cli import FRAGILE
from tests.test_service import TASKS, create_contact, inbox_counts, post_signed, serve_for

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"{CHROMIUM} is not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module (Playwright, never a downloaded browser)."""
    playwright = pytest.importorskip("playwright.sync_api",
                                     reason="playwright is not installed (pip install playwright)")
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    opened = context.new_page()
    opened.set_default_timeout(20_000)
    yield opened
    context.close()


def shoot(page: Any, tmp_path: Path, name: str) -> Path:
    """A full-page screenshot in the test folder (and in $CONSOLE_SCREENSHOTS if set)."""
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    folder = os.environ.get("CONSOLE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(folder) / path.name)
    assert path.stat().st_size > 5000
    return path


def console_of(proc: ServeProcess) -> str:
    return proc.url.removesuffix("/webhooks/ghl") + "/console"


def test_activity_shows_a_signed_webhook_live_and_its_run_step_by_step(
        ghl: SandboxServer, tmp_path: Path, page: Any) -> None:
    """The webhook appears in Activity without a reload; its run opens with each step."""
    with serve_for(ghl, tmp_path) as proc:
        console = console_of(proc)
        contact = create_contact(ghl, "Ada")
        page.goto(console + "/")
        page.wait_for_selector("#live.on")
        webhook_id = f"wh-{uuid.uuid4().hex[:12]}"
        reply = post_signed(ghl, proc.url, {
            "type": "ContactCreate", "locationId": ghl.location_id, "id": contact,
            "firstName": "<b>Ada</b>", "email": "ada@example.com", "webhookId": webhook_id})
        assert reply.status_code == 200
        row = page.wait_for_selector(f'#feed tr.ev.webhook.accepted:has-text("{webhook_id}")')
        assert "ContactCreate" in row.inner_text()
        run_id = f"{webhook_id}:call_new"
        link = page.wait_for_selector(f'#feed tr.ev.run.succeeded a.run-link:text-is("{run_id}")')
        page.wait_for_selector('#feed tr.ev.step:has-text("ghl.tasks.create")')
        page.reload()  # the feed opens with the recent events; the charts count them
        page.wait_for_selector(f'#feed tr.ev.webhook.accepted:has-text("{webhook_id}")')
        shoot(page, tmp_path, "activity")
        link = page.wait_for_selector(f'#feed tr.ev.run.succeeded a.run-link:text-is("{run_id}")')
        link.click()
        page.wait_for_selector("section.step h3")
        steps = page.locator("section.step h3").all_inner_texts()
        assert steps and steps[0].startswith("task") and "ghl.tasks.create" in steps[0]
        sent = page.locator("section.step pre").first.inner_text()
        assert "Call <b>Ada</b>" in sent  # shown as text, not markup
        assert page.locator("section.step b").count() == 0
        wire = page.locator("section.step table.http tr.http").first.inner_text()
        assert f"POST\t{ghl.base_url.rstrip('/')}/contacts/{contact}/tasks\t20" in wire, wire
        shoot(page, tmp_path, "run")
        page.goto(console + "/runs")
        assert run_id in page.inner_text("table")
        shoot(page, tmp_path, "runs")
        page.goto(console + "/connections")
        page.wait_for_selector("h2:text('Rate-limit headroom')")
        shoot(page, tmp_path, "connections")


@pytest.mark.slow
def test_dead_letter_replayed_with_the_button_succeeds(
        ghl: SandboxServer, tmp_path: Path, page: Any) -> None:
    """A dead letter selected and replayed from the page runs again and succeeds."""
    ghl.set_faults({"route": TASKS, "error_rate": 1.0})
    with serve_for(ghl, tmp_path, call_new=FRAGILE) as proc:
        ghl.set_webhook_urls([proc.url])
        create_contact(ghl, "Ida")
        assert wait_for(lambda: inbox_counts(proc.db) == {"dead": 1})
        ghl.clear_faults()
        page.goto(console_of(proc) + "/deadletters")
        page.wait_for_selector('input[name="id"]')
        shoot(page, tmp_path, "deadletters")
        page.check('input[name="id"]')
        page.click('button[value="replay"]')
        page.wait_for_selector("p.note:text('1 re-queued for the service')")
        assert wait_for(lambda: inbox_counts(proc.db) == {"done": 1})
        page.reload()
        page.wait_for_selector("p.note:text('No dead letters.')")
        ghl.set_webhook_urls([])
    page.goto("about:blank")
    assert ghl.writes(TASKS) == 1


def test_beyond_loopback_the_browser_must_log_in(
        ghl: SandboxServer, tmp_path: Path, page: Any) -> None:
    """Bound to 0.0.0.0, the console shows the login form and no data until a token is given."""
    with serve_for(ghl, tmp_path, "--host", "0.0.0.0") as proc:
        console = f"http://127.0.0.1:{proc.port}/console"
        page.goto(console + "/runs")
        assert page.url.endswith("/console/login")
        assert page.locator("table").count() == 0
        page.fill('input[name="token"]', "gct_not-a-token")
        page.click("button[type=submit]")
        page.wait_for_selector("p.error")
        shoot(page, tmp_path, "login")
        made = subprocess.run(
            [sys.executable, "-m", "connector", "console", "token", "--db", str(proc.db)],
            capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert made.returncode == 0, made.stderr
        page.fill('input[name="token"]', made.stdout.split()[0])
        page.click("button[type=submit]")
        page.wait_for_selector("#live.on")
        page.goto(console + "/runs")
        assert page.locator("table").count() == 1
        page.click("button:text('Log out')")
        assert page.url.endswith("/console/login")


@pytest.mark.slow
def test_demo_keep_serves_the_console_with_the_syncs(tmp_path: Path, page: Any) -> None:
    """`demo --keep` prints the console URL and keeps serving it: the sync look-up shows a
    contact's id map and audit trail."""
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
            page.goto(url + "syncs?q=nia")
            page.wait_for_selector("h2:text('Audit trail')")
            trail = page.inner_text("main")
            assert "ghl-superphone" in trail and "create" in trail
            shoot(page, tmp_path, "syncs")
        finally:
            demo.terminate()
            demo.wait(20)
