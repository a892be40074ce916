"""The thread-per-connection server of ``ghl-connector api``: a fast route answered in the
connection's thread, the ASGI app for the rest (whole, streamed, failing), HTTP/1.1's
keep-alive, pipelining, ``Expect: 100-continue`` and HEAD, and the limits a client is held to
(408, 413, 431, 503), with raw sockets against a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from connector.service.listener import Limits, bind_socket, socket_url
from connector.service.threadserver import Answer, Request, ThreadServer

FAST = Limits(header_timeout=0.5, body_timeout=0.5, idle_timeout=1, max_header_bytes=4096,
              max_headers=20, max_buffered=256 * 1024)
MAX_BODY = 64 * 1024


class App:
    """A Starlette app with whole, streamed, endless and failing answers; it notes when an
    endless stream ends."""

    def __init__(self) -> None:
        self.endless_over = threading.Event()
        self.seen_threads: set[str] = set()

        async def echo(request: StarletteRequest) -> Response:
            self.seen_threads.add(threading.current_thread().name)
            body = await request.body()
            return JSONResponse({"path": request.url.path, "size": len(body),
                                 "client": request.client.host if request.client else None})

        async def streamed(request: StarletteRequest) -> Response:
            async def parts() -> Any:  # noqa: ANN401
                for i in range(3):
                    yield f"part{i};".encode()

            return StreamingResponse(parts(), media_type="text/plain")

        async def endless(request: StarletteRequest) -> Response:
            async def beats() -> Any:  # noqa: ANN401
                try:
                    while True:
                        yield b": beat\n\n"
                        await asyncio.sleep(0.05)
                finally:
                    self.endless_over.set()

            return StreamingResponse(beats(), media_type="text/event-stream")

        async def broken_stream(request: StarletteRequest) -> Response:
            async def parts() -> Any:  # noqa: ANN401
                raise RuntimeError("the stream broke before its first part")
                yield b""  # pragma: no cover

            return StreamingResponse(parts(), media_type="text/plain")

        async def headers(request: StarletteRequest) -> Response:
            return JSONResponse(dict(request.headers))

        async def empty(request: StarletteRequest) -> Response:
            return Response(status_code=204)

        async def fails(request: StarletteRequest) -> Response:
            raise RuntimeError("the app broke")

        self.app = Starlette(routes=[
            Route("/echo", echo, methods=["GET", "POST", "HEAD"]),
            Route("/streamed", streamed),
            Route("/endless", endless),
            Route("/empty", empty),
            Route("/broken-stream", broken_stream),
            Route("/headers", headers, methods=["GET", "POST"]),
            Route("/fails", fails),
        ])  # fmt: skip


def fast(request: Request) -> Answer | None:
    """Answers ``POST /fast`` itself, naming the thread that answered; breaks on /fast/boom."""
    if request.path == "/fast/boom":
        raise RuntimeError("the fast route broke")
    if request.method != "POST" or request.path != "/fast":
        return None
    body = b'{"thread":"%s","size":%d}' % (threading.current_thread().name.encode(),
                                            len(request.body))  # fmt: skip
    return Answer(200, [(b"content-type", b"application/json")], body)


class Running:
    def __init__(self, server: ThreadServer, app: App, url: str) -> None:
        self.server, self.app, self.url = server, app, url
        self.host, self.port = server.sock.getsockname()[:2]

    def connect(self) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=5)


def start(max_connections: int = 64) -> tuple[Running, threading.Thread]:
    app = App()
    sock = bind_socket("127.0.0.1", 0)
    url = socket_url(sock)
    server = ThreadServer(app.app, sock, fast=fast, limits=FAST, max_body=MAX_BODY,
                          max_connections=max_connections, name="test")  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    return Running(server, app, url), thread


@pytest.fixture
def running() -> Iterator[Running]:
    served, thread = start()
    yield served
    served.server.stop()
    thread.join(15)
    assert not thread.is_alive()


def read_all(sock: socket.socket, timeout: float = 5) -> bytes:
    """Everything the server sends until it closes (or ``timeout``); the socket is closed."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    finally:
        sock.close()
    return data


