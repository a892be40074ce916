"""The keep-alive transport (connector.client.transport) against raw socket servers on 127.0.0.1:
connection reuse, servers that close, timeouts, protocol errors, gzip, proxies."""

from __future__ import annotations

import datetime
import gzip
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.client.httpclient import HttpClient
from connector.client.request import RequestSpec
from connector.client.retry import RetryPolicy
from connector.client.transport import KeepAliveTransport
from connector.errors import RemoteError

Reply = Callable[[bytes], bytes | None]
"""Answers one request (its head) with raw bytes; None closes the connection unanswered."""


class RawServer:
    """A socket server: each connection answers requests with ``reply`` until it says stop."""

    def __init__(
        self, reply: Reply, *, close_after: int = 0, tls: ssl.SSLContext | None = None
    ) -> None:
        self.reply = reply
        self.tls = tls
        self.close_after = close_after  # close each connection after this many answers (0: never)
        self.connections = 0
        self.heads: list[bytes] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            if self.tls is not None:
                try:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                except OSError:  # the client refused our certificate
                    conn.close()
                    continue
            self._open.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn:
                self._answer(conn)
        except OSError:  # the test closed the server
            return

    def _answer(self, conn: socket.socket) -> None:
        answered, buffer = 0, b""
        while True:
            while b"\r\n\r\n" not in buffer:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buffer += chunk
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            length = _content_length(head)
            while len(buffer) < length:
                buffer += conn.recv(65536)
            buffer = buffer[length:]
            self.heads.append(head)
            answer = self.reply(head)
            if answer is None:
                return
            conn.sendall(answer)
            answered += 1
            if self.close_after and answered >= self.close_after:
                return

    def close(self) -> None:
        self._sock.close()
        for conn in self._open:
            conn.close()


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def ok(body: bytes = b'{"ok": true}', *, extra: str = "") -> Reply:
    def reply(head: bytes) -> bytes:
        return (
            f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    return reply


@pytest.fixture
def serve() -> Iterator[Callable[..., RawServer]]:
    servers: list[RawServer] = []

    def start(reply: Reply, **options: Any) -> RawServer:
        servers.append(RawServer(reply, **options))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def client(server: RawServer, **options: object) -> httpx.Client:
    return httpx.Client(base_url=server.url, transport=KeepAliveTransport(), **options)  # type: ignore[arg-type]


def test_requests_reuse_one_connection(serve: Callable[..., RawServer]) -> None:
    """Ten sequential requests go over one kept-alive connection, each answered in full."""
    server = serve(ok())
    with client(server) as http:
        answers = [http.get(f"/n/{n}").json() for n in range(10)]
    assert answers == [{"ok": True}] * 10
    assert server.connections == 1
    assert [h.split(b" ")[1] for h in server.heads] == [f"/n/{n}".encode() for n in range(10)]


def test_request_line_headers_and_body_are_sent_as_given(serve: Callable[..., RawServer]) -> None:
    """Method, path with query, the Host header, custom headers and the JSON body arrive intact."""
    seen: list[bytes] = []
    server = serve(lambda head: seen.append(head) or ok()(head))
    with client(server) as http:
        http.post("/contacts/?q=a%20b&x=1", json={"name": "Zoë"}, headers={"X-Api-Key": "k1"})
    lines = seen[0].split(b"\r\n")
    assert lines[0] == b"POST /contacts/?q=a%20b&x=1 HTTP/1.1"
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(b":") for ln in lines[1:])}
    assert headers[b"host"] == f"127.0.0.1:{server.port}".encode()
    assert headers[b"x-api-key"] == b"k1"
    assert headers[b"content-type"] == b"application/json"
    assert int(headers[b"content-length"]) == len('{"name":"Zoë"}'.encode())


def test_a_connection_the_server_closed_is_not_reused(serve: Callable[..., RawServer]) -> None:
    """A server closing each connection after one answer: every request still succeeds."""
    server = serve(ok(), close_after=1)
    with client(server) as http:
        for _ in range(5):
            assert http.get("/").status_code == 200
            time.sleep(0.02)  # let the close reach us, as an idle pool would see it
    assert server.connections == 5


def test_connection_close_header_opens_a_new_connection(serve: Callable[..., RawServer]) -> None:
    """``Connection: close`` in an answer: the next request opens a new connection."""
    server = serve(ok(extra="Connection: close\r\n"), close_after=1)
    with client(server) as http:
        assert [http.get("/").status_code for _ in range(3)] == [200, 200, 200]
    assert server.connections == 3


