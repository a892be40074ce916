"""The HTTP API's keys: created, listed and revoked by ``ghl-connector api keys``, checked on
every request.

A key reads ``ghlk_<id>_<secret>``: ``id`` (8 hex digits) finds its row, ``secret`` (32 random
bytes, URL-safe base64) proves it. Only the SHA-256 digest of the whole key is stored (``api_keys``,
store migration 9); the key itself is printed once, when it is created. A plain digest is
enough: the secret is random, so there is nothing to guess from it, and one digest per request
keeps the check in microseconds. Digests are compared in constant time. A key found live is
remembered for :data:`REMEMBER_SECONDS`, so a request does not wait on the state file (whose
writers flush to disk); a revocation is seen at once by this process and within that time by
a running API in another.

A key may be limited to actions (and triggers) whose ids match any of its globs
(``fnmatch``: ``ghl.contacts.*``), and made read-only: it then may call no action that
may change something (:func:`connector.recipes.footprints.is_read` is false) and subscribe no hook.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

from connector.errors import ConnectorError
from connector.store import Row, Store

__all__ = ["ApiKey", "ApiKeys", "KEY_PREFIX"]

KEY_PREFIX = "ghlk_"
_KEY = re.compile(r"ghlk_([0-9a-f]{8})_([A-Za-z0-9_-]{43})")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_MAX_GLOBS = 100
REMEMBER_SECONDS = 1.0
_REMEMBERED = 1000


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One key as stored (never the key itself).

    :param actions: globs of the action and trigger ids it may use (empty: all).
    """

    id: str
    name: str
    actions: tuple[str, ...]
    read_only: bool
    created_at: float
    revoked_at: float | None = None

    def allows(self, item_id: str) -> bool:
        """Whether the key may use the action or trigger ``item_id`` (its globs)."""
        return not self.actions or any(fnmatch.fnmatchcase(item_id, g) for g in self.actions)

    def summary(self) -> dict[str, object]:
        """The key as JSON-ready data (``api keys list --json``)."""
        return {
            "name": self.name,
            "id": self.id,
            "actions": list(self.actions) or ["*"],
            "read_only": self.read_only,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("ascii")).hexdigest()


class ApiKeys:
    """The ``api_keys`` table of a state file."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._live: dict[str, tuple[ApiKey, float]] = {}

    def __repr__(self) -> str:
        return f"ApiKeys({self.store!r})"

    def create(
        self, name: str, actions: Sequence[str] = (), *, read_only: bool = False
    ) -> tuple[ApiKey, str]:
        """A new key named ``name``: its stored record and the key (shown to the user once).

        :raises ConnectorError: the name is malformed or taken, or a glob is empty.
        """
        if not _NAME.fullmatch(name):
            raise ConnectorError(
                f"api key name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting"
                " with a letter or digit"
            )
        globs = tuple(dict.fromkeys(g.strip() for g in actions))
        if any(not g for g in globs) or len(globs) > _MAX_GLOBS:
            raise ConnectorError(
                f"api key {name!r}: --actions takes 1-{_MAX_GLOBS} non-empty globs"
                " [e.g. 'ghl.contacts.*']"
            )
        key_id = secrets.token_hex(4)
        secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii").rstrip("=")
        key = f"{KEY_PREFIX}{key_id}_{secret}"
        record = ApiKey(key_id, name, globs, read_only, time.time())
        with self.store.transaction() as db:
            if db.execute("SELECT 1 FROM api_keys WHERE name = ?", (name,)).fetchone():
                raise ConnectorError(
                    f"api key {name!r} exists [revoke it first, or choose another name]"
                )
            db.execute(
                "INSERT INTO api_keys (id, name, digest, actions, read_only, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (key_id, name, _digest(key), json.dumps(list(globs)), int(read_only),
                 record.created_at),
            )  # fmt: skip
        return record, key

    def list(self) -> list[ApiKey]:
        """Every key, revoked ones too, by name."""
        rows = self.store.query("SELECT * FROM api_keys ORDER BY name")
        return [_record(row) for row in rows]

    def revoke(self, name: str) -> bool:
        """Revoke the key named ``name`` (its row stays, marked); False if there is none
        or it was revoked already."""
        changed = self.store.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
            (time.time(), name),
        )
        self._live.clear()
        return changed > 0

    def check(self, presented: str | None) -> ApiKey | None:
        """The live key ``presented`` is, or None (missing, malformed, unknown, revoked)."""
        if not presented:
            return None
        presented = presented.strip()
        found = _KEY.fullmatch(presented)
        if found is None:
            return None
        digest = _digest(presented)
        now = time.monotonic()
        remembered = self._live.get(digest)
        if remembered is not None and remembered[1] > now:
            return remembered[0]
        rows = self.store.query("SELECT * FROM api_keys WHERE id = ?", (found.group(1),))
        if not rows or rows[0]["revoked_at"] is not None:
            return None
        if not hmac.compare_digest(rows[0]["digest"], digest):
            return None
        record = _record(rows[0])
        if len(self._live) >= _REMEMBERED:
            self._live.clear()
        self._live[digest] = (record, now + REMEMBER_SECONDS)
        return record


def _record(row: Row) -> ApiKey:
    return ApiKey(
        row["id"], row["name"], tuple(json.loads(row["actions"])), bool(row["read_only"]),
        row["created_at"], row["revoked_at"],
    )  # fmt: skip
