"""The generic `http.request` action and its URL guard, against a real local server."""

from __future__ import annotations

import ipaddress
import json
import ssl
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import httpx
import pytest
from conftest import run_cli
from fakeapi import Answer

from actions.httprequest.request import execute_http_request
from connector.catalog import build_catalog
from connector.client import urlguard
from connector.client.urlguard import ALLOW_ENV, AllowEntry, UrlGuard, address_risk
from connector.errors import ConnectorError, InputError, RemoteError
from connector.plugins import get_plugin_manager
from connector.runtime import Runtime, Settings


@pytest.fixture
def runtime(clean_environ):
    """A runtime over the built-in catalog, with no allow-list from the caller's environment."""
    with Runtime(build_catalog(get_plugin_manager(entry_points=False)), Settings()) as rt:
        yield rt


@pytest.fixture
def port(api) -> int:
    return urlsplit(api.url).port


def call(runtime: Runtime, **data):
    return runtime.call("http.request", data)


def test_http_loopback_refused_without_allow_list(runtime, api):
    """Without an allow-list a loopback URL is refused before anything is sent."""
    api.add("GET", "/x", json={"ok": True})
    with pytest.raises(ConnectorError, match=r"http\.request: url '.*/x': 127\.0\.0\.1 is a loopback address.*CONNECTOR_HTTP_ALLOW=127\.0\.0\.1"):
        call(runtime, url=f"{api.url}/x")
    assert api.requests == []


def test_http_allowed_by_environment(runtime, api, monkeypatch):
    """CONNECTOR_HTTP_ALLOW lets the request through; method, headers, query and body are sent."""
    monkeypatch.setenv(ALLOW_ENV, " 10.0.0.0/8 , 127.0.0.1")
    api.add("POST", "/leads", 201, json={"id": "L1"}, headers={"X-Trace": "t-1"})
    out = call(
        runtime,
        method="POST",
        url=f"{api.url}/leads?src=web",
        headers={"Authorization": "Bearer secret-token", "X-Custom": "yes"},
        query={"tag": ["a", "b"], "vip": True, "n": 3},
        json={"name": "Ann"},
    )
    assert out["status"] == 201
    assert out["json"] == {"id": "L1"}
    assert out["headers"]["x-trace"] == "t-1"
    assert json.loads(out["text"]) == {"id": "L1"}
    sent = api.requests[0]
    assert (sent.method, sent.path) == ("POST", "/leads")
    assert sent.query == {"src": "web", "tag": "b", "vip": "true", "n": "3"}
    assert sent.headers["authorization"] == "Bearer secret-token"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["host"] == urlsplit(api.url).netloc
    assert sent.json == {"name": "Ann"}


def test_http_allowed_by_python_api_only_inside_the_block(runtime, api, port):
    """urlguard.allowing() allows a host:port while the block runs, and not after it."""
    api.add("GET", "/ok", json=[1, 2])
    with urlguard.allowing(f"127.0.0.1:{port + 1 if port < 65535 else port - 1}"):
        with pytest.raises(ConnectorError, match="loopback"):
            call(runtime, url=f"{api.url}/ok")
    with urlguard.allowing(f"127.0.0.1:{port}"):
        assert call(runtime, url=f"{api.url}/ok")["json"] == [1, 2]
    with pytest.raises(ConnectorError, match="loopback"):
        call(runtime, url=f"{api.url}/ok")
    assert urlguard.allowed() == ()


def test_http_hostname_resolving_to_loopback_refused(runtime, api, port):
    """A host name is judged by the addresses it resolves to: localhost is loopback."""
    with pytest.raises(ConnectorError, match=r"'localhost' resolves to 127\.0\.0\.1, which is a loopback address"):
        call(runtime, url=f"http://localhost:{port}/x")
    assert api.requests == []


def test_http_allowed_host_name_connects_to_a_checked_address(runtime, api, port):
    """An allowed name is reached at its resolved address, with its own name in the Host header."""
    api.add("GET", "/named", body="plain text")
    with urlguard.allowing("localhost"):
        out = call(runtime, url=f"http://LOCALHOST:{port}/named")
    assert (out["json"], out["text"]) == (None, "plain text")
    assert api.requests[0].headers["host"] == f"localhost:{port}"


@pytest.mark.parametrize(
    ("host", "risk"),
    [("[::1]", "loopback"), ("[::ffff:127.0.0.1]", r"loopback \(inside IPv6 ::ffff:7f00:1\)")],
)
def test_http_ipv6_loopback_refused(runtime, api, port, host, risk):
    """IPv6 loopback and IPv4-mapped loopback are refused like 127.0.0.1."""
    with urlguard.allowing("127.0.0.2"):
        with pytest.raises(ConnectorError, match=f"is a {risk} address"):
            call(runtime, url=f"http://{host}:{port}/x")
    assert api.requests == []


