"""The ``graphql`` action kind: one declared GraphQL operation sent as ``POST {query, variables}``.

An action of this kind declares, in its manifest entry, ``path`` (the endpoint under the app's
base URL, e.g. ``/graphql``) and ``graphql: {document, result, mutation}``. Its validated input
becomes the operation's ``variables`` as is; its output is the value at the dotted ``result``
path inside the answer's ``data`` (all of ``data`` when no path is given).

GraphQL reports most failures inside a ``200`` answer as an ``errors`` list. Those fail the call
with a :class:`~connector.errors.RemoteError` naming the first error's message, its ``path``
and its ``extensions.code``; an ``UNAUTHENTICATED`` or ``FORBIDDEN`` code is an
:class:`~connector.errors.AuthError`. Queries are retried like GETs (sending one twice changes
nothing); mutations only when the action is ``retry_safe`` (an upsert keyed by email). The
kind is registered by the plugin of an app that speaks GraphQL (``actions.superphone``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from connector.client.request import Reply, RequestSpec
from connector.errors import AuthError, PluginError, RemoteError

if TYPE_CHECKING:
    from connector.client.executor import Call
    from connector.hookspecs import Action

__all__ = ["GraphqlExecutor", "graphql_request"]

AUTH_CODES = frozenset({"UNAUTHENTICATED", "FORBIDDEN"})
"""``extensions.code`` values that mean the credentials were refused."""
_CUT = 200
_MISSING = object()


def _options(action: Action) -> Mapping[str, Any]:
    options = action.options.get("graphql")
    if not isinstance(options, Mapping) or not isinstance(options.get("document"), str):
        raise PluginError(
            f"{action.source or action.id}: action {action.id!r} of kind 'graphql' has no "
            "'graphql: {document: ...}' [declare the operation in its manifest entry]"
        )
    return options


def graphql_request(action: Action, variables: Mapping[str, Any]) -> RequestSpec:
    """The ``POST {query, variables}`` request of a ``graphql`` action for a validated input."""
    document = str(_options(action)["document"])
    return RequestSpec("POST", action.path, json={"query": document, "variables": dict(variables)})


class GraphqlExecutor:
    """Runs ``kind: graphql`` actions through the app's pooled client."""

    def execute(self, call: Call) -> Reply:
        """Send the operation and return the value at ``result`` inside ``data``.

        :raises AuthError: the server refused the key (HTTP 401/403 or an auth error code).
        :raises RemoteError: an error status, a GraphQL ``errors`` list, or no ``data``.
        """
        action = call.action
        options = _options(action)
        mutation = bool(options.get("mutation", False))
        request = graphql_request(action, call.input)
        reply = call.client.send(
            request,
            auth=call.auth,
            limiter_key=call.limiter_key,
            retry_unsafe=action.retry_safe or not mutation,
        )
        body = reply.data
        if not isinstance(body, Mapping):
            raise _error(action, reply.status, "the answer is not a GraphQL response", body)
        errors = body.get("errors")
        if errors:
            raise _graphql_error(action, reply.status, errors, body)
        value = _at(body.get("data"), str(options.get("result") or ""))
        if value is _MISSING:
            where = f"data.{options.get('result')}" if options.get("result") else "data"
            raise _error(action, reply.status, f"the answer has no {where!r}", body)
        return Reply(reply.status, reply.headers, value, reply.elapsed_ms)

    def preview(self, call: Call) -> dict[str, Any]:
        """Method, URL, headers (the API key masked), the document and the variables."""
        request = graphql_request(call.action, call.input)
        headers = dict(call.app.headers)
        if "api_key" in call.app.auth:
            headers[call.app.api_key_header or "Authorization"] = "****"
        elif "none" not in call.app.auth:
            headers["Authorization"] = "Bearer ****"
        options = _options(call.action)
        return {
            "action": call.action.id,
            "method": "POST",
            "url": request.url(call.base_url),
            "headers": headers,
            "operation": "mutation" if options.get("mutation") else "query",
            "json": request.json,
        }


def _at(data: object, dotted: str) -> object:
    """The value at a dotted path (``contact``, ``contacts.nodes``), or ``_MISSING``."""
    if not isinstance(data, Mapping):
        return _MISSING
    current: object = data
    for part in (p for p in dotted.split(".") if p):
        if not isinstance(current, Mapping) or part not in current:
            return _MISSING
        current = current[part]
    return current


def _graphql_error(action: Action, status: int, errors: object, body: object) -> RemoteError:
    """The error for a non-empty GraphQL ``errors`` list: the first one, and how many more."""
    items: Sequence[Any] = errors if isinstance(errors, list) else [errors]
    first = items[0] if isinstance(items[0], Mapping) else {"message": str(items[0])}
    message = " ".join(str(first.get("message") or "(no message)").split())[:_CUT]
    path = first.get("path")
    where = ".".join(str(p) for p in path) if isinstance(path, list) and path else None
    extensions = first.get("extensions")
    code = extensions.get("code") if isinstance(extensions, Mapping) else None
    text = f"GraphQL error{f' at {where!r}' if where else ''}: {message}"
    if code:
        text += f" ({code})"
    if len(items) > 1:
        text += f" [and {len(items) - 1} more error{'s' if len(items) > 2 else ''}]"
    cls = AuthError if code in AUTH_CODES else RemoteError
    return _error(action, status, text, body, cls=cls)


def _error(
    action: Action, status: int, what: str, body: object, *, cls: type[RemoteError] = RemoteError
) -> RemoteError:
    text = json.dumps(body, ensure_ascii=False, default=str)
    return cls(
        f"{action.id}: POST {action.path} -> {status}: {what}",
        method="POST",
        url=action.path,
        status=status,
        body=text,
    )
