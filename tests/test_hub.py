"""The hub app is data: ``hub: true`` in an app's manifest entry, read by the catalog and by
every code path that used to name ``ghl`` (credentials, webhook event types, ``--base-url``,
two-way syncs); a second hub is refused. What pollers search and reconcile (``polling``), how
syncs read the hub's webhooks (``sync_events``) and how the backfill lists a contact's tasks
and notes (``parent_list``) are the app's data too: no action, trigger or event id of the pack
is named in connector/ outside the sandboxes and the demo."""

from __future__ import annotations

import ast
import logging
import re

import httpx
import pluggy
import pytest
from conftest import ROOT

from connector import Action, hookimpl, hookspecs, load_manifest
from connector.auth.bearer import StaticBearer
from connector.auth.credentials import ghl_only
from connector.catalog import build_catalog
from connector.cli.argtypes import per_app
from connector.errors import ConnectorError, DocumentError, PluginError
from connector.hookspecs import PROJECT_NAME, App, Trigger
from connector.plugins import get_plugin_manager
from connector.recipes.flows import sync_flows
from connector.runtime import Runtime, Settings
from connector.service.dispatcher import event_app
from connector.service.pollers import Poller
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
"""


class _Apps:
    """A plugin registering the given apps."""

    def __init__(self, *apps: App) -> None:
        self.apps = list(apps)

    @hookimpl
    def connector_register_apps(self) -> list[App]:
        return self.apps


@pytest.fixture
def apps(tmp_path) -> dict[str, App]:
    path = tmp_path / "manifest.yaml"
    path.write_text(MANIFEST)
    return dict(load_manifest(path).apps)


def _plain(*plugins: _Apps) -> pluggy.PluginManager:
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
    "service/inbox.py": {"ProviderOutboundMessage"},  # GHL sends this event with the message's
    # type (SMS, Email); the inbox recognises it (to become hub data: issue 13)
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