def status_of(data: bytes) -> int | None:
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else None


def test_fast_route_runs_in_the_connection_thread_the_rest_in_the_app(running: Running) -> None:
    with httpx.Client(base_url=running.url, timeout=5) as client:
        first = client.post("/fast", content=b"abc")
        assert first.status_code == 200 and first.json()["size"] == 3
        assert first.json()["thread"] == "test-conn"
        echoed = client.post("/echo", content=b"x" * 1000)
        assert echoed.json() == {"path": "/echo", "size": 1000, "client": "127.0.0.1"}
        assert client.get("/fast").status_code == 404  # not taken by the fast route: the app's
        assert client.get("/nowhere").status_code == 404
        again = client.post("/fast")
        assert again.json()["size"] == 0
    assert running.app.seen_threads == {"test-asgi"}


def test_keep_alive_pipelining_head_and_empty_answers(running: Running) -> None:
    sock = running.connect()
    sock.sendall(b"POST /fast HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\nhi"
                 b"GET /echo HTTP/1.1\r\nhost: x\r\n\r\n"
                 b"HEAD /echo HTTP/1.1\r\nhost: x\r\n\r\n"
                 b"GET /empty HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
    data = read_all(sock)
    answers = data.split(b"HTTP/1.1 ")[1:]
    assert [a[:3] for a in answers] == [b"200", b"200", b"200", b"204"]
    assert b'"size":2' in answers[0] and b'"path":"/echo"' in answers[1]
    head = answers[2]
    assert b"content-length: " in head.lower() and head.endswith(b"\r\n\r\n")  # no body
    assert b"connection: close" in answers[3] and b"content-length" not in answers[3]


def test_streamed_answers_are_chunked_and_complete(running: Running) -> None:
    with httpx.Client(base_url=running.url, timeout=5) as client:
        answer = client.get("/streamed")
        assert answer.text == "part0;part1;part2;"
        assert answer.headers["transfer-encoding"] == "chunked"
        assert client.post("/fast").status_code == 200  # the connection goes on
    sock = running.connect()  # HTTP/1.0: the end of the answer is the close
    sock.sendall(b"GET /streamed HTTP/1.0\r\n\r\n")
    data = read_all(sock)
    assert data.endswith(b"part0;part1;part2;") and b"chunked" not in data


def test_an_endless_stream_ends_when_its_client_leaves(running: Running) -> None:
    sock = running.connect()
    sock.sendall(b"GET /endless HTTP/1.1\r\nhost: x\r\n\r\n")
    sock.settimeout(5)
    assert b"beat" in sock.recv(65536)
    sock.close()
    assert running.app.endless_over.wait(5)


def test_failures_answer_500_and_the_server_goes_on(running: Running) -> None:
    with httpx.Client(base_url=running.url, timeout=5) as client:
        assert client.get("/fails").status_code == 500
        assert client.post("/fast/boom").status_code == 500
        assert client.post("/fast").status_code == 200


def test_expect_100_continue_is_answered_before_the_body(running: Running) -> None:
    sock = running.connect()
    sock.sendall(b"POST /fast HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n"
                 b"expect: 100-continue\r\n\r\n")
    sock.settimeout(5)
    assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
    sock.sendall(b"hello")
    assert b'"size":5' in sock.recv(65536)
    sock.close()


def test_slow_headers_and_bodies_are_cut_and_idle_connections_closed(running: Running) -> None:
    silent = running.connect()  # a new connection that sends nothing
    started = time.monotonic()
    assert status_of(read_all(silent)) == 408 and time.monotonic() - started < 3
    slow_head = running.connect()
    slow_head.sendall(b"POST /fast HTTP/1.1\r\nhost: x\r\n")
    assert b"request headers not received in time" in read_all(slow_head)
    slow_body = running.connect()
    slow_body.sendall(b"POST /fast HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nabc")
    assert b"request body not received in time" in read_all(slow_body)
    idle = running.connect()
    idle.sendall(b"POST /fast HTTP/1.1\r\nhost: x\r\n\r\n")
    data = read_all(idle)  # answered, then closed quietly after the idle time
    assert data.count(b"HTTP/1.1 ") == 1 and status_of(data) == 200


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"GET /echo HTTP/1.1\r\nhost: x\r\nbig: " + b"y" * 5000 + b"\r\n\r\n", 431),
    (b"GET /echo HTTP/1.1\r\n" + b"".join(b"h%d: v\r\n" % i for i in range(30)) + b"\r\n", 431),
    (b"POST /fast HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n" % (MAX_BODY + 1), 413),
    (b"POST /fast HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
     + b"%x\r\n" % (MAX_BODY + 10) + b"z" * (MAX_BODY + 10) + b"\r\n0\r\n\r\n", 413),
    (b"NOT HTTP AT ALL\r\n\r\n", 400),
    (b"GET /echo HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n", 400),
])  # fmt: skip
def test_oversized_and_malformed_requests_are_refused(running: Running, request_bytes: bytes,
                                                      status: int) -> None:
    sock = running.connect()
    try:
        sock.sendall(request_bytes)
    except OSError:
        pass  # refused before the whole request was sent
    data = read_all(sock)
    assert status_of(data) == status and b"connection: close" in data


