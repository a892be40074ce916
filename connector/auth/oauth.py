"""The OAuth 2.0 exchanges with HighLevel, over authlib's httpx client; authlib errors end here.

Four exchanges: the authorize URL a user opens, the loopback callback that receives the code
(:class:`LoopbackCallback`), the token endpoint (code exchange and refresh, through
:class:`authlib.integrations.httpx_client.OAuth2Client`), and ``/oauth/locationToken`` (agency
token to location token). Each returns a :class:`Grant` or raises
:class:`~connector.errors.AuthError`. An ``AuthError`` with a 4xx ``status`` means the server
*refused* (bad code, revoked or reused refresh token, wrong client secret); anything else
(timeouts, 5xx) may be retried.
"""

from __future__ import annotations

import hmac
import http.server
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import authlib.deprecate  # noqa: F401 (installs its "always" filter before ours below)
import httpx
from authlib.common.errors import AuthlibBaseError

from connector.auth import redaction as secrets
from connector.client.httpclient import ssl_context
from connector.errors import AuthError

with warnings.catch_warnings():
    # authlib 1.9 warns on import that its httpx integration should move to httpx2 (its
    # integrations/httpx_client/_compat.py); the connector is built on httpx. Drop this filter
    # when the project moves to httpx2.
    warnings.filterwarnings("ignore", "The httpx module is deprecated", DeprecationWarning)
    from authlib.integrations.httpx_client import OAuth2Client


def _flavours() -> tuple[Any, ...]:
    """The httpx packages whose errors a token request may raise: authlib's client is built on
    ``httpx2`` when that is installed (the MCP SDK brings it), on ``httpx`` otherwise."""
    try:
        import httpx2
    except ImportError:
        return (httpx,)
    return (httpx, httpx2)


_STATUS_ERRORS: tuple[type[Exception], ...] = tuple(m.HTTPStatusError for m in _flavours())
_HTTP_ERRORS: tuple[type[Exception], ...] = tuple(m.HTTPError for m in _flavours())

__all__ = [
    "DEFAULT_AUTHORIZE_URL",
    "Grant",
    "LoopbackCallback",
    "authorize_url",
    "exchange_code",
    "location_token",
    "refresh",
]

