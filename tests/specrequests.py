"""The request a catalog action builds from a minimal valid input, as openapi-core's
MockRequest, so the official spec (not our code) judges it."""

from __future__ import annotations

from typing import Any

from actions.rest import build_rest_request
from connector.catalog import Catalog
from connector.documents.sample import sample
from connector.runtime import Runtime


def minimal_request(catalog: Catalog, action_id: str) -> Any:
    """A MockRequest for ``action_id`` called with only its required inputs."""
    from openapi_core.testing import MockRequest

    action = catalog.action(action_id)
    with Runtime(catalog) as runtime:
        data = runtime.prepare_input(action, sample(action.input_schema, required_only=True))
        request = build_rest_request(action, data)
    headers = {"Authorization": "Bearer test", **catalog.app("ghl").headers, **request.headers}
    content, kind = request.body()
    if kind is not None:
        headers["Content-Type"] = kind.split(";")[0] if request.form == "json" else kind
    return MockRequest(
        "https://services.leadconnectorhq.com",
        request.method.lower(),
        request.path,
        args=dict(request.query),
        headers=headers,
        data=content,
        content_type=headers.get("Content-Type", "application/json"),
    )