def test_unfinished_bodies_share_one_budget(running: Running) -> None:
    holders = []
    for _ in range(5):  # 5 x 60 KiB of unfinished bodies against a 256 KiB budget
        sock = running.connect()
        sock.sendall(b"POST /fast HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n"
                     % (MAX_BODY - 10) + b"q" * 60 * 1024)
        holders.append(sock)
    statuses = [status_of(read_all(sock, timeout=2)) for sock in holders]
    assert 503 in statuses, statuses  # the one past the budget; the others time out (408)
    with httpx.Client(base_url=running.url, timeout=5) as client:
        assert client.post("/fast").status_code == 200  # the budget is given back


def test_connections_past_the_limit_are_answered_503() -> None:
    served, thread = start(max_connections=2)
    try:
        held = [served.connect(), served.connect()]
        for sock in held:
            sock.sendall(b"POST /fast HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n")
            sock.settimeout(5)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        extra = served.connect()
        assert status_of(read_all(extra)) == 503
        for sock in held:
            sock.close()
    finally:
        served.server.stop()
        thread.join(15)


def test_stop_closes_idle_connections_and_lets_busy_ones_finish() -> None:
    served, thread = start()
    idle = served.connect()
    idle.sendall(b"POST /fast HTTP/1.1\r\nhost: x\r\n\r\n")
    idle.settimeout(5)
    assert idle.recv(65536).startswith(b"HTTP/1.1 200")
    streaming = served.connect()
    streaming.sendall(b"GET /endless HTTP/1.1\r\nhost: x\r\n\r\n")
    streaming.settimeout(5)
    assert b"beat" in streaming.recv(65536)
    started = time.monotonic()
    served.server.stop()
    thread.join(15)
    assert not thread.is_alive() and time.monotonic() - started < 5
    assert read_all(idle, timeout=2) == b""
    read_all(streaming, timeout=2)
    with pytest.raises(OSError):
        served.connect()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(garbage=st.one_of(
    st.binary(max_size=600),
    st.builds(lambda m, p, h: m + b" " + p + b" HTTP/1.1\r\n" + h + b"\r\n\r\n",
              st.sampled_from([b"GET", b"POST", b"PUT", b"\xff", b""]),
              st.binary(max_size=40), st.binary(max_size=200)),
))  # fmt: skip
def test_fuzzed_requests_never_break_the_server(running: Running, garbage: bytes) -> None:
    sock = running.connect()
    try:
        sock.sendall(garbage)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    data = read_all(sock, timeout=3)
    for status in (int(x[:3]) for x in data.split(b"HTTP/1.1 ")[1:] if x[:3].isdigit()):
        assert status < 500 or status == 503, data[:300]
    with httpx.Client(base_url=running.url, timeout=5) as client:
        assert client.post("/fast").status_code == 200


