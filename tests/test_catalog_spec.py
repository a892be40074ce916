"""Conformance of the GHL catalog (manifest.yaml, schemas/actions/) with the official spec."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from connector.documents.compiled import COMPILED_NAME

REPO = Path(__file__).parents[1]
SPEC = Path(__file__).parents[1].parent / "shared/ghl-openapi/apps/contacts.json"
SCHEMAS = REPO / "schemas"
ACTION_SCHEMAS = sorted((SCHEMAS / "actions").glob("ghl.*.json"))
CONTACT_SCHEMAS = [
    SCHEMAS / a["schema"].removeprefix("schemas/")
    for a in yaml.safe_load((REPO / "manifest.yaml").read_text(encoding="utf-8"))[
        "actions"
    ].values()
    if a.get("spec") == "contacts"
]
NO_SPEC = f"official spec not found at {SPEC} (checkout ../shared next to the repo)"

# Where the spec is silent or wrong and the catalog says more; docs/catalog.md explains each.
BULK_SCOPE_EXCEPTION = {  # the spec declares no security for these; the catalog uses contacts.write
    ("POST", "/contacts/bulk/tags/update/{type}"),
    ("POST", "/contacts/bulk/business"),
}
HAND_WRITTEN_INPUTS = {  # input name -> where it goes, for inputs the spec does not declare
    "ghl.contacts.search": {
        "locationId": "body",
        "pageLimit": "body",
        "page": "body",
        "searchAfter": "body",
        "filters": "body",
        "sort": "body",
        "query": "body",
    },
    "ghl.tags.bulk_update": {"type": "path"},
}
HAND_WRITTEN_REQUIRED = {
    "ghl.contacts.search": {"locationId", "pageLimit"},
    "ghl.tags.bulk_update": {"type"},
}
# Spec examples that contradict their own schema; the example builder ignores them.
KNOWN_BAD_EXAMPLES = {
    "#/components/schemas/ContactsSearchSchema/properties/followers": "641c094001436dbc2081e642",
}
MISSING = object()


def load_spec() -> dict[str, Any]:
    """Read the official Contacts spec."""
    return json.loads(SPEC.read_text(encoding="utf-8"))


def spec_operations() -> list[Any]:
    """One pytest param per spec operation (a skipped one when the spec is absent)."""
    if not SPEC.exists():
        return [pytest.param(None, marks=pytest.mark.skip(reason=NO_SPEC), id="no-spec")]
    return [
        pytest.param((method.upper(), path), id=f"{method.upper()} {path}")
        for path, item in load_spec()["paths"].items()
        for method in item
    ]


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    if not SPEC.exists():
        pytest.skip(NO_SPEC)
    return load_spec()


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data = yaml.safe_load((REPO / "manifest.yaml").read_text(encoding="utf-8"))
    # Only GHL's part is generated from the official spec; partner apps (tools/apps/*.yaml)
    # are checked by their own tests (tests/test_superphone.py, ...).
    for key in ("actions", "triggers"):
        data[key] = {k: v for k, v in data.get(key, {}).items() if k.startswith("ghl.")}
    # This file checks the Contacts spec in depth; all specs: tests/test_catalog_conformance.py.
    data["actions"] = {k: v for k, v in data["actions"].items() if v.get("spec") == "contacts"}
    return data


def deref(spec: dict[str, Any], node: dict[str, Any], where: str) -> tuple[dict[str, Any], str]:
    """Follow ``$ref``s (local and ../common) to the schema and its pointer."""
    while "$ref" in node:
        file_part, _, pointer = node["$ref"].partition("#")
        doc = spec if not file_part else json.loads((SPEC.parent / file_part).read_text())
        for part in pointer.split("/")[1:]:
            doc = doc[part]
        node, where = doc, f"{file_part}#{pointer}"
    return node, where


def build_example(spec: dict[str, Any], schema: dict[str, Any], where: str) -> Any:
    """Build a value from the schema's ``example``s, recursively; MISSING when none apply."""
    schema, where = deref(spec, schema, where)
    if "example" in schema and where not in KNOWN_BAD_EXAMPLES:
        return schema["example"]
    if "properties" in schema:
        built = {
            name: build_example(spec, sub, f"{where}/properties/{name}")
            for name, sub in schema["properties"].items()
        }
        values = {k: v for k, v in built.items() if v is not MISSING}
        return values or MISSING
    if "items" in schema:
        item = build_example(spec, schema["items"], f"{where}/items")
        return MISSING if item is MISSING else [item]
    return MISSING


