"""Connections: the named credentials calls authenticate as, and their encrypted storage.

A :class:`Connection` is an OAuth install (``oauth``), a location token derived from an agency
connection (``location``), a private integration token (``private``), or ``$CONNECTOR_TOKEN``
for CI (``env``, never stored). :class:`ConnectionStore` keeps them in the state file's
``connections`` table with every secret sealed by the :class:`~connector.auth.vault.Vault`; only
names, ids, scopes and expiry are stored in clear.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from connector.auth import redaction as secrets
from connector.auth.vault import Vault
from connector.errors import AuthError, StoreError
from connector.store import Row, Store

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_NAME",
    "ENV_NAME",
    "TOKEN_ENV",
    "Connection",
    "ConnectionStore",
    "check_name",
]

DEFAULT_BASE_URL = "https://services.leadconnectorhq.com"
DEFAULT_NAME = "default"
ENV_NAME = "env"
TOKEN_ENV = "CONNECTOR_TOKEN"
LOCATION_ENV = "CONNECTOR_LOCATION_ID"
SCOPES_ENV = "CONNECTOR_SCOPES"
BASE_URL_ENV = "CONNECTOR_GHL_BASE_URL"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_SECRET_FIELDS = ("access_token", "refresh_token", "client_secret")
_CLEAR_FIELDS = (
    "kind", "user_type", "company_id", "location_id", "scopes", "expires_at", "client_id",
    "base_url", "parent", "needs_login",
)


@dataclass(frozen=True, slots=True)
class Connection:
    """One named credential. Secrets are left out of the repr.

    :param kind: ``oauth``, ``location``, ``private`` or ``env``.
    :param user_type: ``Location`` (sub-account) or ``Company`` (agency).
    :param base_url: the API (and token endpoint) base URL.
    :param scopes: the granted scopes; ``None`` when unknown (a private token given without
        ``--scopes``), in which case only the server checks them.
    :param expires_at: when the access token expires (epoch seconds), ``None`` for never.
    :param parent: for ``location`` connections, the agency connection it came from.
    :param generation: bumped on every stored change; tells a waiter that someone refreshed.
    """

    name: str
    kind: str
    user_type: str
    base_url: str
    access_token: str = field(repr=False)
    company_id: str | None = None
    location_id: str | None = None
    scopes: frozenset[str] | None = None
    expires_at: float | None = None
    client_id: str | None = None
    refresh_token: str | None = field(default=None, repr=False)
    client_secret: str | None = field(default=None, repr=False)
    parent: str | None = None
    needs_login: bool = False
    generation: int = 0

    @property
    def refreshable(self) -> bool:
        """Whether a new access token can be had without the user."""
        if self.kind == "location":
            return self.parent is not None
        return bool(self.refresh_token and self.client_id and self.client_secret)

    def expiring(self, now: float, skew: float) -> bool:
        """Whether the access token expires within ``skew`` seconds of ``now``."""
        return self.expires_at is not None and now >= self.expires_at - skew

    def summary(self) -> dict[str, object]:
        """The connection's non-secret facts, JSON-ready (for ``auth status``)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "user_type": self.user_type,
            "company_id": self.company_id,
            "location_id": self.location_id,
            "scopes": sorted(self.scopes) if self.scopes is not None else None,
            "expires_at": self.expires_at,
            "needs_login": self.needs_login,
            "parent": self.parent,
            "base_url": self.base_url,
        }


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid connection name, else raise :class:`AuthError`."""
    if not _NAME.fullmatch(name):
        raise AuthError(
            f"connection name {name!r} is not valid [hint: use letters, digits, '.', '_' or"
            " '-', at most 64 characters, starting with a letter or digit]"
        )
    return name


def default_base_url() -> str:
    """The GHL API base URL: ``$CONNECTOR_GHL_BASE_URL`` (e.g. a sandbox), else the real one."""
    return os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL


def env_connection() -> Connection | None:
    """The connection ``$CONNECTOR_TOKEN`` describes (plus optional location id and scopes)."""
    token = os.environ.get(TOKEN_ENV)
    if not token:
        return None
    secrets.register(token)
    location = os.environ.get(LOCATION_ENV) or None
    scopes = os.environ.get(SCOPES_ENV)
    return Connection(
        name=ENV_NAME,
        kind="env",
        user_type="Location" if location else "Company",
        base_url=default_base_url(),
        access_token=token,
        location_id=location,
        scopes=frozenset(scopes.split()) if scopes else None,
    )


class ConnectionStore:
    """The ``connections`` table of a state file, secrets sealed with a vault.

    :param store: the open state file.
    :param vault: the key to seal secrets with; by default the one beside the state file.
    """

    def __init__(self, store: Store, vault: Vault | None = None) -> None:
        self.store = store
        self.vault = vault or Vault.beside(store.path)

    @classmethod
    def open(cls, path: Path | str | None = None) -> ConnectionStore:
        """Open the state file at ``path`` (default: ``$CONNECTOR_HOME/state.db``)."""
        return cls(Store(path))

    def __repr__(self) -> str:
        return f"ConnectionStore({self.store.where!r})"

    def names(self) -> list[str]:
        """The stored connection names, sorted."""
        rows = self.store.query("SELECT name FROM connections ORDER BY name")
        return [row["name"] for row in rows]

    def summaries(self) -> list[dict[str, object]]:
        """Every stored connection's non-secret facts, without touching the key."""
        rows = self.store.query(
            f"SELECT name, {', '.join(_CLEAR_FIELDS)} FROM connections ORDER BY name"
        )
        return [self._build(row, secrets_too=False).summary() for row in rows]

    def key_problems(self) -> dict[str, str]:
        """The stored connections whose secrets the key does not open, with why (a wrong
        ``CONNECTOR_KEY``, a missing or other ``state.key``); empty when every one opens."""
        found: dict[str, str] = {}
        for name in self.names():
            try:
                self.find(name)
            except StoreError as exc:
                found[name] = str(exc)
        return found

    def check_key(self, command: str) -> None:
        """Refuse to start ``command`` when the key does not open the stored connections
        (every event would then be dead-lettered with "cannot decrypt tokens").

        :raises StoreError: one line naming the connections and the key's source.
        """
        problems = self.key_problems()
        if problems:
            names = ", ".join(repr(n) for n in sorted(problems))
            first = next(iter(problems.values()))
            raise StoreError(f"{command}: the stored connections ({names}) do not open with"
                             f" this key: {first.partition(': ')[2] or first}")

    def stored_times(self) -> dict[str, float]:
        """When each connection's tokens were last stored (a login or a refresh), by name."""
        rows = self.store.query("SELECT name, updated_at FROM connections ORDER BY name")
        return {str(r["name"]): float(r["updated_at"]) for r in rows if r["updated_at"]}

    def find(self, name: str) -> Connection | None:
        """The stored connection ``name`` with its secrets opened, or ``None``.

        :raises StoreError: if the secrets cannot be decrypted (wrong key).
        """
        rows = self.store.query("SELECT * FROM connections WHERE name = ?", (name,))
        return self._build(rows[0], secrets_too=True) if rows else None

    def get(self, name: str) -> Connection:
        """The stored connection ``name``.

        :raises AuthError: if there is none (the message lists the ones there are).
        """
        found = self.find(name)
        if found is None:
            known = ", ".join(repr(n) for n in self.names()) or "none"
            raise AuthError(
                f"no connection named {name!r} (stored: {known}) [hint: run `ghl-connector auth"
                f" login --name {name} ...` or `ghl-connector auth set-token {name}`]"
            )
        return found

    def resolve(self, name: str | None) -> Connection:
        """The connection a call uses: ``name``; else ``$CONNECTOR_TOKEN``; else ``default``;
        else the only stored one.

        :raises AuthError: if none applies.
        """
        if name == ENV_NAME or (name is None and os.environ.get(TOKEN_ENV)):
            env = env_connection()
            if env is None:
                raise AuthError(f"connection {ENV_NAME!r}: ${TOKEN_ENV} is not set")
            return env
        if name is not None:
            return self.get(name)
        names = self.names()
        if DEFAULT_NAME in names or not names:
            return self.get(DEFAULT_NAME)
        if len(names) == 1:
            return self.get(names[0])
        raise AuthError(
            f"several connections and none named {DEFAULT_NAME!r}: {', '.join(names)}"
            " [hint: choose one with --connection NAME]"
        )

    def save(self, connection: Connection) -> Connection:
        """Insert or replace ``connection`` and commit; returns it with its new generation."""
        check_name(connection.name)
        if connection.kind == "env":
            raise ValueError("the env connection is never stored")
        sealed = {
            f: self._seal(connection.name, f, getattr(connection, f)) for f in _SECRET_FIELDS
        }
        values = (
            connection.name, connection.kind, connection.user_type, connection.company_id,
            connection.location_id,
            " ".join(sorted(connection.scopes)) if connection.scopes is not None else None,
            connection.expires_at, connection.client_id, connection.base_url, connection.parent,
            sealed["access_token"], sealed["refresh_token"], sealed["client_secret"],
            int(connection.needs_login), time.time(),
        )
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO connections (name, kind, user_type, company_id, location_id, scopes,"
                " expires_at, client_id, base_url, parent, access_token, refresh_token,"
                " client_secret, needs_login, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET kind = excluded.kind,"
                " user_type = excluded.user_type, company_id = excluded.company_id,"
                " location_id = excluded.location_id, scopes = excluded.scopes,"
                " expires_at = excluded.expires_at, client_id = excluded.client_id,"
                " base_url = excluded.base_url, parent = excluded.parent,"
                " access_token = excluded.access_token, refresh_token = excluded.refresh_token,"
                " client_secret = excluded.client_secret, needs_login = excluded.needs_login,"
                " updated_at = excluded.updated_at, generation = connections.generation + 1",
                values,
            )
            row = db.execute(
                "SELECT generation FROM connections WHERE name = ?", (connection.name,)
            ).fetchone()
        return replace(connection, generation=int(row[0]))

    def mark_needs_login(self, name: str) -> None:
        """Flag ``name`` as needing a new login (its refresh was refused); keeps everything else."""
        self.store.execute(
            "UPDATE connections SET needs_login = 1, updated_at = ? WHERE name = ?",
            (time.time(), name),
        )

    def delete(self, name: str) -> bool:
        """Forget ``name`` and its tokens; returns whether it existed."""
        return self.store.execute("DELETE FROM connections WHERE name = ?", (name,)) > 0

    def _seal(self, name: str, field_name: str, value: str | None) -> bytes | None:
        if value is None:
            return None
        return self.vault.seal(value, context=f"connections/{name}/{field_name}")

    def _open(self, name: str, field_name: str, blob: bytes | None) -> str | None:
        if blob is None:
            return None
        value = self.vault.open(bytes(blob), context=f"connections/{name}/{field_name}")
        secrets.register(value)
        return value

    def _build(self, row: Row, *, secrets_too: bool) -> Connection:
        name = row["name"]
        opened = {
            f: self._open(name, f, row[f]) if secrets_too else None for f in _SECRET_FIELDS
        }
        return Connection(
            name=name,
            kind=row["kind"],
            user_type=row["user_type"],
            base_url=row["base_url"],
            access_token=opened["access_token"] or "",
            company_id=row["company_id"],
            location_id=row["location_id"],
            scopes=frozenset(row["scopes"].split()) if row["scopes"] is not None else None,
            expires_at=row["expires_at"],
            client_id=row["client_id"],
            refresh_token=opened["refresh_token"],
            client_secret=opened["client_secret"],
            parent=row["parent"],
            needs_login=bool(row["needs_login"]),
            generation=row["generation"] if secrets_too else 0,
        )
