"""The sandbox OAuth provider: code flow, rotation, expiry, location and private tokens, scopes."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest

from connector.sandbox.oauth import (
    INVALID_TOKEN_MESSAGE,
    SCOPE_MESSAGE,
    OAuthClient,
    OAuthError,
    OAuthProvider,
)

SPEC = Path(__file__).resolve().parents[3] / "shared" / "ghl-openapi"
REDIRECT = "http://127.0.0.1:8765/callback"
CLIENT = OAuthClient("app-1", "s3cret-value", (REDIRECT, "http://127.0.0.1:8765/other?x=1"))
AGENCY = OAuthClient(
    "agency-app",
    "agency-secret",
    (REDIRECT,),
    user_type="Company",
    scopes=("oauth.write", "contacts.readonly"),
)


class Clock:
    """A settable clock, so tokens expire without sleeping."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.pause = 0.0

    def __call__(self) -> float:
        if self.pause:
            time.sleep(self.pause)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def provider(clock: Clock) -> OAuthProvider:
    return OAuthProvider(
        clients=[CLIENT, AGENCY],
        company_id="comp-1",
        location_ids=["loc-1", "loc-2"],
        access_token_lifetime=60,
        clock=clock,
    )


def spec_schema(file: str, name: str) -> dict[str, object]:
    if not SPEC.is_dir():
        pytest.skip(f"the GHL spec is not at {SPEC}")
    schema: dict[str, object] = json.loads((SPEC / file).read_text())["components"]["schemas"][name]
    return schema


def code_from(provider: OAuthProvider, client: OAuthClient = CLIENT, **query: str) -> str:
    status, headers, _ = provider.authorize({"client_id": client.client_id, **query})
    assert status == 302
    return parse_qs(urlsplit(headers["location"]).query)["code"][0]


def exchange(provider: OAuthProvider, code: str, client: OAuthClient = CLIENT) -> dict[str, object]:
    status, body = provider.token(
        {
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "grant_type": "authorization_code",
            "code": code,
        }
    )
    assert status == 200, body
    return body


def refresh(provider: OAuthProvider, token: object) -> tuple[int, dict[str, object]]:
    return provider.token(
        {
            "client_id": CLIENT.client_id,
            "client_secret": CLIENT.client_secret,
            "grant_type": "refresh_token",
            "refresh_token": str(token),
        }
    )


def bearer(body: dict[str, object]) -> str:
    return f"Bearer {body['access_token']}"


def refusal(provider: OAuthProvider, authorization: str | None, scopes: list[str]) -> OAuthError:
    with pytest.raises(OAuthError) as info:
        provider.authenticate(authorization, scopes)
    return info.value


