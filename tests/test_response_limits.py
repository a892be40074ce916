"""Answers too big or too slow end in one clean error (issue 12, point 3).

A tiny hostile server on 127.0.0.1 (threads and sockets) serves an endless chunked body, an
endless close-delimited body, a gzip bomb, and a one-byte-a-second drip (in the body and in the
head). Every outgoing path is tried: HttpClient straight to the server and through a proxy (the
hostile server plays the proxy), the generic ``http.request`` action, and the ``call`` command as
a real process. Each must fail with ResponseLimitError by its deadline,
with memory bounded by the cap, not by what the server sends.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import ROOT
from rawserver import RawServer

from connector.catalog import build_catalog
from connector.client import urlguard
from connector.client.httpclient import HttpClient
from connector.client.limits import MAX_BODY, ResponseLimits
from connector.client.request import RequestSpec
from connector.client.retry import RetryPolicy
from connector.errors import ConnectorError, ResponseLimitError
from connector.runtime import Runtime, Settings

MiB = 1024 * 1024
BLOCK = b"x" * 65536
BOMB = gzip.compress(b"\0" * (64 * MiB), compresslevel=9)  # about 64 KiB on the wire


def _head(conn: socket.socket) -> bool:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return False
        data += chunk
    return True


def endless_chunked(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")  # fmt: skip
    frame = b"%x\r\n%s\r\n" % (len(BLOCK), BLOCK)
    while True:
        conn.sendall(frame)


def endless_close_delimited(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
    while True:
        conn.sendall(BLOCK)


def gzip_bomb(conn: socket.socket) -> None:
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(BOMB), BOMB)
    )


def drip_body(conn: socket.socket) -> None:
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    while True:
        conn.sendall(b" ")
        time.sleep(1.0)


def drip_head(conn: socket.socket) -> None:
    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 1000:
        conn.sendall(bytes([byte]))
        time.sleep(1.0)


class HostileServer(RawServer):
    """Answers every request with ``behave(conn)`` until the client goes away."""

    def __init__(self, behave: Callable[[socket.socket], None]) -> None:
        self.behave = behave
        super().__init__(lambda head: None)

    def _answer(self, conn: socket.socket) -> None:
        if _head(conn):
            self.behave(conn)

    def close(self) -> None:
        for conn in self._open:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        super().close()


@pytest.fixture
def hostile() -> Iterator[Callable[[Callable[[socket.socket], None]], HostileServer]]:
    servers: list[HostileServer] = []

    def start(behave: Callable[[socket.socket], None]) -> HostileServer:
        servers.append(HostileServer(behave))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture(params=["direct", "proxy"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways HttpClient sends: straight to the server, or through the environment's proxy."""
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY",
                 "all_proxy", "NO_PROXY", "no_proxy"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    return str(request.param)


def send(server: HostileServer, path: str, limits: ResponseLimits, timeout: float = 1.5) -> None:
    """One GET through HttpClient; with the proxy path the hostile server is the proxy."""
    base_url = server.url
    if path == "proxy":
        os.environ["HTTP_PROXY"] = server.url
        base_url = "http://127.0.0.2:9"  # nothing listens there: the "proxy" answers
    retry = RetryPolicy(attempts=3, base=0.01, cap=0.01)
    try:
        with HttpClient(base_url=base_url, timeout=timeout, limits=limits, retry=retry) as api:
            api.send(RequestSpec("GET", "/contacts/c1"))
    finally:
        os.environ.pop("HTTP_PROXY", None)