def spec_op(spec: dict[str, Any], key: tuple[str, str]) -> dict[str, Any]:
    method, path = key
    return spec["paths"][path][method.lower()]


def action_for(manifest: dict[str, Any], key: tuple[str, str]) -> tuple[str, dict[str, Any]]:
    method, path = key
    found = [
        (aid, a)
        for aid, a in manifest["actions"].items()
        if a.get("method") == method and a.get("path") == path
    ]
    assert len(found) == 1, f"{method} {path}: {len(found)} actions, expected exactly one"
    return found[0]


def action_schema(action: dict[str, Any]) -> dict[str, Any]:
    return json.loads((REPO / action["schema"]).read_text(encoding="utf-8"))


def spec_inputs(spec: dict[str, Any], op: dict[str, Any]) -> tuple[dict[str, str], set[str]]:
    """Return the spec's inputs (name -> path/query/body) and the required ones."""
    inputs: dict[str, str] = {}
    required: set[str] = set()
    for param in op.get("parameters", []):
        if param["in"] in ("path", "query"):
            inputs[param["name"]] = param["in"]
            if param.get("required"):
                required.add(param["name"])
    media = op.get("requestBody", {}).get("content", {}).get("application/json")
    if media is not None:
        body, _ = deref(spec, media["schema"], "")
        inputs.update({name: "body" for name in body.get("properties", {})})
        required.update(body.get("required", []))
    return inputs, required


