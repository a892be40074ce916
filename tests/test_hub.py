"""The hub app is data: ``hub: true`` in an app's manifest entry, read by the catalog and by
every code path that used to name ``ghl`` (credentials, webhook event types, ``--base-url``,
two-way syncs); a second hub is refused. What pollers search and reconcile (``polling``), how
syncs read the hub's webhooks (``sync_events``) and how the backfill lists a contact's tasks
and notes (``parent_list``) are the app's data too: no action, trigger or event id of the pack
is named in connector/ outside the sandboxes and the demo."""

from __future__ import annotations

import ast
import json
import logging
import re
from dataclasses import replace
from pathlib import Path

import httpx
import pluggy
import pytest
from conftest import ROOT
from fakeapi import Answer, FakeApi, serve
from inboxes import find

from actions import rest
from connector import Action, Manifest, hookimpl, hookspecs, load_manifest
from connector.auth.bearer import StaticBearer
from connector.auth.credentials import ghl_only
from connector.catalog import build_catalog
from connector.cli.argtypes import per_app
from connector.errors import ConnectorError, DocumentError, PluginError, RemoteError
from connector.hookspecs import PROJECT_NAME, App, EventMatch, Trigger
from connector.plugins import get_plugin_manager
from connector.recipes.flows import sync_flows
from connector.runtime import Runtime, Settings
from connector.sandbox.keys import WebhookKeys
from connector.service.dispatcher import event_app
from connector.service.inbox import EventTypes, Inbox, InboxEvent
from connector.service.partnerhooks import ordering
from connector.service.pollers import Poller, PollSettings
from connector.service.receiver import ReceiverServer
from connector.service.receiver import Settings as ReceiverSettings
from connector.service.signatures import parse_keys
from connector.store import Store
from connector.sync.events import change_from_hub
from connector.sync.spec import build_sync

ADAPTER = "{get: X.contacts.get, create: X.contacts.create, update: X.contacts.update, id_input: id}"

MANIFEST = f"""\
version: 1
apps:
  hq:
    title: Headquarters
    base_url: http://127.0.0.1:9
    auth: [private_token]
    hub: true
    sync_adapters:
      contacts: {ADAPTER.replace("X", "hq")}
      tasks: {{create: hq.jobs.create, parent_input: personId, parent_list: hq.jobs.of,
               list_key: jobs}}
    polling:
      search: hq.people.find
      contact_input: personId
      changed: modified
      created: born
      reconcile: {{PersonBorn: born, PersonModified: modified}}
      search_input: {{scope: {{org: $location}}, size: $limit, order: {{by: $field, dir: $direction}}}}
      search_range: {{between: {{field: $field, after: $from, before: $to}}}}
      gone: [{{status: 410}}, {{status: 409, says: Person Removed}}]
    sync_events:
      type: kind
      id: uid
      event_id: [eventUid]
      time: [modified, at]
      contact: [personId]
      envelope: [kind, eventUid, at]
      types:
        PersonModified: {{object: contacts}}
        JobDone: {{object: tasks, sets: {{done: true}}}}
        JobGone: {{object: tasks, deleted: true}}
  side:
    title: Side app
    base_url: http://127.0.0.1:9
    auth: [private_token]
    sync_adapters:
      contacts: {ADAPTER.replace("X", "side")}
actions:
  hq.people.find:
    title: Find people
    method: POST
    path: /people/query
    body: json
    schema: schemas/people.find.json
    pagination: {{style: cursor, items: people, next: {{after: $last.pageKey}}}}
  hq.jobs.of:
    title: A person's jobs
    path: /people/{{personId}}/jobs
    params: {{personId: path}}
    schema: schemas/jobs.of.json
triggers:
  hq.jobs.dispatched:
    title: Job dispatched
    kind: webhook
    event: JobDispatched
    match: {{types: [Van, Bike], has: [jobId]}}
  hq.people.modified:
    title: Person modified
    kind: webhook
    event: PersonModified
  side.jobs.moved:
    title: Not the hub's
    kind: webhook
    event: JobMoved
    match: {{types: [Van], has: [jobId]}}
"""