@pytest.mark.parametrize("behave", [endless_chunked, endless_close_delimited, gzip_bomb])
def test_limits_big_bodies_fail_with_bounded_memory(hostile, path, behave):
    """300 MiB and counting, or a 64 MiB gzip bomb: the cap stops it; memory stays near it."""
    server = hostile(behave)
    limits = ResponseLimits(max_body=1 * MiB, deadline=20.0)
    tracemalloc.start()
    try:
        with pytest.raises(ResponseLimitError) as info:
            send(server, path, limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(info.value) == (
        f"GET /contacts/c1 -> 200: response body larger than {MiB} bytes (decoded) "
        "[CONNECTOR_HTTP_MAX_BODY sets the cap]"
    )
    assert peak < 6 * MiB, peak


@pytest.mark.parametrize("behave", [drip_body, drip_head])
def test_limits_a_drip_ends_at_the_deadline(hostile, path, behave):
    """One byte a second never trips the 1.5 s read timeout; the 2.5 s deadline ends it."""
    server = hostile(behave)
    started = time.monotonic()
    with pytest.raises(ResponseLimitError) as info:
        send(server, path, ResponseLimits(deadline=2.5))
    elapsed = time.monotonic() - started
    assert 2.4 <= elapsed < 3.5, elapsed  # one attempt: never retried
    assert str(info.value) == (
        "GET /contacts/c1 -> no complete answer within 2.5s, the total deadline "
        "[the server stalls or is too slow; CONNECTOR_HTTP_DEADLINE sets the deadline]"
    )


class ThenDrip(HostileServer):
    """Answers the first request of a connection in full, then drips the next one's head."""

    def __init__(self) -> None:
        super().__init__(drip_head)

    def _answer(self, conn: socket.socket) -> None:
        if _head(conn):
            body = b'{"contact": {"id": "c1"}}'
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))  # fmt: skip
        if _head(conn):
            drip_head(conn)


def test_limits_deadline_holds_on_a_kept_alive_connection(path):
    """The second call reuses the first one's connection, and is still cut off at its deadline
    (the connection is not given up for it: one connection in all)."""
    server = ThenDrip()
    base_url = server.url
    if path == "proxy":
        os.environ["HTTP_PROXY"] = server.url
        base_url = "http://127.0.0.2:9"
    limits, retry = ResponseLimits(deadline=2.0), RetryPolicy(attempts=1)
    try:
        with HttpClient(base_url=base_url, timeout=1.5, limits=limits, retry=retry) as api:
            assert api.send(RequestSpec("GET", "/contacts/c1")).data == {"contact": {"id": "c1"}}
            started = time.monotonic()
            with pytest.raises(ResponseLimitError, match="no complete answer within 2s"):
                api.send(RequestSpec("GET", "/contacts/c1"))
            assert 1.9 <= time.monotonic() - started < 3.0
    finally:
        os.environ.pop("HTTP_PROXY", None)
        server.close()
    assert server.connections == 1


def test_limits_default_deadline_is_four_timeouts_and_env_configures_both(monkeypatch):
    """Defaults: 10 MiB and 4x the timeout; the environment overrides; bad values are named."""
    monkeypatch.delenv("CONNECTOR_HTTP_MAX_BODY", raising=False)
    monkeypatch.delenv("CONNECTOR_HTTP_DEADLINE", raising=False)
    limits = ResponseLimits.from_env()
    assert (limits.max_body, limits.seconds(3.0)) == (MAX_BODY, 12.0) == (10 * MiB, 12.0)
    monkeypatch.setenv("CONNECTOR_HTTP_MAX_BODY", "2048")
    monkeypatch.setenv("CONNECTOR_HTTP_DEADLINE", "7.5")
    assert ResponseLimits.from_env() == ResponseLimits(max_body=2048, deadline=7.5)
    monkeypatch.setenv("CONNECTOR_HTTP_DEADLINE", "soon")
    with pytest.raises(ConnectorError, match=r"^CONNECTOR_HTTP_DEADLINE: 'soon' is not a number"):
        ResponseLimits.from_env()


def test_limits_small_gzip_answers_still_decode(hostile, path):
    """A normal gzip answer under the cap is decoded as before."""
    body = json.dumps({"contact": {"id": "c1"}}).encode()
    packed = gzip.compress(body)

    def small(conn: socket.socket) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(packed), packed)
        )

    server = hostile(small)
    base_url = server.url
    if path == "proxy":
        os.environ["HTTP_PROXY"] = server.url
        base_url = "http://127.0.0.2:9"
    try:
        with HttpClient(base_url=base_url, limits=ResponseLimits(max_body=len(body))) as api:
            reply = api.send(RequestSpec("GET", "/contacts/c1"))
    finally:
        os.environ.pop("HTTP_PROXY", None)
    assert reply.data == {"contact": {"id": "c1"}}


