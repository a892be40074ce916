"""``ghl-connector api``: a real API server on 127.0.0.1 with the GHL sandbox behind it.

Calls through the API behave as ``call`` does (validated input, every problem with its field,
GHL's errors kept, dry runs masked), Idempotency-Key replays without a second write, keys
answer 401/403, triggers list inbox events newest first with a cursor, and the CLI serves,
manages keys and exports the documents."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from apiserver import ApiServer
from conftest import ROOT, run_cli

from connector.api.idempotency import request_digest
from connector.catalog import Catalog
from connector.documents.schema import compile_validator, problems
from connector.errors import Location
from connector.sandbox.server import SandboxServer
from connector.service.inbox import Inbox, NewEvent

CREATE = "POST /contacts/"


def _at(path: tuple[str | int, ...]) -> Location:
    return Location(None, pointer=str(path))


@pytest.fixture(scope="module")
def server(sandbox: SandboxServer, catalog: Catalog, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[ApiServer]:
    with ApiServer(catalog, sandbox, tmp_path_factory.mktemp("api")) as running:
        yield running


def test_call_creates_and_reads_a_contact_as_call_does(server: ApiServer, ghl: SandboxServer
                                                       ) -> None:
    """The body is call's flat input; the location comes from the connection; the answer is
    the action's output."""
    made = server.post("ghl.contacts.create", {"email": "ada@example.com", "firstName": "Ada"})
    assert made.status_code == 200, made.text
    contact = made.json()["contact"]
    assert contact["locationId"] == ghl.location_id
    got = server.post("ghl.contacts.get", {"contactId": contact["id"]})
    assert got.status_code == 200 and got.json()["contact"]["email"] == "ada@example.com"
    assert ghl.writes(CREATE) == 1


def test_the_app_alone_answers_calls_as_the_fast_route_does(sandbox: SandboxServer,
                                                            catalog: Catalog, tmp_path: Path
                                                            ) -> None:
    """Without ``api``'s fast route, the app's own ``POST /v1/actions/{id}`` route gives the
    same answers: the call, a 422 with its problems, a dry run, an idempotent replay."""
    with ApiServer(catalog, sandbox, tmp_path, fast=False) as alone:
        made = alone.post("ghl.contacts.create", {"email": "solo@example.com"},
                          headers={"Idempotency-Key": "solo"})
        assert made.status_code == 200, made.text
        again = alone.post("ghl.contacts.create", {"email": "solo@example.com"},
                           headers={"Idempotency-Key": "solo"})
        assert again.headers["Idempotent-Replayed"] == "true" and again.json() == made.json()
        bad = alone.post("ghl.contacts.create", {"email": 5})
        assert bad.status_code == 422 and bad.json()["error"]["problems"][0]["path"] == "email"
        preview = alone.client.post("/v1/actions/ghl.contacts.get?dry_run=true",
                                    json={"contactId": "c1"}, headers=alone.headers())
        assert preview.status_code == 200 and preview.json()["method"] == "GET"


def test_bad_input_answers_422_with_every_problem(server: ApiServer, ghl: SandboxServer) -> None:
    answer = server.post("ghl.contacts.create", {"email": 5, "tags": "x", "nope": 1})
    assert answer.status_code == 422
    error = answer.json()["error"]
    paths = {p["path"] for p in error["problems"]}
    assert {"email", "tags"} <= paths and error["source"] == "api"
    assert ghl.writes(CREATE) == 0
    assert server.post("ghl.contacts.get", [1]).status_code == 400  # not an object
    raw = server.client.post("/v1/actions/ghl.contacts.get", content=b'{"contactId": ',
                             headers=server.headers())
    assert raw.status_code == 400 and "request body" in raw.json()["error"]["message"]


def test_ghl_errors_keep_their_status_and_message(server: ApiServer, ghl: SandboxServer) -> None:
    answer = server.post("ghl.contacts.get", {"contactId": "abc"})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["source"] == "remote" and error["remote_status"] == 400
    assert "Contact not found" in error["message"]
    ghl.set_faults({"route": "GET /contacts/{contactId}", "error_rate": 1.0, "error_status": 503})
    failed = server.post("ghl.contacts.get", {"contactId": "abc"})
    assert failed.status_code == 502 and failed.json()["error"]["remote_status"] == 503


