"""Property-based tests of the HTTP API from its own ``/openapi.json`` (schemathesis), against
a real API server with the GHL sandbox behind it: no answer is a 5xx, every answer's status,
media type and body match what the document says; and, with inputs that break the document
(wrong types, missing fields, bad headers and parameters), each is refused with a 4xx
wherever the document says it must be (schemathesis's negative-data check).

Bounded in time: the Contacts actions the sandbox serves, a few triggers' endpoints, and a
small number of examples per operation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from apiserver import ApiServer
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from connector.catalog import Catalog
from connector.sandbox.server import SandboxServer

OPERATIONS = [
    "ghl_contacts_create", "ghl_contacts_get", "ghl_contacts_update", "ghl_contacts_search",
    "ghl_contacts_upsert", "ghl_contacts_find_duplicate", "ghl_contacts_created_events",
    "ghl_contacts_created_sample", "listActions", "describeAction", "listTriggers",
]  # fmt: skip
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]  # fmt: skip
NEGATIVE = ["ghl_contacts_create", "ghl_contacts_get", "ghl_contacts_created_events",
            "subscribeHook"]  # fmt: skip


@pytest.fixture(scope="module")
def server(sandbox: SandboxServer, catalog: Catalog, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[ApiServer]:
    with ApiServer(catalog, sandbox, tmp_path_factory.mktemp("api")) as running:
        yield running


@pytest.mark.slow
def test_api_answers_match_its_openapi_document(server: ApiServer, tmp_path: Path) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    chosen = schema.include(operation_id=OPERATIONS)
    operations = [result.ok() for result in chosen.get_all_operations()]
    assert sorted(op.definition.raw["operationId"] for op in operations) == sorted(OPERATIONS)
    headers = server.headers()
    seen: dict[str, set[int]] = {}
    for operation in operations:
        statuses = seen.setdefault(operation.definition.raw["operationId"], set())
        exercise(operation, headers, statuses)
    refused: set[int] = set()
    for result in schema.include(operation_id=NEGATIVE).get_all_operations():
        exercise(result.ok(), headers, refused, negative=True)
    # schemathesis's negative_data_rejection judged each answer; bad bodies met 422.
    assert 422 in refused and max(refused) < 500, refused
    # The cases reached the actions: their answers, and GHL's own refusals.
    assert 200 in seen["ghl_contacts_search"] and 200 in seen["ghl_contacts_created_sample"]
    assert 200 in seen["ghl_contacts_create"], seen
    assert 400 in seen["ghl_contacts_get"] | seen["ghl_contacts_update"], seen


def exercise(operation: schemathesis.APIOperation, headers: dict[str, str],
             statuses: set[int], *, negative: bool = False) -> None:
    """Call ``operation`` with generated cases, checking each answer; note their statuses.
    ``negative``: cases that break the document, which must be refused."""
    mode = GenerationMode.NEGATIVE if negative else GenerationMode.POSITIVE
    checks = [negative_data_rejection, *CHECKS] if negative else CHECKS

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=10, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    def check(case: schemathesis.Case) -> None:
        answer = case.call_and_validate(headers={**(case.headers or {}), **headers},
                                        checks=checks, timeout=30)  # fmt: skip
        statuses.add(answer.status_code)

    check()