def walk(schema: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield every subschema with its location."""
    if isinstance(schema, dict):
        yield where, schema
        for name, sub in schema.get("properties", {}).items():
            yield from walk(sub, f"{where}.{name}")
        if "items" in schema:
            yield from walk(schema["items"], f"{where}[]")
        for key in ("anyOf", "oneOf", "allOf"):
            for i, sub in enumerate(schema.get(key, [])):
                yield from walk(sub, f"{where}|{key}[{i}]")


def test_manifest_validates_against_manifest_schema(manifest):
    """manifest.yaml passes schemas/manifest.schema.json."""
    schema = json.loads((SCHEMAS / "manifest.schema.json").read_text(encoding="utf-8"))
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in Draft202012Validator(schema).iter_errors(manifest)
    ]
    assert errors == []


@pytest.mark.parametrize(
    "path", sorted(SCHEMAS.rglob("*.json")), ids=lambda p: p.relative_to(SCHEMAS).as_posix()
)
def test_schema_file_is_valid_and_id_is_its_path(path):
    """Each file under schemas/ is valid draft 2020-12 and its $id is its path under schemas/."""
    document = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(document)
    assert document["$id"] == path.relative_to(SCHEMAS).as_posix()


@pytest.mark.parametrize("path", ACTION_SCHEMAS, ids=lambda p: p.name)
def test_action_schema_holds_input_and_output(path):
    """Each action schema is an object schema with exactly `input` and `output`."""
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(document["properties"]) == {"input", "output"}
    assert document["properties"]["input"]["type"] == "object"


def test_every_manifest_action_has_its_schema_file(manifest):
    """Manifest actions and schema files are the same set, named by action id."""
    assert {f"schemas/actions/{p.name}" for p in CONTACT_SCHEMAS} == {
        a["schema"] for a in manifest["actions"].values()
    }
    for aid, action in manifest["actions"].items():
        assert action["schema"] == f"schemas/actions/{aid}.json"


def test_every_action_is_a_spec_operation(spec, manifest):
    """No action exists without a spec operation of the same method and path."""
    operations = {(m.upper(), p) for p, item in spec["paths"].items() for m in item}
    actions = manifest["actions"].items()
    extra = [aid for aid, a in actions if (a["method"], a["path"]) not in operations]
    assert extra == []
    assert len(manifest["actions"]) == len(operations)


@pytest.mark.parametrize("key", spec_operations())
def test_operation_has_one_action_with_its_id_and_scopes(spec, manifest, key):
    """The operation has exactly one action with the same operationId, scopes and deprecation."""
    op = spec_op(spec, key)
    aid, action = action_for(manifest, key)
    assert action["operation"] == op["operationId"]
    scopes = sorted({s for req in op.get("security", []) for ss in req.values() for s in ss})
    if key in BULK_SCOPE_EXCEPTION:
        assert scopes == [], f"{aid}: the spec now declares security; drop the exception"
        assert action["scopes"] == ["contacts.write"]
        assert "contacts.write" in action_schema(action)["description"]
    else:
        assert sorted(action["scopes"]) == scopes
    assert action["deprecated"] is bool(op.get("deprecated", False))


@pytest.mark.parametrize("key", spec_operations())
def test_operation_inputs_and_required_match_spec(spec, manifest, key):
    """Every spec input is in the flat input schema, and the spec's required ones are required."""
    aid, action = action_for(manifest, key)
    inputs, required = spec_inputs(spec, spec_op(spec, key))
    schema = action_schema(action)["properties"]["input"]
    extra = HAND_WRITTEN_INPUTS.get(aid, {})
    assert set(schema["properties"]) == set(inputs) | set(extra)
    assert set(schema.get("required", [])) == required | HAND_WRITTEN_REQUIRED.get(aid, set())
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize("key", spec_operations())
def test_operation_param_locations_match_spec(spec, manifest, key):
    """`params` lists exactly the spec's path and query inputs, each in its spec location."""
    aid, action = action_for(manifest, key)
    inputs, _ = spec_inputs(spec, spec_op(spec, key))
    expected = {**inputs, **HAND_WRITTEN_INPUTS.get(aid, {})}
    wire = {k: v for k, v in expected.items() if v != "body"}
    assert action.get("params", {}) == wire
    has_body = any(v == "body" for v in expected.values())
    if key[0] == "DELETE":
        assert (action.get("body") == "json") is has_body
    has_location = "locationId" in expected
    assert (action.get("location_param") == "locationId") is has_location


@pytest.mark.parametrize("key", spec_operations())
def test_spec_response_examples_validate_against_output(spec, manifest, key):
    """The spec's own success-response examples validate against the action's output schema."""
    op = spec_op(spec, key)
    aid, action = action_for(manifest, key)
    code = min(c for c in op["responses"] if c.startswith("2"))
    media = op["responses"][code].get("content", {}).get("application/json", {})
    examples = [e["value"] for e in media.get("examples", {}).values() if "value" in e]
    if "example" in media:
        examples.append(media["example"])
    if "schema" in media:
        built = build_example(spec, media["schema"], "")
        if built is not MISSING:
            examples.append(built)
    if not examples:
        pytest.skip(f"{aid}: the spec gives no {code} response example (output is hand-written)")
    validator = Draft202012Validator(action_schema(action)["properties"]["output"])
    for example in examples:
        errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(example)]
        assert errors == [], aid


def test_known_bad_spec_examples_are_still_bad(spec):
    """Each example the builder ignores is still wrong in the spec (else drop it from the list)."""
    for pointer, value in KNOWN_BAD_EXAMPLES.items():
        node, _ = deref(spec, {"$ref": pointer}, "")
        assert node.get("example") == value, pointer


@pytest.mark.parametrize("path", ACTION_SCHEMAS, ids=lambda p: p.name)
def test_action_schema_examples_and_descriptions(path):
    """Every property has a description and every `examples` value fits its own subschema."""
    document = json.loads(path.read_text(encoding="utf-8"))
    problems = []
    for where, sub in walk(document):
        for name, prop in sub.get("properties", {}).items():
            if where and "description" not in prop:
                problems.append(f"{where}.{name}: no description")
        for example in sub.get("examples", []):
            for error in Draft202012Validator(sub).iter_errors(example):
                problems.append(f"{where}: example {example!r}: {error.message}")
    assert problems == []


