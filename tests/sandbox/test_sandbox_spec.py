"""The sandbox answers every GHL operation outside Contacts from its spec: each of them, called
through the runtime (strict: the answer must pass the action's output schema) with a minimal
valid input, answers; records persist (create, get, update, list, delete, 404); inputs the spec
refuses are a 422; lists page as their pagination declares; any request gets an answer or a
clean error; `call` reaches them from the command line."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ROOT, run_cli
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from connector.auth.bearer import StaticBearer
from connector.catalog import Catalog
from connector.client.retry import RetryPolicy
from connector.documents.sample import sample
from connector.errors import RemoteError
from connector.hookspecs import RateLimit
from connector.runtime import Runtime, Settings
from connector.sandbox.call import Call
from connector.sandbox.responses import ApiError
from connector.sandbox.routes import OPERATIONS, spec_operations
from connector.sandbox.server import SandboxServer
from connector.sandbox.specroutes import SpecOperation
from connector.sandbox.state import Store
from tests.serveproc import ServeProcess, wait_for

HANDLERS: dict[str, SpecOperation] = {
    op.handler.action.id: op.handler for op in spec_operations()
    if isinstance(op.handler, SpecOperation)
}


@pytest.fixture
def strict(ghl: SandboxServer, catalog: Catalog) -> Iterator[Runtime]:
    """A runtime that fails on any answer its output schema refuses; no rate limit in the way."""
    ghl.set_limits(requests=1_000_000, seconds=1.0)
    settings = Settings(strict=True, base_urls={"ghl": ghl.base_url},
                        location_id=ghl.location_id, retry=RetryPolicy(attempts=1),
                        rate_limits={"ghl": RateLimit(1_000_000, 1.0)})
    bearer = StaticBearer(ghl.private_token)
    with Runtime(catalog, settings, auth=lambda app, action: bearer) as made:
        yield made


def minimal_input(catalog: Catalog, action_id: str, location: str) -> dict[str, Any]:
    """The action's required inputs from its examples; every ``locationId`` the sandbox's."""
    action = catalog.action(action_id)
    data = sample(action.input_schema, required_only=True)
    assert isinstance(data, dict)
    for name in data:
        if name in ("locationId", "location_id", "altId") and isinstance(data[name], str):
            data[name] = location
    return data


def _creator(handler: SpecOperation) -> SpecOperation | None:
    """The create operation of the collection an item operation reads, if the spec has one."""
    segments = handler.plan.segments[:-1]
    shape = tuple("{}" if s.startswith("{") else s for s in segments)
    creates = [h for h in HANDLERS.values() if h.plan.role == "create"]
    for exact in (True, False):  # the collection's own create first, else one just below it
        for other in creates:
            made = tuple("{}" if s.startswith("{") else s for s in other.plan.segments)
            if made == shape if exact else made[:-1] == shape:
                return other
    return None


def _resolve(data: Any, path: str) -> Any:
    for name in (p for p in path.split(".") if p):
        data = data.get(name) if isinstance(data, dict) else None
    return data


def _record_id(handler: SpecOperation, output: Any) -> str:
    node = output
    for name in handler.plan.slot or ():
        node = node[name]
    return str(node.get("id") or node.get("_id") or node.get(handler.plan.id_field))


def _call_item(runtime: Runtime, catalog: Catalog, handler: SpecOperation,
               data: dict[str, Any], location: str) -> Any:
    """Call a get/update/delete on a record made first by its collection's create."""
    creator = _creator(handler)
    if creator is None:
        return runtime.call(handler.action.id, data)
    made_input = minimal_input(catalog, creator.action.id, location)
    item_names = {p.name: p.wire_name for p in handler.action.params if p.location == "path"}
    by_wire = {w: n for n, w in item_names.items()}
    for param in creator.action.params:  # the same parent values, position by position
        if param.location != "path":
            continue
        position = creator.plan.segments.index("{" + param.wire_name + "}")
        wire = handler.plan.segments[position][1:-1]
        if wire in by_wire and by_wire[wire] in data:
            made_input[param.name] = data[by_wire[wire]]
    made = runtime.call(creator.action.id, made_input)
    last = handler.plan.segments[-1][1:-1]
    data[by_wire[last]] = _record_id(creator, made)
    return runtime.call(handler.action.id, data)


