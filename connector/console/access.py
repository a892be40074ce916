"""Who may use the console: login tokens, sessions, CSRF tokens, and the loopback rule.

- Bound to a loopback address (127.0.0.0/8, ``::1``, ``localhost``), the console needs no
  login: only this machine can reach it. Bound anywhere else, every page, the event stream and
  ``/metrics`` need a login: a *console token* (``ghl-connector console token``) typed into the
  login form, which opens a session (an HttpOnly, SameSite=Strict cookie), or sent as
  ``Authorization: Bearer <token>`` (scrapers, scripts).
- Tokens are stored as their SHA-256 only (table ``console_tokens``); the token itself is
  printed once, when it is created.
- Without a login (loopback), only requests whose ``Host`` names this machine are answered, so
  a page of another site re-pointed at 127.0.0.1 (DNS rebinding) reads nothing.
- Every request that changes something (login, logout, replay, discard) carries a CSRF token
  tied to its session (without login: to the process) and is refused when its ``Origin`` or
  ``Sec-Fetch-Site`` says another site sent it.
- ``/healthz`` beyond loopback answers only its status to a request without a console token
  as ``Bearer`` (:func:`health_details`): its details name the fleet's hosts and pids.
- Failed logins are limited per client address (20 a minute; behind a reverse proxy all
  clients share its address) and, as a ceiling, 1000 a minute from everyone.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from connector.store import Store

__all__ = [
    "SESSION_COOKIE",
    "Session",
    "Sessions",
    "create_token",
    "health_details",
    "host_is_loopback",
    "is_loopback",
    "token_valid",
]

SESSION_COOKIE = "ghl_console"
SESSION_SECONDS = 12 * 3600
TOKEN_PREFIX = "gct_"
_MAX_SESSIONS = 1000
_FAILURES_WINDOW = 60.0
_MAX_FAILURES = 20  # per client address and minute
_MAX_ALL_FAILURES = 1000  # from all addresses together: a flood, not one guesser
_MAX_CLIENTS = 10_000  # addresses remembered; beyond, the oldest are forgotten


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a bind address or name) is only reachable from this machine."""
    literal = host.strip().removeprefix("[").removesuffix("]")
    if literal.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(literal).is_loopback
    except ValueError:
        return False


def host_is_loopback(header: str) -> bool:
    """Whether a request's ``Host`` header names this machine (``localhost``, a loopback
    address; any port). A loopback console answers only these without a login: a foreign name
    is a page of another site whose name was re-pointed at 127.0.0.1 (DNS rebinding), for which
    the browser sends that site's name. No header (HTTP/1.0 tools) is not a browser's request."""
    if not header:
        return True
    host = header.strip()
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    return is_loopback(host)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(store: Store, label: str) -> str:
    """A new console login token; only its SHA-256 is stored. Returned once: print it."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    store.execute(
        "INSERT INTO console_tokens (digest, label, created_at) VALUES (?, ?, ?)",
        (_digest(token), label[:100], time.time()),
    )
    return token


def token_valid(store: Store, token: str) -> bool:
    """Whether ``token`` is a console token of this state file."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return False
    rows = store.query("SELECT digest FROM console_tokens WHERE digest = ?", (_digest(token),))
    return bool(rows) and hmac.compare_digest(str(rows[0]["digest"]), _digest(token))


def health_details(store: Store, host: str) -> Callable[[str, str], bool]:
    """Whether a ``/healthz`` request with this ``Authorization`` and ``Host`` header may see
    the details (inbox counts, the fleet's peers: host names, pids): bound to loopback, a
    request naming this machine (not a page of another site re-pointed at 127.0.0.1: DNS
    rebinding, as the console refuses it); bound beyond it, only a request with a console
    token as ``Bearer``. Others get the status."""
    if is_loopback(host):
        return lambda authorization, host_header: host_is_loopback(host_header)

    def allowed(authorization: str, host_header: str) -> bool:
        if authorization[:7].lower() != "bearer ":
            return False
        return token_valid(store, authorization[7:].strip())

    return allowed


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in browser: its cookie value, CSRF token and expiry (epoch seconds)."""

    id: str
    csrf: str
    expires: float


class Sessions:
    """The console's sessions (in memory: a restart logs everyone out) and its CSRF tokens.

    :param secret: keys the CSRF token of requests without a session (loopback).
    """

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)
        self._sessions: dict[str, Session] = {}
        self._failures: dict[str, deque[float]] = {}
        self._all_failures: deque[float] = deque(maxlen=_MAX_ALL_FAILURES)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Sessions({len(self._sessions)} open)"

    def open(self) -> Session:
        """A new session."""
        now = time.time()
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32),
                          now + SESSION_SECONDS)
        with self._lock:
            if len(self._sessions) >= _MAX_SESSIONS:
                self._expire(now, oldest=True)
            self._sessions[session.id] = session
        return session

    def get(self, sid: str | None) -> Session | None:
        """The live session of cookie value ``sid``."""
        if not sid:
            return None
        with self._lock:
            session = self._sessions.get(sid)
            if session is not None and session.expires < time.time():
                del self._sessions[sid]
                return None
            return session

    def close(self, sid: str | None) -> None:
        """End a session (logout)."""
        with self._lock:
            self._sessions.pop(sid or "", None)

    def csrf(self, session: Session | None, nonce: str = "") -> str:
        """The CSRF token a form carries: the session's, else one keyed to this process (and
        to ``nonce``: the login form's pre-session cookie)."""
        if session is not None:
            return session.csrf
        return hmac.new(self._secret, b"csrf:" + nonce.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, session: Session | None, given: str, nonce: str = "") -> bool:
        """Whether ``given`` is the CSRF token this session (or process) expects."""
        expected = self.csrf(session, nonce).encode()
        return bool(given) and hmac.compare_digest(given.encode("utf-8", "replace"), expected)

    def throttled(self, client: str) -> bool:
        """Whether logins from ``client`` (an address) are refused a while: 20 failed from it
        in the last minute, or 1000 from everyone (so one guesser does not lock the admin out,
        and a spread-out flood is still slowed)."""
        now = time.time()
        with self._lock:
            _drop_old(self._all_failures, now)
            mine = self._failures.get(client)
            if mine is not None:
                _drop_old(mine, now)
                if not mine:
                    del self._failures[client]
            return (len(self._all_failures) >= _MAX_ALL_FAILURES
                    or (mine is not None and len(mine) >= _MAX_FAILURES))

    def failed(self, client: str) -> None:
        """Count a failed login from ``client``."""
        now = time.time()
        with self._lock:
            self._all_failures.append(now)
            _drop_old(self._all_failures, now)
            mine = self._failures.pop(client, None) or deque(maxlen=_MAX_FAILURES)
            mine.append(now)
            self._failures[client] = mine  # newest last: the first ones are the oldest
            while len(self._failures) > _MAX_CLIENTS:
                del self._failures[next(iter(self._failures))]

    def _expire(self, now: float, *, oldest: bool) -> None:
        for sid in [s for s, v in self._sessions.items() if v.expires < now]:
            del self._sessions[sid]
        if oldest and len(self._sessions) >= _MAX_SESSIONS:
            first = min(self._sessions.values(), key=lambda s: s.expires)
            del self._sessions[first.id]


def _drop_old(times: deque[float], now: float) -> None:
    while times and times[0] <= now - _FAILURES_WINDOW:
        times.popleft()
