"""Manifest loading: the pack's manifest builds, and broken manifests are reported at their lines."""

from __future__ import annotations

import json
import textwrap

import pytest

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
