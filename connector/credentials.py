"""Which credential a call uses, turned into an ``httpx.Auth`` for the HTTP layer.

A bearer token read from an environment variable the user names (``--token-env``), or a
stored connection (see :mod:`connector.auth`). A token is held only inside the auth object,
whose repr hides it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Generator

import httpx

from connector.errors import AuthError
from connector.hookspecs import Action, App

__all__ = ["StaticBearer", "auth_from_args"]


class StaticBearer(httpx.Auth):
    """Sends ``Authorization: Bearer <token>``; the token never shows in reprs."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "StaticBearer(token=****)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


def auth_from_args(
    args: argparse.Namespace, app: App
) -> tuple[Callable[[App, Action], httpx.Auth | None] | None, str | None, str | None]:
    """The auth provider for a CLI call, the location id and the base URL of its credential.

    ``--token-env VAR`` sends that variable's token as is. Otherwise the named connection
    (``--connection``), else ``$CONNECTOR_TOKEN``, else the default stored connection; those
    are refreshed when needed and their scopes are checked before any request.
    """
    if "none" in app.auth and not args.token_env:
        return None, None, None
    if args.token_env:
        token = os.environ.get(args.token_env)
        if not token:
            raise AuthError(
                f"no token for app {app.id!r}: ${args.token_env} is not set "
                f"[set {args.token_env} to a token, or use a stored connection]"
            )
        bearer = StaticBearer(token)
        return (lambda _app, _action: bearer), None, None
    from connector.auth import TokenManager
    from connector.connection import ConnectionStore

    connections = ConnectionStore.open()
    connection = connections.resolve(getattr(args, "connection", None))
    provider = TokenManager(connections).provider(connection.name)
    return provider, connection.location_id, connection.base_url