def test_oauth_code_flow_issues_ghl_shaped_tokens(provider: OAuthProvider) -> None:
    """An auto-approved install redirects with a code whose exchange gives a full GHL token body."""
    status, headers, body = provider.authorize(
        {
            "client_id": "app-1",
            "redirect_uri": REDIRECT,
            "response_type": "code",
            "scope": "contacts.readonly contacts.write",
            "state": "st-42",
        }
    )
    assert (status, body) == (302, {})
    location = urlsplit(headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    token = exchange(provider, parse_qs(location.query)["code"][0])
    jsonschema.validate(token, spec_schema("apps/oauth.json", "GetAccessCodeSuccessfulResponseDto"))
    assert token["token_type"] == "Bearer" and token["expires_in"] == 60
    assert token["scope"] == "contacts.readonly contacts.write"
    assert (token["userType"], token["locationId"], token["companyId"]) == (
        "Location",
        "loc-1",
        "comp-1",
    )
    assert token["access_token"] != token["refresh_token"]
    principal = provider.authenticate(bearer(token), ["contacts.write"])
    assert (principal.user_type, principal.location_id, principal.client_id) == (
        "Location",
        "loc-1",
        "app-1",
    )
    assert provider.stats["codes_issued"] == 1 and provider.stats["code_exchanges"] == 1


def test_oauth_authorize_echoes_state_and_keeps_redirect_query(provider: OAuthProvider) -> None:
    """The state comes back verbatim, and a registered URI's own query survives the redirect."""
    state = "a b&c=d/é"
    _, headers, _ = provider.authorize(
        {
            "client_id": "app-1",
            "redirect_uri": "http://127.0.0.1:8765/other?x=1",
            "state": state,
        }
    )
    query = parse_qs(urlsplit(headers["location"]).query)
    assert query["state"] == [state] and query["x"] == ["1"] and len(query["code"][0]) > 20


def test_oauth_authorize_refuses_unknown_client_and_redirect(provider: OAuthProvider) -> None:
    """An unknown client, or a redirect URI not registered for it, gets a 400 and no redirect."""
    for query in (
        {"client_id": "nobody", "redirect_uri": REDIRECT},
        {"client_id": "app-1", "redirect_uri": "http://127.0.0.1:9/evil"},
        {"client_id": "app-1"},  # two URIs registered: the request must pick one
    ):
        status, headers, body = provider.authorize(query)
        assert (status, headers) == (400, {}), query
        assert body["statusCode"] == 400 and isinstance(body["message"], str)
    assert provider.stats["codes_issued"] == 0


def test_oauth_authorize_install_targets_are_configurable(provider: OAuthProvider) -> None:
    """The query picks the location or an agency install; an unknown location errs at the app."""
    token = exchange(provider, code_from(provider, redirect_uri=REDIRECT, locationId="loc-2"))
    assert token["locationId"] == "loc-2"
    agency = exchange(provider, code_from(provider, AGENCY), AGENCY)
    assert agency["userType"] == "Company" and "locationId" not in agency
    _, headers, _ = provider.authorize(
        {"client_id": "app-1", "redirect_uri": REDIRECT, "locationId": "nope", "state": "s"}
    )
    query = parse_qs(urlsplit(headers["location"]).query)
    assert query == {"error": ["invalid_request"], "state": ["s"]}


def test_oauth_code_is_single_use_and_bound_to_client(
    provider: OAuthProvider, clock: Clock
) -> None:
    """A code works once, only for its client and redirect URI, and only for a while."""
    code = code_from(provider, redirect_uri=REDIRECT)
    exchange(provider, code)
    status, body = provider.token(
        {
            "client_id": "app-1",
            "client_secret": "s3cret-value",
            "grant_type": "authorization_code",
            "code": code,
        }
    )
    assert status == 400 and body["error"] == "invalid_grant"
    other = code_from(provider, redirect_uri=REDIRECT)
    status, body = provider.token(
        {
            "client_id": "agency-app",
            "client_secret": "agency-secret",
            "grant_type": "authorization_code",
            "code": other,
        }
    )
    assert status == 400 and body["error"] == "invalid_grant"
    late = code_from(provider, redirect_uri=REDIRECT)
    clock.now += 601
    status, body = provider.token(
        {
            "client_id": "app-1",
            "client_secret": "s3cret-value",
            "grant_type": "authorization_code",
            "code": late,
        }
    )
    assert status == 400 and body["error"] == "invalid_grant"


def test_oauth_token_refuses_bad_client_and_missing_fields(provider: OAuthProvider) -> None:
    """A wrong secret is a 401 invalid_client; missing fields are GHL's 422 message list."""
    code = code_from(provider, redirect_uri=REDIRECT)
    status, body = provider.token(
        {
            "client_id": "app-1",
            "client_secret": "wrong",
            "grant_type": "authorization_code",
            "code": code,
        }
    )
    assert status == 401 and body["error"] == "invalid_client"
    jsonschema.validate(body, spec_schema("common/common-schemas.json", "UnauthorizedDTO"))
    assert "s3cret-value" not in json.dumps(body)
    status, body = provider.token({"client_id": "app-1"})
    assert status == 422
    jsonschema.validate(body, spec_schema("common/common-schemas.json", "UnprocessableDTO"))
    assert body["message"] == [
        "client_secret should not be empty",
        "grant_type should not be empty",
    ]
    exchange(provider, code)  # the refused attempts did not spend the code


def test_oauth_refresh_rotates_and_rejects_reuse(provider: OAuthProvider) -> None:
    """A refresh gives new tokens; the spent refresh token is refused afterwards and counted."""
    first = exchange(provider, code_from(provider, redirect_uri=REDIRECT))
    status, second = refresh(provider, first["refresh_token"])
    assert status == 200
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert provider.authenticate(bearer(second), ["contacts.readonly"]).grant_id
    status, body = refresh(provider, first["refresh_token"])
    assert status == 400
    assert body["error"] == "invalid_grant" and body["statusCode"] == 400
    assert refresh(provider, second["refresh_token"])[0] == 200
    stats = provider.stats
    assert (stats["refreshes"], stats["refresh_rejections"], stats["refresh_reuses"]) == (2, 1, 1)


def test_oauth_refresh_race_lets_exactly_one_win(provider: OAuthProvider, clock: Clock) -> None:
    """Sixteen threads refreshing one token at once: one succeeds, fifteen get invalid_grant."""
    token = exchange(provider, code_from(provider, redirect_uri=REDIRECT))["refresh_token"]
    clock.pause = 0.002  # the clock yields, so an unlocked check-then-spend would let two win
    start = threading.Barrier(16)
    results: list[int] = []

    def worker() -> None:
        start.wait()
        results.append(refresh(provider, token)[0])

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [200] + [400] * 15
    assert provider.stats["refreshes"] == 1 and provider.stats["refresh_rejections"] == 15


def test_oauth_revoke_kills_refresh_and_access_tokens(provider: OAuthProvider) -> None:
    """After revoke, the grant's refresh token and its access tokens are refused."""
    token = exchange(provider, code_from(provider, redirect_uri=REDIRECT))
    provider.revoke(str(token["refresh_token"]))
    assert refresh(provider, token["refresh_token"])[1]["error"] == "invalid_grant"
    assert refusal(provider, bearer(token), []).body["message"] == INVALID_TOKEN_MESSAGE
    assert provider.stats["refresh_reuses"] == 0 and provider.stats["refresh_rejections"] == 1


def test_oauth_access_token_expires_after_lifetime(provider: OAuthProvider, clock: Clock) -> None:
    """A token with a fractional lifetime works until it runs out, then is refused as invalid."""
    provider.set_access_token_lifetime(0.5)
    token = exchange(provider, code_from(provider, redirect_uri=REDIRECT))
    assert token["expires_in"] == 0.5
    clock.now += 0.4
    provider.authenticate(bearer(token), ["contacts.readonly"])
    clock.now += 0.1
    error = refusal(provider, bearer(token), ["contacts.readonly"])
    assert (error.status, error.body) == (401, {"statusCode": 401, "message": "Invalid JWT"})
    status, fresh = refresh(provider, token["refresh_token"])
    assert status == 200
    provider.authenticate(bearer(fresh), ["contacts.readonly"])


def test_oauth_expire_access_tokens_forces_refresh(provider: OAuthProvider) -> None:
    """expire_access_tokens() makes every OAuth access token invalid at once."""
    token = exchange(provider, code_from(provider, redirect_uri=REDIRECT))
    assert provider.expire_access_tokens() == 1
    assert refusal(provider, bearer(token), []).status == 401


def test_oauth_location_token_from_agency_token(provider: OAuthProvider, clock: Clock) -> None:
    """An agency token with oauth.write buys a Location token for a known location."""
    agency = exchange(provider, code_from(provider, AGENCY), AGENCY)
    status, body = provider.location_token(
        bearer(agency), {"companyId": "comp-1", "locationId": "loc-2"}
    )
    assert status == 200, body
    jsonschema.validate(
        body, spec_schema("apps/oauth.json", "GetLocationAccessTokenSuccessfulResponseDto")
    )
    assert body["locationId"] == "loc-2" and "refresh_token" not in body
    principal = provider.authenticate(bearer(body), ["contacts.readonly"])
    assert (principal.user_type, principal.location_id) == ("Location", "loc-2")
    clock.now += 60
    assert refusal(provider, bearer(body), []).status == 401
    assert provider.stats["location_tokens"] == 1


def test_oauth_location_token_refusals(provider: OAuthProvider) -> None:
    """Location tokens, unknown locations, foreign companies and missing fields are refused."""
    agency = bearer(exchange(provider, code_from(provider, AGENCY), AGENCY))
    location = bearer(
        exchange(
            provider,
            code_from(provider, redirect_uri=REDIRECT, scope="oauth.write contacts.readonly"),
        )
    )
    cases = [
        (location, {"companyId": "comp-1", "locationId": "loc-1"}, 401),
        (agency, {"companyId": "comp-1", "locationId": "loc-9"}, 400),
        (agency, {"companyId": "comp-2", "locationId": "loc-1"}, 400),
        (agency, {"companyId": "comp-1"}, 422),
        (None, {"companyId": "comp-1", "locationId": "loc-1"}, 401),
    ]
    for authorization, form, expected in cases:
        status, body = provider.location_token(authorization, form)
        assert (status, body["statusCode"]) == (expected, expected), (form, body)


def test_oauth_location_token_scope_is_configurable(clock: Clock) -> None:
    """Without oauth.write the exchange is refused, unless the provider is told not to need it."""
    plain = OAuthClient("agency-app", "agency-secret", (REDIRECT,), user_type="Company")
    form = {"companyId": "comp-1", "locationId": "loc-1"}
    for needed, expected in ((("oauth.write",), 401), ((), 200)):
        provider = OAuthProvider(
            clients=[plain],
            company_id="comp-1",
            location_ids=["loc-1"],
            clock=clock,
            location_token_scopes=needed,
        )
        token = exchange(provider, code_from(provider, plain), plain)
        status, body = provider.location_token(bearer(token), form)
        assert status == expected, body
        if expected == 401:
            assert body["message"] == SCOPE_MESSAGE


def test_oauth_private_tokens_never_expire_and_survive_reset(
    provider: OAuthProvider, clock: Clock
) -> None:
    """Private integration tokens are static, scoped, and kept by reset() unlike OAuth grants."""
    fixed = provider.add_private_token(
        location_id="loc-1", scopes=["contacts.readonly"], token="pit-fixed-token"
    )
    agency = provider.add_private_token(location_id=None, scopes=["oauth.write"])
    assert fixed == "pit-fixed-token" and agency != fixed
    oauth = exchange(provider, code_from(provider, redirect_uri=REDIRECT))
    clock.now += 10 * 365 * 86400
    provider.reset()
    assert provider.authenticate(f"Bearer {fixed}", ["contacts.readonly"]).location_id == "loc-1"
    assert provider.authenticate(f"bearer {agency}", []).user_type == "Company"
    assert refusal(provider, f"Bearer {fixed}", ["contacts.write"]).body["message"] == SCOPE_MESSAGE
    assert refresh(provider, oauth["refresh_token"])[0] == 400
    assert provider.stats["refreshes"] == 0


def test_oauth_scope_refusal_and_invalid_tokens_are_ghl_401s(provider: OAuthProvider) -> None:
    """Missing scopes and missing or unknown tokens give GHL's 401 bodies (UnauthorizedDTO)."""
    token = exchange(
        provider, code_from(provider, redirect_uri=REDIRECT, scope="contacts.readonly")
    )
    dto = spec_schema("common/common-schemas.json", "UnauthorizedDTO")
    error = refusal(provider, bearer(token), ["contacts.readonly", "contacts.write"])
    assert (error.status, error.body) == (401, {"statusCode": 401, "message": SCOPE_MESSAGE})
    jsonschema.validate(error.body, dto)
    for header in (None, "", "Bearer", "Basic abc", "Bearer not-a-token", bearer(token) + "x"):
        error = refusal(provider, header, [])
        assert (error.status, error.body["message"]) == (401, INVALID_TOKEN_MESSAGE), header
        jsonschema.validate(error.body, dto)
    assert provider.stats["scope_refusals"] == 1 and provider.stats["auth_failures"] == 6


def test_oauth_keeps_no_secret_in_memory_or_reprs(provider: OAuthProvider) -> None:
    """Only hashes of tokens are stored, and reprs and messages never show a secret."""
    token = exchange(provider, code_from(provider, redirect_uri=REDIRECT))
    pit = provider.add_private_token(location_id="loc-1", scopes=["x"])
    store = vars(provider)["_store"]  # the token store: it must hold hashes only
    dump = repr(vars(provider)) + repr(vars(store)) + repr(provider) + repr(CLIENT)
    for secret in (token["access_token"], token["refresh_token"], pit, "s3cret-value"):
        assert str(secret) not in dump
    error = refusal(provider, f"Bearer {token['access_token']}z", ["x"])
    assert str(token["access_token"]) not in str(error)


def test_oauth_refresh_token_lives_a_year_unless_used(
    provider: OAuthProvider, clock: Clock
) -> None:
    """An unused refresh token is refused after a year; user_type must match the grant."""
    token = exchange(provider, code_from(provider, redirect_uri=REDIRECT))
    status, body = provider.token(
        {
            "client_id": CLIENT.client_id,
            "client_secret": CLIENT.client_secret,
            "grant_type": "refresh_token",
            "refresh_token": str(token["refresh_token"]),
            "user_type": "Company",
        }
    )
    assert (status, body["error"]) == (400, "invalid_request")
    clock.now += 365 * 86400
    assert refresh(provider, token["refresh_token"])[1]["error"] == "invalid_grant"


def test_oauth_loopback_redirect_any_port():
    """A loopback redirect URI may use any port (RFC 8252 7.3); other hosts must match exactly."""
    from connector.sandbox.oauth import OAuthClient, OAuthProvider

    client = OAuthClient("cid", "secret", ("http://127.0.0.1/callback",))
    provider = OAuthProvider(clients=[client], company_id="co", location_ids=["loc"])
    status, headers, _ = provider.authorize(
        {"client_id": "cid", "redirect_uri": "http://127.0.0.1:53123/callback", "state": "s1"}
    )
    assert status == 302
    assert headers["location"].startswith("http://127.0.0.1:53123/callback?")
    status, _, _ = provider.authorize(
        {"client_id": "cid", "redirect_uri": "http://evil.example:53123/callback", "state": "s1"}
    )
    assert status == 400
    status, _, _ = provider.authorize(
        {"client_id": "cid", "redirect_uri": "http://127.0.0.1:53123/other", "state": "s1"}
    )
    assert status == 400
