"""Manifest loading: the pack's manifest builds, and broken manifests are reported at their lines."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT

from connector.documents.compiled import COMPILED_NAME, compile_manifest, read_pack_manifest
from connector.documents.lazyschema import SchemaFile, plain
from connector.documents.manifest import load_manifest, pack_manifest
from connector.errors import DocumentError

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "actions/demo.things.get.json",
    "type": "object",
    "properties": {
        "input": {
            "type": "object",
            "additionalProperties": False,
            "required": ["thingId"],
            "properties": {"thingId": {"type": "string"}, "name": {"type": "string"}},
        },
        "output": {"type": "object"},
    },
}


def write_pack(tmp_path, manifest: str, schema=SCHEMA):
    (tmp_path / "schemas" / "actions").mkdir(parents=True)
    (tmp_path / "schemas" / "actions" / "demo.things.get.json").write_text(json.dumps(schema))
    path = tmp_path / "manifest.yaml"
    path.write_text(textwrap.dedent(manifest))
    return path


APP = """\
version: 1
apps:
  demo:
    title: Demo
    base_url: http://127.0.0.1:9
    auth: [none]
"""


def test_manifest_pack_builds_every_ghl_action():
    """The shipped manifest loads, and declares GHL's 576 actions (32 of Contacts) with schemas."""
    manifest = pack_manifest()
    ghl = [a for a in manifest.actions.values() if a.app == "ghl"]
    assert len(ghl) == 576
    assert len([a for a in ghl if a.operation and a.path.startswith("/contacts/")]) == 32
    get = manifest.actions["ghl.contacts.get"]
    assert (get.method, get.path, get.scopes) == (
        "GET",
        "/contacts/{contactId}",
        ("contacts.readonly",),
    )
    assert get.input_schema["required"] == ["contactId"]
    assert manifest.actions["ghl.contacts.list"].deprecated
    assert manifest.actions["ghl.contacts.list"].use_instead == "ghl.contacts.search"
    assert manifest.apps["ghl"].headers == {"Version": "2021-07-28"}
    assert manifest.apps["ghl"].rate_limit.requests == 100


def test_manifest_schema_errors_name_line_and_field(tmp_path):
    """A manifest failing its schema lists every problem with file:line:col and field path."""
    path = write_pack(
        tmp_path,
        APP
        + """\
actions:
  demo.things.get:
    title: Get thing
    method: FETCH
    schema: schemas/actions/demo.things.get.json
    scopez: [x]
""",
    )
    with pytest.raises(DocumentError) as info:
        load_manifest(path)
    lines = str(info.value).splitlines()
    assert lines == [
        f"{path}:10:13: actions.demo.things.get.method: 'FETCH' is not one of "
        "['GET', 'POST', 'PUT', 'PATCH', 'DELETE']",
        f"{path}:12:13: actions.demo.things.get.scopez: unknown field 'scopez' [did you mean 'scopes'?]",
    ]


def test_manifest_unplaced_input_and_missing_placeholder(tmp_path):
    """A GET action whose input has no place, or whose path placeholder has no input, is refused."""
    path = write_pack(
        tmp_path,
        APP
        + """\
actions:
  demo.things.get:
    title: Get thing
    method: GET
    path: /things/{id}
    schema: schemas/actions/demo.things.get.json
    params: {thingId: query}
""",
    )
    with pytest.raises(DocumentError) as info:
        load_manifest(path)
    text = str(info.value)
    assert (
        f"{path}:11:11: actions.demo.things.get.path: placeholder {{id}} has no path input" in text
    )
    assert "input 'name' has no place: list it in params or declare body: json" in text


def test_manifest_wire_name_clash_must_be_resolved(tmp_path):
    """Two inputs sent under the same wire name in the same place are refused; a rename resolves it."""
    clash = (
        APP
        + """\
actions:
  demo.things.get:
    title: Get thing
    method: POST
    path: /things/{thingId}
    schema: schemas/actions/demo.things.get.json
    params:
      thingId: path
      name: {in: path, name: thingId}
"""
    )
    with pytest.raises(
        DocumentError, match=r"inputs 'thingId' and 'name' both go to path 'thingId'"
    ):
        load_manifest(write_pack(tmp_path, clash))


