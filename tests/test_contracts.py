"""Invariants of the project itself: hook docs and tests, schemas, exports, built-ins."""

from __future__ import annotations

import ast
import inspect
import io
import json
import re
import tokenize

import pytest
from conftest import ROOT

import connector
from connector import hookspecs
from connector.catalog import build_catalog
from connector.documents.manifest import pack_manifest
from connector.plugins import get_plugin_manager

HOOKS = sorted(
    name for name, fn in vars(hookspecs).items() if name.startswith("connector_") and callable(fn)
)
SCHEMA_FILES = sorted((ROOT / "schemas").rglob("*.json"))


@pytest.mark.parametrize("hook", HOOKS)
def test_contract_hook_spec_is_documented(hook):
    """Every hook spec has a docstring with a :param for each argument and says what it returns."""
    fn = getattr(hookspecs, hook)
    doc = inspect.getdoc(fn) or ""
    for name in inspect.signature(fn).parameters:
        assert f":param {name}:" in doc, f"{hook}: no :param {name}: in its docstring"
    assert ":returns:" in doc, f"{hook}: its docstring does not say what it returns"


@pytest.mark.parametrize("hook", HOOKS)
def test_contract_hook_has_a_test(hook):
    """Every hook spec has a test named test_hook_<name>."""
    sources = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    assert re.search(rf"def test_hook_{hook}\w*\(", sources), f"no test_hook_{hook} test"


def test_hook_connector_register_apps():
    """The built-in GHL plugin registers the ghl app through the hook."""
    assert build_catalog(get_plugin_manager(entry_points=False)).app("ghl").title == "HighLevel"


def test_hook_connector_register_actions():
    """The manifest's ids, plus the generic HTTP action declared in Python, are the built-ins'."""
    catalog = build_catalog(get_plugin_manager(entry_points=False))
    assert set(pack_manifest().actions) | {"http.request"} == set(catalog.actions)


def test_hook_connector_register_triggers():
    """The manifest's triggers are the ones the built-ins register."""
    catalog = build_catalog(get_plugin_manager(entry_points=False))
    assert set(pack_manifest().triggers) == set(catalog.triggers)


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_contract_schema_files_are_valid_and_named_by_id(path):
    """Every schema passes check_schema and its $id equals its path under schemas/."""
    from jsonschema import Draft202012Validator

    schema = json.loads(path.read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$id"] == str(path.relative_to(ROOT / "schemas"))


def test_contract_public_api_sorted_and_complete():
    """connector.__all__ is sorted and every name in it resolves."""

    def kind(name):  # isort style: CONSTANTS, then Classes, then functions
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert connector.__all__ == sorted(connector.__all__, key=kind)
    for name in connector.__all__:
        assert getattr(connector, name) is not None


def test_contract_no_module_does_work_at_import():
    """Importing the package does not load the manifest, schemas or plugins."""
    import subprocess
    import sys

    code = "import connector, sys; print(sorted(m for m in sys.modules if m in ('yaml','jsonschema','httpx')))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "[]"


def test_contract_modules_stay_small():
    """No module grows past 700 lines: big enough for one noun's whole story (the sync engine
    with its decisions), small enough to read in one sitting. Packages, not splits, hold more."""
    big = {}
    for folder in ("connector", "actions", "triggers"):
        for path in (ROOT / folder).rglob("*.py"):
            lines = len(path.read_text().splitlines())
            if lines > 700:
                big[str(path.relative_to(ROOT))] = lines
    assert big == {}


# Modules that still hold the literal "ghl", with how many times and why (reviewed). Each is the
# name of the fixed side of a two-way sync (its role, ``Side``: the sync documents' keyword in
# ``direction: ghl_to_partner``, ``source_of_truth: ghl``, ``adapters.ghl``, and the id map's
# ``ghl_id`` columns), never an app id: the app on that side is the catalog's hub
# (``SyncSpec.app("ghl")``). The sandbox and the demo stand in for HighLevel itself.
GHL_ROLE_LITERALS = {
    "recipes/flows.py": 3,  # obj.allows("ghl") and spec.app("ghl"): the hub side's role
    "sync/backfill.py": 17,  # adapters["ghl"], ids.find(..., "ghl", ...): role keys
    "sync/change.py": 2,  # the outcome's ids by role
    "sync/engine.py": 5,  # the engine's sides and link ids by role
    "sync/fieldcheck.py": 3,  # the hub side's names, its adapters and custom fields by role
    "sync/events.py": 1,  # a hub webhook's change comes from side "ghl"
    "sync/idmap.py": 6,  # the link's per-role columns
    "sync/mapping.py": 1,  # which field name a source role reads
    "sync/spec.py": 7,  # Side = Literal["ghl", "partner"], SIDES, other(), FieldMap by role
}


def test_contract_no_ghl_app_id_literal_outside_the_hub_data():
    """The hub is data (``hub: true`` in its manifest, :attr:`Catalog.hub`): no module of
    connector/ outside sandbox/ and demo/ holds the string "ghl" except the reviewed sync-role
    uses above (help text and docstrings name ids like ``ghl.contacts.get``, never "ghl")."""
    found: dict[str, int] = {}
    for path in sorted((ROOT / "connector").rglob("*.py")):
        rel = path.relative_to(ROOT / "connector").as_posix()
        if rel.startswith(("sandbox/", "demo/")):
            continue
        tree = ast.parse(path.read_text(), str(path))
        count = sum(isinstance(n, ast.Constant) and n.value == "ghl" for n in ast.walk(tree))
        if count:
            found[rel] = count
    assert found == GHL_ROLE_LITERALS


PARTNER_NAMES = re.compile(r"superphone|linkedphone", re.IGNORECASE)
STRING_TOKENS = {tokenize.STRING, getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING)}


