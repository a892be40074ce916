"""Which credential a call uses, turned into an ``httpx.Auth`` for the HTTP layer.

For now: a bearer token read from an environment variable the user names (``--token-env``)
or ``CONNECTOR_TOKEN``. The token is held only inside the auth object, whose repr hides it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Generator

import httpx

from connector.errors import AuthError
from connector.hookspecs import Action, App

__all__ = ["StaticBearer", "auth_from_args"]

TOKEN_ENV = "CONNECTOR_TOKEN"


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
) -> Callable[[App, Action], httpx.Auth | None] | None:
    """The auth provider for ``call``: ``--token-env VAR``, else ``$CONNECTOR_TOKEN``, else none."""
    if "none" in app.auth and not args.token_env:
        return None
    var = args.token_env or TOKEN_ENV
    token = os.environ.get(var)
    if not token:
        hint = (
            f"set {var} to a token"
            if args.token_env
            else f"pass --token-env VAR naming the variable holding the token, or set {TOKEN_ENV}"
        )
        raise AuthError(f"no token for app {app.id!r}: ${var} is not set [{hint}]")
    bearer = StaticBearer(token)
    return lambda _app, _action: bearer