def test_dry_run_answers_the_request_with_the_token_masked(server: ApiServer, ghl: SandboxServer
                                                           ) -> None:
    answer = server.post("ghl.contacts.create", {"email": "x@example.com"},
                         params={"dry_run": "true"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/vnd.ghl-connector.dry-run+json")
    preview = answer.json()
    assert preview["method"] == "POST" and preview["url"] == f"{ghl.base_url}/contacts/"
    assert preview["json"]["locationId"] == ghl.location_id
    assert preview["headers"]["Authorization"] == "Bearer ****"
    assert ghl.private_token not in answer.text and ghl.writes(CREATE) == 0


def test_the_connection_fills_location_id_and_the_alt_id_pair(server: ApiServer,
                                                             ghl: SandboxServer) -> None:
    """`location_id` (opportunities search) and `altId` with `altType: location` (invoices)
    come from the connection as `locationId` does: not a 422 from the API, and the sandbox
    (which answers 422 without them) answers the calls; an `altType` given is kept."""
    loc = ghl.location_id
    searched = server.post("ghl.opportunities.search", {})
    assert searched.status_code == 200, searched.text
    preview = server.post("ghl.opportunities.search", {}, params={"dry_run": "true"}).json()
    assert preview["url"] == f"{ghl.base_url}/opportunities/search?location_id={loc}"
    page = {"limit": "10", "offset": "0"}
    listed = server.post("ghl.invoices.list", page)
    assert listed.status_code == 200, listed.text
    preview = server.post("ghl.invoices.list", page, params={"dry_run": "true"}).json()
    assert preview["url"].endswith(f"&altId={loc}&altType=location")
    company = {"altId": "COMPANY1", "altType": "company"}
    preview = server.post("ghl.transactions.list", company, params={"dry_run": "true"}).json()
    assert "altId=COMPANY1&altType=company" in preview["url"]


def test_idempotency_key_replays_the_stored_answer(server: ApiServer, ghl: SandboxServer) -> None:
    body = {"email": "once@example.com", "firstName": "Once"}
    first = server.post("ghl.contacts.create", body, headers={"Idempotency-Key": "k-1"})
    again = server.post("ghl.contacts.create", body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert ghl.writes(CREATE) == 1
    other = server.post("ghl.contacts.create", {"email": "other@example.com"},
                        headers={"Idempotency-Key": "k-1"})
    assert other.status_code == 422 and "another request" in other.json()["error"]["message"]
    # A refused input releases the key: the corrected retry runs.
    bad = server.post("ghl.contacts.create", {"email": 1}, headers={"Idempotency-Key": "k-2"})
    fixed = server.post("ghl.contacts.create", {"email": "two@example.com"},
                        headers={"Idempotency-Key": "k-2"})
    assert bad.status_code == 422 and fixed.status_code == 200 and ghl.writes(CREATE) == 2
    # Keys belong to the API key that sent them: another key's k-1 is a new request.
    theirs = server.post("ghl.contacts.create", {"email": "theirs@example.com"}, key="contacts",
                         headers={"Idempotency-Key": "k-1"})
    assert theirs.status_code == 200 and "Idempotent-Replayed" not in theirs.headers
    assert ghl.writes(CREATE) == 3


def test_keys_answer_401_and_403(server: ApiServer, ghl: SandboxServer) -> None:
    client = server.client
    missing = client.get("/v1/actions")
    assert missing.status_code == 401 and "Bearer" in missing.headers["www-authenticate"]
    assert "***" not in missing.text  # its own hint is not taken for a secret and masked
    assert client.get("/v1/actions", headers={"X-API-Key": "ghlk_00000000_" + "a" * 43}
                      ).status_code == 401
    bearer = client.get("/v1/actions", headers={"Authorization": f"Bearer {server.keys['all']}"})
    assert bearer.status_code == 200
    listed = client.get("/v1/actions", headers=server.headers("contacts")).json()["actions"]
    assert listed and all(a["id"].startswith("ghl.contacts.") for a in listed)
    outside = server.post("ghl.tasks.get", {"contactId": "a", "taskId": "b"}, key="contacts")
    assert outside.status_code == 403
    write = server.post("ghl.contacts.create", {"email": "r@example.com"}, key="reader")
    assert write.status_code == 403 and "read-only" in write.json()["error"]["message"]
    read = server.post("ghl.contacts.search", {"pageLimit": 1}, key="reader")
    assert read.status_code == 200, read.text
    preview = server.post("ghl.contacts.create", {"email": "r@example.com"}, key="reader",
                          params={"dry_run": "true"})
    assert preview.status_code == 200 and ghl.writes(CREATE) == 0
    # Any method (http.request) and token minting (a POST named get_..., needing oauth.write)
    # may write: a read-only key is refused before anything is sent.
    anything = server.post("http.request", {"method": "GET", "url": "https://example.com/"},
                           key="reader")
    assert anything.status_code == 403 and "read-only" in anything.json()["error"]["message"]
    mint = server.post("ghl.oauth.get_location_access_token",
                       {"companyId": "c", "locationId": "l"}, key="reader")
    assert mint.status_code == 403 and "read-only" in mint.json()["error"]["message"]
    _, key = server.api.keys.create("short-lived")
    assert client.get("/v1/triggers", headers={"X-API-Key": key}).status_code == 200
    assert server.api.keys.revoke("short-lived")
    assert client.get("/v1/triggers", headers={"X-API-Key": key}).status_code == 401


def test_a_key_revoked_by_another_process_is_refused_within_a_second(server: ApiServer) -> None:
    _, key = server.api.keys.create("elsewhere")
    assert server.client.get("/v1/triggers", headers={"X-API-Key": key}).status_code == 200
    revoked = run_cli("api", "keys", "revoke", "elsewhere", "--db", str(server.store.path))
    assert revoked.status == 0, revoked.stderr
    time.sleep(1.1)
    assert server.client.get("/v1/triggers", headers={"X-API-Key": key}).status_code == 401


def test_a_connection_changed_by_another_process_is_seen_within_a_second(
    server: ApiServer, ghl: SandboxServer
) -> None:
    """A running API sends no token it was given before `auth set-token` replaced it or `auth
    logout` deleted it: within a second it reads the connection again (found by an attack: it
    kept the first token for good)."""
    db = str(server.store.path)
    env = {"PIT": ghl.private_token, "BAD": "pit-not-the-sandboxes-token"}

    def store(var: str) -> None:
        done = run_cli("--store", db, "auth", "set-token", "other", "--token-env", var,
                       "--location-id", ghl.location_id, "--base-url", ghl.base_url, env=env)
        assert done.status == 0, done.stderr

    def search() -> httpx.Response:
        return server.post("ghl.contacts.search", {"pageLimit": 1},
                           headers={"X-Connection": "other"})

    store("PIT")
    assert search().status_code == 200
    store("BAD")
    time.sleep(1.1)
    assert search().status_code == 401
    store("PIT")
    time.sleep(1.1)
    assert search().status_code == 200
    gone = run_cli("--store", db, "auth", "logout", "other")
    assert gone.status == 0, gone.stderr
    time.sleep(1.1)
    after = search()
    assert after.status_code == 400 and "'other'" in after.json()["error"]["message"]


def test_connection_is_chosen_per_request(server: ApiServer, ghl: SandboxServer) -> None:
    named = server.post("ghl.contacts.search", {"pageLimit": 1},
                        headers={"X-Connection": "default"})
    assert named.status_code == 200
    unknown = server.post("ghl.contacts.search", {"pageLimit": 1},
                          headers={"X-Connection": "elsewhere"})
    assert unknown.status_code == 400
    assert unknown.json()["error"]["source"] == "connection"
    assert "elsewhere" in unknown.json()["error"]["message"]


def test_openapi_json_names_the_server_it_is_fetched_from(server: ApiServer) -> None:
    first = server.client.get("/openapi.json")
    again = server.client.get("/openapi.json", headers={"Host": "connector.example.com"})
    assert first.status_code == again.status_code == 200
    assert first.json()["servers"] == [{"url": server.url}]
    assert again.json()["servers"] == [{"url": "http://connector.example.com"}]
    assert again.json()["paths"] == first.json()["paths"]


def test_describe_and_unknown_actions(server: ApiServer, catalog: Catalog) -> None:
    shown = server.client.get("/v1/actions/ghl.contacts.create", headers=server.headers())
    assert shown.status_code == 200
    described = shown.json()
    assert described["scopes"] == ["contacts.write"] and described["input_schema"]
    assert not problems(compile_validator(catalog.action("ghl.contacts.create").input_schema),
                        described["sample_input"], _at)  # fmt: skip
    assert server.client.get("/v1/actions/ghl.nope", headers=server.headers()).status_code == 404
    assert server.post("ghl.nope", {}).status_code == 404


def test_trigger_events_newest_first_with_a_cursor(server: ApiServer, catalog: Catalog) -> None:
    inbox = Inbox(server.store)
    now = time.time()
    for n in range(5):
        body = {"type": "ContactCreate", "locationId": "L1", "id": f"c{n}",
                "webhookId": f"wh-api-{n}"}
        inbox.add(NewEvent.from_payload(json.dumps(body).encode(), body, now + n))
    note = {"type": "NoteCreate", "locationId": "L1", "id": "n1", "webhookId": "wh-api-note"}
    inbox.add(NewEvent.from_payload(json.dumps(note).encode(), note, now))
    url = "/v1/triggers/ghl.contacts.created/events"
    first = server.client.get(url, params={"limit": 3}, headers=server.headers()).json()
    assert [e["id"] for e in first["events"]] == ["wh-api-4", "wh-api-3", "wh-api-2"]
    assert first["events"][0]["data"]["id"] == "c4"
    rest = server.client.get(url, params={"limit": 3, "cursor": first["next_cursor"]},
                             headers=server.headers()).json()
    assert [e["id"] for e in rest["events"]] == ["wh-api-1", "wh-api-0"]
    assert "next_cursor" not in rest
    bad = server.client.get(url, params={"cursor": "x"}, headers=server.headers())
    assert bad.status_code == 400
    for name in ("cursor", "limit"):  # '²' is a digit to str.isdigit, not to int(): a 500 once
        odd = server.client.get(url, params={name: "\u00b2"}, headers=server.headers())
        assert odd.status_code == 400, odd.text
    sample = server.client.get("/v1/triggers/ghl.contacts.created/sample",
                               headers=server.headers()).json()["events"][0]["data"]
    trigger = catalog.trigger("ghl.contacts.created")
    assert not problems(compile_validator(trigger.payload_schema), sample, _at)
    outside = server.client.get("/v1/triggers/ghl.tasks.created/events",
                                headers=server.headers("contacts"))
    assert outside.status_code == 403


def test_api_keys_cli_creates_lists_and_revokes(tmp_path: Path) -> None:
    env = {"CONNECTOR_HOME": str(tmp_path)}
    made = run_cli("api", "keys", "create", "zap", "--actions", "ghl.contacts.*", "--read-only",
                   env=env)
    assert made.status == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("ghlk_") and "shown only now" in made.stderr
    listed = run_cli("api", "keys", "list", "--json", env=env)
    (entry,) = json.loads(listed.stdout)
    assert entry["actions"] == ["ghl.contacts.*"] and entry["read_only"] is True
    assert key not in listed.stdout and key[-43:] not in (tmp_path / "state.db").read_bytes().decode(
        "latin-1")
    again = run_cli("api", "keys", "create", "zap", env=env)
    assert again.status == 1 and "exists" in again.stderr and "Traceback" not in again.stderr
    assert run_cli("api", "keys", "revoke", "zap", env=env).status == 0
    gone = run_cli("api", "keys", "revoke", "zap", env=env)
    assert gone.status == 1 and "no live api key" in gone.stderr


def test_api_command_serves_on_loopback(tmp_path: Path) -> None:
    """``ghl-connector api --port 0`` binds 127.0.0.1, says where, and serves the document."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")},
           "CONNECTOR_HOME": str(tmp_path)}
    with subprocess.Popen([sys.executable, "-m", "connector", "api", "--port", "0"], cwd=ROOT,
                          env=env, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.startswith("api: listening on http://127.0.0.1:"), line
            url = line.split()[3]
            assert proc.stdout.readline().strip() == f"console: {url}/console/"
            assert proc.stdout.readline().strip() == f"metrics: {url}/metrics"
            assert httpx.get(f"{url}/metrics", timeout=30).status_code == 200
            doc = httpx.get(f"{url}/openapi.json", timeout=30).json()
            assert doc["openapi"] == "3.1.0" and doc["servers"] == [{"url": url}]
            assert httpx.get(f"{url}/v1/actions", timeout=10).status_code == 401
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) in (0, -signal.SIGTERM)


PUBLIC_TARGET = "https://93.184.216.34/hooks/abc"  # an IP literal: the guard resolves nothing


def test_hooks_subscribe_list_and_unsubscribe(server: ApiServer) -> None:
    client = server.client
    made = client.post("/v1/hooks", headers=server.headers(),
                       json={"trigger": "ghl.contacts.created", "target_url": PUBLIC_TARGET,
                             "filter": {"country": ["US", "CA"]}})  # fmt: skip
    assert made.status_code == 201, made.text
    hook = made.json()
    assert hook["id"].startswith("sub_") and hook["secret"].startswith("whsec_")
    again = client.post("/v1/hooks", headers=server.headers(),
                        json={"trigger": "ghl.contacts.created", "target_url": PUBLIC_TARGET,
                              "filter": {"country": ["US", "CA"]}})  # fmt: skip
    assert again.status_code == 200 and again.json() == {**hook, "existing": True}
    listed = client.get("/v1/hooks", headers=server.headers()).json()["hooks"]
    assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]
    assert hook["secret"] not in client.get("/v1/hooks", headers=server.headers()).text
    # A subscription is its key's: another key neither lists, repeats nor deletes it.
    assert client.get("/v1/hooks", headers=server.headers("contacts")).json()["hooks"] == []
    theirs = client.post("/v1/hooks", headers=server.headers("contacts"),
                         json={"trigger": "ghl.contacts.created", "target_url": PUBLIC_TARGET,
                               "filter": {"country": ["US", "CA"]}})  # fmt: skip
    assert theirs.status_code == 201 and theirs.json()["secret"] != hook["secret"]
    assert theirs.json()["id"] != hook["id"]
    assert client.delete(f"/v1/hooks/{hook['id']}", headers=server.headers("contacts")
                         ).status_code == 404
    assert client.delete(f"/v1/hooks/{theirs.json()['id']}", headers=server.headers("contacts")
                         ).status_code == 204
    assert client.delete(f"/v1/hooks/{hook['id']}", headers=server.headers("reader")
                         ).status_code == 404
    assert client.delete(f"/v1/hooks/{hook['id']}", headers=server.headers()).status_code == 204
    assert client.delete(f"/v1/hooks/{hook['id']}", headers=server.headers()).status_code == 404
    assert client.get("/v1/hooks", headers=server.headers()).json()["hooks"] == []


def test_hooks_refuse_bad_subscriptions_at_their_fields(server: ApiServer) -> None:
    client = server.client
    bad = client.post("/v1/hooks", headers=server.headers(),
                      json={"trigger": "ghl.nope", "target_url": "http://127.0.0.1:9/x",
                            "filter": {"country": {"deep": 1}}})  # fmt: skip
    assert bad.status_code == 422
    paths = {p["path"] for p in bad.json()["error"]["problems"]}
    assert paths == {"/trigger", "/target_url", "/filter/country"}
    metadata = client.post("/v1/hooks", headers=server.headers(),
                           json={"trigger": "ghl.contacts.created",
                                 "target_url": "http://169.254.169.254/latest"})  # fmt: skip
    assert metadata.status_code == 422
    outside = client.post("/v1/hooks", headers=server.headers("contacts"),
                          json={"trigger": "ghl.tasks.created", "target_url": PUBLIC_TARGET})
    reader = client.post("/v1/hooks", headers=server.headers("reader"),
                         json={"trigger": "ghl.contacts.created", "target_url": PUBLIC_TARGET})
    assert outside.status_code == reader.status_code == 403
    assert "may not subscribe" in reader.json()["error"]["message"]
    extra = client.post("/v1/hooks", headers=server.headers(),
                        json={"trigger": "ghl.contacts.created", "target_url": PUBLIC_TARGET,
                              "secret": "mine"})  # fmt: skip
    assert extra.status_code == 422 and "secret" in extra.json()["error"]["message"]
    assert client.get("/v1/hooks", headers=server.headers()).json()["hooks"] == []


def test_a_hook_subscribed_through_the_api_is_delivered_signed(server: ApiServer) -> None:
    """Subscribed over HTTP, an inbox event reaches the target signed as Standard Webhooks
    says (the reference verifier accepts it), through the hooks deliverer serve runs."""
    from hooktarget import HookTarget
    from inboxes import find

    from connector.api.delivery import Deliverer, fan_out
    from connector.client.urlguard import allowing

    with HookTarget() as target, allowing("127.0.0.1"):
        made = server.client.post("/v1/hooks", headers=server.headers(),
                                  json={"trigger": "ghl.contacts.created",
                                        "target_url": target.url})  # fmt: skip
        assert made.status_code == 201, made.text
        target.secret = made.json()["secret"]
        body = {"type": "ContactCreate", "locationId": "L1", "id": "c9", "webhookId": "wh-hook"}
        inbox = Inbox(server.store)
        inbox.add(NewEvent.from_payload(json.dumps(body).encode(), body, time.time()))
        event = find(inbox, "wh-hook")
        assert event is not None
        assert fan_out(server.store, event) == 1
        assert Deliverer(server.store).run_once() == 1
    [got] = target.received
    assert got.verified, got.error
    assert got.json()["data"] == body
    server.client.delete(f"/v1/hooks/{made.json()['id']}", headers=server.headers())


def test_a_key_whose_first_request_has_no_answer_is_never_run_again(server: ApiServer,
                                                                     ghl: SandboxServer) -> None:
    """A claim without an answer (its request still running, or its process killed during the
    call) answers 409 to a repeat: whether it took effect is unknown, so it is not re-sent."""
    key = server.api.keys.check(server.keys["all"])
    assert key is not None
    body = {"email": "limbo@example.com"}
    digest = request_digest("ghl.contacts.create", "default", body)
    assert server.api.idempotency.claim(key.id, "k-limbo", digest).state == "new"
    again = server.post("ghl.contacts.create", body, headers={"Idempotency-Key": "k-limbo"})
    assert again.status_code == 409 and "unknown" in again.json()["error"]["message"]
    assert ghl.writes(CREATE) == 0
    bad = server.post("ghl.contacts.create", body, headers={"Idempotency-Key": "caf\xe9".encode("latin-1")})
    assert bad.status_code == 400


def test_oversized_bodies_answer_413(server: ApiServer) -> None:
    big = {"trigger": "ghl.contacts.created", "target_url": PUBLIC_TARGET, "filter": {
        "note": "x" * 70_000}}
    answer = server.client.post("/v1/hooks", json=big, headers=server.headers())
    assert answer.status_code == 413 and answer.json()["error"]["status"] == 413


def test_keys_idempotency_and_events_on_every_store(store_location: Path | str,
                                                    catalog: Catalog, ghl: SandboxServer,
                                                    tmp_path: Path) -> None:
    """The API's tables and queries hold on SQLite and on PostgreSQL alike."""
    with ApiServer(catalog, ghl, tmp_path, store_location) as api:
        body = {"email": "everywhere@example.com"}
        first = api.post("ghl.contacts.create", body, headers={"Idempotency-Key": "k"})
        again = api.post("ghl.contacts.create", body, headers={"Idempotency-Key": "k"})
        assert first.status_code == 200 and again.json() == first.json()
        assert again.headers["Idempotent-Replayed"] == "true" and ghl.writes(CREATE) == 1
        # Eight platforms' retries at once: one call, the others replay it or wait (409).
        racing = {"email": "race@example.com"}
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(
                lambda _: api.post("ghl.contacts.create", racing,
                                   headers={"Idempotency-Key": "race"}).status_code,
                range(8)))  # fmt: skip
        assert set(answers) <= {200, 409} and 200 in answers, answers
        assert ghl.writes(CREATE) == 2
        assert api.post("ghl.contacts.get", {"contactId": "x"}, key="reader").status_code == 400
        assert api.client.get("/v1/actions").status_code == 401
        event = {"type": "ContactCreate", "locationId": "L1", "id": "c1", "webhookId": "wh-1"}
        Inbox(api.store).add(NewEvent.from_payload(json.dumps(event).encode(), event, 1.0))
        listed = api.client.get("/v1/triggers/ghl.contacts.created/events",
                                headers=api.headers()).json()["events"]
        assert [e["id"] for e in listed] == ["wh-1"] and listed[0]["data"] == event


def test_the_hot_route_answers_as_the_router_would(server: ApiServer) -> None:
    """POST /v1/actions/{id} is dispatched before Starlette's router (ApiApp): one path
    segment only; anything else still reaches the router and its 404/405 answers."""
    unknown = server.post("ghl.no.such", {})
    assert unknown.status_code == 404
    assert "unknown action 'ghl.no.such'" in unknown.json()["error"]["message"]
    typo = server.post("ghl.contacts.craete", {})
    assert "did you mean 'ghl.contacts.create'?" in typo.json()["error"]["message"]
    nested = server.client.post("/v1/actions/ghl.contacts.get/x", json={},
                                headers=server.headers())
    assert nested.status_code == 404
    assert nested.json()["error"]["message"].startswith("no such endpoint: POST")
    keyless = server.client.post("/v1/actions/ghl.contacts.get", json={"contactId": "x"})
    assert keyless.status_code == 401 and "WWW-Authenticate" in keyless.headers
    assert server.client.put("/v1/actions/ghl.contacts.get", json={},
                             headers=server.headers()).status_code == 405