@pytest.mark.parametrize(
    ("location", "risk"),
    [
        ("http://10.1.2.3/admin", "10.1.2.3 is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://[::1]:8080/x", "::1 is a loopback address"),
        ("http://localhost:1/x", "resolves to 127.0.0.1, which is a loopback address"),
    ],
)
def test_http_redirect_to_refused_address_is_not_followed(runtime, api, port, location, risk):
    """A redirect to a private, link-local or loopback target is refused before it is followed."""
    api.add("GET", "/start", 302, headers={"Location": location})
    with urlguard.allowing(f"127.0.0.1:{port}"):
        with pytest.raises(ConnectorError, match=f"http\\.request: redirect 1 to .*{risk}"):
            call(runtime, url=f"{api.url}/start")
    assert [r.path for r in api.requests] == ["/start"]


def test_http_redirects_followed_303_turns_post_into_get(runtime, api):
    """Allowed redirects are followed; 303 turns a POST into a GET without body."""
    api.add("POST", "/a", 303, headers={"Location": "/b?x=1"})
    api.add("GET", "/b", 307, headers={"Location": "/c"})
    api.add("GET", "/c", json={"done": True})
    with urlguard.allowing("127.0.0.1"):
        out = call(runtime, method="POST", url=f"{api.url}/a", json={"k": 1},
                   headers={"Authorization": "Bearer t"})
    assert out == {"status": 200, "headers": out["headers"], "json": {"done": True}, "text": '{"done": true}'}
    steps = [(r.method, r.path, r.body, r.headers.get("authorization")) for r in api.requests]
    assert steps == [("POST", "/a", b'{"k": 1}', "Bearer t"), ("GET", "/b", b"", "Bearer t"),
                     ("GET", "/c", b"", "Bearer t")]


def test_http_credentials_dropped_when_redirect_leaves_origin(runtime, api, port):
    """Authorization and Cookie are not sent on to another origin; other headers are."""
    api.add("GET", "/a", 302, headers={"Location": f"http://localhost:{port}/b"})
    api.add("GET", "/b", json={})
    with urlguard.allowing("127.0.0.1"):
        call(runtime, url=f"{api.url}/a",
             headers={"Authorization": "Bearer t", "Cookie": "s=1", "X-Keep": "1"})
    second = api.requests[1].headers
    assert "authorization" not in second and "cookie" not in second
    assert (second["x-keep"], second["host"]) == ("1", f"localhost:{port}")


def test_http_too_many_redirects(runtime, api):
    """A redirect loop stops after 5 redirects with a RemoteError."""
    api.route("GET", "/loop", lambda r: Answer(302, headers={"Location": "/loop"}))
    with urlguard.allowing("127.0.0.1"):
        with pytest.raises(RemoteError, match=r"GET http://127\.0\.0\.1:\d+/loop -> more than 5 redirects"):
            call(runtime, url=f"{api.url}/loop")
    assert len(api.requests) == 6


def test_http_error_status_fails_unless_accepted(runtime, api):
    """A 4xx answer raises RemoteError (no query or token in the message) unless accept_errors."""
    api.add("GET", "/missing", 404, json={"message": "no such lead"}, times=2)
    with urlguard.allowing("127.0.0.1"):
        with pytest.raises(RemoteError, match=r"GET http://127\.0\.0\.1:\d+/missing -> 404 Not Found: .*no such lead") as err:
            call(runtime, url=f"{api.url}/missing?api_key=k-123", headers={"Authorization": "Bearer t"})
        out = call(runtime, url=f"{api.url}/missing", accept_errors=True)
    assert "k-123" not in str(err.value) and "Bearer" not in str(err.value)
    assert err.value.status == 404
    assert (out["status"], out["json"]) == (404, {"message": "no such lead"})


def test_http_timeout_is_a_remote_error(runtime, api):
    """An answer slower than timeout_seconds fails with a RemoteError saying so."""
    api.add("GET", "/slow", json={}, delay=1.0)
    with urlguard.allowing("127.0.0.1"):
        with pytest.raises(RemoteError, match=r"timed out after 0\.2s"):
            call(runtime, url=f"{api.url}/slow", timeout_seconds=0.2)


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        ({"url": "ftp://example.com/x"}, InputError, r"url: 'ftp://example.com/x' does not match"),
        ({"url": "http://u:p@127.0.0.1/x"}, ConnectorError, r"user info in URLs is refused"),
        ({"url": "http://127.0.0.1/x", "headers": {"Host": "evil"}}, InputError, r"'Host' is set by the connector"),
        ({"url": "http://127.0.0.1/x", "verb": "GET"}, InputError, r"verb"),
    ],
)
def test_http_bad_input_refused(runtime, api, data, error, match):
    """Non-http URLs, user info, connector-owned headers and unknown inputs are refused."""
    with urlguard.allowing("127.0.0.1"):
        with pytest.raises(error, match=match):
            runtime.call("http.request", data)
    assert api.requests == []


