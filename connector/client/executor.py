"""How an action runs: the :class:`Executor` contract, the :class:`Call` it gets, and REST.

An action's ``kind`` names its executor. ``http`` (declarative REST: path, query and body from
the manifest's ``params``) is built in here; plugins add others through the
``connector_register_executors`` hook (the generic ``http_request``, GraphQL, ...). The runtime
validates the input before an executor sees it and checks the output after.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from connector import hookimpl
from connector.client.request import Reply, RequestSpec, fill_path
from connector.errors import RemoteError
from connector.hookspecs import Action, App

if TYPE_CHECKING:
    import httpx

    from connector.client.httpclient import HttpClient
    from connector.runtime import Settings

__all__ = ["Call", "Executor", "RestExecutor", "build_rest_request"]


@dataclass(frozen=True, slots=True)
class Call:
    """One call of one action, as its executor sees it.

    :param input: the validated flat input.
    :param client: the app's pooled HTTP client (rate limiter, retries, error mapping).
    :param auth: the credential flow for this action, or ``None``.
    :param limiter_key: the location (or account) the call counts against.
    :param base_url: the app's base URL for this run (the manifest's, or an override).
    """

    action: Action
    app: App
    input: Mapping[str, Any]
    client: HttpClient
    auth: httpx.Auth | None
    limiter_key: str
    base_url: str
    settings: Settings


class Executor(Protocol):
    """Runs actions of one kind."""

    def execute(self, call: Call) -> Reply:
        """Send the call and return the reply (its ``data`` is checked by the runtime).

        :raises ConnectorError: any failure, already translated (never a library exception).
        """
        ...

    def preview(self, call: Call) -> dict[str, Any]:
        """What ``--dry-run`` prints: the request that would be sent, credentials masked."""
        ...


def build_rest_request(action: Action, data: Mapping[str, Any]) -> RequestSpec:
    """The request for a validated flat input: path, query, headers and body from ``params``.

    :raises InputError: a path parameter that would change which endpoint is called
        (``..``, ``%2e%2E``, a ``/``, an empty string: see
        :func:`~connector.client.request.path_segment`).
    """
    path_values: dict[str, tuple[str, Any]] = {}
    query: list[tuple[str, str]] = []
    headers: dict[str, str] = dict(action.options.get("headers", {}))
    body: dict[str, Any] = {}
    places = {p.name: p for p in action.params}
    for name, value in data.items():
        param = places.get(name)
        if param is None:
            body[name] = value
        elif param.location == "path":
            path_values[param.wire_name] = (name, value)
        elif param.location == "query":
            query.extend((param.wire_name, _query_text(v)) for v in _as_list(value))
        elif param.location == "header":
            headers[param.wire_name] = str(value)
        else:
            body[param.wire_name] = value
    json_body = body if action.body else None
    path = fill_path(action.path, path_values, action_id=action.id)
    form = action.options.get("body", "json")
    return RequestSpec(action.method, path, tuple(query), json_body, headers, form)


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
    """The built-in ``http`` kind (this module is a built-in plugin)."""
    return {"http": RestExecutor()}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _query_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