SCHEMAS = {
    "people.find.json": {"properties": {
        "input": {"type": "object"},
        "output": {"type": "object", "properties": {
            "people": {"type": "array", "items": {"type": "object"}}}}}},
    "jobs.of.json": {"properties": {
        "input": {"type": "object", "properties": {"personId": {"type": "string"}},
                  "required": ["personId"]},
        "output": {"type": "object", "properties": {
            "jobs": {"type": "array", "items": {"type": "object"}}}}}},
}


class _Apps:
    """A plugin registering the given apps."""

    def __init__(self, *apps: App) -> None:
        self.apps = list(apps)

    @hookimpl
    def connector_register_apps(self) -> list[App]:
        return self.apps


@pytest.fixture
def apps(tmp_path) -> dict[str, App]:
    return dict(_manifest(tmp_path).apps)


def _manifest(tmp_path: Path) -> Manifest:
    (tmp_path / "schemas").mkdir(exist_ok=True)
    for name, schema in SCHEMAS.items():
        (tmp_path / "schemas" / name).write_text(json.dumps(schema))
    path = tmp_path / "manifest.yaml"
    path.write_text(MANIFEST)
    return load_manifest(path)


class _Manifest(_Apps):
    """A plugin registering a manifest's apps, actions and triggers."""

    def __init__(self, manifest: Manifest) -> None:
        super().__init__(*manifest.apps.values())
        self.manifest = manifest

    @hookimpl
    def connector_register_actions(self) -> list[Action]:
        return list(self.manifest.actions.values())

    @hookimpl
    def connector_register_triggers(self) -> list[Trigger]:
        return list(self.manifest.triggers.values())


def _plain(*plugins: object) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for index, plugin in enumerate(plugins):
        pm.register(plugin, name=f"plugin-{index}")
    return pm


def _action(app: App) -> Action:
    return Action(id=f"{app.id}.things.get", app=app.id, title="x", input_schema={},
                  output_schema={})


def test_hub_the_pack_hub_is_ghl_by_its_manifest():
    """The pack's catalog reads its hub from manifest.yaml (``hub: true`` on ``ghl``)."""
    catalog = build_catalog(get_plugin_manager(entry_points=False))
    assert catalog.hub == "ghl"
    assert catalog.hub_app() is catalog.apps["ghl"]
    assert [key for key, app in catalog.apps.items() if app.hub] == ["ghl"]


def test_hub_declared_by_manifest_key_is_read_by_the_code_paths(apps, monkeypatch):
    """Another app declared the hub: connection credentials go to it (the other bearer app
    gets its own token), a webhook typed by name is its, a plain --base-url is its, and it is
    the app on the fixed side of a sync."""
    assert apps["hq"].hub and not apps["side"].hub
    catalog = build_catalog(_plain(_Apps(*apps.values())))
    assert catalog.hub == "hq"
    assert catalog.hub_app().id == "hq"

    connection = StaticBearer("connection-token")
    monkeypatch.setenv("CONNECTOR_SIDE_TOKEN", "side-token")
    provide = ghl_only(connection)
    assert provide(apps["hq"], _action(apps["hq"])) is connection
    side_auth = provide(apps["side"], _action(apps["side"]))
    request = httpx.Request("GET", "http://127.0.0.1:9/")
    assert isinstance(side_auth, StaticBearer)
    assert next(side_auth.auth_flow(request)).headers["Authorization"] == "Bearer side-token"

    assert event_app("TaskCreate", catalog.hub) == "hq"
    assert event_app("side.tasks.created", catalog.hub) == "side"
    assert per_app(["http://127.0.0.1:1"], "--base-url", catalog) == {"hq": "http://127.0.0.1:1"}

    data = {"partner": "side", "objects": {"contacts": {"fields": {"email": "email"}}}}
    spec = build_sync(data, name="s", apps=catalog.apps)
    assert (spec.app("ghl"), spec.app("partner")) == ("hq", "side")
    assert spec.objects["contacts"].adapters["ghl"].create == "hq.contacts.create"
    flows = {(f.source, f.target) for f in sync_flows("s", spec)}
    assert flows == {(("hq", "contacts"), ("side", "contacts")),
                     (("side", "contacts"), ("hq", "contacts"))}