def test_pagination_names_real_inputs_and_outputs(manifest):
    """Every input a pagination block names exists, and its items path is in the output."""
    paged = {aid: a for aid, a in manifest["actions"].items() if "pagination" in a}
    assert set(paged) == {
        "ghl.contacts.list",
        "ghl.contacts.search",
        "ghl.contacts.list_by_business",
    }
    for aid, action in paged.items():
        page = action["pagination"]
        schema = action_schema(action)["properties"]
        names = [page["limit"]["param"], *page.get("next", {})]
        names += [page[k] for k in ("page", "offset") if k in page]
        assert set(names) <= set(schema["input"]["properties"]), aid
        for dotted in [page["items"], *(v for v in page.get("next", {}).values())]:
            node = (
                schema["output"]
                if not dotted.startswith("$last.")
                else (schema["output"]["properties"][page["items"]]["items"])
            )
            for part in dotted.removeprefix("$last.").split("."):
                node = node["properties"][part]
        assert page["limit"]["max"] >= page["limit"]["default"]


def test_deprecated_list_points_to_search(manifest):
    """The deprecated GET /contacts/ action names its replacement, which exists."""
    listing = manifest["actions"]["ghl.contacts.list"]
    assert listing["deprecated"] is True
    assert listing["use_instead"] in manifest["actions"]


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    if not SPEC.exists():
        pytest.skip(NO_SPEC)
    out = tmp_path_factory.mktemp("catalog")
    run_generator(out)
    return out


def run_generator(out: Path) -> None:
    """Run tools/gen_catalog.py as its own process, writing under ``out``."""
    script = REPO / "tools" / "gen_catalog.py"
    cmd = [sys.executable, str(script), "--specs", str(SPEC.parent), "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def tree(root: Path) -> dict[str, bytes]:
    files = [root / "manifest.yaml", root / COMPILED_NAME]
    files += sorted((root / "schemas/actions").glob("ghl.*.json"))
    return {f.relative_to(root).as_posix(): f.read_bytes() for f in files}


def test_generated_catalog_is_up_to_date(generated):
    """The committed manifest.yaml and action schemas are exactly what the generator writes."""
    assert tree(REPO) == tree(generated)


def test_generator_is_deterministic(generated, tmp_path):
    """Running the generator again writes byte-identical files."""
    run_generator(tmp_path)
    assert tree(tmp_path) == tree(generated)


DOCUMENTED_RESPONSES = {  # GHL's documented answers for the operations the spec leaves untyped
    "ghl.contacts.find_duplicate": [
        {"contact": None},
        {"contact": {"id": "seD4PfOuKoVMLkEZqohJ", "email": "rubika@deos.com", "tags": ["vip"]}},
    ],
    "ghl.contacts.search": [
        {"contacts": [], "total": 0},
        {
            "contacts": [
                {
                    "id": "102goXVW3lIExEQPOnd3",
                    "locationId": "502goXVW3lIExEQPOnd3",
                    "firstNameLowerCase": "john",
                    "email": "john@example.com",
                    "dnd": False,
                    "tags": ["tag-1"],
                    "customFields": [{"id": "MgobCB14YMVKuE4Ka8p1", "value": "x"}],
                    "dateUpdated": "2024-06-06T18:54:57.221Z",
                    "searchAfter": [1717700097221, "102goXVW3lIExEQPOnd3"],
                }
            ],
            "total": 1,
        },
    ],
}


@pytest.mark.parametrize(
    ("aid", "response"),
    [(aid, r) for aid, rs in DOCUMENTED_RESPONSES.items() for r in rs],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_hand_written_output_accepts_documented_response(manifest, aid, response):
    """Hand-written outputs accept the responses GHL documents for them."""
    output = action_schema(manifest["actions"][aid])["properties"]["output"]
    validator = Draft202012Validator(output)
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(response)]
    assert errors == []
