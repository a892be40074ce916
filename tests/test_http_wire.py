"""HttpClient on httpx's transport against raw socket servers on 127.0.0.1: what goes on the wire,
connection reuse (direct and through a proxy), servers that close, messages refused, HTTPS."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rawserver import RawServer, Reply, ok, self_signed

from connector.client.httpclient import HttpClient
from connector.client.request import RequestSpec
from connector.client.retry import RetryPolicy
from connector.errors import ConnectorError, RemoteError

PROXY_VARIABLES = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY",
                   "all_proxy", "NO_PROXY", "no_proxy")  # fmt: skip


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., RawServer]]:
    """Starts raw servers (closed after the test); no proxy from the environment."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    servers: list[RawServer] = []

    def start(reply: Reply, **options: Any) -> RawServer:
        servers.append(RawServer(reply, **options))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def get(api: HttpClient, path: str = "/") -> object:
    return api.send(RequestSpec("GET", path)).data


def test_wire_requests_reuse_one_connection(serve: Callable[..., RawServer]) -> None:
    """Ten sequential requests go over one kept-alive connection, each answered in full."""
    server = serve(ok())
    with HttpClient(base_url=server.url) as api:
        answers = [get(api, f"/n/{n}") for n in range(10)]
    assert answers == [{"ok": True}] * 10
    assert server.connections == 1
    assert [h.split(b" ")[1] for h in server.heads] == [f"/n/{n}".encode() for n in range(10)]


def test_wire_request_line_headers_and_body(serve: Callable[..., RawServer]) -> None:
    """Method, path with query, Host, the app's and the request's headers and the JSON body
    arrive intact."""
    server = serve(ok())
    with HttpClient(base_url=server.url, headers={"Version": "2021-07-28"}) as api:
        api.send(RequestSpec("POST", "/contacts/", query=(("q", "a b"), ("x", "1")),
                             json={"name": "Zoë"}, headers={"X-Api-Key": "k1"}))  # fmt: skip
    lines = server.heads[0].split(b"\r\n")
    assert lines[0] == b"POST /contacts/?q=a+b&x=1 HTTP/1.1"
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(b":") for ln in lines[1:])}
    assert headers[b"host"] == f"127.0.0.1:{server.port}".encode()
    assert (headers[b"version"], headers[b"x-api-key"]) == (b"2021-07-28", b"k1")
    assert headers[b"content-type"] == b"application/json"
    assert int(headers[b"content-length"]) == len('{"name":"Zoë"}'.encode())
    assert b"transfer-encoding" not in headers


def test_wire_a_connection_the_server_closed_is_not_reused(
    serve: Callable[..., RawServer],
) -> None:
    """A server closing each connection after one answer: every request still succeeds."""
    server = serve(ok(), close_after=1)
    with HttpClient(base_url=server.url) as api:
        for _ in range(5):
            assert get(api) == {"ok": True}
            time.sleep(0.02)  # let the close reach us, as an idle pool would see it
    assert server.connections == 5


def test_wire_connection_close_header_opens_a_new_connection(
    serve: Callable[..., RawServer],
) -> None:
    """``Connection: close`` in an answer: the next request opens a new connection."""
    server = serve(ok(extra="Connection: close\r\n"), close_after=1)
    with HttpClient(base_url=server.url) as api:
        assert [get(api) for _ in range(3)] == [{"ok": True}] * 3
    assert server.connections == 3


def test_wire_threads_share_the_pool(serve: Callable[..., RawServer]) -> None:
    """Eight threads sending 200 requests use at most eight connections, all answered."""
    server = serve(ok())
    results: list[object] = []
    with HttpClient(base_url=server.url) as api:

        def work() -> None:
            for _ in range(25):
                results.append(get(api))

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert results == [{"ok": True}] * 200
    assert 1 <= server.connections <= 8


def test_wire_server_hanging_up_unanswered_post_is_not_repeated(
    serve: Callable[..., RawServer],
) -> None:
    """The server closes without answering: the POST may have reached it, so it is not sent
    again."""
    server = serve(lambda head: None)
    with HttpClient(base_url=server.url, retry=RetryPolicy(attempts=3, base=0.0)) as api:
        with pytest.raises(RemoteError, match=r"^POST /contacts -> connection lost \("):
            api.send(RequestSpec("POST", "/contacts", json={"a": 1}))
    assert server.connections == 1


def test_wire_garbage_answer_is_a_lost_connection(serve: Callable[..., RawServer]) -> None:
    """A reply that is not HTTP: one RemoteError, never a hang or a raw protocol error."""
    server = serve(lambda head: b"SSH-2.0-OpenSSH\r\n\r\n")
    with HttpClient(base_url=server.url, retry=RetryPolicy(attempts=1)) as api:
        with pytest.raises(RemoteError, match=r"^GET / -> connection lost \("):
            get(api)


def test_wire_cookies_are_not_kept(serve: Callable[..., RawServer]) -> None:
    """A ``Set-Cookie`` answer: the next request carries no cookie."""
    server = serve(ok(extra="Set-Cookie: lb=node7; Path=/\r\n"))
    with HttpClient(base_url=server.url) as api:
        get(api)
        get(api)
    assert all(b"cookie:" not in head.lower() for head in server.heads)


# -- messages httpx (or the client) refuses to send or to accept ------------------------------


