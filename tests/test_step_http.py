"""The HTTP requests of each recipe step, kept in the run history: method, redacted URL and the
status answered per attempt (issue 16, the Runs page's "request sent and status answered"),
against the GHL sandbox; bounded; secrets never stored, printed or shown."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from fixtures_store import stored_values

from connector.auth.bearer import StaticBearer
from connector.catalog import Catalog
from connector.client.retry import RetryPolicy
from connector.client.transcript import KEPT_FIRST, KEPT_LAST, URL_CAP, note_request, transcribing
from connector.client.urlguard import allowing
from connector.console import pages
from connector.recipes.engine import Engine
from connector.recipes.history import History, StepRecord
from connector.recipes.recipe import parse_recipe
from connector.runtime import Runtime, Settings
from connector.sandbox.server import SandboxServer
from connector.store import Store

TAGS = "POST /contacts/{contactId}/tags"
CANARY = "canary-" + "4d1e8b7a2c9f6035" * 2


@contextmanager
def make_engine(catalog: Catalog, ghl: SandboxServer, store: Store,
                retry: RetryPolicy | None = None) -> Iterator[Engine]:
    bearer = StaticBearer(ghl.private_token)
    settings = Settings(base_urls={"ghl": ghl.base_url}, location_id=ghl.location_id,
                        retry=retry or RetryPolicy(attempts=1))
    with Runtime(catalog, settings, auth=lambda app, action: bearer) as runtime:
        yield Engine(catalog, runtime, store,
                     environ={"RECIPE_TOKEN": ghl.private_token, "RECIPE_BASE": ghl.base_url})


@pytest.fixture
def engine(catalog: Catalog, ghl: SandboxServer, store: Store) -> Iterator[Engine]:
    """The engine on a runtime without HTTP retries (a step's own retries are on_error's)."""
    with make_engine(catalog, ghl, store) as made:
        yield made


def recipe(steps: str, on_error: str = "{retry: 0, backoff: 0}", head: str = "") -> Any:
    return parse_recipe(f"name: wire\ntrigger:\n  use: ghl.contacts.created\n{head}"
                        f"on_error: {on_error}\nsteps:\n{steps}", file="wire.yaml")


def event(ghl: SandboxServer) -> dict[str, Any]:
    contact = ghl.call(lambda: list(ghl.app.store.contacts))[0]
    return {"type": "ContactCreate", "locationId": ghl.location_id, "id": contact}


def http_of(step: StepRecord) -> list[tuple[str, str, int | None, int]]:
    notes, _ = step.http()
    return [(n.method, n.url, n.status, n.attempt) for n in notes]


def test_steps_keep_method_url_and_status_of_successes_and_failures(
        engine: Engine, ghl: SandboxServer, store: Store, store_location: Path | str) -> None:
    """A list (query string), a get and a create answer 200/201 and are kept with their URL
    (host, path, query); a missing contact's 400 (GHL's answer) is kept with the failed step;
    `runs show` prints them and `runs show --json` gives them."""
    ev = event(ghl)
    steps = """\
  - id: listed
    use: ghl.contacts.list
    with: {query: "a b&c", limit: 5}
  - id: contact
    use: ghl.contacts.get
    with: {contactId: "{{ trigger.id }}"}
  - id: task
    use: ghl.tasks.create
    with: {contactId: "{{ trigger.id }}", title: Call, dueDate: "2026-12-01T10:00:00Z",
           completed: false}
