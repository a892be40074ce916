"""The HTTP API's documents: OpenAPI 3.1 and its Swagger 2.0 lowering, both accepted by an
independent validator (openapi-spec-validator); a plugin's action appears in both with no
other change; the lowering states what 2.0 cannot say, or leaves the operation out saying why."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from apiserver import ApiServer
from conftest import ROOT, run_cli
from openapi_spec_validator import OpenAPIV2SpecValidator, OpenAPIV31SpecValidator, validate

from connector.api.openapi import document, operation_ids
from connector.api.swagger import lower, swagger
from connector.catalog import Catalog, build_catalog
from connector.hookspecs import Action
from connector.plugins import get_plugin_manager
from connector.sandbox.server import SandboxServer

THIRDPARTY = ROOT / "tests" / "thirdparty"


@pytest.fixture
def with_plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[Catalog]:
    """The catalog with the third-party Zenline package installed (found by its entry point)."""
    monkeypatch.syspath_prepend(str(THIRDPARTY))
    yield build_catalog(get_plugin_manager())


def test_operations_are_one_per_action_with_sanitised_ids_and_scopes(catalog: Catalog) -> None:
    doc = document(catalog, globs=["ghl.contacts.*"])
    operation = doc["paths"]["/v1/actions/ghl.contacts.create"]["post"]
    assert operation["operationId"] == "ghl_contacts_create"
    assert operation["x-scopes"] == ["contacts.write"] and operation["x-writes"] is True
    posts = [p for p in doc["paths"] if p.startswith("/v1/actions/ghl.")]
    assert len(posts) == len([a for a in catalog.actions if a.startswith("ghl.contacts.")])
    created = doc["components"]["schemas"]["ghl_contacts_create_input"]
    assert "locationId" not in created.get("required", [])  # the connection fills it
    assert "/v1/triggers/ghl.contacts.created/events" in doc["paths"]
    assert operation_ids(["a.b", "a_b", "a-b"]) == {"a-b": "a_b", "a.b": "a_b_2", "a_b": "a_b_3"}


def test_location_inputs_the_connection_fills_are_not_required(catalog: Catalog) -> None:
    """`location_id` and the `altId`/`altType` pair are filled as `locationId` is: not required
    in the request body, and described as filled; other required inputs stay required."""
    doc = document(catalog, globs=["ghl.opportunities.search", "ghl.invoices.list"])
    schemas = doc["components"]["schemas"]
    assert "required" not in schemas["ghl_opportunities_search_input"]
    invoices = schemas["ghl_invoices_list_input"]
    assert invoices["required"] == ["limit", "offset"]
    assert invoices["properties"]["altId"]["description"].endswith(
        "(Filled from the connection when left out.)"
    )
    assert invoices["properties"]["altType"]["description"].endswith(
        '(Filled with "location" when left out.)'
    )


@pytest.mark.slow
def test_whole_catalog_swagger_passes_the_validator(catalog: Catalog) -> None:
    """Every action and trigger, lowered to 2.0, is valid. (The 3.1 document of the whole
    catalog is valid too, but its check takes a minute on a loaded machine; the 3.1 checks
    here cover the contacts, partner and plugin actions, and the schemas both documents share
    go through the same cleaning, which the 2.0 check covers for every one.)"""
    doc = document(catalog)
    validate(document(catalog, globs=["ghl.contacts.*", "ghl.invoices.*"]),
             cls=OpenAPIV31SpecValidator)
    lowered = swagger(doc)
    validate(lowered, cls=OpenAPIV2SpecValidator)
    posts = [op for item in lowered["paths"].values() for op in item.values()
             if "x-action-id" in op]
    assert len(posts) + len(lowered.get("x-omitted-operations", {})) == len(catalog.actions)


def test_plugin_action_appears_in_openapi_json_and_the_swagger_export(
    with_plugin: Catalog, sandbox: SandboxServer, tmp_path: Path
) -> None:
    assert "zenline.people.create" in with_plugin.actions
    with ApiServer(with_plugin, sandbox, tmp_path) as server:
        served = server.client.get("/openapi.json").json()
    operation = served["paths"]["/v1/actions/zenline.people.create"]["post"]
    assert operation["operationId"] == "zenline_people_create"
    exported = run_cli("export", "openapi", "--format", "2.0", "--actions", "zenline.*",
                       env={"PYTHONPATH": str(THIRDPARTY)})
    assert exported.status == 0, exported.stderr
    lowered = json.loads(exported.stdout)
    validate(lowered, cls=OpenAPIV2SpecValidator)
    post = lowered["paths"]["/v1/actions/zenline.people.create"]["post"]
    assert post["operationId"] == "zenline_people_create"
    assert post["parameters"][0]["schema"] == {"$ref": "#/definitions/zenline_people_create_input"}
    assert all(p.startswith("/v1/") and "zenline" in p for p in lowered["paths"]
               if p not in ("/v1/actions", "/v1/actions/{action_id}", "/v1/triggers",
                            "/v1/hooks", "/v1/hooks/{hook_id}"))
    without = run_cli("export", "openapi", "--actions", "zenline.*")
    assert without.status == 1 and "matches no action" in without.stderr


def test_export_31_of_partner_actions_passes_the_validator() -> None:
    exported = run_cli("export", "openapi", "--actions", "superphone.*", "linkedphone.*",
                       "--server", "https://connector.example.com/")
    assert exported.status == 0, exported.stderr
    doc = json.loads(exported.stdout)
    validate(doc, cls=OpenAPIV31SpecValidator)
    assert doc["servers"] == [{"url": "https://connector.example.com"}]
    lowered = swagger(doc)
    validate(lowered, cls=OpenAPIV2SpecValidator)
    assert lowered["host"] == "connector.example.com" and lowered["schemes"] == ["https"]
    # "email or phone" (anyOf of required lists) is stated, not lost.
    body = lowered["definitions"]["superphone_contacts_create_input"]
    assert body["x-checked-by-api"] == ["matches at least one of: email | phone"]
    assert "Also checked by the API" in body["description"]


def test_lowering_says_what_2_0_cannot() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": ["string", "null"], "examples": ["x"]},
            "b": {"const": "fixed"},
            "c": {"type": "number", "exclusiveMinimum": 0},
            "d": {"type": ["string", "integer"]},
            "e": {"type": "array", "prefixItems": [{"type": "string"}]},
        },
        "required": [],
    }
    lowered = lower(schema)
    props = lowered["properties"]
    assert props["a"] == {"type": "string", "x-nullable": True, "example": "x"}
    assert props["b"] == {"enum": ["fixed"]}
    assert props["c"] == {"type": "number", "minimum": 0, "exclusiveMinimum": True}
    assert "type" not in props["d"] and props["d"]["x-checked-by-api"] == [
        "one of the types string, integer"]
    assert props["e"]["x-checked-by-api"][0].startswith("items by position")
    assert "required" not in lowered


def test_an_operation_2_0_cannot_state_is_left_out_saying_why(catalog: Catalog) -> None:
    """An input that is one of several shapes has no 2.0 form: left out, with the reason."""
    shapes = {"anyOf": [{"type": "object", "properties": {"a": {"type": "string"}}},
                        {"type": "object", "properties": {"b": {"type": "integer"}}}]}
    odd = Action(id="ghl.contacts.shapes", app="ghl", title="Shapes", input_schema=shapes,
                 output_schema={"type": "object"}, method="POST")  # fmt: skip
    bigger = Catalog(catalog.apps, {**catalog.actions, odd.id: odd}, catalog.triggers,
                     catalog.filters, catalog.executors)  # fmt: skip
    lowered = swagger(document(bigger, globs=["ghl.contacts.*"]))
    validate(lowered, cls=OpenAPIV2SpecValidator)
    assert "/v1/actions/ghl.contacts.shapes" not in lowered["paths"]
    assert "anyOf 2 different shapes" in lowered["x-omitted-operations"]["ghl_contacts_shapes"]
    exported = run_cli("export", "openapi", "--format", "2.0", "--actions", "ghl.contacts.get")
    assert exported.status == 0 and "left out" not in exported.stderr