@pytest.mark.parametrize(
    ("behave", "message"),
    [
        (gzip_bomb, "-> 200: response body larger than 1048576 bytes (decoded)"),
        (endless_close_delimited, "-> 200: response body larger than 1048576 bytes (decoded)"),
        (drip_body, "-> no complete answer within 2.5s, the total deadline"),
    ],
)
def test_limits_http_request_action_uses_the_same_limits(hostile, monkeypatch, behave, message):
    """The generic http.request action is held to the same cap and deadline."""
    monkeypatch.setenv("CONNECTOR_HTTP_MAX_BODY", str(MiB))
    monkeypatch.setenv("CONNECTOR_HTTP_DEADLINE", "2.5")
    server = hostile(behave)
    started = time.monotonic()
    with (
        urlguard.allowing("127.0.0.1"),
        Runtime(build_catalog(), Settings(timeout=1.5)) as runtime,
        pytest.raises(ResponseLimitError) as info,
    ):
        runtime.call("http.request", {"url": server.url + "/big"})
    assert time.monotonic() - started < 3.5
    assert str(info.value).startswith(f"GET {server.url}/big {message}")


# Runs `python -m connector` and writes the process's own peak RSS (VmHWM, KiB) at exit. Not
# wait4's ru_maxrss: that keeps the high-water mark of the pytest process the child forked from.
_LAUNCH = """
import atexit, os, runpy, sys
def report():
    with open("/proc/self/status") as status:
        peak = next(line for line in status if line.startswith("VmHWM"))
    with open(os.environ["PEAK_FILE"], "w") as out:
        out.write(peak.split()[1])
atexit.register(report)
sys.argv = ["ghl-connector", *sys.argv[1:]]
runpy.run_module("connector", run_name="__main__", alter_sys=True)
"""


def _run_call(args: list[str], env: dict[str, str]) -> tuple[int, str, float, int]:
    """``python -m connector call ARGS`` as a process: status, stderr, seconds, peak RSS (KiB)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    full_env.update(env, CONNECTOR_HOME=tempfile.mkdtemp(prefix="connector-home-"))
    with tempfile.TemporaryDirectory() as folder, tempfile.TemporaryFile() as err:
        peak = Path(folder) / "peak"
        full_env["PEAK_FILE"] = str(peak)
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-c", _LAUNCH, "call", *args],
            cwd=ROOT, env=full_env, stdout=subprocess.DEVNULL, stderr=err,
            stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
        elapsed = time.monotonic() - started
        err.seek(0)
        return proc.returncode, err.read().decode(), elapsed, int(peak.read_text())


@pytest.mark.parametrize(
    ("behave", "extra", "message"),
    [
        (endless_chunked, [], "-> 200: response body larger than 10485760 bytes (decoded)"),
        (endless_close_delimited, [], "-> 200: response body larger than 10485760 bytes"),
        (gzip_bomb, [], "-> 200: response body larger than 10485760 bytes (decoded)"),
        (drip_body, ["--timeout", "1"], "-> no complete answer within 4s, the total deadline"),
    ],
)
def test_limits_call_command_prints_one_line(hostile, behave, extra, message):
    """`call` against the hostile server: exit 1, one line, no traceback, memory bounded."""
    server = hostile(behave)
    status, stderr, elapsed, rss_kib = _run_call(
        ["ghl.contacts.get", "--input", '{"contactId": "c1"}', "--base-url", server.url,
         "--token-env", "PIT", *extra],
        {"PIT": "pit-canary-token"},
    )  # fmt: skip
    assert status == 1, stderr
    assert stderr.startswith(f"error: GET /contacts/c1 {message}"), stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr
    assert elapsed < 4 + 6  # the deadline, plus the interpreter's start
    assert rss_kib < 200 * 1024, rss_kib  # was 1.29 GB


def test_limits_are_documented():
    """docs/http-action.md and docs/running.md name the defaults and the variables."""
    text = (Path(ROOT) / "docs" / "running.md").read_text()
    assert "CONNECTOR_HTTP_MAX_BODY" in text and "CONNECTOR_HTTP_DEADLINE" in text
