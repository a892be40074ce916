"""The sandbox's OAuth 2.0 provider: clients, grants and tokens, as HighLevel hands them out.

It follows GHL-FACTS.md section 5 and ``apps/oauth.json``: an authorization-code flow whose
authorize step auto-approves a configured test client, ``/oauth/token`` for the
``authorization_code`` and ``refresh_token`` grants (refresh tokens rotate: each one works once),
``/oauth/locationToken`` to turn an agency (Company) token into a location token, and static
private integration tokens. :class:`~connector.sandbox.grants.TokenStore` keeps only hashes of
the tokens; this module decides who gets which. Every method is thread-safe.

The provider knows nothing of HTTP: the ASGI app passes it query/form mappings and header values
and turns :class:`OAuthError` (or the returned status and body) into a response.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode, urlsplit, urlunsplit

from connector.sandbox.grants import Code, Grant, Principal, TokenStore

__all__ = [
    "CODE_LIFETIME",
    "DEFAULT_SCOPES",
    "INVALID_TOKEN_MESSAGE",
    "SCOPE_MESSAGE",
    "OAuthClient",
    "OAuthError",
    "OAuthProvider",
    "Principal",
]

CODE_LIFETIME = 600.0
"""Seconds an authorization code stays valid."""

DEFAULT_SCOPES = ("contacts.readonly", "contacts.write")
"""Scopes a client is granted when the authorize request names none."""

INVALID_TOKEN_MESSAGE = "Invalid JWT"
SCOPE_MESSAGE = "The token is not authorized for this scope."
_AUTH_CLASS_MESSAGE = (
    "This authClass type is not allowed to access this scope. "
    "Please reach out to the Platform team to get it added."
)
_USER_TYPES = ("Location", "Company")
_COUNTERS = (
    "token_requests codes_issued code_exchanges refreshes refresh_rejections refresh_reuses"
    " location_tokens auth_failures scope_refusals"
).split()


@dataclass(frozen=True, slots=True)
class OAuthClient:
    """A registered marketplace app the authorize step approves without asking anyone.

    :param client_id: the app's client id.
    :param client_secret: its secret (never shown in the repr).
    :param redirect_uris: the redirect URIs registered for it; an authorize request must use one.
    :param user_type: what an install grants unless the query says otherwise: a ``"Location"``
        (sub-account) or a ``"Company"`` (agency) token.
    :param scopes: what an install grants when the query names no ``scope``.
    """

    client_id: str
    client_secret: str = field(repr=False)
    redirect_uris: tuple[str, ...]
    user_type: str = "Location"
    scopes: tuple[str, ...] = DEFAULT_SCOPES


class OAuthError(Exception):
    """A GHL-shaped refusal: the HTTP status and the JSON body to answer with."""

    def __init__(self, status: int, body: dict[str, object]) -> None:
        self.status = status
        self.body = body
        super().__init__(f"oauth: {status} {body.get('message', body.get('error', ''))}")


def _refusal(status: int, message: str = INVALID_TOKEN_MESSAGE) -> OAuthError:
    return OAuthError(status, {"statusCode": status, "message": message})


def _grant_error(status: int, error: str, description: str) -> OAuthError:
    # GHL answers OAuth failures with its usual statusCode/message body; the RFC 6749 fields are
    # added so OAuth client libraries (authlib) recognise them.
    body: dict[str, object] = {
        "statusCode": status,
        "message": description,
        "error": error,
        "error_description": description,
    }
    return OAuthError(status, body)


def _require(form: Mapping[str, str], names: Sequence[str]) -> None:
    missing = [f"{name} should not be empty" for name in names if not form.get(name)]
    if missing:
        body: dict[str, object] = {
            "statusCode": 422,
            "message": missing,
            "error": "Unprocessable Entity",
        }
        raise OAuthError(422, body)


class OAuthProvider:
    """Issues and checks the sandbox's tokens.

    :param clients: the apps whose installs are auto-approved.
    :param company_id: the agency every grant belongs to.
    :param location_ids: the sub-accounts that exist; the first is the default install target.
    :param access_token_lifetime: seconds an access token lives (fractions allowed).
    :param clock: the time source, in seconds; tests inject one to expire tokens without sleeping.
    :param user_id: the ``userId`` of the installing user.
    :param location_token_scopes: scopes an agency token needs for ``/oauth/locationToken``
        (the spec says ``oauth.write``).
    """

    def __init__(
        self,
        *,
        clients: Sequence[OAuthClient],
        company_id: str,
        location_ids: Sequence[str],
        access_token_lifetime: float = 86399,
        clock: Callable[[], float] = time.time,
        user_id: str = "sandboxUser000000001",
        location_token_scopes: Sequence[str] = ("oauth.write",),
    ) -> None:
        if not location_ids:
            raise ValueError("OAuthProvider: location_ids must name at least one location")
        self._clients = {client.client_id: client for client in clients}
        self._company_id = company_id
        self._location_ids = tuple(location_ids)
        self._lifetime = float(access_token_lifetime)
        self._user_id = user_id
        self._location_token_scopes = tuple(location_token_scopes)
        self._lock = threading.Lock()
        self._store = TokenStore(clock)
        self._serial = 0
        self._stats = dict.fromkeys(_COUNTERS, 0)

    def __repr__(self) -> str:
        return (
            f"OAuthProvider(clients={sorted(self._clients)!r}, company_id={self._company_id!r}, "
            f"{self._store!r})"
        )

    @property
    def stats(self) -> dict[str, int]:
        """A snapshot of the counters (token requests, refreshes, refused refreshes, ...)."""
        with self._lock:
            return dict(self._stats)

    def set_access_token_lifetime(self, seconds: float) -> None:
        """Set the lifetime of access tokens issued from now on (fractional seconds allowed)."""
        with self._lock:
            self._lifetime = float(seconds)

    def expire_access_tokens(self) -> int:
        """Expire every OAuth access token now (private tokens excepted); returns how many."""
        with self._lock:
            return self._store.expire_access()

    def reset(self) -> None:
        """Forget every grant, code and token except the configured private tokens."""
        with self._lock:
            self._store.clear()
            for key in self._stats:
                self._stats[key] = 0

    def add_private_token(
        self, *, location_id: str | None, scopes: Iterable[str], token: str | None = None
    ) -> str:
        """Register a private integration token: static, never expires, survives :meth:`reset`.

        :param location_id: the sub-account it belongs to; ``None`` makes an agency token.
        :param scopes: what it may do.
        :param token: the token text; a random one when omitted.
        :returns: the token.
        """
        text = token or f"pit-{secrets.token_urlsafe(24)}"
        with self._lock:
            self._serial += 1
            principal = Principal(
                user_type="Location" if location_id else "Company",
                company_id=self._company_id,
                location_id=location_id,
                scopes=frozenset(scopes),
                grant_id=f"pit-{self._serial}",
            )
            self._store.add_static(text, Grant(principal))
        return text

    def authenticate(self, authorization: str | None, required_scopes: Sequence[str]) -> Principal:
        """Check an ``Authorization`` header and the scopes an operation needs.

        :param authorization: the header value (``Bearer <token>``), or ``None`` when absent.
        :param required_scopes: every scope the token must have.
        :returns: who the token speaks for.
        :raises OAuthError: 401 ``Invalid JWT`` for a missing, unknown, revoked or expired token;
            401 with GHL's scope message when a scope is missing.
        """
        token = _bearer(authorization)
        with self._lock:
            principal = self._store.lookup(token) if token else None
            if principal is None:
                self._stats["auth_failures"] += 1
                raise _refusal(401)
            if not principal.scopes.issuperset(required_scopes):
                self._stats["scope_refusals"] += 1
                raise _refusal(401, SCOPE_MESSAGE)
            return principal

    def authorize(self, query: Mapping[str, str]) -> tuple[int, dict[str, str], dict[str, object]]:
        """The chooselocation step: approve a known client's install and redirect with a code.

        The query takes ``client_id``, ``redirect_uri`` (optional when the client has exactly
        one), ``response_type=code``, ``scope`` (space-separated), ``state``, and two sandbox
        extras: ``user_type`` (``Location``/``Company``) and ``locationId``.

        :returns: ``(302, {"location": url}, {})`` or ``(400, {}, error body)`` when the client or
            redirect URI is unknown (no redirect is made to an unregistered URI).
        """
        try:
            client = self._clients.get(query.get("client_id", ""))
            if client is None:
                raise _refusal(400, f"Unknown client_id {query.get('client_id', '')!r}")
            redirect_uri = query.get("redirect_uri") or (
                client.redirect_uris[0] if len(client.redirect_uris) == 1 else ""
            )
            if not _registered(redirect_uri, client.redirect_uris):
                raise _refusal(400, f"redirect_uri {redirect_uri!r} is not registered for the app")
        except OAuthError as exc:
            return exc.status, {}, exc.body
        params = {"state": query["state"]} if "state" in query else {}
        try:
            principal = self._install(client, query)
        except OAuthError as exc:
            params = {"error": str(exc.body.get("error", "invalid_request")), **params}
            return 302, {"location": _with_query(redirect_uri, params)}, {}
        with self._lock:
            expires_at = self._store.now() + CODE_LIFETIME
            code = self._store.issue_code(
                Code(client.client_id, redirect_uri, principal, expires_at)
            )
            self._stats["codes_issued"] += 1
        return 302, {"location": _with_query(redirect_uri, {"code": code, **params})}, {}

    def _install(self, client: OAuthClient, query: Mapping[str, str]) -> Principal:
        if query.get("response_type", "code") != "code":
            raise _grant_error(400, "unsupported_response_type", "response_type must be 'code'")
        user_type = query.get("user_type", client.user_type)
        if user_type not in _USER_TYPES:
            raise _grant_error(400, "invalid_request", f"user_type {user_type!r} is unknown")
        location_id: str | None = None
        if user_type == "Location":
            location_id = query.get("locationId", self._location_ids[0])
            if location_id not in self._location_ids:
                raise _grant_error(400, "invalid_request", f"location {location_id!r} is unknown")
        scopes = query["scope"].split() if query.get("scope") else client.scopes
        with self._lock:
            self._serial += 1
            serial = self._serial
        return Principal(
            user_type=user_type,
            company_id=self._company_id,
            location_id=location_id,
            scopes=frozenset(scopes),
            grant_id=f"grant-{serial}",
            client_id=client.client_id,
        )

    def token(self, form: Mapping[str, str]) -> tuple[int, dict[str, object]]:
        """``POST /oauth/token``: exchange a code, or rotate a refresh token.

        :param form: the decoded form fields (``client_id``, ``client_secret``, ``grant_type``,
            ``code``, ``refresh_token``, ``user_type``, ``redirect_uri``).
        :returns: ``(200, token response)`` or ``(status, GHL error body)``: 422 for missing
            fields, 401 for a bad client secret, 400 ``invalid_grant`` for an unknown, used,
            expired or revoked code or refresh token.
        """
        try:
            with self._lock:
                self._stats["token_requests"] += 1
                return 200, self._token(form)
        except OAuthError as exc:
            return exc.status, exc.body

    def _token(self, form: Mapping[str, str]) -> dict[str, object]:
        _require(form, ("client_id", "client_secret", "grant_type"))
        client = self._clients.get(form["client_id"])
        if client is None or not secrets.compare_digest(
            client.client_secret.encode(), form["client_secret"].encode()
        ):
            raise _grant_error(401, "invalid_client", "Invalid client credentials")
        grant_type = form["grant_type"]
        if grant_type == "authorization_code":
            _require(form, ("code",))
            grant = self._redeem_code(client, form)
        elif grant_type == "refresh_token":
            _require(form, ("refresh_token",))
            grant = self._rotate(client, form)
        else:
            raise _grant_error(400, "unsupported_grant_type", f"grant_type {grant_type!r}")
        return self._issue(grant, with_refresh=True)

    def _redeem_code(self, client: OAuthClient, form: Mapping[str, str]) -> Grant:
        code = self._store.take_code(form["code"])
        if code is None or code.client_id != client.client_id:
            raise _grant_error(400, "invalid_grant", "Invalid grant: authorization code is invalid")
        if form.get("redirect_uri") and form["redirect_uri"] != code.redirect_uri:
            raise _grant_error(400, "invalid_grant", "Invalid grant: redirect_uri does not match")
        _check_user_type(form, code.principal)
        self._stats["code_exchanges"] += 1
        return Grant(code.principal)

    def _rotate(self, client: OAuthClient, form: Mapping[str, str]) -> Grant:
        token = form["refresh_token"]
        grant = self._store.refresh_grant(token)
        if grant is None or grant.principal.client_id != client.client_id:
            self._stats["refresh_rejections"] += 1
            if self._store.was_spent(token):
                self._stats["refresh_reuses"] += 1
            raise _grant_error(400, "invalid_grant", "Invalid grant: refresh token is invalid")
        _check_user_type(form, grant.principal)
        self._store.spend_refresh(token)
        self._stats["refreshes"] += 1
        return grant

    def _issue(self, grant: Grant, *, with_refresh: bool) -> dict[str, object]:
        """Mint an access (and refresh) token for a grant; the caller holds the lock."""
        principal = grant.principal
        body: dict[str, object] = {
            "access_token": self._store.issue_access(grant, self._lifetime),
            "token_type": "Bearer",
            "expires_in": int(self._lifetime) if self._lifetime.is_integer() else self._lifetime,
            "scope": " ".join(sorted(principal.scopes)),
            "userType": principal.user_type,
            "companyId": principal.company_id,
            "userId": self._user_id,
        }
        if principal.location_id is not None:
            body["locationId"] = principal.location_id
        if with_refresh:
            body["refresh_token"] = self._store.issue_refresh(grant)
        return body

    def location_token(
        self, authorization: str | None, form: Mapping[str, str]
    ) -> tuple[int, dict[str, object]]:
        """``POST /oauth/locationToken``: an agency token plus ``companyId`` and ``locationId``
        gives a Location token with the agency grant's scopes (no refresh token, as in the spec).

        :returns: ``(200, token response)`` or ``(status, GHL error body)``.
        """
        try:
            agency = self.authenticate(authorization, self._location_token_scopes)
            with self._lock:
                return 200, self._location_token(agency, form)
        except OAuthError as exc:
            return exc.status, exc.body

    def _location_token(self, agency: Principal, form: Mapping[str, str]) -> dict[str, object]:
        if agency.user_type != "Company":
            raise _refusal(401, _AUTH_CLASS_MESSAGE)
        _require(form, ("companyId", "locationId"))
        if form["companyId"] != agency.company_id:
            raise _refusal(400, f"companyId {form['companyId']!r} does not match the token")
        if form["locationId"] not in self._location_ids:
            raise _refusal(400, f"Location {form['locationId']!r} not found")
        self._serial += 1
        principal = replace(
            agency,
            user_type="Location",
            location_id=form["locationId"],
            grant_id=f"{agency.grant_id}/location-{self._serial}",
        )
        self._stats["location_tokens"] += 1
        return self._issue(Grant(principal), with_refresh=False)

    def revoke(self, refresh_token: str) -> None:
        """Revoke the grant a refresh token belongs to: the refresh token and its access tokens.

        Unknown or spent tokens are ignored (there is nothing left to revoke).
        """
        with self._lock:
            self._store.revoke(refresh_token)


def _check_user_type(form: Mapping[str, str], principal: Principal) -> None:
    user_type = form.get("user_type")
    if user_type and user_type != principal.user_type:
        raise _grant_error(400, "invalid_request", f"user_type {user_type!r} was not granted")


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _with_query(url: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit(parts._replace(query=query))


def _registered(uri: str, registered: tuple[str, ...]) -> bool:
    """Exact match, or a loopback URI that differs only by port (RFC 8252 section 7.3).

    A native app (the CLI's ``auth login``) listens on whatever loopback port is free, so the
    port of a registered ``http://127.0.0.1/...`` redirect URI may vary.
    """
    if uri in registered:
        return True
    parts = urlsplit(uri)
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "::1", "localhost"):
        return False
    for candidate in registered:
        known = urlsplit(candidate)
        if (known.scheme, known.hostname, known.path) == (parts.scheme, parts.hostname, parts.path):
            return True
    return False
