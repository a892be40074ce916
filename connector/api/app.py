"""The HTTP action API's Starlette app: its parts (:class:`Api`) and the routes.

The routes are generic: each looks the action or trigger up in the catalog, so every one of
them, a plugin's included, is served the moment it is registered, and the OpenAPI document
(:mod:`connector.api.openapi`) describes them from the same catalog. :func:`routes` gives the
routes alone, for an app that mounts them beside its own (the console); :func:`build_app`
makes the app ``ghl-connector api`` serves.

Every request but ``GET /openapi.json`` needs an API key (``X-API-Key: KEY`` or
``Authorization: Bearer KEY``): 401 without a live one, 403 for an action or trigger outside
its globs (or a write with a read-only key). The app's routes do their work in one of the
API's threads (:meth:`Api.run`; the runtime's I/O is synchronous), one hop each.

``POST /v1/actions/{id}``, the hot route, is answered by :func:`fast_route` in the thread of
``ghl-connector api``'s server (:mod:`connector.service.threadserver`) that read the request,
before the app is reached (the same call, the same answers); every other request goes
through the app.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from connector.api import actions, hooks, triggers
from connector.api.answers import error
from connector.api.context import Api
from connector.service.threadserver import Answer, Fast
from connector.service.threadserver import Request as ParsedRequest
from connector.service.wire import header_map

__all__ = ["build_app", "fast_route", "refusal", "routes"]

_ACTIONS = "/v1/actions/"


def _threaded(work: Callable[[Api, Request], Response]) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        api: Api = request.app.state.api
        return await api.run(work, api, request)

    return endpoint


async def _openapi(request: Request) -> Response:
    api: Api = request.app.state.api
    base = str(request.base_url).rstrip("/")
    body = await api.run(api.openapi, base)
    return Response(body, media_type="application/json")


def routes() -> list[BaseRoute]:
    """The API's routes; the app they are mounted in must hold its :class:`Api` in
    ``app.state.api``."""
    return [
        Route("/openapi.json", _openapi, methods=["GET"]),
        Route("/v1/actions", _threaded(actions.list_actions), methods=["GET"]),
        Route("/v1/actions/{action_id}", _threaded(actions.show_action), methods=["GET"]),
        Route("/v1/actions/{action_id}", actions.call_endpoint, methods=["POST"]),
        Route("/v1/triggers", _threaded(triggers.list_triggers), methods=["GET"]),
        Route("/v1/triggers/{trigger_id}/events", _threaded(triggers.events), methods=["GET"]),
        Route("/v1/triggers/{trigger_id}/sample", _threaded(triggers.sample), methods=["GET"]),
        Route("/v1/hooks", hooks.subscribe_endpoint, methods=["POST"]),
        Route("/v1/hooks", _threaded(hooks.list_hooks), methods=["GET"]),
        Route("/v1/hooks/{hook_id}", _threaded(hooks.unsubscribe), methods=["DELETE"]),
    ]


def fast_route(api: Api) -> Fast:
    """``POST /v1/actions/{id}`` answered in the connection's thread of
    :class:`~connector.service.threadserver.ThreadServer` (the match its route would make: one
    path segment after ``/v1/actions/``): the same :func:`connector.api.actions.call` the
    route runs, with no event loop and no hand-over to another thread."""

    def answer(request: ParsedRequest) -> Answer | None:
        if request.method != "POST":
            return None
        path = request.path
        action_id = path[len(_ACTIONS):]
        if not path.startswith(_ACTIONS) or not action_id or "/" in action_id:
            return None
        response = actions.call(api, action_id, header_map(request.headers), request.query,
                                request.body)  # fmt: skip
        return Answer(response.status_code, response.raw_headers, bytes(response.body))

    return answer


def refusal(status: int, reason: str) -> Answer:
    """The server's own refusals (408, 413, 431, 503...) in the API's error shape."""
    response = error(status, reason)
    return Answer(status, response.raw_headers, bytes(response.body))


def build_app(api: Api, extra: Sequence[BaseRoute] = ()) -> Starlette:
    """The Starlette app serving :func:`routes` (and ``extra`` routes) over ``api``."""
    app = Starlette(routes=[*routes(), *extra])
    app.state.api = api

    async def not_found(request: Request, exc: Exception) -> Response:
        return error(404, f"no such endpoint: {request.method} {request.url.path}")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return error(405, f"method {request.method} not allowed on {request.url.path}")

    app.add_exception_handler(404, not_found)
    app.add_exception_handler(405, not_allowed)
    return app