def test_hub_none_declared_is_said_where_one_is_needed(apps):
    """Without a hub: no connection app, and a sync says why its fixed side has no app."""
    catalog = build_catalog(_plain(_Apps(apps["side"])))
    assert catalog.hub is None
    with pytest.raises(ConnectorError, match=r"no app of the catalog is the hub.*hub: true"):
        catalog.hub_app()
    data = {"partner": "side", "objects": {"contacts": {"fields": {"email": "email"}}}}
    with pytest.raises(DocumentError, match=r"no app of the catalog is the hub"):
        build_sync(data, name="s", apps=catalog.apps)


def test_hub_a_second_hub_is_refused_naming_both(apps, caplog):
    """A plugin declaring a second hub: an error naming both apps from a plain pluggy manager;
    the pack's manager leaves the later one out with that warning and keeps ``ghl``."""
    rival = App(id="rival", title="Rival", base_url="http://127.0.0.1:9", auth=("none",), hub=True)
    with pytest.raises(PluginError, match=r"app 'rival' declares itself the hub.*app 'hq'"):
        build_catalog(_plain(_Apps(apps["hq"]), _Apps(rival)))

    pm = get_plugin_manager(entry_points=False)
    pm.register(_Apps(rival), name="rival-plugin")
    with caplog.at_level(logging.WARNING):
        catalog = build_catalog(pm)
    assert catalog.hub == "ghl"
    assert "rival" not in catalog.apps
    assert any("app 'rival' declares itself the hub" in m and "app 'ghl' already is" in m
               for m in caplog.messages)


def test_hub_key_must_be_a_boolean(tmp_path):
    """``hub`` is checked by the manifest schema: a string is refused at its line."""
    path = tmp_path / "manifest.yaml"
    path.write_text(MANIFEST.replace("hub: true", 'hub: "yes"'))
    with pytest.raises(DocumentError, match=r"manifest.yaml:7"):
        load_manifest(path)


def test_hub_polling_is_the_apps_data(apps, tmp_path):
    """Pollers take the search, the contact input, the time fields and the reconcilable events
    from the app's ``polling``: another app's names work, an app without it is refused."""
    catalog = build_catalog(_plain(_Apps(*apps.values())))
    polling = catalog.apps["hq"].polling
    assert polling is not None and polling.search == "hq.people.find"
    runtime = Runtime(catalog, Settings(location_id="loc-1"))
    with Store(tmp_path / "state.db") as store:

        def mode(trigger: Trigger) -> tuple[str, str]:
            poller = Poller(trigger, runtime, store)
            return poller.mode, poller.field

        changed = Trigger("hq.people.changed", "hq", "People", "polling", {},
                          action="hq.people.find", cursor="modified")
        assert mode(changed) == ("records", "modified")
        born = Trigger("hq.people.born", "hq", "Born", "webhook", {}, event="PersonBorn")
        modified = Trigger("hq.people.modified", "hq", "Mod", "webhook", {}, event="PersonModified")
        assert (mode(born), mode(modified)) == (("reconcile", "born"), ("reconcile", "modified"))
        odd = Trigger("hq.people.left", "hq", "Left", "webhook", {}, event="PersonLeft")
        with pytest.raises(ConnectorError, match=r"webhooks \['PersonBorn', 'PersonModified'\]"):
            mode(odd)
        other = Trigger("side.people.changed", "side", "P", "polling", {},
                        action="side.people.find", cursor="modified")
        with pytest.raises(ConnectorError, match=r"app 'side' declares no `polling`"):
            mode(other)


def _signed_post(server: ReceiverServer, keys: WebhookKeys, data: dict[str, object]) -> None:
    body = json.dumps(data).encode()
    answer = httpx.post(server.url, content=body, trust_env=False, timeout=10,
                        headers={"content-type": "application/json", **keys.sign(body)})
    assert answer.status_code == 200, answer.text