@pytest.mark.slow  # ~800 calls through the runtime: each action's schemas compiled once
def test_spec_every_operation_outside_contacts_answers_its_output_schema(
        ghl: SandboxServer, strict: Runtime, catalog: Catalog) -> None:
    """All 542 operations outside Contacts (576 less the 32 Contacts routes and the 2 OAuth
    token exchanges the sandbox's OAuth provider answers) give a 2xx answer that passes the
    action's output schema, items read after their collection's create."""
    ghl_actions = [a for a in catalog.actions.values() if a.app == "ghl"]
    assert len(ghl_actions) == 576
    assert len(HANDLERS) == 576 - len(OPERATIONS) - 2
    failed: dict[str, str] = {}
    for action_id, handler in sorted(HANDLERS.items()):
        data = minimal_input(catalog, action_id, ghl.location_id)
        try:
            if handler.plan.role in ("get", "update", "delete"):
                output = _call_item(strict, catalog, handler, data, ghl.location_id)
            else:
                output = strict.call(action_id, data)
        except Exception as exc:  # every failure is listed, not just the first
            failed[action_id] = str(exc)[:300]
            continue
        paging = handler.action.pagination
        if paging and not isinstance(_resolve(output, paging["items"]), list):
            failed[action_id] = f"pagination items {paging['items']!r} is not a list"
    for action_id, why in failed.items():
        print("FAILED", action_id, why)
    assert failed == {}


def test_spec_opportunity_lifecycle_is_stateful(ghl: SandboxServer, strict: Runtime) -> None:
    """Create, read, status change, search by contact, delete, then 404 for the id."""
    loc = ghl.location_id
    made = strict.call("ghl.opportunities.create", {
        "pipelineId": "pipe1", "locationId": loc, "name": "Big deal", "status": "open",
        "contactId": "contact1", "monetaryValue": 900})["opportunity"]
    strict.call("ghl.opportunities.create", {
        "pipelineId": "pipe1", "locationId": loc, "name": "Other", "status": "open",
        "contactId": "contact2"})
    got = strict.call("ghl.opportunities.get", {"id": made["id"]})["opportunity"]
    assert (got["name"], got["monetaryValue"], got["contactId"]) == ("Big deal", 900, "contact1")
    strict.call("ghl.opportunities.update_status", {"id": made["id"], "status": "won"})
    found = strict.call("ghl.opportunities.search", {"location_id": loc,
                                                    "contact_id": "contact1"})
    assert [(o["id"], o["status"]) for o in found["opportunities"]] == [(made["id"], "won")]
    assert len(strict.call("ghl.opportunities.search", {"location_id": loc})[
        "opportunities"]) == 2
    strict.call("ghl.opportunities.delete", {"id": made["id"]})
    with pytest.raises(RemoteError, match="404"):
        strict.call("ghl.opportunities.get", {"id": made["id"]})