"""
    result = engine.run(recipe(steps), ev)
    assert result.status == "succeeded", result.error
    listed, contact, task = History(store).get(result.run_id).steps
    base = ghl.base_url.rstrip("/")
    assert http_of(listed) == [
        ("GET", f"{base}/contacts/?query=a+b%26c&limit=5&locationId={ghl.location_id}", 200, 1)]
    assert http_of(contact) == [("GET", f"{base}/contacts/{ev['id']}", 200, 1)]
    ((method, url, status, _),) = http_of(task)
    assert (method, url) == ("POST", f"{base}/contacts/{ev['id']}/tasks")
    assert status is not None and 200 <= status < 300
    assert task.http()[0][0].elapsed_ms > 0
    assert result.steps[2].as_dict()["http"]["requests"][0]["status"] == status

    missing = engine.run(recipe(steps.replace("{{ trigger.id }}", "no-such-contact")), ev)
    assert missing.status in ("failed", "dead_letter")
    failed = History(store).get(missing.run_id).steps[1]
    assert failed.status == "failed" and "400" in (failed.error or "")
    assert http_of(failed) == [("GET", f"{base}/contacts/no-such-contact", 400, 1)]

    env = {"CONNECTOR_STORE": str(store_location)}
    shown = run_cli("runs", "show", missing.run_id, env=env)
    assert shown.status == 0, shown
    assert f"http:    GET {base}/contacts/no-such-contact -> 400 (" in shown.stdout
    as_json = run_cli("runs", "show", result.run_id, "--json", env=env)
    steps_json = json.loads(as_json.stdout)["steps"]
    assert steps_json[1]["http"]["total"] == 1
    assert steps_json[1]["http"]["requests"][0]["status"] == 200


def test_a_404_a_422_and_retried_429s_are_kept_per_attempt(
        engine: Engine, ghl: SandboxServer, store: Store) -> None:
    """A 404 (a route the app does not have) and a 422 (a body the app's validation refuses),
    both through http.request, are kept with their failed steps; a step retried after two 429s keeps all three requests (429, 429,
    then the success), in order."""
    ev = event(ghl)
    nowhere = "  - id: nowhere\n    use: http.request\n    with: {url: \"{{ env.RECIPE_BASE }}/nowhere\"}\n"
    with allowing("127.0.0.1"):
        lost = engine.run(recipe(nowhere, head="env: [RECIPE_BASE]\n"), ev)
    assert lost.status in ("failed", "dead_letter")
    (step,) = History(store).get(lost.run_id).steps
    assert http_of(step) == [("GET", f"{ghl.base_url.rstrip('/')}/nowhere", 404, 1)]

    bad_task = """\
  - id: task
    use: http.request
    with:
      method: POST
      url: "{{ env.RECIPE_BASE }}/contacts/{{ trigger.id }}/tasks"
      headers: {Authorization: "Bearer {{ env.RECIPE_TOKEN }}", Version: "2021-07-28"}
      json: {title: 5}
"""
    with allowing("127.0.0.1"):
        refused = engine.run(recipe(bad_task, head="env: [RECIPE_TOKEN, RECIPE_BASE]\n"), ev)
    assert refused.status in ("failed", "dead_letter")
    (step,) = History(store).get(refused.run_id).steps
    assert http_of(step) == [
        ("POST", f"{ghl.base_url.rstrip('/')}/contacts/{ev['id']}/tasks", 422, 1)]
    assert "422" in (step.error or "")

    ghl.set_faults({"route": TAGS, "burst_429": 2})
    tag = '  - id: tag\n    use: ghl.tags.add\n    with: {contactId: "{{ trigger.id }}", tags: [w]}\n'
    retried = engine.run(recipe(tag, "{retry: 2, backoff: 0}"), ev)
    assert retried.status == "succeeded", retried.error
    (step,) = History(store).get(retried.run_id).steps
    assert step.attempts == 3
    statuses = [s for _, _, s, _ in http_of(step)]
    assert statuses[:2] == [429, 429] and statuses[2] is not None and statuses[2] < 300
    assert {url for _, url, _, _ in http_of(step)} == {
        f"{ghl.base_url.rstrip('/')}/contacts/{ev['id']}/tags"}


def test_client_retries_are_numbered_and_bounded(
        catalog: Catalog, ghl: SandboxServer, store: Store) -> None:
    """The HTTP client's own retries are kept as attempts 1..n of one step; of eight, the first
    two and last four are kept (the total says eight); a long URL is cut to the cap."""
    quick = RetryPolicy(attempts=8, base=0.001, cap=0.002)
    ghl.set_faults({"route": "GET /contacts/", "error_rate": 1.0, "error_status": 503, "count": 7})
    steps = f'  - id: listed\n    use: ghl.contacts.list\n    with: {{query: "{"q" * 1500}"}}\n'
    with make_engine(catalog, ghl, store, quick) as engine:
        result = engine.run(recipe(steps), event(ghl))
    assert result.status == "succeeded", result.error
    (step,) = History(store).get(result.run_id).steps
    notes, total = step.http()
    assert total == 8 and len(notes) == KEPT_FIRST + KEPT_LAST
    assert [n.attempt for n in notes] == [1, 2, 5, 6, 7, 8]
    assert [n.status for n in notes] == [503] * 5 + [200]
    assert all(len(n.url) == URL_CAP and n.url.endswith("…") for n in notes)
    assert len(step.exchanges or "") < 8 * 1024
    page = pages.run_detail(History(store).get(result.run_id))
    assert "HTTP requests (8)" in page and "2 more requests not kept" in page


def test_no_token_reaches_the_kept_requests(
        engine: Engine, ghl: SandboxServer, store: Store, store_location: Path | str,
        tmp_path: Path) -> None:
    """A canary in a secret-named query value and header, and the app's token in the
    Authorization header, never reach the state file, `runs show` or the console's run page;
    the URL is kept with the secret value masked."""
    steps = f"""\
  - id: fetch
    use: http.request
    with:
      url: "{{{{ env.RECIPE_BASE }}}}/contacts/{{{{ trigger.id }}}}?access_token={CANARY}&v=1"
      headers: {{Authorization: "Bearer {{{{ env.RECIPE_TOKEN }}}}", X-Api-Key: "{CANARY}",
                Version: "2021-07-28"}}
  - id: contact
    use: ghl.contacts.get
    with: {{contactId: "{{{{ trigger.id }}}}"}}
"""
    ev = event(ghl)
    with allowing("127.0.0.1"):
        result = engine.run(recipe(steps, head="env: [RECIPE_TOKEN, RECIPE_BASE]\n"), ev)
    assert result.status == "succeeded", result.error
    record = History(store).get(result.run_id)
    fetch, _ = record.steps
    base = ghl.base_url.rstrip("/")
    assert http_of(fetch) == [("GET", f"{base}/contacts/{ev['id']}?access_token=***&v=1", 200, 1)]
    page = pages.run_detail(record)
    assert "access_token=***&amp;v=1" in page
    shown = run_cli("runs", "show", result.run_id, env={"CONNECTOR_STORE": str(store_location)})
    assert shown.status == 0 and "access_token=***&v=1 -> 200" in shown.stdout
    if store.dialect == "postgresql":
        raw = stored_values(store)
    store.close()
    if store.dialect == "sqlite":
        raw = b"".join(p.read_bytes() for p in tmp_path.glob("state.db*"))
    assert b"access_token=***" in raw
    for secret in (CANARY, ghl.private_token):
        assert secret.encode() not in raw
        assert secret not in page and secret not in shown.stdout


def test_note_request_is_bounded_and_redacted_outside_the_client() -> None:
    """What a plugin's own executor notes is cleaned the same way: no user info, secrets
    masked; outside a transcript nothing is kept; nested transcripts each keep their own."""
    note_request("GET", "http://127.0.0.1/x", 200)  # no transcript open: a no-op
    with transcribing() as outer:
        with transcribing() as inner:
            note_request("post", f"https://user:{CANARY}@api.example/a?client_secret={CANARY}",
                         None, outcome=f"timeout (Bearer {CANARY})")
    assert outer.total == 0 and inner.total == 1
    (note,) = inner.notes
    assert (note.method, note.url) == ("POST", "https://api.example/a?client_secret=***")
    assert note.status is None and CANARY not in (note.outcome or "")


def test_a_call_without_an_answer_is_noted_with_why(catalog: Catalog) -> None:
    """Nothing listening: each attempt of the HTTP client is noted with no status and the
    reason (`Runtime.transcribing`, as docs/plugins.md shows a plugin's test using it)."""
    import socket

    from connector.errors import RemoteError

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings(base_urls={"ghl": f"http://127.0.0.1:{port}"}, location_id="loc1",
                        retry=RetryPolicy(attempts=2, base=0.001, cap=0.001))
    with Runtime(catalog, settings) as runtime, runtime.transcribing() as transcript:
        with pytest.raises(RemoteError):
            runtime.call("ghl.contacts.get", {"contactId": "c1"})
    assert [(n.method, n.status, n.attempt) for n in transcript.notes] == [
        ("GET", None, 1), ("GET", None, 2)]
    assert all((n.outcome or "").startswith("cannot connect to 127.0.0.1") for n in transcript.notes)
    assert transcript.notes[0].url == f"http://127.0.0.1:{port}/contacts/c1"