def test_hub_events_typed_by_shape_are_the_triggers_data(tmp_path):
    """A hub webhook trigger's ``match`` (types and fields its bodies carry) makes the receiver
    store a body of that shape as the trigger's event, read at the hub's type key (``kind``);
    another shape keeps its type, another app's ``match`` is not the receiver's, and without
    the catalog's data every body keeps its type."""
    catalog = build_catalog(_plain(_Manifest(_manifest(tmp_path))))
    types = EventTypes.of_catalog(catalog)
    assert types.key == "kind"
    assert types.matches == (("JobDispatched", EventMatch(("Van", "Bike"), ("jobId",))),)
    assert EventTypes.of_catalog(build_catalog(_plain())) == EventTypes()
    keys = WebhookKeys()
    trusted = parse_keys((kind, pem.encode()) for kind, pem in keys.public_pem().items())
    cases = [
        ({"kind": "Van", "jobId": "j1"}, "JobDispatched"),
        ({"kind": "Bike", "jobId": "j2", "extra": 1}, "JobDispatched"),
        ({"kind": "Van"}, "Van"),  # no jobId
        ({"kind": "Van", "jobId": 7}, "Van"),  # not a string
        ({"kind": "PersonModified", "jobId": "j3"}, "PersonModified"),
        ({"type": "Van", "jobId": "j4"}, None),  # the hub's type is at `kind`
    ]
    for events, typed in ((types, True), (EventTypes(key="kind"), False)):
        with Store(tmp_path / f"inbox-{typed}.db") as store, \
                ReceiverServer(store, ReceiverSettings(trusted, events=events)) as server:
            inbox = Inbox(store)
            for number, (data, expected) in enumerate(cases):
                webhook_id = f"w{number}"
                _signed_post(server, keys, {**data, "webhookId": webhook_id})
                stored = find(inbox, webhook_id)
                assert stored is not None
                plain = data.get("kind") if isinstance(data.get("kind"), str) else None
                assert stored.type == (expected if typed else plain), data


def _hub_api(api: FakeApi, people: list[dict[str, object]]) -> None:
    """The second hub on a local server: one page of ``people``; p2 answers 409 "person
    removed", p3 410, p4 409 saying something else; others one job each."""
    api.route("POST", "/people/query", lambda request: Answer(json={
        "people": people if "after" not in request.json else []}))
    answers = {"p2": Answer(409, {"message": "Person removed"}), "p3": Answer(410, {}),
               "p4": Answer(409, {"message": "Job locked"})}
    for person in ("p1", "p2", "p3", "p4"):
        job = {"jobs": [{"id": f"job-{person}", "title": "Fix", "modified": STAMP}]}
        api.route("GET", f"/people/{person}/jobs",
                  lambda request, p=person, j=job: answers.get(p, Answer(json=j)))


STAMP = "2030-01-02T03:04:05.000Z"


