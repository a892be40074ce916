"""The runtime of each connection the HTTP API calls with, made on first use.

A request names its connection in the ``X-Connection`` header; without it the default
connection is used, chosen as ``call`` chooses it (``$CONNECTOR_TOKEN``, else ``default``,
else the only stored one: :meth:`connector.auth.connection.ConnectionStore.resolve`). Each
connection gets one :class:`~connector.runtime.Runtime` (its pooled clients, its rate limiter,
its location filling inputs, its base URL), authenticated exactly as ``call --connection NAME``
is: HighLevel's actions with the connection's token (scopes checked first), API-key apps with
``CONNECTOR_<APP>_API_KEY``, other apps with their own token.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from connector.auth.connection import Connection, ConnectionStore, check_name
from connector.catalog import Catalog
from connector.errors import ConnectorError
from connector.hookspecs import RateLimit
from connector.runtime import Runtime, Settings
from connector.store import Store

__all__ = ["CONNECTION_HEADER", "RuntimeOptions", "Runtimes"]

CONNECTION_HEADER = "X-Connection"
RESOLVED_FOR = 1.0
"""Seconds a request's connection name stays resolved: a new default connection, a deleted
(logged out) one, or one stored anew for another host or location is seen within this time,
as a revoked API key is (a new token of the same connection: within
:data:`connector.auth.tokens.REREAD`)."""


@dataclass(frozen=True, slots=True)
class RuntimeOptions:
    """What every connection's runtime shares (``ghl-connector api``'s options).

    :param base_urls: app id -> base URL overriding the app's (and the connection's).
    """

    base_urls: Mapping[str, str] = field(default_factory=dict)
    rate_limits: Mapping[str, RateLimit] = field(default_factory=dict)
    strict: bool = False
    timeout: float | None = None
    retry: object = None


class Runtimes:
    """One runtime per connection name, plus one without credentials (for dry runs that have
    no connection to take a location from). Thread-safe."""

    def __init__(self, catalog: Catalog, store: Store, options: RuntimeOptions) -> None:
        self.catalog = catalog
        self.options = options
        self._connections = ConnectionStore(store)
        self._lock = threading.Lock()
        self._made: dict[str, tuple[Runtime, Connection]] = {}
        self._retired: list[Runtime] = []
        self._resolved: dict[str | None, tuple[tuple[Runtime, Connection], float]] = {}
        self._bare: Runtime | None = None

    def __repr__(self) -> str:
        return f"Runtimes(connections={sorted(self._made)})"

    def connection(self, name: str | None) -> Connection:
        """The connection a request names (or the default one).

        :raises ConnectorError: the name is malformed; AuthError: there is no such connection.
        """
        if name is not None:
            check_name(name)
        return self._connections.resolve(name)

    def get(self, name: str | None) -> tuple[Runtime, Connection]:
        """The runtime of connection ``name`` (None: the default), and the connection.

        The name's resolution (a read of the state file) is kept :data:`RESOLVED_FOR`
        seconds, so a call costs no lookup."""
        now = time.monotonic()
        with self._lock:
            hit = self._resolved.get(name)
            if hit is not None and hit[1] > now:
                return hit[0]
        connection = self.connection(name)
        with self._lock:
            made = self._made.get(connection.name)
            if made is not None and _where(made[1]) != _where(connection):
                self._retired.append(made[0])  # stored anew for another host or location
                made = None
            if made is None:
                made = self._made[connection.name] = (self._build(connection), connection)
            if len(self._resolved) > 1000:
                self._resolved.clear()
            self._resolved[name] = (made, now + RESOLVED_FOR)
            return made

    def bare(self) -> Runtime:
        """A runtime with no credentials and no location (dry runs only)."""
        with self._lock:
            if self._bare is None:
                self._bare = Runtime(self.catalog, self._settings(None, None))
            return self._bare

    def rate_limits(self) -> dict[str, list[dict[str, object]]]:
        """Every connection's rate-limiter state, by app id (the console shows them)."""
        with self._lock:
            runtimes = [runtime for runtime, _ in self._made.values()]
        merged: dict[str, list[dict[str, object]]] = {}
        for runtime in runtimes:
            for app, snaps in runtime.rate_limits().items():
                merged.setdefault(app, []).extend(snaps)
        return merged

    def close(self) -> None:
        """Close every runtime's pooled clients."""
        with self._lock:
            made, self._made = list(self._made.values()), {}
            retired, self._retired = self._retired, []
            self._resolved.clear()
            bare, self._bare = self._bare, None
        for runtime in [*(runtime for runtime, _ in made), *retired]:
            runtime.close()
        if bare is not None:
            bare.close()

    def _settings(self, location_id: str | None, base_url: str | None) -> Settings:
        options = self.options
        hub = self.catalog.hub
        urls = dict(options.base_urls)
        if hub and base_url and hub not in urls:
            urls[hub] = base_url
        return Settings(
            strict=options.strict, base_urls=urls, location_id=location_id,
            timeout=options.timeout, retry=options.retry, rate_limits=options.rate_limits,
        )  # fmt: skip

    def _build(self, connection: Connection) -> Runtime:
        from connector.auth.credentials import api_key_provider
        from connector.auth.tokens import TokenManager

        if self.catalog.hub is None:
            raise ConnectorError("the catalog has no hub app: connections have nothing to call")
        tokens = TokenManager(self._connections)
        auth = api_key_provider(tokens.provider(connection.name))
        settings = self._settings(connection.location_id, connection.base_url)
        return Runtime(self.catalog, settings, auth=auth)


def _where(connection: Connection) -> tuple[str | None, str | None, str]:
    """What a connection's runtime is built from: its host, its location and its kind."""
    return connection.base_url, connection.location_id, connection.kind