def test_spec_refused_inputs_are_422_and_unknown_ids_404(ghl: SandboxServer) -> None:
    """Raw HTTP: a body the spec refuses (wrong type, missing required, unknown property) is a
    422 naming each problem; an id the sandbox never made is a 404; another location than the
    token's is a 403; the Version header is needed."""
    headers = {**ghl.auth_headers(), "Version": "2021-07-28"}
    with httpx.Client(base_url=ghl.base_url, headers=headers, timeout=10) as client:
        bad = client.post("/opportunities/", json={"name": 5, "color": "red"})
        assert bad.status_code == 422
        messages = bad.json()["message"]
        assert "name: 5 is not of type 'string'" in messages
        assert "'pipelineId' is a required property" in messages
        assert any("'color' was unexpected" in m for m in messages)
        query = client.get("/opportunities/search",
                           params={"location_id": ghl.location_id, "limit": "many"})
        assert query.status_code == 422 and "limit" in str(query.json()["message"])
        assert client.get("/opportunities/unknownId").status_code == 404
        elsewhere = client.get("/opportunities/search", params={"location_id": "otherLocation"})
        assert elsewhere.status_code == 403
        assert client.get("/calendars/events/appointments/unknownId").status_code == 404
    no_version = httpx.get(f"{ghl.base_url}/opportunities/pipelines", params={"locationId": "x"},
                           headers={"Authorization": f"Bearer {ghl.private_token}"}, timeout=10)
    assert no_version.status_code == 400


def test_spec_lists_page_as_declared(ghl: SandboxServer, strict: Runtime) -> None:
    """Seven opportunities walk in pages of 3 through the runtime's pager (startAfterId
    cursor, as the action's pagination declares) and arrive once each, in order."""
    loc = ghl.location_id
    ids = [strict.call("ghl.opportunities.create", {
        "pipelineId": "p", "locationId": loc, "name": f"deal {n}", "status": "open",
        "contactId": "c"})["opportunity"]["id"] for n in range(7)]
    action = strict.catalog.action("ghl.opportunities.search")
    assert action.pagination and action.pagination["style"] == "cursor"
    walked = [o["id"] for o in strict.iterate("ghl.opportunities.search",
                                              {"location_id": loc, "limit": 3})]
    assert walked == ids
    first = strict.call("ghl.opportunities.search", {"location_id": loc, "limit": 3})
    assert first["meta"]["total"] == 7 and len(first["opportunities"]) == 3


def test_spec_hand_declared_offset_paging_walks_every_record(ghl: SandboxServer,
                                                             strict: Runtime) -> None:
    """GET /products/ (paging declared by hand in the overrides: offset, records in
    `products`) walks five created products two at a time, each once, in order."""
    action = strict.catalog.action("ghl.products.list_invoices")
    assert action.pagination == {"style": "offset", "items": "products", "offset": "offset",
                                 "limit": {"param": "limit"}}
    made = [strict.call("ghl.products.create", {"name": f"P{n}", "productType": "DIGITAL"})["_id"]
            for n in range(5)]
    walked = [p["_id"] for p in strict.iterate("ghl.products.list_invoices",
                                               {"locationId": ghl.location_id, "limit": 2})]
    assert walked == made
    second = strict.call("ghl.products.list_invoices",
                         {"locationId": ghl.location_id, "limit": 2, "offset": 2})
    assert [p["_id"] for p in second["products"]] == made[2:4]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=4),
    max_leaves=12,
)
FUZZED = ("ghl.opportunities.create", "ghl.opportunities.search", "ghl.opportunities.update",
          "ghl.medias.upload_content", "ghl.calendars.get_slots", "ghl.products.list_invoices")


@settings(max_examples=150, deadline=None)
@given(
    action_id=st.sampled_from(FUZZED),
    query=st.lists(st.tuples(st.sampled_from(["limit", "location_id", "startAfterId", "offset",
                                              "x", "status", "startDate"]),
                             st.text(max_size=12)), max_size=5),
    body=json_values,
    raw=st.binary(max_size=200),
    content_type=st.sampled_from(["", "multipart/form-data; boundary=b", "text/plain"]),
)
def test_spec_any_request_gets_an_answer_or_a_clean_error(action_id: str, query: list[Any],
                                                          body: Any, raw: bytes,
                                                          content_type: str) -> None:
    """Whatever a request holds, a spec operation answers or raises GHL's error (400, 403, 404,
    422 with a message): never another exception (hypothesis, in process)."""
    handler = HANDLERS[action_id]
    params = {s[1:-1]: "someId" for s in handler.plan.segments if s.startswith("{")}
    call = Call(Store(seed=1), "loc", params, dict(query), body, query_pairs=list(query),
                raw_body=raw, content_type=content_type)
    try:
        status, _answer = handler(call)
    except ApiError as exc:
        assert exc.status in (400, 403, 404, 422) and exc.body["message"]
    else:
        assert 200 <= status < 300


