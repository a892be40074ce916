"""The sandbox's OAuth token store: grants, codes and tokens, each kept only as a SHA-256 hash.

:class:`connector.sandbox.oauth.OAuthProvider` decides who gets what; this module only
remembers it. Tokens are opaque random strings (``secrets.token_urlsafe``) handed out once and
never stored, so no secret sits in memory dumps or reprs. The store does no locking of its own:
the provider holds its lock around every call, so check-then-spend sequences stay atomic.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["REFRESH_LIFETIME", "Code", "Grant", "Principal", "TokenStore"]

_PRUNE_ABOVE = 1024
REFRESH_LIFETIME = 365 * 86400.0
"""Seconds a refresh token stays valid if unused ("valid for a year unless they are used")."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a valid access token speaks for, and what it may do.

    ``user_type`` is ``"Location"`` (sub-account) or ``"Company"`` (agency); ``location_id`` is
    None for agency tokens; ``grant_id`` is a non-secret id of the grant the token came from.
    """

    user_type: str
    company_id: str
    location_id: str | None
    scopes: frozenset[str]
    grant_id: str
    client_id: str = ""


@dataclass(slots=True)
class Grant:
    """One install, location-token exchange or private token; revoking it kills its tokens."""

    principal: Principal
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class Code:
    """An authorization code's promise: for which client, redirect URI and grant, until when."""

    client_id: str
    redirect_uri: str
    principal: Principal
    expires_at: float


@dataclass(frozen=True, slots=True)
class _Access:
    grant: Grant
    expires_at: float


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenStore:
    """Hashes of live codes, access tokens and refresh tokens, and what each one grants.

    :param clock: the time source, in seconds.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._static: dict[str, _Access] = {}
        self._access: dict[str, _Access] = {}
        self._refresh: dict[str, _Access] = {}
        self._spent: set[str] = set()
        self._codes: dict[str, Code] = {}

    def __repr__(self) -> str:
        return f"TokenStore(access={len(self._access)}, refresh={len(self._refresh)})"

    def now(self) -> float:
        """The store's current time."""
        return self._clock()

    def clear(self) -> int:
        """Forget every code and OAuth token (static tokens stay); returns how many were live."""
        count = len(self._access) + len(self._refresh) + len(self._codes)
        self._access.clear()
        self._refresh.clear()
        self._spent.clear()
        self._codes.clear()
        return count

    def add_static(self, token: str, grant: Grant) -> None:
        """Register a token that never expires and survives :meth:`clear` (a private token)."""
        self._static[_digest(token)] = _Access(grant, math.inf)

    def lookup(self, token: str) -> Principal | None:
        """Who a live access token speaks for; None when unknown, revoked or expired."""
        key = _digest(token)
        access = self._static.get(key) or self._access.get(key)
        if access is None or access.grant.revoked:
            return None
        if self._clock() >= access.expires_at:
            del self._access[key]
            return None
        return access.grant.principal

    def issue_access(self, grant: Grant, lifetime: float) -> str:
        """A new access token for a grant, live for ``lifetime`` seconds."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        if len(self._access) > _PRUNE_ABOVE:
            # Drop expired tokens now and then so a long benchmark does not grow memory.
            for key in [k for k, a in self._access.items() if now >= a.expires_at]:
                del self._access[key]
        self._access[_digest(token)] = _Access(grant, now + lifetime)
        return token

    def expire_access(self) -> int:
        """Expire every OAuth access token now (static ones excepted); returns how many."""
        count = len(self._access)
        self._access.clear()
        return count

    def issue_refresh(self, grant: Grant) -> str:
        """A new refresh token for a grant, live for :data:`REFRESH_LIFETIME` unless used."""
        token = secrets.token_urlsafe(32)
        self._refresh[_digest(token)] = _Access(grant, self._clock() + REFRESH_LIFETIME)
        return token

    def refresh_grant(self, token: str) -> Grant | None:
        """The live grant a refresh token belongs to, without spending it."""
        entry = self._refresh.get(_digest(token))
        if entry is None or entry.grant.revoked or self._clock() >= entry.expires_at:
            return None
        return entry.grant

    def spend_refresh(self, token: str) -> None:
        """Spend a refresh token: it will never work again."""
        key = _digest(token)
        self._refresh.pop(key, None)
        self._spent.add(key)

    def was_spent(self, token: str) -> bool:
        """Whether a refresh token was already used (a replay, not just an unknown token)."""
        return _digest(token) in self._spent

    def revoke(self, refresh_token: str) -> bool:
        """Revoke the grant of a live refresh token, and so all its tokens; False if none."""
        entry = self._refresh.pop(_digest(refresh_token), None)
        if entry is not None:
            entry.grant.revoked = True
        return entry is not None

    def issue_code(self, code: Code) -> str:
        """A new authorization code for the given promise."""
        text = secrets.token_urlsafe(24)
        self._codes[_digest(text)] = code
        return text

    def take_code(self, text: str) -> Code | None:
        """Redeem a code once: the live promise, or None if unknown, used or expired."""
        code = self._codes.pop(_digest(text), None)
        if code is None or self._clock() >= code.expires_at:
            return None
        return code
