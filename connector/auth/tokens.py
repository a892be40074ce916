"""Authenticating calls: fresh tokens (single-flight refresh), scope checks, and logins.

:class:`TokenManager` hands out a connection's token, refreshing it shortly before it expires
(``skew``) and once after a 401. A refresh is single-flight across threads (a lock per
connection) and processes (:meth:`~connector.store.Store.exclusive`: an ``flock`` beside an
SQLite state file, a PostgreSQL advisory lock shared by every machine on the database);
a waiter re-reads the store after the lock and uses the token its predecessor stored instead of
refreshing again. The rotated refresh token is committed before the new access token is used.
A refused refresh marks the connection as needing a new login and raises an
:class:`~connector.errors.AuthError` saying what to run; nothing else is touched.

:class:`BearerAuth` plugs this into httpx; :meth:`TokenManager.provider` plugs it into the
runtime, checking each action's scopes (:func:`require_scopes`) before any request.
:func:`login`, :func:`set_token` and :func:`connect_location` create connections.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

import httpx

from connector.activity import BUS
from connector.auth import oauth
from connector.auth import redaction as secrets
from connector.auth.bearer import app_token
from connector.auth.connection import (
    DEFAULT_NAME,
    ENV_NAME,
    TOKEN_ENV,
    Connection,
    ConnectionStore,
    check_name,
)
from connector.errors import AuthError

if TYPE_CHECKING:
    from connector.hookspecs import Action, App, AuthProvider

__all__ = [
    "DEFAULT_NAME",
    "BearerAuth",
    "Connection",
    "ConnectionStore",
    "TokenManager",
    "connect_location",
    "login",
    "login_hint",
    "require_scopes",
    "scopes_needed",
    "set_token",
]

log = logging.getLogger("connector.auth.tokens")

REFRESH_SKEW = 300.0
"""Refresh this many seconds before the stored expiry (covers clock skew and slow requests)."""
_SCOPE_REFUSAL = "not authorized for this scope"
_AUTH_KINDS = frozenset({"oauth2", "private_token"})
_REFUSALS = frozenset({400, 401, 403})


def login_hint(name: str, scopes: Iterable[str] | None = None) -> str:
    """The command that (re)authorizes connection ``name`` with ``scopes``."""
    wanted = " ".join(sorted(scopes)) if scopes else "SCOPES"
    return f"run `ghl-connector auth login --name {name} --client-id ID --scopes '{wanted}'`"


def _reauthorize_hint(connection: Connection, scopes: Iterable[str] | None) -> str:
    """How to get a token with ``scopes`` for this kind of connection."""
    wanted = " ".join(sorted(scopes or ()))
    if connection.kind == "private":
        return (
            f"create a private integration token with scopes '{wanted}' and run"
            f" `ghl-connector auth set-token {connection.name} --scopes '{wanted}'`"
        )
    if connection.kind == "env":
        return f"set {TOKEN_ENV} to a token with scopes '{wanted}'"
    if connection.kind == "location" and connection.parent:
        parent_hint = login_hint(connection.parent, scopes)
        return (
            f"{parent_hint}, then run `ghl-connector auth location-token --from"
            f" {connection.parent} --location-id {connection.location_id} --name {connection.name}`"
        )
    return login_hint(connection.name, scopes)


def require_scopes(action_id: str, required: Iterable[str], connection: Connection) -> None:
    """Check that ``connection`` was granted every scope ``action_id`` requires.

    Connections whose scopes are unknown pass (the server still checks).

    :raises AuthError: naming the action, the first missing scope and how to re-authorize.
    """
    if connection.scopes is None:
        return
    missing = sorted(set(required) - connection.scopes)
    if missing:
        wanted = connection.scopes | set(missing)
        raise AuthError(
            f"{action_id}: connection {connection.name!r} lacks scope {missing[0]!r}"
            f" [hint: {_reauthorize_hint(connection, wanted)}]"
        )


class _ActionCatalog(Protocol):
    def action(self, action_id: str) -> Action: ...


def scopes_needed(action_ids: Iterable[str], catalog: _ActionCatalog) -> list[str]:
    """Every scope the given actions need, sorted (what ``auth login`` should ask for)."""
    return sorted({scope for a in action_ids for scope in catalog.action(a).scopes})


def _needs_login(connection: Connection, why: str) -> AuthError:
    return AuthError(
        f"connection {connection.name!r} needs a new login: {why}"
        f" [hint: {_reauthorize_hint(connection, connection.scopes)}]",
        status=401,
    )


REREAD = 1.0
"""Seconds a connection read from the store is used before it is read again: a new token
(``auth set-token``), a logout or another process's refresh is seen within this time."""


