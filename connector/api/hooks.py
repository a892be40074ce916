"""The API's REST-hook routes, for platforms that subscribe (Zapier's REST hooks, Make's and
n8n's instant triggers), over :mod:`connector.api.subscriptions`.

- ``POST /v1/hooks`` with ``{"trigger", "target_url", "filter"?}`` answers 201 with the
  subscription and its signing secret; the same subscription again (a platform's retry)
  answers 200 with the same id and secret and ``existing: true``, storing nothing; what was
  accepted with a caveat (a host that does not resolve yet) is under ``warnings``; every
  problem of the body answers 422, each at its field (``/trigger``, ``/target_url``: the
  SSRF guard applies, ``/filter/<f>``);
- ``GET /v1/hooks`` lists the key's own subscriptions (never a secret);
- ``DELETE /v1/hooks/{id}`` unsubscribes one of the key's own (204; 404 when it has none by
  that id).

A subscription belongs to the API key that made it: another key neither lists, repeats (its
own ``POST`` of the same subscription makes a new one, with its own secret) nor deletes it,
and a subscription made by ``ghl-connector hooks add`` belongs to no key. The key must allow
the trigger (403 otherwise) and not be read-only to subscribe. Deliveries are
``ghl-connector serve``'s (:mod:`connector.api.delivery`): it fills the inbox the events come
from and sends each one, signed, to its subscribers.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from connector.api.answers import error, error_answer, json_answer
from connector.api.context import Api, authorize, ok, permit, presented_key, read_body
from connector.api.subscriptions import get_subscription, public_subscriptions, subscribe
from connector.api.subscriptions import unsubscribe as drop_subscription
from connector.documents.payload import load_json
from connector.errors import ConnectorError, DocumentError

__all__ = ["HOOK_BODY_LIMIT", "list_hooks", "subscribe_endpoint", "unsubscribe"]

HOOK_BODY_LIMIT = 64 * 1024


async def subscribe_endpoint(request: Request) -> Response:
    """``POST /v1/hooks``: read the body here, subscribe in a worker thread."""
    body = await read_body(request.scope, request.receive, HOOK_BODY_LIMIT)
    if isinstance(body, Response):
        return body
    api: Api = request.app.state.api
    return await api.run(_subscribe, api, request, body)


def _subscribe(api: Api, request: Request, raw: bytes) -> Response:
    presented = presented_key(request.headers)
    key = authorize(api, presented)
    if isinstance(key, Response):
        return key
    try:
        data = load_json(raw or b"{}", source="request body")
    except DocumentError as exc:
        return error_answer(exc)
    if not isinstance(data, dict):
        return error(400, "request body: must be a JSON object with trigger and target_url")
    unknown = sorted(set(data) - {"trigger", "target_url", "filter"})
    if unknown:
        return error(422, f"request body: unknown field {unknown[0]!r} [fields: trigger,"
                          " target_url, filter]")  # fmt: skip
    trigger: Any = data.get("trigger")
    target: Any = data.get("target_url")  # subscribe() reports a non-string at /target_url
    known = trigger if isinstance(trigger, str) and trigger in api.catalog.triggers else None
    refused = permit(key, known, write=True, doing="it may not subscribe to hooks")
    if refused is not None:
        return refused
    try:
        made = subscribe(api.store, trigger, target, data.get("filter"),
                         catalog=api.catalog, owner=key.id)  # fmt: skip
    except DocumentError as exc:
        return error(422, "invalid subscription", problems=exc.problems)
    except ConnectorError as exc:
        return error_answer(exc)
    answer: dict[str, Any] = {**made.public(), "secret": made.secret}
    if made.warnings:
        answer["warnings"] = list(made.warnings)
    if made.existing:
        return json_answer({**answer, "existing": True}, 200)
    return json_answer(answer, 201)


def list_hooks(api: Api, request: Request) -> Response:
    """``GET /v1/hooks``: the key's own subscriptions."""
    key = authorize(api, presented_key(request.headers))
    if isinstance(key, Response):
        return key
    return ok({"hooks": public_subscriptions(api.store, owner=key.id)})


def unsubscribe(api: Api, request: Request) -> Response:
    """``DELETE /v1/hooks/{id}``: 204, or 404 when there is no such subscription."""
    hook_id = request.path_params["hook_id"]
    presented = presented_key(request.headers)
    key = authorize(api, presented)
    if isinstance(key, Response):
        return key
    found = get_subscription(api.store, hook_id) if len(hook_id) <= 64 else None
    if found is None or found.owner != key.id:  # another key's is as good as none
        return error(404, f"no subscription {hook_id!r} [GET /v1/hooks lists them]")
    if key.read_only:
        return error(403, f"API key {key.name!r} is read-only; it may not unsubscribe")
    drop_subscription(api.store, hook_id)
    return Response(status_code=204)
