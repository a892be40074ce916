"""Connections against the real sandbox: login, refresh (single-flight), refusals, scopes, skew."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest

from connector.auth import oauth
from connector.auth.tokens import (
    BearerAuth,
    Connection,
    ConnectionStore,
    TokenManager,
    connect_location,
    login,
    require_scopes,
    scopes_needed,
    set_token,
)
from connector.auth.vault import KEY_ENV
from connector.errors import AuthError, StoreError
from connector.sandbox.server import SandboxServer
from connector.store import Store

ROOT = Path(__file__).resolve().parents[1]
CLIENT_SECRET = "canary-client-secret-4f1d"
PRIVATE_TOKEN = "canary-private-token-93ab"
SCOPES = ("contacts.readonly", "contacts.write")
VERSION = {"Version": "2021-07-28"}


@dataclass
class OAuthSandbox:
    server: SandboxServer
    port: int

    @property
    def base_url(self) -> str:
        return self.server.app.base_url

    @property
    def client_id(self) -> str:
        return self.server.app.config.client_id

    @property
    def location_id(self) -> str:
        return self.server.app.config.location_id

    def stats(self) -> dict[str, int]:
        return self.server.app.provider.stats


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[OAuthSandbox]:
    port = free_port()
    with SandboxServer(
        redirect_uris=(f"http://127.0.0.1:{port}/callback",),
        client_secret=CLIENT_SECRET,
        private_token=PRIVATE_TOKEN,
    ) as server:
        yield OAuthSandbox(server, port)


@pytest.fixture
def ghl(sandbox_server: OAuthSandbox) -> OAuthSandbox:
    sandbox_server.server.call(sandbox_server.server.app.reset)
    return sandbox_server


@pytest.fixture
def connections(tmp_path, monkeypatch, store_location) -> Iterator[ConnectionStore]:
    for name in list(os.environ):
        if name.startswith("CONNECTOR_"):
            monkeypatch.delenv(name)
    # The vault's key file: beside an SQLite state file, in CONNECTOR_HOME for PostgreSQL.
    monkeypatch.setenv("CONNECTOR_HOME", str(tmp_path / "home"))
    store = Store(store_location)
    yield ConnectionStore(store)
    store.close()


def headless(extra: str = "") -> Callable[[str], None]:
    """An announce callback that plays the browser: GET the URL and follow the redirects."""

    def follow(url: str) -> None:
        threading.Thread(
            target=lambda: httpx.get(url + extra, follow_redirects=True, timeout=10), daemon=True
        ).start()

    return follow


def do_login(
    ghl: OAuthSandbox, connections: ConnectionStore, name: str = "acme",
    scopes: tuple[str, ...] = SCOPES, extra: str = "",
) -> Connection:
    return login(
        connections, name=name, client_id=ghl.client_id, client_secret=CLIENT_SECRET,
        scopes=scopes, base_url=ghl.base_url,
        authorize_endpoint=f"{ghl.base_url}/oauth/chooselocation",
        announce=headless(extra), port=ghl.port, timeout=10,
    )


def get_contacts(ghl: OAuthSandbox, auth: httpx.Auth) -> httpx.Response:
    with httpx.Client(base_url=ghl.base_url, headers=VERSION, timeout=10) as client:
        return client.get("/contacts/", params={"locationId": ghl.location_id}, auth=auth)


def expire_locally(connections: ConnectionStore, name: str) -> Connection:
    return connections.save(replace(connections.get(name), expires_at=time.time() - 10))


def test_login_stores_connection_encrypted(ghl, connections, tmp_path):
    """The code flow stores the token, its location, scopes and expiry; the file has no token."""
    saved = do_login(ghl, connections)
    assert saved.kind == "oauth" and saved.user_type == "Location"
    assert saved.location_id == ghl.location_id and saved.scopes == frozenset(SCOPES)
    assert saved.expires_at is not None and saved.expires_at > time.time() + 80000
    again = connections.get("acme")
    assert again.access_token == saved.access_token and again.refresh_token
    if connections.store.dialect == "sqlite":
        raw = (tmp_path / "state.db").read_bytes()
    else:  # every stored value of the table, as PostgreSQL holds it
        rows = connections.store.query("SELECT * FROM connections")
        raw = b"".join(v if isinstance(v, bytes) else str(v).encode() for r in rows for v in r)
    for secret in (saved.access_token, saved.refresh_token or "", CLIENT_SECRET):
        assert secret.encode() not in raw
    assert get_contacts(ghl, TokenManager(connections).auth("acme")).status_code == 200
    assert ghl.stats()["code_exchanges"] == 1


def test_login_rejects_forged_state(ghl, connections):
    """A redirect whose state differs is refused and no code is exchanged."""

    def forger(url: str) -> None:
        parts = httpx.URL(url)
        target = f"{parts.params['redirect_uri']}?code=stolen&state=forged"
        threading.Thread(target=lambda: httpx.get(target, timeout=10), daemon=True).start()

    with pytest.raises(AuthError, match="state does not match"):
        login(
            connections, name="acme", client_id=ghl.client_id, client_secret=CLIENT_SECRET,
            scopes=SCOPES, base_url=ghl.base_url, authorize_endpoint="http://unused/",
            announce=forger, port=ghl.port, timeout=10,
        )
    assert connections.names() == [] and ghl.stats()["token_requests"] == 0


def test_login_error_redirect_and_bad_secret(ghl, connections):
    """An error redirect and a wrong client secret both fail with one-line AuthErrors."""
    with pytest.raises(AuthError, match="authorization refused: 'invalid_request'"):
        do_login(ghl, connections, extra="&locationId=nope")
    with pytest.raises(AuthError, match=r"refused \(invalid_client") as info:
        login(
            connections, name="acme", client_id=ghl.client_id, client_secret="wrong-secret",
            scopes=SCOPES, base_url=ghl.base_url,
            authorize_endpoint=f"{ghl.base_url}/oauth/chooselocation",
            announce=headless(), port=ghl.port, timeout=10,
        )
    assert "wrong-secret" not in str(info.value)


def test_expired_token_refreshed_before_request(ghl, connections):
    """A token past its expiry is refreshed first; the rotated refresh token is stored."""
    first = do_login(ghl, connections)
    expire_locally(connections, "acme")
    response = get_contacts(ghl, TokenManager(connections).auth("acme"))
    assert response.status_code == 200
    stored = connections.get("acme")
    assert stored.refresh_token != first.refresh_token
    assert stored.access_token != first.access_token
    assert ghl.stats()["refreshes"] == 1 and ghl.stats()["auth_failures"] == 0


def test_401_refreshes_once_and_retries(ghl, connections):
    """A token the server dropped early (its clock ahead) gets one refresh and one retry."""
    do_login(ghl, connections)
    ghl.server.app.provider.expire_access_tokens()
    assert get_contacts(ghl, TokenManager(connections).auth("acme")).status_code == 200
    assert ghl.stats()["refreshes"] == 1 and ghl.stats()["auth_failures"] == 1


@pytest.mark.parametrize("offset", [-600.0, -180.0, 180.0, 600.0])
def test_clock_skew_either_way(ghl, connections, offset):
    """With our clock minutes off either way, an expired token still ends in one refresh."""
    do_login(ghl, connections)
    expire_locally(connections, "acme")
    ghl.server.app.provider.expire_access_tokens()
    tokens = TokenManager(connections, clock=lambda: time.time() + offset)
    assert get_contacts(ghl, tokens.auth("acme")).status_code == 200
    assert ghl.stats()["refreshes"] == 1
    assert get_contacts(ghl, tokens.auth("acme")).status_code == 200
    assert ghl.stats()["refreshes"] == 1


def test_sixteen_threads_one_refresh(ghl, connections):
    """16 threads hitting an expired token at once cause exactly one refresh; all succeed."""
    do_login(ghl, connections)
    expire_locally(connections, "acme")
    ghl.server.app.provider.expire_access_tokens()
    tokens = TokenManager(connections)
    barrier = threading.Barrier(16)
    statuses: list[int] = []

    def worker() -> None:
        auth = BearerAuth(tokens, "acme")
        barrier.wait()
        statuses.append(get_contacts(ghl, auth).status_code)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert statuses == [200] * 16
    stats = ghl.stats()
    assert stats["refreshes"] == 1 and stats["refresh_rejections"] == 0


WORKER = textwrap.dedent(
    """
    import json, sys, threading, time, os
    import httpx
    from connector.auth.tokens import BearerAuth, ConnectionStore, TokenManager
    from connector.store import Store
    db, base_url, location, go = sys.argv[1:5]
    tokens = TokenManager(ConnectionStore(Store(db)))
    while not os.path.exists(go):
        time.sleep(0.005)
    out = []
    def work():
        with httpx.Client(base_url=base_url, headers={"Version": "2021-07-28"}) as c:
            r = c.get("/contacts/", params={"locationId": location}, auth=BearerAuth(tokens, "acme"))
        out.append(r.status_code)
    threads = [threading.Thread(target=work) for _ in range(4)]
    [t.start() for t in threads]
    [t.join(30) for t in threads]
    print(json.dumps(out))
    """
)


def test_processes_and_threads_one_refresh(ghl, connections, tmp_path):
    """4 processes (4 threads each) plus 16 threads, each thread its own manager: one refresh."""
    do_login(ghl, connections)
    expire_locally(connections, "acme")
    ghl.server.app.provider.expire_access_tokens()
    go = tmp_path / "go"
    db = connections.store.url
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    env["CONNECTOR_HOME"] = os.environ["CONNECTOR_HOME"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, db, ghl.base_url, ghl.location_id, str(go)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in range(4)
    ]
    statuses: list[int] = []

    def worker() -> None:
        manager = TokenManager(ConnectionStore(Store(db)))
        while not go.exists():
            time.sleep(0.005)
        statuses.append(get_contacts(ghl, BearerAuth(manager, "acme")).status_code)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    go.touch()
    for thread in threads:
        thread.join(30)
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        statuses.extend(json.loads(out))
    assert statuses == [200] * 32
    stats = ghl.stats()
    assert stats["refreshes"] == 1
    assert stats["refresh_rejections"] == 0 and stats["refresh_reuses"] == 0


def test_revoked_refresh_marks_needs_login(ghl, connections):
    """A revoked refresh token fails with what to run, flags the connection, and stops trying."""
    do_login(ghl, connections)
    ghl.server.app.provider.revoke(connections.get("acme").refresh_token or "")
    expire_locally(connections, "acme")
    tokens = TokenManager(connections)
    with pytest.raises(AuthError, match=r"'acme' needs a new login.*ghl-connector auth login"):
        get_contacts(ghl, tokens.auth("acme"))
    assert connections.get("acme").needs_login
    requests = ghl.stats()["token_requests"]
    with pytest.raises(AuthError, match="needs a new login"):
        TokenManager(connections).current("acme")
    assert ghl.stats()["token_requests"] == requests
    assert connections.summaries()[0]["needs_login"] is True


def test_reused_refresh_token_refused_and_never_sent_by_us(ghl, connections):
    """The sandbox rejects a spent refresh token; the connector itself never reuses one."""
    do_login(ghl, connections)
    for _ in range(3):
        expire_locally(connections, "acme")
        assert get_contacts(ghl, TokenManager(connections).auth("acme")).status_code == 200
    assert ghl.stats()["refreshes"] == 3 and ghl.stats()["refresh_reuses"] == 0
    stolen = connections.get("acme")
    oauth.refresh(
        ghl.base_url, client_id=ghl.client_id, client_secret=CLIENT_SECRET,
        refresh_token=stolen.refresh_token or "",
    )
    expire_locally(connections, "acme")
    with pytest.raises(AuthError, match=r"refresh was refused \(.*invalid_grant"):
        TokenManager(connections).current("acme")
    assert ghl.stats()["refresh_reuses"] == 1


def test_wrong_key_fails_clearly(ghl, connections, monkeypatch):
    """Reading tokens with a different key is a clear StoreError, never garbage."""
    do_login(ghl, connections)
    monkeypatch.setenv(KEY_ENV, base64.b64encode(os.urandom(32)).decode())
    with pytest.raises(StoreError, match="cannot decrypt tokens: the key does not match"):
        TokenManager(ConnectionStore(connections.store)).current("acme")
    assert connections.summaries()[0]["name"] == "acme"


def test_scopes_checked_before_any_request(ghl, connections):
    """A missing scope fails before sending, naming the action, the scope and the fix."""
    from connector.catalog import build_catalog
    from connector.runtime import Runtime, Settings

    do_login(ghl, connections, scopes=("contacts.readonly",))
    catalog = build_catalog()
    settings = Settings(base_urls={"ghl": ghl.base_url}, location_id=ghl.location_id)
    with Runtime(catalog, settings, auth=TokenManager(connections).provider("acme")) as runtime:
        with pytest.raises(AuthError) as info:
            runtime.call("ghl.contacts.create", {"firstName": "Ann"})
        assert runtime.call("ghl.contacts.search", {"pageLimit": 1}) is not None
    message = str(info.value)
    assert "ghl.contacts.create: connection 'acme' lacks scope 'contacts.write'" in message
    assert "auth login --name acme" in message and "contacts.readonly contacts.write" in message
    assert ghl.stats()["auth_failures"] == 0 and ghl.stats()["scope_refusals"] == 0
    assert scopes_needed(["ghl.contacts.create", "ghl.contacts.get"], catalog) == [
        "contacts.readonly", "contacts.write",
    ]


def test_location_token_from_agency(ghl, connections):
    """An agency login yields location connections that renew through their parent."""
    do_login(ghl, connections, name="agency", scopes=(*SCOPES, "oauth.write"),
             extra="&user_type=Company")
    tokens = TokenManager(connections)
    derived = connect_location(tokens, source="agency", location_id=ghl.location_id, name="loc")
    assert (derived.kind, derived.user_type, derived.parent) == ("location", "Location", "agency")
    assert derived.location_id == ghl.location_id and derived.refresh_token is None
    assert get_contacts(ghl, tokens.auth("loc")).status_code == 200
    ghl.server.app.provider.expire_access_tokens()
    assert get_contacts(ghl, tokens.auth("loc")).status_code == 200
    stats = ghl.stats()
    assert stats["location_tokens"] == 2 and stats["refreshes"] == 1
    assert stats["auth_failures"] == 2  # the location token, then the agency token
    with pytest.raises(AuthError, match="'loc' is a Location connection"):
        connect_location(tokens, source="loc", location_id=ghl.location_id, name="x")


def test_private_token_and_env_token(ghl, connections, monkeypatch):
    """Private tokens are stored and sent as is; CONNECTOR_TOKEN is a connection for CI."""
    set_token(connections, name="pit", token=PRIVATE_TOKEN, base_url=ghl.base_url,
              location_id=ghl.location_id)
    tokens = TokenManager(connections)
    assert get_contacts(ghl, tokens.auth("pit")).status_code == 200
    monkeypatch.setenv("CONNECTOR_TOKEN", PRIVATE_TOKEN)
    monkeypatch.setenv("CONNECTOR_LOCATION_ID", ghl.location_id)
    env = tokens.current()
    assert (env.name, env.kind, env.location_id) == ("env", "env", ghl.location_id)
    assert get_contacts(ghl, tokens.auth()).status_code == 200
    assert connections.names() == ["pit"]
    assert ghl.stats()["token_requests"] == 0


def test_default_connection_resolution(connections):
    """No name picks 'default', else the only connection; several without default is an error."""
    with pytest.raises(AuthError, match=r"no connection named 'default' .*auth login"):
        connections.resolve(None)
    set_token(connections, name="one", token="t" * 20, base_url="http://127.0.0.1:9")
    assert connections.resolve(None).name == "one"
    set_token(connections, name="two", token="u" * 20, base_url="http://127.0.0.1:9")
    with pytest.raises(AuthError, match="several connections and none named 'default'"):
        connections.resolve(None)
    set_token(connections, name="default", token="v" * 20, base_url="http://127.0.0.1:9")
    assert connections.resolve(None).name == "default"
    assert connections.delete("two") and not connections.delete("two")
    with pytest.raises(AuthError, match="name 'bad name' is not valid"):
        set_token(connections, name="bad name", token="w" * 20, base_url="http://x")


def test_connection_repr_and_summary_hide_secrets():
    """Reprs and summaries of connections, grants and auths never show a secret."""
    conn = Connection(
        name="c", kind="oauth", user_type="Location", base_url="http://x",
        access_token="secret-access-1", refresh_token="secret-refresh-1",
        client_secret="secret-client-1", scopes=frozenset({"contacts.readonly"}),
    )
    shown = repr(conn) + str(conn) + json.dumps(conn.summary())
    assert "secret-" not in shown and "contacts.readonly" in shown
    require_scopes("ghl.contacts.get", ["contacts.readonly"], conn)
    with pytest.raises(AuthError, match="lacks scope 'contacts.write'"):
        require_scopes("ghl.contacts.create", ["contacts.write"], conn)
    require_scopes("anything", ["x.write"], replace(conn, scopes=None))


def test_scope_refusal_401_is_not_refreshed(ghl, connections):
    """A 401 saying the token lacks a scope is returned as is: no refresh, no retry."""
    do_login(ghl, connections, scopes=("contacts.readonly",))
    connections.save(replace(connections.get("acme"), scopes=frozenset(SCOPES)))
    with httpx.Client(base_url=ghl.base_url, headers=VERSION, timeout=10) as client:
        response = client.post(
            "/contacts/", json={"locationId": ghl.location_id, "firstName": "Ann"},
            auth=TokenManager(connections).auth("acme"),
        )
    assert response.status_code == 401 and "scope" in response.text
    assert ghl.stats()["refreshes"] == 0 and ghl.stats()["scope_refusals"] == 1


def test_unreachable_token_endpoint_is_not_a_refusal(ghl, connections):
    """A refresh that fails on the network keeps the connection usable (not 'needs login')."""
    do_login(ghl, connections)
    closed = f"http://127.0.0.1:{free_port()}"
    connections.save(replace(connections.get("acme"), base_url=closed, expires_at=time.time() - 5))
    with pytest.raises(AuthError, match=r"POST /oauth/token \(refresh_token\): ConnectError"):
        TokenManager(connections).current("acme")
    assert not connections.get("acme").needs_login