class TokenManager:
    """Fresh tokens for the connections of one store; share one per process.

    :param connections: where connections live.
    :param skew: refresh this many seconds before expiry.
    :param clock: the time source (tests shift it to simulate clock skew).
    """

    def __init__(
        self,
        connections: ConnectionStore,
        *,
        skew: float = REFRESH_SKEW,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.connections = connections
        self.skew = skew
        self.clock = clock
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._cache: dict[str, tuple[Connection, float]] = {}
        """Connection name -> (the connection, when to read it again, monotonic)."""

    def __repr__(self) -> str:
        return f"TokenManager({self.connections!r})"

    def current(self, name: str | None = None) -> Connection:
        """The connection ``name`` (see :meth:`ConnectionStore.resolve`) with a usable token.

        :raises AuthError: if it needs a new login, or its refresh failed.
        """
        if name is None or name == ENV_NAME:
            resolved = self.connections.resolve(name)
            if resolved.kind == "env":
                return resolved
            name = resolved.name
        cached = self._cache.get(name)
        if (cached is not None and cached[1] > time.monotonic()
                and not cached[0].expiring(self.clock(), self.skew)):  # fmt: skip
            return cached[0]
        try:
            stored = self.connections.get(name)
        except AuthError:
            self._cache.pop(name, None)  # logged out: its token is sent no more
            raise
        if stored.needs_login:
            raise _needs_login(stored, "its refresh token was refused earlier")
        if stored.refreshable and stored.expiring(self.clock(), self.skew):
            return self.refresh(name, stale=stored)
        self._remember(stored)
        return stored

    def _remember(self, connection: Connection) -> None:
        self._cache[connection.name] = (connection, time.monotonic() + REREAD)

    def refresh(self, name: str, *, stale: Connection) -> Connection:
        """Replace ``stale`` (expiring, or just answered 401) with a fresh token; single-flight.

        After taking the locks the store is re-read: if another thread or process stored a
        newer token meanwhile, that one is returned and no request is made.

        :raises AuthError: refused (the connection is then marked as needing login) or failed.
        """
        with self._exclusive(name):
            current = self.connections.get(name)
            fresh = not current.expiring(self.clock(), self.skew)
            if current.generation != stale.generation and fresh and not current.needs_login:
                self._remember(current)
                return current
            if current.needs_login:
                raise _needs_login(current, "its refresh token was refused earlier")
            if not current.refreshable:
                raise _needs_login(current, "its token was rejected and cannot be refreshed")
            renewed = self._renew(current)
            self._remember(renewed)
            return renewed

    @contextmanager
    def _exclusive(self, name: str) -> Iterator[None]:
        """Hold this connection's thread lock, then its lock across processes (the store's:
        an ``flock`` beside an SQLite file, an advisory lock on PostgreSQL)."""
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock, self.connections.store.exclusive(check_name(name)):
            yield

    def _renew(self, connection: Connection) -> Connection:
        """Get and store new tokens for ``connection`` (the caller holds its locks)."""
        log.debug("refreshing connection %r", connection.name)
        if connection.kind == "location" and connection.parent:
            grant = self.location_grant(connection.parent, connection.location_id or "")
        else:
            try:
                grant = oauth.refresh(
                    connection.base_url,
                    client_id=connection.client_id or "",
                    client_secret=connection.client_secret or "",
                    refresh_token=connection.refresh_token or "",
                )
            except AuthError as exc:
                if exc.status not in _REFUSALS:
                    raise  # network trouble, 429 or 5xx: the refresh token may still be good
                self.connections.mark_needs_login(connection.name)
                self._cache.pop(connection.name, None)
                BUS.publish("token", status="refused", connection=connection.name)
                raise _needs_login(connection, f"the refresh was refused ({exc})") from exc
        updated = _apply(connection, grant, self.clock())
        stored = self.connections.save(updated)  # committed before the new token is used
        log.debug("connection %r refreshed (generation %d)", stored.name, stored.generation)
        BUS.publish("token", status="refreshed", connection=stored.name,
                    location=stored.location_id)
        return stored

    def location_grant(self, source: str, location_id: str) -> oauth.Grant:
        """A token for ``location_id`` from agency connection ``source`` (refreshed on a 401).

        :raises AuthError: if ``source`` is not an agency connection, or the exchange fails.
        """
        agency = self.current(source)
        if agency.user_type != "Company":
            raise AuthError(
                f"connection {source!r} is a {agency.user_type} connection; location tokens"
                " come from an agency (Company) connection [hint: log in with an agency account]"
            )
        for attempt in (1, 2):
            try:
                return oauth.location_token(
                    agency.base_url, agency_token=agency.access_token,
                    company_id=agency.company_id or "", location_id=location_id,
                )
            except AuthError as exc:
                if exc.status != 401 or attempt == 2 or not agency.refreshable:
                    raise
                agency = self.refresh(source, stale=agency)
        raise AssertionError("unreachable: the second attempt returns or raises")

    def auth(self, name: str | None = None) -> BearerAuth:
        """An ``httpx.Auth`` that sends connection ``name``'s token."""
        return BearerAuth(self, self.current(name).name)

    def provider(self, name: str | None = None) -> AuthProvider:
        """The runtime's auth provider: checks each action's scopes, then authenticates it.

        Apps that take neither OAuth nor private tokens get no auth from here. Stored
        connections are HighLevel's: another app (a plugin's) gets its own token from
        ``CONNECTOR_<APP>_TOKEN`` (see :func:`~connector.auth.bearer.app_token`), never one
        of them.
        """

        def for_action(app: App, action: Action) -> httpx.Auth | None:
            if not _AUTH_KINDS.intersection(app.auth):
                return None
            if not app.hub:
                return app_token(app)
            connection = self.current(name)
            require_scopes(action.id, action.scopes, connection)
            return BearerAuth(self, connection.name)

        return for_action


def _apply(connection: Connection, grant: oauth.Grant, now: float) -> Connection:
    """``connection`` with the tokens (and facts) of a new grant."""
    return replace(
        connection,
        access_token=grant.access_token,
        refresh_token=grant.refresh_token or connection.refresh_token,
        expires_at=now + grant.expires_in if grant.expires_in is not None else None,
        scopes=grant.scopes or connection.scopes,
        company_id=grant.company_id or connection.company_id,
        location_id=grant.location_id or connection.location_id,
        needs_login=False,
    )


class BearerAuth(httpx.Auth):
    """Sends ``Authorization: Bearer <token>`` for a connection; on a 401, refreshes once.

    A 401 that says the token lacks a scope is returned as is (a new token would not help).
    """

    requires_response_body = True

    def __init__(self, tokens: TokenManager, name: str) -> None:
        self._tokens = tokens
        self.name = name

    def __repr__(self) -> str:
        return f"BearerAuth(connection={self.name!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Authenticate ``request``; after a 401, refresh (single-flight) and retry once."""
        used = self._tokens.current(self.name)
        if used.kind != "env" and _origin(request.url) != _bound_origin(used.base_url):
            bound = httpx.URL(used.base_url)
            raise AuthError(
                f"connection {self.name!r} is for {bound.scheme}://{bound.netloc.decode()}, not"
                f" {request.url.scheme}://{request.url.netloc.decode()}: its token is not sent"
                " there [store a connection for that host (ghl-connector auth set-token"
                " --base-url URL), or drop --base-url]"
            )
        request.headers["Authorization"] = f"Bearer {used.access_token}"
        response = yield request
        if response.status_code != 401 or used.kind == "env" or not used.refreshable:
            return
        if _SCOPE_REFUSAL in response.text:
            return
        log.debug("connection %r: 401 from %s, refreshing once", self.name, request.url.path)
        fresh = self._tokens.refresh(self.name, stale=used)
        request.headers["Authorization"] = f"Bearer {fresh.access_token}"
        yield request


@functools.lru_cache(maxsize=64)
def _bound_origin(base_url: str) -> tuple[str, str, int | None]:
    """The origin of a connection's base URL (parsed once: it is checked on every call)."""
    return _origin(httpx.URL(base_url))


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """Scheme, host and port (the scheme's default when none is written) of ``url``."""
    default = {"https": 443, "http": 80}.get(url.scheme)
    return url.scheme, url.host, url.port or default


def login(
    connections: ConnectionStore,
    *,
    name: str,
    client_id: str,
    client_secret: str,
    scopes: Sequence[str],
    base_url: str,
    authorize_endpoint: str,
    announce: Callable[[str], None],
    port: int = 0,
    timeout: float = 300.0,
    clock: Callable[[], float] = time.time,
) -> Connection:
    """The authorization-code flow: announce the URL, catch the redirect, store the token.

    :param announce: shows the authorize URL to the user (and may open a browser).
    :param port: the loopback port of the redirect URI (0: any free port).
    :raises AuthError: on a refused or forged redirect, a timeout, or a refused exchange.
    """
    check_name(name)
    secrets.register(client_secret)
    state = os.urandom(32).hex()  # unguessable; ties the redirect to this login
    with oauth.LoopbackCallback(port) as callback:
        announce(
            oauth.authorize_url(
                authorize_endpoint,
                client_id=client_id,
                redirect_uri=callback.redirect_uri,
                scopes=" ".join(scopes),
                state=state,
            )
        )
        code = callback.wait(state, timeout)
        redirect_uri = callback.redirect_uri
    grant = oauth.exchange_code(
        base_url, client_id=client_id, client_secret=client_secret, code=code,
        redirect_uri=redirect_uri,
    )
    fresh = Connection(
        name=name, kind="oauth", user_type=grant.user_type, base_url=base_url,
        access_token="", client_id=client_id, client_secret=client_secret,
    )
    return connections.save(_apply(fresh, grant, clock()))


def set_token(
    connections: ConnectionStore,
    *,
    name: str,
    token: str,
    base_url: str,
    location_id: str | None = None,
    company_id: str | None = None,
    scopes: Iterable[str] | None = None,
) -> Connection:
    """Store a private integration token as connection ``name`` (it never expires)."""
    check_name(name)
    secrets.register(token)
    if not token.strip():
        raise AuthError(f"connection {name!r}: the token is empty")
    return connections.save(
        Connection(
            name=name, kind="private", user_type="Location" if location_id else "Company",
            base_url=base_url, access_token=token.strip(), location_id=location_id,
            company_id=company_id, scopes=frozenset(scopes) if scopes is not None else None,
        )
    )


def connect_location(
    tokens: TokenManager, *, source: str, location_id: str, name: str
) -> Connection:
    """Exchange agency connection ``source``'s token for a token of one location, as ``name``.

    :raises AuthError: if ``source`` is not an agency (Company) connection, or it is refused.
    """
    check_name(name)
    grant = tokens.location_grant(source, location_id)
    agency = tokens.current(source)
    derived = Connection(
        name=name, kind="location", user_type="Location", base_url=agency.base_url,
        access_token="", company_id=agency.company_id, location_id=location_id,
        parent=source,
    )
    return tokens.connections.save(_apply(derived, grant, tokens.clock()))
