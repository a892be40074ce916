"""``Idempotency-Key`` on action calls: a platform's retry answers the stored result.

Automation platforms retry a call whose answer they did not get; a create must not happen
twice. A POST carrying ``Idempotency-Key`` first claims the key (``api_idempotency``, store
migration 9) in one transaction, keyed by the API key that sent it, with the SHA-256 of what
it asks (action, connection and body). Then:

- the key is new: the claim is committed (durably) *before* the call is sent, the call runs,
  and its answer (status and body) is stored under the key;
- the key holds a stored answer for the same request: that answer, again, without a call;
- the key was used for another request (another body, action or connection): 422;
- the key's first request is still running: 409 (retry later). A claim whose answer never
  came (the process was killed during the call) stays unanswered: whether the call took effect
  is unknown, so it is never repeated under that key, and the 409 says so.

Answers are stored for calls that ran, failed ones included (a GHL 400 replays as a 400); a
call that was refused before anything was sent (bad input, rate limited, no connection)
releases the key so the corrected retry can use it. Keys are kept for :data:`KEEP_SECONDS`.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connector.store import Store

__all__ = ["KEEP_SECONDS", "Claim", "Idempotency", "MAX_KEY_CHARS", "request_digest"]

KEEP_SECONDS = 24 * 3600.0
MAX_KEY_CHARS = 255
_PURGE_EVERY = 60.0


def request_digest(action: str, connection: str | None, body: Mapping[str, Any]) -> str:
    """The SHA-256 of what a call asks: its action, connection and body (keys sorted)."""
    text = json.dumps([action, connection, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class Claim:
    """What claiming a key found.

    :param state: ``new`` (the caller runs the call), ``stored`` (``status`` and ``body``
        hold the answer to replay), ``other`` (the key was used for another request) or
        ``running`` (its first request has no answer yet; ``since`` is when it started).
    """

    state: str
    status: int | None = None
    body: bytes | None = None
    since: float | None = None


class Idempotency:
    """The ``api_idempotency`` table of a state file. Thread-safe, like the store."""

    def __init__(self, store: Store, *, keep: float = KEEP_SECONDS) -> None:
        self.store = store
        self.keep = keep
        self._purged = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Idempotency({self.store!r})"

    def claim(self, api_key: str, key: str, digest: str) -> Claim:
        """Claim ``key`` for the request ``digest`` (see :class:`Claim`)."""
        now = time.time()
        self._purge(now)
        with self.store.transaction() as db:
            # One statement decides, on every engine: concurrent claims of a key insert once.
            taken = db.execute(
                "INSERT INTO api_idempotency (api_key, key, request, created_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (api_key, key) DO NOTHING",
                (api_key, key, digest, now),
            ).rowcount
            if taken:
                return Claim("new")
            row = db.execute(
                "SELECT request, status, body, created_at FROM api_idempotency"
                " WHERE api_key = ? AND key = ?",
                (api_key, key),
            ).fetchone()
        if row is None:  # purged in between: as unknown as a running one
            return Claim("running", since=now)
        request, status, body, created = row[0], row[1], row[2], float(row[3])
        if request != digest:
            return Claim("other", since=created)
        if status is None:
            return Claim("running", since=created)
        return Claim("stored", int(status), bytes(body), created)

    def store_answer(self, api_key: str, key: str, status: int, body: bytes) -> None:
        """Record the answer to the claimed ``key``."""
        self.store.execute(
            "UPDATE api_idempotency SET status = ?, body = ? WHERE api_key = ? AND key = ?",
            (status, body, api_key, key),
        )

    def release(self, api_key: str, key: str) -> None:
        """Forget a claim whose call was refused before anything was sent."""
        self.store.execute(
            "DELETE FROM api_idempotency WHERE api_key = ? AND key = ? AND status IS NULL",
            (api_key, key),
        )

    def _purge(self, now: float) -> None:
        with self._lock:
            if now - self._purged < _PURGE_EVERY:
                return
            self._purged = now
        self.store.execute(
            "DELETE FROM api_idempotency WHERE created_at < ?", (now - self.keep,)
        )