def test_manifest_unknown_app_and_use_instead(tmp_path):
    """An action of an undeclared app, or pointing to an unknown replacement, is refused."""
    path = write_pack(
        tmp_path,
        APP
        + """\
actions:
  other.things.get:
    title: Get thing
    schema: schemas/actions/demo.things.get.json
    body: json
    params: {thingId: path}
    path: /things/{thingId}
    use_instead: other.things.find
""",
    )
    with pytest.raises(
        DocumentError, match=r"action 'other.things.get' belongs to unknown app 'other'"
    ):
        load_manifest(path)


def test_manifest_missing_schema_file(tmp_path):
    """A schema path that does not exist is reported at the action's schema line."""
    path = write_pack(
        tmp_path,
        APP
        + """\
actions:
  demo.things.get:
    title: Get thing
    schema: schemas/actions/nope.json
""",
    )
    with pytest.raises(
        DocumentError,
        match=r"manifest.yaml:10:13: actions.demo.things.get.schema: .*nope.json: cannot read schema",
    ):
        load_manifest(path)


def test_manifest_pack_fast_path_equals_the_checked_read():
    """The pack's manifest as every process reads it (compiled JSON, schemas on first use)
    equals the guarded, positioned read with every action's params checked against its input."""
    checked = load_manifest(ROOT / "manifest.yaml", schema_root=ROOT, check_schemas=False)
    fast = pack_manifest()
    assert fast.apps == checked.apps
    assert list(fast.actions) == list(checked.actions)
    assert list(fast.triggers) == list(checked.triggers)
    for key, action in checked.actions.items():
        assert fast.actions[key] == action, key  # schemas compared too: each is read here
    for key, trigger in checked.triggers.items():
        assert fast.triggers[key] == trigger, key


def test_manifest_compiled_form_is_current():
    """manifest.compiled.json is manifest.yaml's data (tools/gen_catalog.py writes both)."""
    text = (ROOT / "manifest.yaml").read_bytes()
    current = (ROOT / COMPILED_NAME).read_text(encoding="utf-8") == compile_manifest(text)
    assert current, f"{COMPILED_NAME} is stale: run python tools/gen_catalog.py"


def test_manifest_stale_compiled_form_is_not_used(tmp_path):
    """An edited manifest.yaml is read as YAML, not shadowed by its old compiled form."""
    (tmp_path / "manifest.yaml").write_text(APP, encoding="utf-8")
    (tmp_path / COMPILED_NAME).write_text(compile_manifest(APP.encode()), encoding="utf-8")
    assert read_pack_manifest(tmp_path / "manifest.yaml").data["apps"]["demo"]["title"] == "Demo"
    edited = APP.replace("title: Demo", "title: Edited")
    (tmp_path / "manifest.yaml").write_text(edited, encoding="utf-8")
    assert read_pack_manifest(tmp_path / "manifest.yaml").data["apps"]["demo"]["title"] == "Edited"
    (tmp_path / COMPILED_NAME).write_text("{not json", encoding="utf-8")
    assert read_pack_manifest(tmp_path / "manifest.yaml").data["apps"]["demo"]["title"] == "Edited"


LAZY_PROBE = """
import json, sys
from connector.catalog import build_catalog
from connector.documents.schema import schemas_read
from connector.runtime import Runtime, Settings

def ghl():
    return [name for name in schemas_read() if name.startswith("actions/ghl.")]

catalog = build_catalog()
listed = ghl()
with Runtime(catalog, Settings(), auth=lambda app, action: None) as runtime:
    runtime.dry_run("ghl.contacts.get", {"contactId": "c1"})
print(json.dumps({"actions": len(catalog.actions), "listed": listed, "called": ghl()}))
"""


def test_manifest_pack_schemas_are_read_on_first_use():
    """Building the catalog reads no GHL action schema; calling one action reads its own only
    (a fresh process: this one may have read them all)."""
    done = subprocess.run(
        [sys.executable, "-c", LAZY_PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["actions"] > 576
    assert found["listed"] == []
    assert found["called"] == ["actions/ghl.contacts.get.json"]


def test_manifest_lazy_schema_reads_its_file_once():
    """The input and output parts of one schema file share one read, on first access."""
    reads = []

    def load():
        reads.append(1)
        return SCHEMA

    file = SchemaFile(load)
    given, answer = file.part("input"), file.part("output")
    assert reads == [] and not given.loaded
    assert given["required"] == ["thingId"] and reads == [1]
    assert dict(answer) == {"type": "object"} and reads == [1]
    assert plain(given) is plain(given) and json.dumps(plain(answer)) == '{"type": "object"}'
    assert file.part("missing") == {}