def test_spec_call_cli_reaches_any_action(ghl: SandboxServer, tmp_path: Path) -> None:
    """`ghl-connector call` with a stored sandbox token creates and reads an opportunity, and an
    unknown id is one `error:` line with GHL's 404."""
    env = {"CONNECTOR_HOME": str(tmp_path / "home"), "PIT": ghl.private_token}
    stored = run_cli("auth", "set-token", "default", "--token-env", "PIT", "--location-id",
                     ghl.location_id, "--base-url", ghl.base_url, env=env)
    assert stored.status == 0, stored
    env.pop("PIT")
    given_input = json.dumps({"pipelineId": "p", "name": "CLI deal", "status": "open",
                              "contactId": "c1"})
    made = run_cli("call", "ghl.opportunities.create", "--input", given_input, env=env)
    assert made.status == 0, made
    created = json.loads(made.stdout)["opportunity"]
    assert (created["name"], created["locationId"]) == ("CLI deal", ghl.location_id)
    got = run_cli("call", "ghl.opportunities.get", "--input", json.dumps({"id": created["id"]}),
                  env=env)
    assert json.loads(got.stdout)["opportunity"]["id"] == created["id"]
    missing = run_cli("call", "ghl.opportunities.get", "--input", '{"id": "nope"}', env=env)
    assert missing.status != 0 and "Traceback" not in missing.stderr
    assert missing.stderr.strip().splitlines() == [
        "error: GET /opportunities/nope -> 404 Not Found: opportunities 'nope' not found"]


def test_spec_contacts_side_appointments_through_the_calendars_api(ghl: SandboxServer) -> None:
    """An appointment booked on the Contacts side is read, edited and deleted through
    /calendars/events; the contact's appointment list follows."""
    contact_id = ghl.call(lambda: list(ghl.app.store.contacts))[0]
    booked = ghl.add_appointment(contact_id, title="Demo call")
    headers = {**ghl.auth_headers(), "Version": "2021-04-15"}
    with httpx.Client(base_url=ghl.base_url, headers=headers, timeout=10) as client:
        path = f"/calendars/events/appointments/{booked['id']}"
        assert client.get(path).json()["event"]["title"] == "Demo call"
        edited = client.put(path, json={"title": "Renamed"})
        assert edited.status_code == 200 and edited.json()["title"] == "Renamed"
        listed = client.get(f"/contacts/{contact_id}/appointments").json()["events"]
        assert [e["title"] for e in listed if e["id"] == booked["id"]] == ["Renamed"]
        assert client.delete(f"/calendars/events/{booked['id']}").status_code in (200, 201)
        assert client.get(path).status_code == 404
        listed = client.get(f"/contacts/{contact_id}/appointments").json()["events"]
        assert booked["id"] not in [e["id"] for e in listed]


