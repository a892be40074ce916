"""The API's trigger routes, for platforms that poll (Zapier, n8n, Make).

``GET /v1/triggers/{id}/events`` lists the trigger's events from the durable inbox that
``ghl-connector serve`` fills (webhooks and pollers; one state file), newest first, at most
``limit`` (default 50, at most 100) a page; ``next_cursor`` fetches the page of older ones
(absent on the last page). Each event has a stable ``id`` (the inbox key: GHL's
``webhookId``), so a platform that deduplicates by id sees each event once. Events stay as
long as ``serve --keep-events`` keeps them. ``GET /v1/triggers/{id}/sample`` answers one
example event in the same shape, built from the trigger's payload schema.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from connector.api.answers import error
from connector.api.context import Api, authorize, ok, permit, presented_key
from connector.documents.sample import sample as sample_of
from connector.hookspecs import Trigger
from connector.service.dispatcher import trigger_types

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "events", "list_triggers", "sample"]

DEFAULT_LIMIT = 50
MAX_LIMIT = 100


def list_triggers(api: Api, request: Request) -> Response:
    """``GET /v1/triggers``: the triggers the key may read, by id."""
    key = authorize(api, presented_key(request.headers))
    if isinstance(key, Response):
        return key
    listed = [
        {"id": t.id, "app": t.app, "title": t.title, "kind": t.kind, "scopes": list(t.scopes)}
        for i, t in sorted(api.catalog.triggers.items())
        if key.allows(i)
    ]
    return ok({"triggers": listed})


def _trigger(api: Api, request: Request) -> Trigger | Response:
    trigger_id = request.path_params["trigger_id"]
    presented = presented_key(request.headers)
    key = authorize(api, presented)
    if isinstance(key, Response):
        return key
    trigger = api.catalog.triggers.get(trigger_id)
    if trigger is None:
        return error(404, f"unknown trigger {trigger_id!r} [GET /v1/triggers lists them]")
    refused = permit(key, trigger.id)
    return refused if refused is not None else trigger


def events(api: Api, request: Request) -> Response:
    """``GET /v1/triggers/{id}/events?cursor=&limit=``: a page of its events, newest first."""
    trigger = _trigger(api, request)
    if isinstance(trigger, Response):
        return trigger
    params = request.query_params
    cursor, limit = params.get("cursor") or None, params.get("limit") or str(DEFAULT_LIMIT)
    if cursor is not None and not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 18):
        return error(400, "cursor: not a cursor this API gave [pass next_cursor as it came]")
    if not (limit.isascii() and limit.isdigit() and 1 <= int(limit) <= MAX_LIMIT):
        return error(400, f"limit: a whole number from 1 to {MAX_LIMIT}")
    types = trigger_types(trigger, api.catalog.hub)
    if not types:
        return ok({"events": []})
    marks = ", ".join("?" * len(types))
    before = int(cursor) if cursor is not None else 2**62
    rows = api.store.query(
        f"SELECT id, webhook_id, location_id, received_at, body FROM inbox"
        f" WHERE type IN ({marks}) AND id < ? ORDER BY id DESC LIMIT ?",
        [*types, before, int(limit) + 1],
    )
    page, more = rows[: int(limit)], len(rows) > int(limit)
    listed = []
    for row in page:
        try:
            data = json.loads(bytes(row["body"]))
        except ValueError:
            continue  # the receiver stores only JSON; a row that is not is skipped, not served
        listed.append(_event(row["webhook_id"], row["received_at"], row["location_id"], data))
    answer: dict[str, Any] = {"events": listed}
    if more:
        answer["next_cursor"] = str(page[-1]["id"])
    return ok(answer)


def sample(api: Api, request: Request) -> Response:
    """``GET /v1/triggers/{id}/sample``: one example event, in the events' shape."""
    trigger = _trigger(api, request)
    if isinstance(trigger, Response):
        return trigger
    return ok({"events": [_event("sample", 0.0, None, sample_of(trigger.payload_schema))]})


def _event(event_id: str, received_at: float, location: str | None, data: Any) -> dict[str, Any]:  # noqa: ANN401
    when = dt.datetime.fromtimestamp(received_at, dt.UTC).isoformat().replace("+00:00", "Z")
    return {"id": event_id, "received_at": when, "location_id": location, "data": data}
