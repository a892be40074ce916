"""The plugin manager: built-ins, external entry-point plugins, and loud failures."""

from __future__ import annotations

import json
import textwrap

import pluggy
import pytest
from conftest import run_cli

from connector import Action, App, hookimpl, hookspecs
from connector.catalog import build_catalog
from connector.errors import PluginError
from connector.hookspecs import PROJECT_NAME
from connector.plugins import BUILTIN_PLUGINS, collect_actions, get_plugin_manager
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


def test_plugins_duplicate_action_id_names_both_plugins(caplog):
    """Two plugins declaring one action id: a warning naming both; the first one is kept."""
    pm = get_plugin_manager(entry_points=False)
    pm.register(_Duplicate(), name="dupe-plugin")
    catalog = build_catalog(pm)
    assert catalog.action("ghl.contacts.get").app == "ghl"
    assert (
        "duplicate action id 'ghl.contacts.get': declared by plugin 'actions.ghl' and by plugin"
        " 'dupe-plugin'; the later one is left out"
    ) in caplog.messages


def test_plugins_misspelled_hook_fails_naming_the_plugin(tmp_path, monkeypatch):
    """A hookimpl whose name matches no spec: the plugin is skipped with a one-line warning
    naming it and the hook; the command still works."""
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
    assert "connector_register_actoins" in get_plugin_manager().skipped["typo"]
    result = run_cli("catalog", env={"PYTHONPATH": str(site)})
    assert result.status == 0, result
    (line,) = result.stderr.splitlines()
    assert line.startswith("WARNING connector.plugins: plugin 'typo' skipped: unknown hook")
    assert "did you mean 'connector_register_actions'?" in line


def test_plugins_unimportable_entry_point_names_distribution(tmp_path, monkeypatch):
    """An entry point that cannot be imported is skipped, naming the plugin and its distribution."""
    site = tmp_path / "site"
    info = site / "broken_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[ghl_connector]\nbroken = no_such_module_here\n")
    monkeypatch.syspath_prepend(str(site))
    why = get_plugin_manager().skipped["broken"]
    assert why.startswith("cannot load no_such_module_here, from broken-plugin: ModuleNotFound")


def test_plugins_action_of_unknown_app_is_refused(caplog):
    """An action whose app no plugin registers is left out with a warning listing the known
    apps (an error from a plain pluggy manager)."""

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
    assert "nope.things.get" not in build_catalog(pm).actions
    assert any("action 'nope.things.get'" in m and "unknown app 'nope'" in m
               for m in caplog.messages)
    plain = pluggy.PluginManager(PROJECT_NAME)
    plain.add_hookspecs(hookspecs)
    plain.register(Orphan(), name="orphan")
    with pytest.raises(PluginError, match=r"action 'nope.things.get' .* unknown app 'nope'"):
        collect_actions(plain, {})
    assert App  # the descriptor types are part of the public API


BROKEN_MODULE = """
from connector import hookimpl

raise RuntimeError("half-installed: settings file missing")
"""


def test_plugins_broken_plugin_fails_only_the_command_that_needs_it(plugin_dist):
    """A plugin whose import raises: every command still works after a one-line warning, and a
    command naming an id that plugin might declare fails saying the plugin was skipped."""
    (plugin_dist / "acme_plugin" / "__init__.py").write_text(BROKEN_MODULE)
    env = {"PYTHONPATH": str(plugin_dist)}
    listed = run_cli("catalog", "--app", "ghl", env=env)
    assert listed.status == 0, listed
    assert listed.stderr.splitlines() == [
        "WARNING connector.plugins: plugin 'acme' skipped: cannot load acme_plugin, from"
        " acme-connector: RuntimeError: half-installed: settings file missing"
    ]
    needed = run_cli("call", "acme.widgets.get", "--input", '{"widgetId": "w1"}', env=env)
    assert needed.status == 1
    assert "error: unknown action 'acme.widgets.get' [it may be a broken plugin's: plugin 'acme'"\
        " was skipped: cannot load" in needed.stderr
    assert "Traceback" not in needed.stderr


def _doc_block(heading: str) -> str:
    """The first ```python block under ``heading`` in docs/plugins.md."""
    from conftest import ROOT

    text = (ROOT / "docs" / "plugins.md").read_text()
    section = text.split(heading, 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_plugins_doc_example_adds_an_action_to_the_ghl_app(tmp_path, monkeypatch):
    """The docs' plugin adding `ghl.calendars.list` to the built-in ghl app works as written:
    importing it reads nothing (its schema file is written only after the import), the app's
    headers and the location input are applied, its scopes are declared."""
    pkg = tmp_path / "ghl_calendars"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(_doc_block("## Adding actions to the existing `ghl` app"))
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    plugin = importlib.import_module("ghl_calendars")  # no schema file yet: no work at import
    schema = {"properties": {
        "input": {"type": "object", "required": ["locationId"], "additionalProperties": False,
                  "properties": {"locationId": {"type": "string"}}},
        "output": {"type": "object"},
    }}
    (pkg / "ghl.calendars.list.json").write_text(json.dumps(schema))
    pm = get_plugin_manager(entry_points=False)
    pm.register(plugin, name="ghl_calendars")
    catalog = build_catalog(pm)
    action = catalog.action("ghl.calendars.list")
    assert (action.app, action.scopes) == ("ghl", ("calendars.readonly",))
    with Runtime(catalog, Settings(location_id="LOC1")) as runtime:
        preview = runtime.dry_run("ghl.calendars.list", {})
    assert preview["url"].endswith("/calendars/?locationId=LOC1")
    assert preview["headers"]["Version"] == "2021-07-28"


def test_plugins_doc_filter_example_uses_the_public_filterspec():
    """The docs' filter plugin imports FilterSpec and ExpressionError from `connector` and works
    in a template, arguments counted as documented."""
    from connector.expressions.template import parse_template

    namespace: dict[str, object] = {}
    exec(_doc_block("## Expression filters: `FilterSpec`"), namespace)  # the documented code
    filters = namespace["connector_register_filters"]()  # type: ignore[operator]
    template = parse_template("{{ trigger.name | initials('.') }}", filters=filters)
    assert template.render({"trigger": {"name": "ada love lace"}}) == "A.L.L"


def test_plugins_doc_lists_every_manifest_key():
    """docs/plugins.md names every key the manifest schema allows for apps, actions, triggers."""
    from conftest import ROOT

    schema = json.loads((ROOT / "schemas" / "manifest.schema.json").read_text())
    text = (ROOT / "docs" / "plugins.md").read_text()
    for part, heading in (("app", "### `apps.<id>`"), ("action", "### `actions.<id>`"),
                          ("trigger", "### `triggers.<id>`")):
        section = text.split(heading, 1)[1].split("###", 1)[0]
        for key in schema["$defs"][part]["properties"]:
            assert f"| `{key}`" in section, f"{part} key {key!r} is not in docs/plugins.md"


def test_plugins_doc_partner_walkthrough_is_the_tested_package():
    """The walkthrough's module is the one tests/test_thirdparty_partner.py installs and syncs
    (its every line, docstrings aside), so the documented plugin is known to work."""
    from conftest import ROOT

    shown = _doc_block("## A partner app as its own package")
    package = (ROOT / "tests" / "thirdparty" / "zenline_connector" / "__init__.py").read_text()
    lines = {line.rstrip() for line in package.splitlines()}
    missing = [line for line in shown.splitlines()
               if line.strip() and not line.lstrip().startswith("#") and line.rstrip() not in lines]
    assert missing == []
