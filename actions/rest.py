"""Built-in plugin: the ``http`` action kind, declarative REST (path, query, headers and body
placed from the manifest's ``params``).

Like every action kind, it is registered through ``connector_register_executors`` and uses only
the public API (:class:`connector.Executor`, :class:`connector.Call`,
:class:`connector.RequestSpec`, :func:`connector.fill_path`). The runtime validates the input
before an executor sees it and checks the output after.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector import (
    Action,
    Call,
    Executor,
    RemoteError,
    Reply,
    RequestSpec,
    check_target,
    fill_path,
    hookimpl,
)

__all__ = ["RestExecutor", "build_rest_request"]


def build_rest_request(action: Action, data: Mapping[str, Any]) -> RequestSpec:
    """The request for a validated flat input: path, query, headers and body from ``params``.

    :raises InputError: a path parameter that would change which endpoint is called
        (``..``, ``%2e%2E``, a ``/``, an empty string: see :func:`connector.fill_path`), or
        a URL too long to send (:func:`connector.check_target`, naming the widest field).
    """
    path_values: dict[str, tuple[str, Any]] = {}
    query: list[tuple[str, str]] = []
    headers: dict[str, str] = dict(action.options.get("headers", {}))
    body: dict[str, Any] = {}
    in_url: dict[str, Any] = {}
    places = {p.name: p for p in action.params}
    for name, value in data.items():
        param = places.get(name)
        if param is None:
            body[name] = value
        elif param.location == "path":
            path_values[param.wire_name] = (name, value)
            in_url[name] = value
        elif param.location == "query":
            query.extend((param.wire_name, _query_text(v)) for v in _as_list(value))
            in_url[name] = value
        elif param.location == "header":
            headers[param.wire_name] = str(value)
        else:
            body[param.wire_name] = value
    json_body = body if action.body else None
    path = fill_path(action.path, path_values, action_id=action.id)
    form = action.options.get("body", "json")
    request = RequestSpec(action.method, path, tuple(query), json_body, headers, form)
    check_target(action.id, request, in_url)
    return request


class RestExecutor:
    """Declarative REST: the manifest says where each input goes; nothing else is needed."""

    def execute(self, call: Call) -> Reply:
        """Build the request from ``params`` and send it through the app's client."""
        action = call.action
        request = build_rest_request(action, call.input)
        reply = call.client.send(
            request, auth=call.auth, limiter_key=call.limiter_key, retry_unsafe=action.retry_safe
        )
        if action.success and reply.status not in action.success:
            raise RemoteError(
                f"{request.method} {request.path} -> {reply.status}: unexpected status",
                method=request.method,
                url=request.path,
                status=reply.status,
            )
        return reply

    def preview(self, call: Call) -> dict[str, Any]:
        """Method, URL, headers (credentials masked) and body of the request."""
        request = build_rest_request(call.action, call.input)
        headers = {**call.app.headers, **request.headers}
        if "none" not in call.app.auth:
            header = call.app.api_key_header if "api_key" in call.app.auth else None
            headers[header or "Authorization"] = "****" if header else "Bearer ****"
        out: dict[str, Any] = {
            "action": call.action.id,
            "method": request.method,
            "url": request.url(call.base_url),
            "headers": headers,
        }
        if request.json is not None:
            out["json"] = request.json
        return out


@hookimpl
def connector_register_executors() -> Mapping[str, Executor]:
    """The ``http`` kind: declarative REST."""
    return {"http": RestExecutor()}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _query_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