class _Hooks(ThreadingHTTPServer):
    """A local webhook target that keeps every body it is sent."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _HookHandler)
        self.bodies: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _HookHandler(BaseHTTPRequestHandler):
    server: _Hooks

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        self.server.bodies.append(json.loads(body))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


def test_spec_writes_send_their_webhook_events(ghl: SandboxServer, strict: Runtime,
                                               catalog: Catalog) -> None:
    """Creating, re-staging, winning and deleting an opportunity sends OpportunityCreate,
    OpportunityUpdate with OpportunityStageUpdate, OpportunityUpdate with
    OpportunityStatusUpdate, and OpportunityDelete, each passing its trigger's payload schema
    and naming the opportunity; a failed write sends nothing."""
    hooks = _Hooks()
    threading.Thread(target=hooks.serve_forever, args=(0.02,), daemon=True).start()
    ghl.set_webhook_urls([hooks.url])
    try:
        made = strict.call("ghl.opportunities.create", {
            "pipelineId": "p", "locationId": ghl.location_id, "name": "Hooked",
            "status": "open", "contactId": "c1"})["opportunity"]  # fmt: skip
        strict.call("ghl.opportunities.update", {"id": made["id"], "pipelineStageId": "s2"})
        strict.call("ghl.opportunities.update_status", {"id": made["id"], "status": "won"})
        strict.call("ghl.opportunities.delete", {"id": made["id"]})
        with pytest.raises(RemoteError):
            strict.call("ghl.opportunities.get", {"id": made["id"]})
        deadline = time.monotonic() + 10
        while len(hooks.bodies) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)  # nothing more arrives
    finally:
        hooks.shutdown()
        hooks.server_close()
    types = sorted(b["type"] for b in hooks.bodies)
    assert types == sorted(["OpportunityCreate", "OpportunityUpdate", "OpportunityStageUpdate",
                            "OpportunityUpdate", "OpportunityStatusUpdate",
                            "OpportunityDelete"])
    by_event = {t.event: t for t in catalog.triggers.values() if t.kind == "webhook"}
    for body in hooks.bodies:
        schema = by_event[body["type"]].payload_schema
        assert Draft202012Validator(dict(schema)).is_valid(body), body
        assert body["id"] == made["id"] and body["locationId"] == ghl.location_id
    status = next(b for b in hooks.bodies if b["type"] == "OpportunityStatusUpdate")
    assert (status["status"], status["pipelineStageId"], status["name"]) == ("won", "s2", "Hooked")


@pytest.mark.slow  # a real serve process with its sandbox
def test_spec_event_runs_a_recipe_under_serve_sandbox(tmp_path: Path) -> None:
    """`serve --sandbox` with the shipped opportunity_won_thanks recipe: an opportunity created
    and won through the sandbox's API sends OpportunityStatusUpdate, the recipe runs once and
    its SMS reaches the sandbox's Conversations API; nothing is dead."""
    folder = tmp_path / "recipes"
    folder.mkdir()
    shutil.copy(ROOT / "recipes" / "opportunity_won_thanks.yaml", folder)
    proc = ServeProcess(folder, tmp_path / "home", base_url="http://127.0.0.1:9", token="unused",
                        location_id="unused", public_keys={}, extra=("--sandbox",))
    with proc:
        line = next(x for x in proc.summary if x.startswith("ghl sandbox: "))
        found = re.match(r"ghl sandbox: (\S+) \(location (\S+), private token (\S+),", line)
        assert found, line
        url, location, token = found.groups()
        headers = {"Authorization": f"Bearer {token}", "Version": "2021-07-28"}
        with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
            made = client.post("/opportunities/", json={
                "pipelineId": "p", "locationId": location, "name": "Roof", "status": "open",
                "contactId": "c1"})  # fmt: skip
            assert made.status_code == 201, made.text
            oid = made.json()["opportunity"]["id"]
            won = client.put(f"/opportunities/{oid}/status", json={"status": "won"})
            assert won.status_code == 200, won.text

            def sent() -> int:
                routes = client.get("/_sandbox/stats").json()["locations"][location]["routes"]
                return int(routes.get("POST /conversations/messages", {}).get("writes", 0))

            assert wait_for(lambda: sent() == 1, timeout=30), proc.logs[-20:]
            time.sleep(1.0)  # and only once
            assert sent() == 1
        with sqlite3.connect(proc.db) as db:
            runs = db.execute("SELECT status FROM runs").fetchall()
    assert runs == [("succeeded",)]
