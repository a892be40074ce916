"""The hub app is data: ``hub: true`` in an app's manifest entry, read by the catalog and by
every code path that used to name ``ghl`` (credentials, webhook event types, ``--base-url``,
two-way syncs); a second hub is refused."""

from __future__ import annotations

import logging

import httpx
import pluggy
import pytest

from connector import Action, hookimpl, hookspecs, load_manifest
from connector.auth.bearer import StaticBearer
from connector.auth.credentials import ghl_only
from connector.catalog import build_catalog
from connector.cli.argtypes import per_app
from connector.errors import ConnectorError, DocumentError, PluginError
from connector.hookspecs import PROJECT_NAME, App
from connector.plugins import get_plugin_manager
from connector.recipes.flows import sync_flows
from connector.service.dispatcher import event_app
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