@pytest.mark.parametrize(
    ("address", "risk"),
    [
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("0.0.0.0", "unspecified"),
        ("10.0.0.1", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "non-global"),
        ("224.0.0.1", "multicast"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("::", "unspecified"),
        ("2002:7f00:1::", "loopback (inside IPv6 2002:7f00:1::)"),
        ("64:ff9b::a00:1", "private (inside IPv6 64:ff9b::a00:1)"),
    ],
)
def test_urlguard_address_risk(address, risk):
    """Public addresses pass; each kind of internal address is named, including embedded IPv4."""
    assert address_risk(ipaddress.ip_address(address)) == risk


def test_urlguard_allow_entries_parse_and_match():
    """Allow entries take names, addresses, networks and ports; bad ones name the variable."""
    loop = ipaddress.ip_address("127.0.0.1")
    assert AllowEntry.parse("[::1]:9000").matches("x", ipaddress.ip_address("::1"), 9000)
    assert not AllowEntry.parse("[::1]:9000").matches("x", ipaddress.ip_address("::1"), 9001)
    assert AllowEntry.parse("127.0.0.0/8").matches("x", ipaddress.ip_address("::ffff:127.0.0.9"), 80)
    assert AllowEntry.parse("Sandbox.Local.:8080").matches("sandbox.local", loop, 8080)
    for bad in ("http://x", "a b", "[::1]x", "host:0", "host:http"):
        with pytest.raises(ConnectorError, match=f"{ALLOW_ENV}: .* is not a host name"):
            UrlGuard([bad])
    with pytest.raises(ConnectorError, match=ALLOW_ENV):
        UrlGuard.from_config({ALLOW_ENV: "ok.example, not valid"})


def test_http_action_in_catalog_listing():
    """`catalog --app http --json` lists the generic action under the http app."""
    result = run_cli("catalog", "--app", "http", "--json")
    assert result.status == 0, result
    assert [(r["id"], r["app"]) for r in json.loads(result.stdout)] == [("http.request", "http")]


def test_http_preview_masks_credentials_and_sends_nothing(runtime, api):
    """The dry-run preview shows method, full URL and body, with credential headers masked."""
    from actions.httprequest.request import preview_http_request

    action = runtime.catalog.action("http.request")
    shown = preview_http_request(action, {
        "method": "post", "url": f"{api.url}/x?a=1", "query": {"b": 2}, "json": {"k": 1},
        "headers": {"Authorization": "Bearer t", "X-Api-Key": "k", "Accept": "text/plain"},
    })
    assert shown == {
        "action": "http.request", "method": "POST", "url": f"{api.url}/x?a=1&b=2",
        "headers": {"Authorization": "****", "X-Api-Key": "****", "Accept": "text/plain"},
        "json": {"k": 1},
    }
    assert api.requests == []


class _EchoHost(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"host": self.headers["Host"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        """Quiet."""


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """An HTTPS server on 127.0.0.1 whose certificate names only 'localhost'; a context trusting it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    names: list[str | None] = []
    server_ctx.sni_callback = lambda sock, server_name, ctx: names.append(server_name)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoHost)
    server.daemon_threads = True
    server.socket = server_ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], ssl.create_default_context(cafile=folder / "cert.pem"), names
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_http_https_to_pinned_address_verifies_the_url_host(runtime, tls_server):
    """Over https the checked address is dialled while SNI, Host and the certificate check use the name."""
    port, trust, names = tls_server
    action = runtime.catalog.action("http.request")

    def client(timeout: float) -> httpx.Client:
        return httpx.Client(verify=trust, timeout=timeout, follow_redirects=False, trust_env=False)

    guard = UrlGuard(["localhost", "127.0.0.1"])
    reply = execute_http_request(
        action, {"url": f"https://localhost:{port}/"}, Settings(), client, guard=guard
    )
    assert reply.data["json"] == {"host": f"localhost:{port}"}
    assert names[-1] == "localhost"
    with pytest.raises(RemoteError, match=r"cannot connect to 127\.0\.0\.1 .*certificate verify failed"):
        execute_http_request(action, {"url": f"https://127.0.0.1:{port}/"}, Settings(), client, guard=guard)