def test_contract_no_partner_app_named_in_the_core():
    """Outside the sandboxes and the demo (``demo/``, ``cli/demo.py``), no module of connector/
    names SuperPhone or LinkedPhone, not even in a comment; the other CLI modules may in their
    help examples (strings) only."""
    found = []
    for path in sorted((ROOT / "connector").rglob("*.py")):
        rel = path.relative_to(ROOT / "connector").as_posix()
        if rel.startswith(("sandbox/", "demo/")) or rel == "cli/demo.py":
            continue
        tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
        help_text = STRING_TOKENS if rel.startswith("cli/") else set()
        found += [f"connector/{rel}:{t.start[0]}: {t.string.strip()[:60]}" for t in tokens
                  if t.type not in help_text and PARTNER_NAMES.search(t.string)]
    assert found == []


def test_contract_top_of_the_package_stays_small():
    """The top of connector/ holds at most a dozen modules; the rest live in subpackages named
    for a capability."""
    top = sorted(p.name for p in (ROOT / "connector").glob("*.py"))
    assert len(top) <= 12, top


def test_contract_no_module_is_named_after_the_standard_library():
    """No module or package of connector/ or the built-in plugins takes a standard-library name
    (``http``, ``json``, ``queue``...): one noun per module, and none that shadows what it may
    import."""
    import sys

    named = sorted(
        str(p.relative_to(ROOT))
        for top in ("connector", "actions", "triggers") for p in (ROOT / top).rglob("*")
        if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))
        and p.stem in sys.stdlib_module_names
    )  # fmt: skip
    assert named == []


def test_contract_architecture_maps_every_module():
    """docs/architecture.md opens with the module map: every module of connector/ (outside the
    sandboxes, the demo and the CLI, which have their own sections) on a line of its own."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    mapped = set(re.findall(r"^\s*[│├└─ ]*([a-z_]+(?:/[a-z_]+)*\.py)\b", text, re.M))
    missing = []
    for path in sorted((ROOT / "connector").rglob("*.py")):
        relative = path.relative_to(ROOT / "connector")
        if relative.parts[0] in ("sandbox", "demo", "cli") or path.name == "__main__.py":
            continue
        shown = path.name if len(relative.parts) == 1 else "/".join(relative.parts[-2:])
        if path.name == "__init__.py":
            shown = "/".join(relative.parts[-2:]) if len(relative.parts) > 1 else "__init__.py"
        if shown not in mapped:
            missing.append(str(relative))
    assert missing == []


def test_hook_connector_register_filters():
    """Built-in filters come through the hook, and a plugin's filter works in a template."""
    from connector.expressions.syntax import FilterSpec
    from connector.expressions.template import parse_template

    class Shout:
        @connector.hookimpl
        def connector_register_filters(self):
            return {"shout": FilterSpec(lambda value: str(value).upper() + "!", 0, 0, "shouts")}

    pm = get_plugin_manager(entry_points=False)
    pm.register(Shout(), name="shout-plugin")
    catalog = build_catalog(pm)
    assert {"lower", "e164", "shout"} <= set(catalog.filters)
    template = parse_template("{{ trigger.name | shout }}", filters=catalog.filters)
    assert template.render({"trigger": {"name": "ann"}}) == "ANN!"


