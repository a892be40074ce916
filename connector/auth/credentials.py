"""Which credential a call uses, turned into an ``httpx.Auth`` for the HTTP layer.

A bearer token read from an environment variable the user names (``--token-env``), or a
stored connection (see :mod:`connector.auth.tokens`). A token is held only inside the auth object,
whose repr hides it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Generator

import httpx

from connector.auth.bearer import StaticBearer, app_token
from connector.errors import AuthError
from connector.hookspecs import Action, App, AuthProvider

__all__ = [
    "ApiKeyAuth",
    "api_key_env",
    "api_key_provider",
    "auth_from_args",
    "ghl_only",
]


class ApiKeyAuth(httpx.Auth):
    """Sends an API key in the app's header (``api_key_header``); the key never shows in reprs."""

    def __init__(self, header: str, key: str) -> None:
        self._header = header
        self._key = key

    def __repr__(self) -> str:
        return f"ApiKeyAuth(header={self._header!r}, key=****)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self._header] = self._key
        yield request


def api_key_env(app: App) -> str:
    """The environment variable that holds an API-key app's key: ``CONNECTOR_<APP>_API_KEY``."""
    return f"CONNECTOR_{app.id.upper()}_API_KEY"


def ghl_only(auth: httpx.Auth) -> AuthProvider:
    """An auth provider that gives ``auth`` (a HighLevel token) to HighLevel's actions only:
    other bearer apps get their own token (:func:`app_token`), apps without auth nothing."""

    def provide(app: App, action: Action) -> httpx.Auth | None:
        if "none" in app.auth or not app.auth:
            return None
        return auth if app.hub else app_token(app)

    return provide


def api_key_provider(
    fallback: AuthProvider | None = None, *, keys: dict[str, str] | None = None
) -> AuthProvider:
    """An auth provider for apps that take an API key, deferring to ``fallback`` for the rest.

    :param keys: app id -> key (the demo and tests pass sandbox keys); otherwise each key is
        read from :func:`api_key_env` when first needed.
    :raises AuthError: (when called) an API-key app has no key configured.
    """
    cache: dict[str, ApiKeyAuth] = {}

    def provide(app: App, action: Action) -> httpx.Auth | None:
        if "api_key" not in app.auth:
            return fallback(app, action) if fallback else None
        auth = cache.get(app.id)
        if auth is None:
            key = (keys or {}).get(app.id) or os.environ.get(api_key_env(app))
            if not key:
                raise AuthError(
                    f"no API key for app {app.id!r} [set {api_key_env(app)} to the app's API key]"
                )
            auth = cache[app.id] = ApiKeyAuth(app.api_key_header or "Authorization", key)
        return auth

    return provide


def auth_from_args(
    args: argparse.Namespace, app: App
) -> tuple[AuthProvider | None, str | None, str | None]:
    """The auth provider for a CLI call, the location id and the base URL of its credential.

    ``--token-env VAR`` sends that variable's token as is (an API-key app gets it in its key
    header); an API-key app otherwise reads ``CONNECTOR_<APP>_API_KEY``. GHL calls otherwise
    use the named connection (``--connection``), else ``$CONNECTOR_TOKEN``, else the default
    stored one; those are refreshed when needed and their scopes are checked before any request.
    """
    if "none" in app.auth and not args.token_env:
        return None, None, None
    if "api_key" in app.auth and not args.token_env:
        return api_key_provider(), None, None
    if not app.hub and not args.token_env:
        sent_token = app_token(app)
        return (lambda _app, _action: sent_token), None, None
    if args.token_env:
        token = os.environ.get(args.token_env)
        if not token:
            raise AuthError(
                f"no token for app {app.id!r}: ${args.token_env} is not set "
                f"[set {args.token_env} to a token, or use a stored connection]"
            )
        sent: httpx.Auth = (
            ApiKeyAuth(app.api_key_header or "Authorization", token)
            if "api_key" in app.auth
            else StaticBearer(token)
        )
        return (lambda _app, _action: sent), None, None
    from connector.auth.connection import ConnectionStore
    from connector.auth.tokens import TokenManager

    connections = ConnectionStore.open()
    connection = connections.resolve(getattr(args, "connection", None))
    provider = TokenManager(connections).provider(connection.name)
    return provider, connection.location_id, connection.base_url
