"""What a client without a signature can hold of the receiver and of ``serve``: slow headers
and bodies are cut at their deadlines (408), oversized or too many headers are refused (431),
unfinished bodies share one byte budget (the largest holders get 503), and signed webhooks keep
being answered during such an attack, with the receiver process's memory bounded throughout
and back near its baseline afterwards. Everything on 127.0.0.1, against real servers."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from connector.sandbox.keys import WebhookKeys
from connector.sandbox.server import SandboxServer
from connector.service.listener import Limits
from connector.service.receiver import ReceiverServer, Settings, open_store
from connector.service.signatures import parse_keys
from tests.test_receiver import receiver_process
from tests.test_service import serve_for

FAST = Limits(header_timeout=0.5, body_timeout=0.5, idle_timeout=1, max_header_bytes=8192,
              max_headers=50, max_buffered=512 * 1024)
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def keys() -> WebhookKeys:
    return WebhookKeys()


def signed_body() -> bytes:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps({"type": "ContactCreate", "locationId": "L1", "id": "c1",
                       "webhookId": str(uuid.uuid4()), "timestamp": now}).encode()


@pytest.fixture
def receiver(tmp_path: Path, keys: WebhookKeys) -> Iterator[ReceiverServer]:
    trusted = parse_keys((k, pem.encode()) for k, pem in keys.public_pem().items())
    settings = Settings(trusted, max_body=256 * 1024)
    with open_store(tmp_path / "state.db") as store, \
            ReceiverServer(store, settings, limits=FAST) as server:
        yield server


def address(url: str) -> tuple[str, int]:
    host_port = url.split("/")[2]
    host, port = host_port.rsplit(":", 1)
    return host, int(port)


def connect(url: str) -> socket.socket:
    sock = socket.create_connection(address(url), timeout=5)
    return sock


def head(path: str = "/webhooks/ghl", length: int | None = None, extra: bytes = b"") -> bytes:
    size = b"" if length is None else b"content-length: %d\r\n" % length
    return (b"POST %s HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n%s%s\r\n"
            % (path.encode(), size, extra))


def answer(sock: socket.socket, timeout: float = 5) -> tuple[int | None, float]:
    """The status the server sent before closing (None: closed without one), and when."""
    sock.settimeout(timeout)
    started, data = time.monotonic(), b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    waited = time.monotonic() - started
    sock.close()
    return (int(data.split()[1]) if data.startswith(b"HTTP/1.1 ") else None), waited


def post_signed(url: str, keys: WebhookKeys) -> httpx.Response:
    body = signed_body()
    return httpx.post(url, content=body, headers=keys.sign(body), timeout=10, trust_env=False)


def test_receiver_limits_close_slow_headers(receiver: ReceiverServer) -> None:
    """Headers trickling in (or never sent) are cut at the header deadline with 408."""
    silent = connect(receiver.url)
    slow = connect(receiver.url)
    slow.sendall(b"POST /webhooks/ghl HTTP/1.1\r\n")
    for _ in range(3):
        time.sleep(0.2)
        slow.sendall(b"x-pad: 1\r\n")
    for sock in (silent, slow):
        status, waited = answer(sock)
        assert status == 408
        assert waited < 2


def test_receiver_limits_close_slow_bodies(receiver: ReceiverServer) -> None:
    """A body that does not arrive in time gets 408 and the connection is closed."""
    sock = connect(receiver.url)
    sock.sendall(head(length=1000) + b'{"a": ')
    status, waited = answer(sock)
    assert status == 408
    assert waited < 2


def test_receiver_limits_close_idle_keep_alive(receiver: ReceiverServer) -> None:
    """A keep-alive connection with no next request is closed after the idle timeout."""
    sock = connect(receiver.url)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
    sock.settimeout(5)
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    started = time.monotonic()
    assert sock.recv(65536) == b""
    assert time.monotonic() - started < 3
    sock.close()


@pytest.mark.parametrize("extra", [
    b"x-big: " + b"a" * 20_000 + b"\r\n",
    b"".join(b"x-h%d: 1\r\n" % i for i in range(60)),
    b"x-pad: " + b"a" * 1000 + b"\r\n" + b"".join(b"x-h%d: %s\r\n" % (i, b"b" * 200)
                                                   for i in range(40)),
], ids=["one-long-header", "too-many-headers", "too-many-bytes"])
def test_receiver_limits_refuse_big_headers(receiver: ReceiverServer, keys: WebhookKeys,
                                            extra: bytes) -> None:
    """Oversized or too many headers: 431 and the connection closed; the receiver still serves."""
    sock = connect(receiver.url)
    sock.sendall(head(length=2, extra=extra) + b"{}")
    assert answer(sock)[0] == 431
    assert post_signed(receiver.url, keys).status_code == 200


def test_receiver_limits_header_flood_is_cut_early(receiver: ReceiverServer) -> None:
    """Header lines sent without end are refused once past the limit, not buffered forever."""
    sock = connect(receiver.url)
    sock.sendall(b"POST /webhooks/ghl HTTP/1.1\r\n")
    sent = 0
    try:
        while sent < 4 * MIB:
            sock.sendall(b"x-flood: " + b"f" * 1000 + b"\r\n")
            sent += 1011
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert sent < 4 * MIB
    assert answer(sock)[0] in (431, None)


def test_receiver_limits_shed_unfinished_bodies_keep_signed_ones(
    receiver: ReceiverServer, keys: WebhookKeys
) -> None:
    """Past the body budget the largest unfinished bodies get 503; a signed webhook sent
    meanwhile is stored."""
    attackers = [connect(receiver.url) for _ in range(16)]
    for sock in attackers:
        sock.sendall(head(length=200_000) + b"{" + b" " * 100_000)
    assert post_signed(receiver.url, keys).status_code == 200
    statuses = [answer(sock, timeout=3)[0] for sock in attackers]
    assert statuses.count(503) >= 10
    assert set(statuses) <= {503, 408}


# -- the receiver as a real process: memory under attack --------------------------------------


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_receiver_process_memory_stays_bounded_under_body_attack(
    tmp_path: Path, keys: WebhookKeys
) -> None:
    """300 connections each sending most of a 1 MB body and never finishing: the process stays
    within baseline + 100 MiB, signed webhooks sent at the same time are answered 200, and
    once the attackers are gone memory is back near the baseline."""
    for kind, pem in keys.public_pem().items():
        (tmp_path / f"{kind}.pem").write_text(pem)
    with receiver_process(tmp_path / "state.db", tmp_path) as (proc, url):
        pid = proc.pid
        for _ in range(20):  # warm up: the first requests load what they need
            assert post_signed(url, keys).status_code == 200
        baseline = rss(pid)
        chunk = b" " * (64 * 1024)
        with ExitStack() as stack:
            attackers = []
            peak = baseline
            for i in range(300):
                sock = stack.enter_context(connect(url))
                attackers.append(sock)
                try:
                    sock.sendall(head(length=1_000_000) + b"{")
                    for _ in range(14):
                        sock.sendall(chunk)
                except OSError:
                    pass  # shed by the server
                if i % 50 == 0:
                    assert post_signed(url, keys).status_code == 200
                    peak = max(peak, rss(pid))
            peak = max(peak, rss(pid))
            assert post_signed(url, keys).status_code == 200
        time.sleep(1)
        after = rss(pid)
        assert post_signed(url, keys).status_code == 200
    print(f"rss baseline {baseline / MIB:.0f} MiB, peak {peak / MIB:.0f}, after {after / MIB:.0f}")
    assert peak < baseline + 100 * MIB
    assert after < baseline + 15 * MIB


def test_serve_refuses_big_headers(ghl: SandboxServer, tmp_path: Path) -> None:
    """``serve`` runs behind the same guard: an oversized header is answered 431."""
    with serve_for(ghl, tmp_path) as proc:
        sock = connect(proc.url)
        sock.sendall(head(length=2, extra=b"x-big: " + b"a" * 40_000 + b"\r\n") + b"{}")
        assert answer(sock)[0] == 431
        assert proc.health().status_code == 200
