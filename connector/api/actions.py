"""The API's action routes: list, describe, and call an action through the runtime.

``POST /v1/actions/{id}`` runs exactly what ``ghl-connector call`` runs: the JSON body is the
flat input (read within :mod:`connector.documents.payload`'s limits), the connection's
location fills the location input, the input is validated (422 with every problem and its
field path), the call is sent and its output checked. ``?dry_run=true`` answers the request
it would send (token masked; media type :data:`DRY_RUN_TYPE`) and sends nothing; without a
connection to read, the location input is a placeholder, listed under ``placeholders`` as
``call --dry-run`` lists it. ``Idempotency-Key`` is :mod:`connector.api.idempotency`'s.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from connector.api.answers import DRY_RUN_TYPE, encode, error, error_answer, json_answer
from connector.api.context import Api, authorize, ok, permit, presented_key, read_body
from connector.api.idempotency import MAX_KEY_CHARS, request_digest
from connector.api.runtimes import CONNECTION_HEADER
from connector.catalog import did_you_mean
from connector.documents.payload import load_json
from connector.documents.sample import sample
from connector.errors import AuthError, ConnectorError, DocumentError, InputError, RateLimitError
from connector.hookspecs import Action
from connector.recipes.footprints import is_read
from connector.runtime import Runtime
from connector.service.wire import parse_query

__all__ = ["IDEMPOTENCY_HEADER", "call", "call_endpoint", "list_actions", "show_action"]

IDEMPOTENCY_HEADER = "Idempotency-Key"
_IDEMPOTENCY = IDEMPOTENCY_HEADER.lower()
_CONNECTION = CONNECTION_HEADER.lower()
_PRINTABLE = frozenset(string.printable) - frozenset("\t\n\r\x0b\x0c")


def summary(action: Action) -> dict[str, Any]:
    """An action as ``GET /v1/actions`` lists it."""
    return {
        "id": action.id,
        "app": action.app,
        "title": action.title,
        "method": action.method,
        "scopes": list(action.scopes),
        "writes": not is_read(action),
        "deprecated": action.deprecated,
    }


def list_actions(api: Api, request: Request) -> Response:
    """``GET /v1/actions``: the actions the key may call, by id."""
    key = authorize(api, presented_key(request.headers))
    if isinstance(key, Response):
        return key
    listed = [summary(a) for i, a in sorted(api.catalog.actions.items()) if key.allows(i)]
    return ok({"actions": listed})


def show_action(api: Api, request: Request) -> Response:
    """``GET /v1/actions/{id}``: its schemas, scopes and a sample input."""
    action_id = request.path_params["action_id"]
    key = authorize(api, presented_key(request.headers))
    if isinstance(key, Response):
        return key
    action = api.catalog.actions.get(action_id)
    if action is None:
        return _unknown(api, action_id)
    refused = permit(key, action.id)
    if refused is not None:
        return refused
    return ok({
        **summary(action),
        "description": action.description,
        "input_schema": dict(action.input_schema),
        "output_schema": dict(action.output_schema),
        "sample_input": sample(action.input_schema, required_only=True),
    })  # fmt: skip


async def call_endpoint(request: Request) -> Response:
    """``POST /v1/actions/{id}``: read the body here, run the call in a worker thread.

    ``ghl-connector api``'s server answers this path before the app, in the thread that read
    it (:func:`connector.api.app.fast_route`, the same :func:`call`); this route serves the
    app wherever else it runs."""
    body = await read_body(request.scope, request.receive)
    if isinstance(body, Response):
        return body
    api: Api = request.app.state.api
    return await api.run(call, api, request.path_params["action_id"], request.headers,
                         request.scope["query_string"], body)  # fmt: skip


def call(
    api: Api, action_id: str, headers: Mapping[str, str], query: bytes, raw: bytes
) -> Response:
    """Authorize, read the input, and run (or preview, or replay) the call.

    :param headers: the request's, looked up by lower-case name (Starlette's ``Headers``, or
        :func:`connector.service.wire.header_map`'s on the fast route).
    """
    key = authorize(api, presented_key(headers))
    if isinstance(key, Response):
        return key
    action = api.catalog.actions.get(action_id)
    if action is None:
        return _unknown(api, action_id)
    dry_run = _flag(parse_query(query).get("dry_run")) if query else False
    if dry_run is None:
        return error(400, "dry_run: must be true or false")
    refused = permit(key, action.id, write=not is_read(action) and not dry_run)
    if refused is not None:
        return refused
    try:
        data = load_json(raw or b"{}", source="request body")
    except DocumentError as exc:
        return error_answer(exc)
    if not isinstance(data, dict):
        return error(400, "request body: the input must be a JSON object")
    connection = headers.get(_CONNECTION) or None
    if dry_run:
        return _dry_run(api, action, data, connection)
    idem = headers.get(_IDEMPOTENCY)
    if idem is not None and (not 0 < len(idem) <= MAX_KEY_CHARS or set(idem) - _PRINTABLE):
        return error(400, f"{IDEMPOTENCY_HEADER}: 1-{MAX_KEY_CHARS} printable ASCII characters")
    try:
        runtime, used = api.runtimes.get(connection)
    except ConnectorError as exc:
        return error(400, str(exc), source="connection")
    if idem is None:
        return _run(runtime, action, data)[0]
    claim = api.idempotency.claim(key.id, idem, request_digest(action.id, used.name, data))
    if claim.state == "stored":
        assert claim.status is not None and claim.body is not None
        return Response(claim.body, claim.status, {"Idempotent-Replayed": "true"},
                        media_type="application/json")  # fmt: skip
    if claim.state == "other":
        return error(422, f"{IDEMPOTENCY_HEADER} {idem!r} was used for another request (other"
                          " body, action or connection) [use a new key for a new request]")
    if claim.state == "running":
        return error(409, f"{IDEMPOTENCY_HEADER} {idem!r}: its first request has no answer"
                          " yet, or the server stopped during it and whether it took effect is"
                          " unknown [retry later; check the record before using a new key]")
    answer, sent = _run(runtime, action, data)
    if sent:
        api.idempotency.store_answer(key.id, idem, answer.status_code, bytes(answer.body))
    else:
        api.idempotency.release(key.id, idem)
    return answer


def _run(runtime: Runtime, action: Action, data: dict[str, Any]) -> tuple[Response, bool]:
    """The answer to one call, and whether anything may have been sent."""
    try:
        return json_answer(runtime.call(action.id, data)), True
    except (InputError, RateLimitError) as exc:
        return error_answer(exc), False
    except AuthError as exc:
        return error_answer(exc), exc.status is not None
    except ConnectorError as exc:
        return error_answer(exc), True


def _dry_run(
    api: Api, action: Action, data: dict[str, Any], connection: str | None
) -> Response:
    invented: dict[str, str] = {}
    try:
        runtime, _ = api.runtimes.get(connection)
    except ConnectorError as exc:
        if connection is not None:
            return error(400, str(exc), source="connection")
        runtime = api.runtimes.bare()
        added = action.location_fill(data, None)
        data.update(added)
        for param in (n for n in added if n in action.located_inputs()):
            invented[param] = (
                "invented by the dry run: no connection to take it from [a real call takes it"
                f" from the connection named by {CONNECTION_HEADER}, or the default one]"
            )
    try:
        preview = runtime.dry_run(action.id, data)
    except ConnectorError as exc:
        return error_answer(exc)
    if invented:
        preview = {**preview, "placeholders": invented}
    return Response(encode(preview), 200, media_type=DRY_RUN_TYPE)


def _flag(value: str | None) -> bool | None:
    if value is None or value.lower() in ("false", "0", ""):
        return False
    if value.lower() in ("true", "1"):
        return True
    return None


def _unknown(api: Api, action_id: str) -> Response:
    """404 for an action id the catalog lacks, with the closest id when there is one."""
    close = did_you_mean(action_id, api.catalog.actions) if len(action_id) <= 200 else None
    return error(404, f"unknown action {action_id!r} [{close + ' ' if close else ''}"
                      "GET /v1/actions lists them]")  # fmt: skip
