"""Bearer tokens: the ``httpx.Auth`` that sends one, and the tokens of apps other than HighLevel.

Stored connections (:mod:`connector.auth.tokens`) are HighLevel's; any other bearer app gets its
own token from ``CONNECTOR_<APP>_TOKEN``, never one of them.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import httpx

from connector.errors import AuthError
from connector.hookspecs import App

__all__ = ["StaticBearer", "app_token", "app_token_env"]


class StaticBearer(httpx.Auth):
    """Sends ``Authorization: Bearer <token>``; the token never shows in reprs."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "StaticBearer(token=****)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


def app_token_env(app: App) -> str:
    """The environment variable with the bearer token of an app other than HighLevel."""
    return f"CONNECTOR_{app.id.upper()}_TOKEN"


def app_token(app: App) -> StaticBearer:
    """The bearer token of an app other than HighLevel (a plugin's), from
    :func:`app_token_env`: stored connections are HighLevel's and never go to another app.

    :raises AuthError: the variable is not set (before anything is sent).
    """
    token = os.environ.get(app_token_env(app))
    if not token:
        raise AuthError(
            f"no credential for app {app.id!r} [set {app_token_env(app)} to its token; stored"
            " connections are HighLevel's and are never sent to another app]"
        )
    return StaticBearer(token)