DEFAULT_AUTHORIZE_URL = "https://marketplace.gohighlevel.com/v2/oauth/chooselocation"
API_VERSION = "2021-07-28"
TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Grant:
    """What the token endpoint handed out (secrets hidden from the repr)."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_in: float | None
    scopes: frozenset[str]
    user_type: str
    company_id: str | None
    location_id: str | None

    @classmethod
    def from_response(cls, data: Mapping[str, Any], where: str) -> Grant:
        """Build from a GHL token response; registers the new tokens for redaction."""
        status = data.get("statusCode")
        if isinstance(status, int) and status >= 400:
            # A GHL error body without the RFC 6749 "error" field, which authlib passes through.
            message = secrets.redact(str(data.get("message", ""))[:200])
            raise AuthError(f"{where}: -> {status}: {message}", status=status, body=message)
        access = data.get("access_token")
        if not isinstance(access, str) or not access:
            raise AuthError(f"{where}: the token response has no access_token")
        refresh_token = data.get("refresh_token")
        refresh_token = refresh_token if isinstance(refresh_token, str) and refresh_token else None
        secrets.register(access, refresh_token)
        expires = data.get("expires_in")
        scope = data.get("scope")
        return cls(
            access_token=access,
            refresh_token=refresh_token,
            expires_in=float(expires) if isinstance(expires, int | float) else None,
            scopes=frozenset(scope.split()) if isinstance(scope, str) else frozenset(),
            user_type=str(data.get("userType") or "Location"),
            company_id=_text(data.get("companyId")),
            location_id=_text(data.get("locationId")),
        )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def authorize_url(
    endpoint: str, *, client_id: str, redirect_uri: str, scopes: str, state: str
) -> str:
    """The URL a user opens to install the app and approve ``scopes`` (space-separated)."""
    query = urlencode(
        {
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "client_id": client_id,
            "scope": scopes,
            "state": state,
        }
    )
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


@contextmanager
def _mapped(where: str) -> Iterator[None]:
    """Translate authlib and httpx failures of a token request into :class:`AuthError`."""
    try:
        yield
    except AuthlibBaseError as exc:
        what = secrets.redact(f"{exc.error}: {exc.description}" if exc.description else exc.error)
        raise AuthError(f"{where}: refused ({what})", status=400, body=exc.error) from exc
    except _STATUS_ERRORS as exc:
        status = exc.response.status_code  # type: ignore[attr-defined]
        body = secrets.redact(exc.response.text[:200])  # type: ignore[attr-defined]
        raise AuthError(f"{where}: -> {status}: {body}", status=status, body=body) from exc
    except _HTTP_ERRORS as exc:
        raise AuthError(f"{where}: {type(exc).__name__}: {secrets.redact(str(exc))}") from exc
    except ValueError as exc:
        raise AuthError(f"{where}: unreadable token response ({exc})") from exc


def _client(client_id: str, client_secret: str, redirect_uri: str | None = None) -> OAuth2Client:
    """A token-endpoint client that sends its credentials in the form, as GHL expects."""
    secrets.register(client_secret)
    return OAuth2Client(
        client_id=client_id,
        client_secret=client_secret,
        token_endpoint_auth_method="client_secret_post",
        redirect_uri=redirect_uri,
        timeout=TIMEOUT,
        verify=ssl_context(),  # the process's one context: loading CA bundles is costly
    )


def exchange_code(
    base_url: str, *, client_id: str, client_secret: str, code: str, redirect_uri: str
) -> Grant:
    """Exchange an authorization code at ``POST {base_url}/oauth/token``.

    :raises AuthError: refused (status 4xx) or failed.
    """
    secrets.register(code)
    where = "POST /oauth/token (authorization_code)"
    with _mapped(where), _client(client_id, client_secret, redirect_uri=redirect_uri) as client:
        token = client.fetch_token(
            f"{base_url.rstrip('/')}/oauth/token", grant_type="authorization_code", code=code
        )
        return Grant.from_response(token, where)


def refresh(base_url: str, *, client_id: str, client_secret: str, refresh_token: str) -> Grant:
    """Trade a refresh token for new tokens at ``POST {base_url}/oauth/token``.

    The refresh token is spent whatever happens next: store the returned one before use.

    :raises AuthError: refused (status 4xx: revoked, reused, wrong client) or failed.
    """
    where = "POST /oauth/token (refresh_token)"
    with _mapped(where), _client(client_id, client_secret) as client:
        token = client.refresh_token(
            f"{base_url.rstrip('/')}/oauth/token", refresh_token=refresh_token
        )
        return Grant.from_response(token, where)


def location_token(
    base_url: str, *, agency_token: str, company_id: str, location_id: str
) -> Grant:
    """Turn an agency (Company) token into a token for one location (``/oauth/locationToken``).

    :raises AuthError: refused (status 4xx) or failed.
    """
    where = "POST /oauth/locationToken"
    token = {"access_token": agency_token, "token_type": "Bearer"}
    with _mapped(where), OAuth2Client(token=token, timeout=TIMEOUT,
                                        verify=ssl_context()) as client:
        response = client.post(
            f"{base_url.rstrip('/')}/oauth/locationToken",
            data={"companyId": company_id, "locationId": location_id},
            headers={"Version": API_VERSION, "Accept": "application/json"},
        )
        if response.status_code >= 400:
            body = secrets.redact(response.text[:200])
            raise AuthError(
                f"{where}: -> {response.status_code}: {body}",
                status=response.status_code,
                body=body,
            )
        data = response.json()
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return Grant.from_response(data, where)


class _CallbackHandler(http.server.BaseHTTPRequestHandler):
    """Answers the one redirect the browser makes back to us."""

    server: _CallbackServer
    timeout = 10.0  # a client that connects and sends nothing must not stall the login

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        parts = urlsplit(self.path)
        if parts.path != self.server.path:
            self.send_error(404)
            return
        params = {k: v[0] for k, v in parse_qs(parts.query).items()}
        secrets.register(params.get("code"))
        self.server.result = params
        ok = "code" in params and "error" not in params
        page = (
            "Signed in. You can close this window and return to the terminal."
            if ok else "Sign-in failed. Return to the terminal for details."
        )
        body = f"<!doctype html><title>ghl-connector</title><p>{page}</p>".encode()
        self.send_response(200 if ok else 400)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib signature)
        """Silence the default access log: the request line carries the code."""


class _CallbackServer(http.server.HTTPServer):
    result: dict[str, str] | None = None
    path: str = "/callback"


class LoopbackCallback:
    """A one-shot HTTP server on ``127.0.0.1`` that receives the authorization redirect.

    :param port: the port to listen on (0: any free port; GHL needs the registered one).
    :param path: the callback path of the redirect URI.
    """

    def __init__(self, port: int = 0, path: str = "/callback") -> None:
        try:
            self._server = _CallbackServer(("127.0.0.1", port), _CallbackHandler)
        except OSError as exc:
            raise AuthError(
                f"127.0.0.1:{port}: cannot listen for the OAuth callback: {exc.strerror}"
                " [hint: pass --port with a free port registered as a redirect URI]"
            ) from exc
        self._server.path = path
        self._server.timeout = 0.5

    @property
    def redirect_uri(self) -> str:
        """The redirect URI to register and send: ``http://127.0.0.1:<port><path>``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}{self._server.path}"

    def wait(self, state: str, timeout: float) -> str:
        """Serve requests until the redirect arrives; check ``state``; return the code.

        :raises AuthError: on timeout, an ``error`` redirect, or a ``state`` mismatch.
        """
        deadline = time.monotonic() + timeout
        while self._server.result is None:
            if time.monotonic() >= deadline:
                raise AuthError(f"{self.redirect_uri}: no redirect within {timeout:g} s")
            self._server.handle_request()
        params = self._server.result
        if "error" in params:
            raise AuthError(f"{self.redirect_uri}: authorization refused: {params['error']!r}")
        if not hmac.compare_digest(params.get("state", "").encode(), state.encode()):
            raise AuthError(
                f"{self.redirect_uri}: the redirect's state does not match (possible forgery)"
                " [hint: run the login again]"
            )
        if not params.get("code"):
            raise AuthError(f"{self.redirect_uri}: the redirect carries no code")
        return params["code"]

    def close(self) -> None:
        """Stop listening."""
        self._server.server_close()

    def __enter__(self) -> LoopbackCallback:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