def test_duplicate_headers_and_gzip(serve: Callable[..., RawServer]) -> None:
    """Repeated response headers are all kept; a gzip body is decoded by httpx as usual."""
    body = gzip.compress(b'{"zipped": 1}')
    server = serve(ok(body, extra="Content-Encoding: gzip\r\nX-Tag: a\r\nX-Tag: b\r\n"))
    with client(server) as http:
        answer = http.get("/")
    assert answer.json() == {"zipped": 1}
    assert answer.headers.get_list("x-tag") == ["a", "b"]
    assert answer.http_version == "HTTP/1.1" and answer.reason_phrase == "OK"


def test_read_timeout(serve: Callable[..., RawServer]) -> None:
    """A server that never answers: httpx.ReadTimeout after the read timeout."""

    def slow(head: bytes) -> bytes:
        time.sleep(1.0)
        return ok()(head)

    server = serve(slow)
    with client(server, timeout=0.2) as http, pytest.raises(httpx.ReadTimeout):
        http.get("/")


def test_refused_connection_is_a_connect_error() -> None:
    """Nobody listening: httpx.ConnectError caused by ConnectionRefusedError."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with httpx.Client(transport=KeepAliveTransport()) as http:
        with pytest.raises(httpx.ConnectError) as caught:
            http.get(f"http://127.0.0.1:{port}/")
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)


def test_server_hanging_up_unanswered_is_a_protocol_error(serve: Callable[..., RawServer]) -> None:
    """The server closes without answering: RemoteProtocolError, and HttpClient says the request
    may have been sent (a POST is not repeated)."""
    server = serve(lambda head: None)
    with client(server) as http, pytest.raises(httpx.RemoteProtocolError):
        http.get("/")
    with HttpClient(base_url=server.url, retry=RetryPolicy(attempts=3, base=0.0)) as api:
        with pytest.raises(RemoteError, match="connection lost"):
            api.send(RequestSpec("POST", "/contacts", json={"a": 1}))
    assert server.connections == 2  # the POST was sent once, not retried


def test_garbage_answer_is_a_protocol_error(serve: Callable[..., RawServer]) -> None:
    """A reply that is not HTTP: RemoteProtocolError, never a hang or a raw http.client error."""
    server = serve(lambda head: b"SSH-2.0-OpenSSH\r\n\r\n")
    with client(server) as http, pytest.raises(httpx.RemoteProtocolError):
        http.get("/")


def test_threads_share_the_pool(serve: Callable[..., RawServer]) -> None:
    """Eight threads sending 200 requests use at most eight connections, all answered."""
    server = serve(ok())
    results: list[int] = []
    with client(server) as http:

        def work() -> None:
            for _ in range(25):
                results.append(http.get("/").status_code)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert results == [200] * 200
    assert 1 <= server.connections <= 8


def test_proxy_in_the_environment_is_honoured(
    serve: Callable[..., RawServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With HTTP_PROXY set, HttpClient sends through the proxy (httpx's own transport)."""
    proxy = serve(ok(b'{"via": "proxy"}'))
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with HttpClient(
        base_url="http://127.0.0.2:9"
    ) as api:  # nothing listens there: the proxy answers
        reply = api.send(RequestSpec("GET", "/contacts/"))
    assert reply.data == {"via": "proxy"}
    assert proxy.heads[0].startswith(b"GET http://127.0.0.2:9/contacts/ HTTP/1.1")


def _self_signed(folder: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a fresh certificate for 127.0.0.1, and a client context trusting it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


def test_https_verifies_the_certificate(serve: Callable[..., RawServer], tmp_path: Path) -> None:
    """HTTPS: a trusted certificate serves over one kept-alive TLS connection; the default
    context (public CAs) refuses the same self-signed server with a ConnectError."""
    server_context, client_context = _self_signed(tmp_path)
    server = serve(ok(), tls=server_context)
    transport = KeepAliveTransport(ssl_context=client_context)
    with httpx.Client(base_url=server.url, transport=transport) as http:
        assert [http.get("/").json() for _ in range(3)] == [{"ok": True}] * 3
    assert server.connections == 1
    with httpx.Client(base_url=server.url, transport=KeepAliveTransport()) as http:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            http.get("/")


def test_header_breaking_the_message_is_refused(serve: Callable[..., RawServer]) -> None:
    """A header value with a line break is never sent: HttpClient reports it, the server sees
    nothing."""
    server = serve(ok())
    with HttpClient(base_url=server.url) as api:
        spec = RequestSpec("GET", "/", headers={"X-Note": "a\r\nX-Injected: 1"})
        with pytest.raises(RemoteError, match=r"cannot send \(illegal header 'X-Note'\)"):
            api.send(spec)
    assert server.heads == []
