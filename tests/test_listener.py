"""Binding and running servers (connector/service/listener.py): IPv4, IPv6 and names, in a thread."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from connector.errors import ConnectorError
from connector.service.listener import ServerThread, bind_socket, guarded_server, socket_url


async def hello(scope, receive, send) -> None:
    """A tiny ASGI app: 200 ``hello <path>``."""
    body = f"hello {scope['path']}".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


def served(host: str) -> Iterator[str]:
    sock = bind_socket(host, 0)
    thread = ServerThread(guarded_server(hello, log_config=None), sock, name=f"test-{host}")
    thread.start()
    try:
        yield socket_url(sock)
    finally:
        thread.stop()
    assert not thread.alive and sock.fileno() == -1


def ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.parametrize(
    ("host", "prefix"),
    [
        ("127.0.0.1", "http://127.0.0.1:"),
        ("localhost", "http://"),
        pytest.param("::1", "http://[::1]:", marks=pytest.mark.skipif(not ipv6(), reason="no IPv6")),
        pytest.param("[::1]", "http://[::1]:", marks=pytest.mark.skipif(not ipv6(), reason="no IPv6")),
    ],
)
def test_listener_binds_ipv4_ipv6_and_names_and_serves_in_a_thread(host: str, prefix: str) -> None:
    """An IPv4 literal, an IPv6 literal (bare or in brackets) and ``localhost`` all listen;
    the URL puts an IPv6 address in brackets; the app answers from its own thread and loop."""
    for url in served(host):
        assert url.startswith(prefix)
        reply = httpx.get(f"{url}/x", timeout=5, trust_env=False)
        assert (reply.status_code, reply.text) == (200, "hello /x")


def test_listener_refuses_a_port_in_use_and_an_unknown_name() -> None:
    """A port in use and a name that does not resolve are one-line errors naming the address."""
    with bind_socket("127.0.0.1", 0) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(ConnectorError, match=rf"127\.0\.0\.1:{port}: cannot listen"):
            bind_socket("127.0.0.1", port)
    with pytest.raises(ConnectorError, match=r"no-such-host\.invalid:0: cannot listen"):
        bind_socket("no-such-host.invalid", 0)


def test_listener_server_thread_reports_a_server_that_cannot_start() -> None:
    """A server that fails before it listens: start() raises, and the socket is closed."""
    sock = bind_socket("127.0.0.1", 0)
    sock.close()  # uvicorn cannot serve on a closed socket
    thread = ServerThread(guarded_server(hello, log_config=None), sock, name="test-broken")
    with pytest.raises(ConnectorError, match="test-broken: the HTTP server did not start"):
        thread.start(timeout=5)
    assert not thread.alive


async def slow_stream(scope, receive, send) -> None:
    """A streamed answer whose first chunk comes 1.5 s after its head."""
    import asyncio

    await send({"type": "http.response.start", "status": 200, "headers": []})
    await asyncio.sleep(1.5)
    await send({"type": "http.response.body", "body": b"late", "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def test_listener_sends_a_streamed_head_at_once_and_small_answers_whole() -> None:
    """The guarded protocol holds a response head only until the end of the loop's turn: a
    streamed answer's head arrives long before its first chunk; small answers (head and body
    written together) keep working on one keep-alive connection."""
    sock = bind_socket("127.0.0.1", 0)
    thread = ServerThread(guarded_server(slow_stream, log_config=None), sock, name="test-slow")
    thread.start()
    try:
        with socket.create_connection(sock.getsockname()[:2], timeout=1.0) as client:
            client.sendall(b"GET /s HTTP/1.1\r\nhost: x\r\n\r\n")
            head = client.recv(65536)
            assert head.startswith(b"HTTP/1.1 200 ") and head.endswith(b"\r\n\r\n")
            assert b"transfer-encoding: chunked" in head and b"late" not in head
            client.settimeout(5)
            rest = b""
            while not rest.endswith(b"0\r\n\r\n"):
                rest += client.recv(65536)
            assert rest == b"4\r\nlate\r\n0\r\n\r\n"
    finally:
        thread.stop()
    for url in served("127.0.0.1"):
        with httpx.Client(base_url=url, timeout=5, trust_env=False) as http:
            assert [http.get(f"/{i}").text for i in range(3)] == [f"hello /{i}" for i in range(3)]
