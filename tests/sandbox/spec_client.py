"""A validating HTTP client for the sandbox tests: every real call's response (and, when the
sandbox accepted it, its request) is checked with openapi-core against the official Contacts
spec, ``shared/ghl-openapi/apps/contacts.json``.

Where the spec has gaps, a copy of it is patched here, and each patch says why:
- Its ``http`` bearer security schemes carry ``name``/``in``, which OpenAPI 3.0 forbids there
  (openapi-core refuses the document): they are dropped.
- ``POST /contacts/search`` and ``GET /contacts/search/duplicate`` declare no 200 schema: they get
  our documented shapes (``{contacts: [...searchAfter], total}``, ``{contact: ... | null}``).
- ``POST /contacts/bulk/tags/update/{type}`` does not declare its ``type`` path parameter.
- The two bulk operations declare no security (the sandbox requires ``contacts.write``), so
  they get the spec's 401 DTO; every operation gets a generic GHL error DTO for the answers the
  sandbox (like GHL) sends but the spec leaves out: 403, 413, 429 and 5xx.
Error bodies must also carry ``statusCode`` equal to the status and a ``message``.
"""

from __future__ import annotations

import copy
import functools
import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from connector.sandbox.routes import Router

SPEC_DIR = Path(__file__).resolve().parents[3] / "shared" / "ghl-openapi"
CONTACTS_SPEC = SPEC_DIR / "apps" / "contacts.json"
SPEC_HOST = "https://services.leadconnectorhq.com"
COMMON = "../common/common-schemas.json#/components/schemas/"
ERROR_DTO = {
    "type": "object",
    "required": ["statusCode", "message"],
    "properties": {
        "statusCode": {"type": "number"},
        "message": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "error": {"type": "string"},
    },
}
SEARCH_200 = {
    "type": "object",
    "required": ["contacts", "total"],
    "properties": {
        "contacts": {"type": "array", "items": {"allOf": [
            {"$ref": "#/components/schemas/ContactsSearchSchema"},
            {"type": "object", "required": ["searchAfter"],
             "properties": {"searchAfter": {"type": "array", "items": {}}}},
        ]}},
        "total": {"type": "number"},
    },
}
DUPLICATE_200 = {
    "type": "object",
    "required": ["contact"],
    "properties": {"contact": {"anyOf": [
        {"$ref": "#/components/schemas/GetContectByIdSchema"},
        {"type": "object", "nullable": True, "enum": [None]},
    ]}},
}


CHECKED: Counter[tuple[str, int]] = Counter()
_ROUTER = Router()


def _json_response(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


@functools.cache
def contacts_spec() -> dict[str, Any]:
    """The official spec with the patches listed in the module docstring."""
    spec: dict[str, Any] = json.loads(CONTACTS_SPEC.read_text())
    spec = copy.deepcopy(spec)
    for scheme in spec["components"]["securitySchemes"].values():
        scheme.pop("name", None)
        scheme.pop("in", None)
    paths = spec["paths"]
    paths["/contacts/search"]["post"]["responses"]["200"] = _json_response(SEARCH_200, "search")
    paths["/contacts/search/duplicate"]["get"]["responses"]["200"] = _json_response(
        DUPLICATE_200, "duplicate")
    bulk_tags = paths["/contacts/bulk/tags/update/{type}"]["post"]
    bulk_tags["parameters"].append({"name": "type", "in": "path", "required": True,
                                    "schema": {"type": "string", "enum": ["add", "remove"]}})
    for path in ("/contacts/bulk/tags/update/{type}", "/contacts/bulk/business"):
        op = paths[path]["post"]
        op["responses"].setdefault("401", _json_response({"$ref": COMMON + "UnauthorizedDTO"},
                                                         "sandbox: token required"))
        op["responses"].setdefault("400", _json_response({"$ref": COMMON + "BadRequestDTO"},
                                                         "sandbox: bad request"))
    for methods in paths.values():
        for op in methods.values():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            for status in ("403", "413", "429", "500", "502", "503", "504"):
                op["responses"].setdefault(status, _json_response(ERROR_DTO, "sandbox: GHL error"))
    return spec


@functools.cache
def openapi() -> OpenAPI:
    """The patched spec, loaded so its ``../common`` references resolve."""
    return OpenAPI.from_dict(contacts_spec(), base_uri=CONTACTS_SPEC.as_uri())


class _Request:
    """An httpx request as openapi-core reads one (the host is the spec's server)."""

    def __init__(self, request: httpx.Request) -> None:
        self.host_url = SPEC_HOST
        self.path = request.url.path
        self.method = request.method.lower()
        self.body: bytes | None = request.content or None
        self.content_type = request.headers.get("content-type", "application/json")
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(request.url.params.multi_items())),
            header=Headers(list(request.headers.items())),
        )
        self.full_url_pattern = SPEC_HOST + self.path


class _Response:
    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        self.content_type = response.headers.get("content-type", "").split(";")[0]
        self.headers = Headers(list(response.headers.items()))
        self.data = response.content


class SpecClient:
    """httpx against the sandbox; after each call the exchange is validated against the spec.

    :data:`CHECKED` counts validated answers per ``(operation route, status)`` over the session.
    """

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=10)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> SpecClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def request(self, method: str, path: str, *, validate: bool = True,
                **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, path, **kwargs)
        if validate:
            self.check(response)
        return response

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    def check(self, response: httpx.Response) -> None:
        """Validate one exchange; raise AssertionError with openapi-core's findings."""
        request = _Request(response.request)
        spec = openapi()
        if response.status_code < 300:
            spec.validate_request(request)
        spec.validate_response(request, _Response(response))
        if response.status_code >= 400:
            body = response.json()
            assert body.get("statusCode") == response.status_code, body
            assert body.get("message"), body
        found = _ROUTER.match(response.request.method, response.request.url.path)
        if found is not None:
            CHECKED[(found[0].route, response.status_code)] += 1