def test_hub_polling_search_shape_and_gone_answers_are_the_apps_data(tmp_path):
    """The second hub's ``search_input`` and ``search_range`` are what its pollers send (a
    bound left unset is left out, the first poll sends no range), its search's paging field is
    left out of the events, and its ``gone`` answers (410; 409 saying "person removed") list
    nothing for a contact while any other error fails the poll."""
    catalog = build_catalog(_plain(_Manifest(_manifest(tmp_path)), rest))
    person = {"id": "p1", "modified": STAMP, "born": STAMP, "pageKey": "k1"}
    with serve() as api, Store(tmp_path / "state.db") as store:
        runtime = Runtime(catalog, Settings(location_id="loc-1", base_urls={"hq": api.url}),
                          auth=lambda app, action: None)
        try:
            changed = Trigger("hq.people.changed", "hq", "People", "polling", {},
                              action="hq.people.find", cursor="modified", dedupe=("id", "modified"))
            _hub_api(api, [person])
            records = Poller(changed, runtime, store, PollSettings(backfill=True))
            assert records.run_once() == 1
            first = [r.json for r in api.requests if r.path == "/people/query"][0]
            assert first == {"scope": {"org": "loc-1"}, "size": 100,
                             "order": {"by": "modified", "dir": "asc"}}
            body = store.query("SELECT body FROM inbox WHERE type = ?", ("hq.people.changed",))
            assert json.loads(body[0]["body"]) == {"id": "p1", "modified": STAMP, "born": STAMP}

            api.reset()
            _hub_api(api, [person])
            assert records.run_once() == 0
            again = [r.json for r in api.requests if r.path == "/people/query"][0]
            assert again["between"] == {"field": "modified", "after": STAMP}

            jobs = Trigger("hq.jobs.changed", "hq", "Jobs", "polling", {}, action="hq.jobs.of",
                           dedupe=("id", "title"))
            people = [{**person, "id": p} for p in ("p1", "p2", "p3")]
            api.reset()
            _hub_api(api, people)
            children = Poller(jobs, runtime, store, PollSettings(backfill=True))
            assert children.run_once() == 1
            listed = sorted(r.path for r in api.requests if r.path.endswith("/jobs"))
            assert listed == ["/people/p1/jobs", "/people/p2/jobs", "/people/p3/jobs"]

            api.reset()
            _hub_api(api, [{**person, "id": "p4"}])
            with pytest.raises(RemoteError, match=r"409"):
                Poller(jobs, runtime, store, PollSettings(backfill=True)).run_once()
        finally:
            runtime.close()


def _stored(body: dict[str, object], location: str | None = "L1") -> InboxEvent:
    return InboxEvent(1, "w1", None, location, 0.0, json.dumps(body).encode(), "pending", 0,
                      0.0, None, None, None)


def test_hub_event_order_is_read_by_the_hubs_sync_events(apps):
    """The worker pool runs a hub event in the lane of the contact the hub's ``sync_events``
    name: a contact event's record id, else the first ``contact`` field present (dots walk into
    objects), per location; without the hub's data its events are not ordered. The pack's GHL
    data orders contact, task and appointment events by their contact."""
    events = apps["hq"].sync_events
    assert events is not None
    key = ordering({}, replace(events, contact=("personId", "visit.personId")))
    assert key(_stored({"kind": "PersonModified", "uid": "p1", "personId": "x"})) == "L1/p1"
    assert key(_stored({"kind": "JobDone", "uid": "j1", "personId": "p2"})) == "L1/p2"
    assert key(_stored({"kind": "VisitBooked", "visit": {"personId": "p3"}}, "L2")) == "L2/p3"
    assert key(_stored({"kind": "VisitBooked", "visit": "p3"})) is None
    assert key(_stored({"kind": "PersonModified"}, None)) is None
    assert ordering({})(_stored({"kind": "PersonModified", "uid": "p1"})) is None
    ghl = ordering({}, build_catalog(get_plugin_manager(entry_points=False)).hub_app().sync_events)
    assert ghl(_stored({"type": "ContactUpdate", "id": "c1", "locationId": "L1"})) == "L1/c1"
    assert ghl(_stored({"type": "TaskCreate", "id": "t1", "contactId": "c2"})) == "L1/c2"
    assert ghl(_stored({"type": "AppointmentCreate", "appointment": {"contactId": "c3"}})) == (
        "L1/c3")