def test_hook_connector_register_executors():
    """Executors come through the hook: built-in kinds, and a plugin's kind runs its actions."""
    from connector.client.request import Reply
    from connector.runtime import Runtime

    class EchoExecutor:
        def execute(self, call):
            return Reply(200, {}, {"echo": dict(call.input), "key": call.limiter_key})

        def preview(self, call):
            return {"action": call.action.id, "echo": dict(call.input)}

    class EchoPlugin:
        @connector.hookimpl
        def connector_register_apps(self):
            return [connector.App(id="echo", title="Echo", base_url="http://127.0.0.1:9", auth=("none",))]

        @connector.hookimpl
        def connector_register_actions(self):
            schema = {"type": "object", "properties": {"word": {"type": "string"}}}
            return [connector.Action(id="echo.words.say", app="echo", title="Say", kind="echo",
                                     input_schema=schema, output_schema={"type": "object"})]

        @connector.hookimpl
        def connector_register_executors(self):
            return {"echo": EchoExecutor()}

    pm = get_plugin_manager(entry_points=False)
    pm.register(EchoPlugin(), name="echo-plugin")
    catalog = build_catalog(pm)
    assert {"http", "http_request", "echo"} <= set(catalog.executors)
    with Runtime(catalog) as runtime:
        assert runtime.call("echo.words.say", {"word": "hi"}) == {"echo": {"word": "hi"}, "key": "default"}
        assert runtime.dry_run("echo.words.say", {"word": "hi"}) == {"action": "echo.words.say", "echo": {"word": "hi"}}


PUBLIC_API = [
    "PROJECT_NAME", "REDIRECT_STATUSES", "Action", "Answer", "App", "AuthError", "Call",
    "Catalog", "ClientFactory", "ConnectorError", "DocumentError", "Exchange", "Executor",
    "ExpressionError", "FilterSpec", "GuardedUrl", "HttpNote", "InputError", "Location", "Manifest", "Param", "PluginError",
    "Problem", "RateLimit", "RateLimitError", "RecipeError", "RemoteError", "Reply",
    "RequestSpec", "ResponseLimitError", "Runtime", "Settings", "StoreError", "Transcript", "Trigger",
    "UrlGuard", "build_catalog", "check_target", "fill_path", "get_plugin_manager", "hookimpl", "is_secret_name",
    "load_manifest", "load_schema", "new_client", "note_request", "pack_manifest", "safe_url",
]  # fmt: skip


def test_contract_public_api_is_pinned():
    """`connector.__all__` is the one public plugin API: changing it is a deliberate act, made
    here and in docs/plugins.md together."""
    assert connector.__all__ == PUBLIC_API
    text = (ROOT / "docs" / "plugins.md").read_text()
    undocumented = [name for name in PUBLIC_API if f"`{name}" not in text]
    assert undocumented == []


def _connector_imports(path):
    """The `connector...` modules a file imports (absolute imports; relative ones stay inside)."""
    import ast

    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.extend([node.module] if node.module.split(".")[0] == "connector" else [])
        elif isinstance(node, ast.Import):
            found.extend(a.name for a in node.names if a.name.split(".")[0] == "connector")
    return found


def test_contract_builtin_plugins_import_only_the_public_api():
    """actions/ and triggers/ are plugins like any other: they import `connector` (its
    __all__) and nothing deeper."""
    deeper = {}
    for folder in ("actions", "triggers"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            bad = [m for m in _connector_imports(path) if m != "connector"]
            if bad:
                deeper[str(path.relative_to(ROOT))] = bad
    assert deeper == {}


def test_contract_builtin_plugins_are_found_not_named():
    """The core lists no built-in app: every module of actions/ and triggers/ is registered."""
    from connector.plugins import builtin_plugins

    names = builtin_plugins()
    for folder in ("actions", "triggers"):
        for path in (ROOT / folder).iterdir():
            if path.name.startswith("_") or not (path.suffix == ".py" or path.is_dir()):
                continue
            if path.is_dir() and not (path / "__init__.py").exists():
                continue
            assert f"{folder}.{path.stem}" in names
