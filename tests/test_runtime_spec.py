"""Requests the runtime builds are valid against the official GHL spec (openapi-core)."""

from __future__ import annotations

import json

import pytest
from conftest import SHARED
from specrequests import minimal_request

from actions.rest import build_rest_request
from connector.catalog import build_catalog

SPEC_FILE = SHARED / "ghl-openapi" / "apps" / "contacts.json"

pytestmark = pytest.mark.skipif(
    not SPEC_FILE.exists(), reason=f"official spec not found at {SPEC_FILE}"
)

CATALOG = build_catalog()
# Contacts only; every other spec's actions: tests/test_catalog_conformance.py.
GHL_ACTIONS = sorted(
    a
    for a, action in CATALOG.actions.items()
    if action.app == "ghl" and action.path.startswith("/contacts/")
)


@pytest.fixture(scope="module")
def openapi():
    from openapi_core import Config, OpenAPI

    spec = json.loads(SPEC_FILE.read_text())
    # The official file is not itself valid OpenAPI 3.0 (its security schemes carry extra
    # keys), so the spec check is skipped; request validation still follows the spec.
    return OpenAPI.from_dict(
        spec, base_uri=SPEC_FILE.resolve().as_uri(), config=Config(spec_validator_cls=None)
    )


@pytest.mark.parametrize("action_id", GHL_ACTIONS)
def test_runtime_minimal_request_is_valid_against_spec(openapi, action_id):
    """A request built from a minimal valid input passes the spec's request validation."""
    mock = minimal_request(CATALOG, action_id)
    openapi.validate_request(mock)


def test_runtime_request_places_every_input():
    """Path, query and body fields of one flat input land where the manifest says."""
    action = CATALOG.action("ghl.contacts.list_by_business")
    request = build_rest_request(
        action, {"businessId": "b 1?x", "locationId": "L1", "limit": "10", "query": "ann"}
    )
    assert request.path == "/contacts/business/b%201%3Fx"  # a "/" is refused: test_pathparams
    assert dict(request.query) == {"locationId": "L1", "limit": "10", "query": "ann"}
    assert request.json is None
    create = CATALOG.action("ghl.tasks.create")
    request = build_rest_request(
        create,
        {"contactId": "c1", "title": "Call", "dueDate": "2024-01-01T00:00:00Z", "completed": False},
    )
    assert (request.method, request.path) == ("POST", "/contacts/c1/tasks")
    assert request.json == {"title": "Call", "dueDate": "2024-01-01T00:00:00Z", "completed": False}
