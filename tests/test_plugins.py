"""The plugin manager: built-ins, external entry-point plugins, and loud failures."""

from __future__ import annotations

import json
import textwrap

import pytest
from conftest import run_cli

from connector import Action, App, hookimpl
from connector.catalog import build_catalog
from connector.errors import PluginError
from connector.plugins import BUILTIN_PLUGINS, get_plugin_manager
from connector.runtime import Runtime, Settings

PLUGIN_MODULE = '''
"""An external plugin: the 'acme' app and its 'acme.widgets.get' action, declared in a manifest."""
from pathlib import Path
from connector import hookimpl, load_manifest

_HERE = Path(__file__).parent
_MANIFEST = load_manifest(_HERE / "manifest.yaml")

@hookimpl
def connector_register_apps():
    return list(_MANIFEST.apps.values())

@hookimpl
def connector_register_actions():
    return list(_MANIFEST.actions.values())
'''

PLUGIN_MANIFEST = """\
version: 1
apps:
  acme:
    title: Acme Widgets
    base_url: http://127.0.0.1:9
    auth: [none]
actions:
  acme.widgets.get:
    title: Get widget
    method: GET
    path: /widgets/{widgetId}
    params: {widgetId: path}
    schema: schemas/actions/acme.widgets.get.json
"""

PLUGIN_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "actions/acme.widgets.get.json",
    "type": "object",
    "properties": {
        "input": {
            "type": "object",
            "additionalProperties": False,
            "required": ["widgetId"],
            "properties": {"widgetId": {"type": "string", "description": "Widget id."}},
        },
        "output": {
            "type": "object",
            "required": ["widget"],
            "properties": {"widget": {"type": "object"}},
        },
    },
}


@pytest.fixture
def plugin_dist(tmp_path, monkeypatch):
    """A real installed distribution 'acme-connector' (its own dist-info with an entry point)."""
    site = tmp_path / "site"
    pkg = site / "acme_plugin"
    (pkg / "schemas" / "actions").mkdir(parents=True)
    (pkg / "__init__.py").write_text(PLUGIN_MODULE)
    (pkg / "manifest.yaml").write_text(PLUGIN_MANIFEST)
    (pkg / "schemas" / "actions" / "acme.widgets.get.json").write_text(json.dumps(PLUGIN_SCHEMA))
    info = site / "acme_connector-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-connector\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[ghl_connector]\nacme = acme_plugin\n")
    monkeypatch.syspath_prepend(str(site))
    return site


def test_plugins_builtins_registered_like_externals():
    """Built-ins are ordinary plugins, registered by name through the same manager."""
    pm = get_plugin_manager(entry_points=False)
    assert [pm.get_name(p) for p in pm.get_plugins()] != []
    for name in BUILTIN_PLUGINS:
        assert pm.get_plugin(name) is not None


def test_plugins_external_entry_point_adds_app_and_action(plugin_dist, api):
    """An installed distribution's entry point adds an app and an action that can be called."""
    catalog = build_catalog()
    assert "acme" in catalog.apps
    assert catalog.action("acme.widgets.get").path == "/widgets/{widgetId}"
    api.add("GET", "/widgets/w1", json={"widget": {"id": "w1"}})
    settings = Settings(strict=True, base_urls={"acme": api.url})
    with Runtime(catalog, settings) as runtime:
        assert runtime.call("acme.widgets.get", {"widgetId": "w1"}) == {"widget": {"id": "w1"}}
    assert [(r.method, r.path) for r in api.requests] == [("GET", "/widgets/w1")]


def test_plugins_external_plugin_through_the_cli(plugin_dist, api):
    """The CLI, as a real process, lists the external action and calls it."""
    env = {"PYTHONPATH": str(plugin_dist)}
    listed = run_cli("catalog", "--json", "--app", "acme", env=env)
    assert listed.status == 0, listed
    rows = json.loads(listed.stdout)
    assert [(r["id"], r["app"], r["method"], r["path"]) for r in rows] == [
        ("acme.widgets.get", "acme", "GET", "/widgets/{widgetId}")
    ]
    api.add("GET", "/widgets/w2", json={"widget": {"id": "w2"}})
    called = run_cli(
        "call", "acme.widgets.get", "--input", '{"widgetId": "w2"}', "--base-url", api.url, env=env
    )
    assert called.status == 0, called
    assert json.loads(called.stdout) == {"widget": {"id": "w2"}}


def test_plugins_disabled_by_environment(plugin_dist, monkeypatch):
    """CONNECTOR_DISABLE_PLUGINS blocks a plugin by name."""
    monkeypatch.setenv("CONNECTOR_DISABLE_PLUGINS", "acme")
    assert "acme" not in build_catalog().apps


class _Duplicate:
    """A plugin that declares an action id the GHL built-in already has."""

    @hookimpl
    def connector_register_actions(self):
        ghl = build_catalog(get_plugin_manager(entry_points=False)).action("ghl.contacts.get")
        return [ghl]


def test_plugins_duplicate_action_id_names_both_plugins():
    """Two plugins declaring one action id fail loudly, naming both."""
    pm = get_plugin_manager(entry_points=False)
    pm.register(_Duplicate(), name="dupe-plugin")
    with pytest.raises(
        PluginError,
        match=r"duplicate action id 'ghl.contacts.get': declared by plugin "
        r"'actions.ghl' and by plugin 'dupe-plugin'",
    ):
        build_catalog(pm)


def test_plugins_misspelled_hook_fails_naming_the_plugin(tmp_path, monkeypatch):
    """A hookimpl whose name matches no spec fails when the manager checks pending hooks."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "typo_plugin.py").write_text(
        textwrap.dedent("""
        from connector import hookimpl

        @hookimpl
        def connector_register_actoins():
            return []
    """)
    )
    info = site / "typo_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: typo-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[ghl_connector]\ntypo = typo_plugin\n")
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(PluginError, match=r"typo.*connector_register_actoins"):
        get_plugin_manager()
    result = run_cli("catalog", env={"PYTHONPATH": str(site)})
    assert result.status == 1
    assert result.stderr.startswith("error: plugin 'typo'")
    assert "Traceback" not in result.stderr


def test_plugins_unimportable_entry_point_names_distribution(tmp_path, monkeypatch):
    """An entry point that cannot be imported fails naming the plugin and its distribution."""
    site = tmp_path / "site"
    info = site / "broken_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[ghl_connector]\nbroken = no_such_module_here\n")
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(
        PluginError,
        match=r"cannot load plugin 'broken' \(no_such_module_here, from broken-plugin\)",
    ):
        get_plugin_manager()


def test_plugins_action_of_unknown_app_is_refused():
    """An action whose app no plugin registers is refused with the list of known apps."""

    class Orphan:
        @hookimpl
        def connector_register_actions(self):
            return [
                Action(
                    id="nope.things.get", app="nope", title="x", input_schema={}, output_schema={}
                )
            ]

    pm = get_plugin_manager(entry_points=False)
    pm.register(Orphan(), name="orphan")
    with pytest.raises(PluginError, match=r"action 'nope.things.get' .* unknown app 'nope'"):
        build_catalog(pm)
    assert App  # the descriptor types are part of the public API