def test_hub_sync_events_and_child_lists_are_the_apps_data(apps):
    """A hub webhook reads as a change by the hub's ``sync_events`` (types, envelope, sets,
    deletes), and the backfill's per-contact list is the hub adapter's ``parent_list``."""
    events = apps["hq"].sync_events
    assert events is not None
    done = {"kind": "JobDone", "uid": "j1", "personId": "p1", "title": "Call",
            "eventUid": "e1", "at": "2030-01-02T03:04:05.000Z"}
    change = change_from_hub(done, events)
    assert change is not None
    assert (change.side, change.object, change.record_id) == ("ghl", "tasks", "j1")
    assert change.record == {"uid": "j1", "personId": "p1", "title": "Call", "done": True}
    assert (change.event_id, change.parent_id, change.updated_at) == ("e1", "p1", 1893553445.0)
    gone = change_from_hub({"kind": "JobGone", "uid": "j1"}, events)
    assert gone is not None and gone.record is None
    assert change_from_hub({"kind": "ContactUpdate", "uid": "x"}, events) is None
    catalog = build_catalog(_plain(_Apps(*apps.values())))
    data = {"partner": "side", "objects": {"tasks": {"fields": {"title": "title"}}}}
    side_tasks = {"tasks": {"create": "side.jobs.create"}}
    spec = build_sync({**data, "adapters": {"partner": side_tasks}}, name="s", apps=catalog.apps)
    hub_tasks = spec.objects["tasks"].adapters["ghl"]
    assert (hub_tasks.parent_list, hub_tasks.parent_input, hub_tasks.list_key) == (
        "hq.jobs.of", "personId", "jobs")


CORE_EXEMPT = ("sandbox/", "demo/")
"""Stand-ins for HighLevel and its partners, and the demo that drives them."""
REVIEWED_IDS = {
    "mcpserver/toolset.py": {"ghl.contacts.*"},  # the MCP server's default tool selection (a
    # glob a user overrides with --actions, like a CLI default), not an action the code calls
    "service/wire.py": {"http.request"},  # ASGI's message type, not the http app's action
    "service/threadserver.py": {"http.request"},  # likewise
}
"""Reviewed strings under ``ghl.`` that stay in the core, by module."""


def test_hub_no_action_trigger_or_event_id_in_the_core():
    """Which actions pollers, backfills and syncs call, and which events they read, is app data
    (the hub's ``polling``, ``sync_adapters`` and ``sync_events``): no string in connector/
    outside the sandboxes and the demo is an action, trigger or webhook event id of the pack's
    catalog, or an id under ``ghl.``."""
    catalog = build_catalog(get_plugin_manager(entry_points=False))
    ids = set(catalog.actions) | set(catalog.triggers)
    events = {t.event for t in catalog.triggers.values() if t.event}
    assert {"ghl.contacts.search", "ghl.tasks.list", "ContactUpdate"} <= ids | events
    named = []
    for path in sorted((ROOT / "connector").rglob("*.py")):
        rel = path.relative_to(ROOT / "connector").as_posix()
        if rel.startswith(CORE_EXEMPT):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            if node.value in REVIEWED_IDS.get(rel, ()):
                continue
            if node.value in ids or node.value in events or re.match(r"ghl\.\w", node.value):
                named.append(f"connector/{rel}:{node.lineno}: {node.value!r}")
    assert named == []


def test_hub_pack_data_names_actions_and_events_that_exist():
    """Every action the pack's apps name for syncs and pollers is in the catalog, and every
    event the hub reconciles or reads as a change is one of its webhook triggers' events."""
    catalog = build_catalog(get_plugin_manager(entry_points=False))
    keys = ("get", "create", "update", "delete", "find", "tags_add", "tags_remove", "list",
            "parent_list")
    named = [adapter[key] for app in catalog.apps.values()
             for adapter in app.sync_adapters.values() for key in keys if adapter.get(key)]
    hub = catalog.hub_app()
    assert hub.polling is not None and hub.sync_events is not None
    named.append(hub.polling.search)
    assert {"ghl.contacts.search", "ghl.notes.list", "ghl.tasks.list"} <= set(named)
    assert [n for n in named if n not in catalog.actions] == []
    events = {t.event for t in catalog.triggers.values() if t.app == hub.id and t.event}
    read = set(hub.polling.reconcile) | set(hub.sync_events.types)
    assert read - events == set()
    reread = hub.sync_events.reread
    assert reread and all("get" in hub.sync_adapters[obj] for obj in reread)
    matched = [(t.event, t.match) for t in catalog.triggers.values() if t.app == hub.id and t.match]
    assert [event for event, _ in matched] == ["ProviderOutboundMessage"]
    assert {t for _, match in matched if match for t in match.types}.isdisjoint(events)