def test_blank_lines_do_not_hold_a_connection_past_its_deadlines(running: Running) -> None:
    """Blank lines before a request start no request: a new connection still owes its
    headers within the header time, and an idle one is closed after the idle time."""
    for prelude in (b"", b"POST /fast HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n"):
        sock = running.connect()
        sock.sendall(prelude)
        started = time.monotonic()
        try:
            while time.monotonic() - started < 4:
                sock.sendall(b"\r\n")
                time.sleep(0.1)
        except OSError:
            pass  # closed by the server: what is wanted
        held = time.monotonic() - started
        data = read_all(sock, timeout=2)
        assert held < 2.5, (prelude, held)  # header time 0.5 s, idle time 1 s
        if not prelude:
            assert status_of(data) == 408


def test_large_stalled_uploads_are_shed_not_the_small_requests(running: Running) -> None:
    """Past the budget the connections holding the most are answered 503; a small request
    beside them is served."""
    big = []
    for _ in range(5):  # 5 x 63 KiB held against a 256 KiB budget
        sock = running.connect()
        sock.sendall(b"POST /fast HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n"
                     % MAX_BODY + b"q" * (63 * 1024))
        big.append(sock)
        time.sleep(0.05)
    with httpx.Client(base_url=running.url, timeout=5) as client:
        for _ in range(5):
            assert client.post("/fast", content=b"x" * 2000).status_code == 200
    statuses = [status_of(read_all(sock, timeout=2)) for sock in big]
    assert 503 in statuses, statuses


def test_a_stream_that_fails_before_its_first_part_is_a_500(running: Running) -> None:
    sock = running.connect()
    sock.sendall(b"GET /broken-stream HTTP/1.1\r\nhost: x\r\n\r\n")
    data = read_all(sock)
    assert status_of(data) == 500 and b"connection: close" in data


def test_http_1_0_closes_absolute_targets_and_fragments_route_trailers_are_dropped(
        running: Running) -> None:
    sock = running.connect()  # HTTP/1.0 asking for keep-alive still ends with the close
    sock.sendall(b"POST /fast HTTP/1.0\r\nconnection: keep-alive\r\ncontent-length: 0\r\n\r\n")
    started = time.monotonic()
    data = read_all(sock)
    assert status_of(data) == 200 and time.monotonic() - started < 1
    sock = running.connect()
    sock.sendall(b"POST http://example.com/fast?x=1#frag HTTP/1.1\r\nhost: x\r\n"
                 b"content-length: 0\r\nconnection: close\r\n\r\n")
    assert status_of(read_all(sock)) == 200
    sock = running.connect()
    sock.sendall(b"POST /headers HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n"
                 b"connection: close\r\n\r\n3\r\nabc\r\n0\r\nx-api-key: trailer\r\n\r\n")
    data = read_all(sock)
    assert status_of(data) == 200 and b"trailer" not in data


def test_100_continue_follows_the_answers_before_it(running: Running) -> None:
    sock = running.connect()
    sock.sendall(b"POST /fast HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\n\r\na"
                 b"POST /fast HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n"
                 b"expect: 100-continue\r\n\r\n")
    sock.settimeout(5)
    data = b""
    while b"100 Continue" not in data:
        data += sock.recv(65536)
    assert data.index(b"HTTP/1.1 200") < data.index(b"HTTP/1.1 100 Continue")
    sock.sendall(b"bc")
    assert b'"size":2' in sock.recv(65536)
    sock.close()