def test_wire_line_break_in_the_method_is_refused(serve: Callable[..., RawServer]) -> None:
    """A method carrying CR/LF never reaches the request line: nothing is sent."""
    server = serve(ok())
    with HttpClient(base_url=server.url) as api:
        spec = RequestSpec("GET / HTTP/1.1\r\nX-Injected: 1\r\n\r\nGET", "/")
        with pytest.raises(RemoteError, match=r"-> cannot send \(Illegal method characters\)"):
            api.send(spec)
    assert server.heads == [] and server.connections <= 1


def test_wire_line_break_in_a_header_is_refused(serve: Callable[..., RawServer]) -> None:
    """A header value with a line break is never sent: the server sees nothing."""
    server = serve(ok())
    with HttpClient(base_url=server.url) as api:
        spec = RequestSpec("GET", "/", headers={"X-Note": "a\r\nX-Injected: 1"})
        with pytest.raises(RemoteError, match=r"^GET / -> cannot send \("):
            api.send(spec)
    assert server.heads == []


@pytest.mark.parametrize("name", ["Transfer-Encoding", "content-length", "Host"])
def test_wire_framing_headers_from_the_caller_are_refused(
    serve: Callable[..., RawServer], name: str
) -> None:
    """A request's own ``Transfer-Encoding`` (which httpx would send beside the Content-Length
    it computes), ``Content-Length`` or ``Host``: refused before sending."""
    server = serve(ok())
    with HttpClient(base_url=server.url) as api:
        spec = RequestSpec("POST", "/contacts", json={"a": 1}, headers={name: "chunked"})
        with pytest.raises(RemoteError, match=rf"^POST /contacts -> cannot send \('{name}' "):
            api.send(spec)
    assert server.heads == []


def test_wire_framing_headers_in_the_app_are_refused() -> None:
    """An app whose headers set ``Transfer-Encoding``: the client is not even made."""
    with pytest.raises(ConnectorError, match=r"^http://x: the app's headers set 'Transfer-E"):
        HttpClient(base_url="http://x", headers={"Transfer-Encoding": "chunked"})


def test_wire_conflicting_content_lengths_are_refused(serve: Callable[..., RawServer]) -> None:
    """An answer with two different Content-Lengths is not read as either."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello12"
    server = serve(lambda head: answer)
    with HttpClient(base_url=server.url, retry=RetryPolicy(attempts=1)) as api:
        with pytest.raises(
            RemoteError, match=r"^GET / -> connection lost \(conflicting Content-Length headers\)"
        ):
            get(api)


# -- proxies and HTTPS --------------------------------------------------------------------


def test_wire_proxy_in_the_environment_is_honoured_and_kept_alive(
    serve: Callable[..., RawServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With HTTP_PROXY set, requests go through the proxy, over one kept-alive connection."""
    proxy = serve(ok(b'{"via": "proxy"}'))
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    with HttpClient(base_url="http://127.0.0.2:9") as api:  # nothing listens there
        assert [get(api, "/contacts/") for _ in range(3)] == [{"via": "proxy"}] * 3
    assert proxy.heads[0].startswith(b"GET http://127.0.0.2:9/contacts/ HTTP/1.1")
    assert proxy.connections == 1


def test_wire_no_proxy_bypasses_the_proxy(
    serve: Callable[..., RawServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """NO_PROXY naming the app's host: straight to the server, the proxy sees nothing."""
    proxy = serve(ok(b'{"via": "proxy"}'))
    server = serve(ok(b'{"via": "direct"}'))
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with HttpClient(base_url=server.url) as api:
        assert get(api) == {"via": "direct"}
    assert proxy.heads == []


def test_wire_https_verifies_the_certificate(
    serve: Callable[..., RawServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTPS: a trusted certificate (SSL_CERT_FILE) serves over one kept-alive TLS connection;
    with public CAs only, the same self-signed server is refused."""
    server_context, cert_file = self_signed(tmp_path)
    server = serve(ok(), tls=server_context)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    with HttpClient(base_url=server.url) as api:
        assert [get(api) for _ in range(3)] == [{"ok": True}] * 3
    assert server.connections == 1
    monkeypatch.delenv("SSL_CERT_FILE")
    with HttpClient(base_url=server.url, retry=RetryPolicy(attempts=1)) as api:
        with pytest.raises(RemoteError, match="cannot connect to 127.0.0.1:.*CERTIFICATE_VERIFY"):
            get(api)


def test_wire_http2_is_spoken_when_the_server_picks_it(
    serve: Callable[..., RawServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over TLS the client offers HTTP/2 (ALPN); a server that picks it gets the HTTP/2 preface
    (this raw server then hangs up: one clean error)."""
    server_context, cert_file = self_signed(tmp_path)
    server_context.set_alpn_protocols(["h2", "http/1.1"])
    server = serve(lambda head: None, tls=server_context)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    with HttpClient(base_url=server.url, retry=RetryPolicy(attempts=1)) as api:
        with pytest.raises(RemoteError, match=r"^GET / -> connection lost"):
            get(api)
    assert server.heads[0] == b"PRI * HTTP/2.0"


def test_wire_refused_connection_names_the_reason() -> None:
    """Nobody listening: the error says so, with the address."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with HttpClient(base_url=f"http://127.0.0.1:{port}", retry=RetryPolicy(attempts=1)) as api:
        with pytest.raises(
            RemoteError, match=rf"cannot connect to 127.0.0.1:{port} \(connection r"
        ):
            get(api)
