"""Fixtures for the SuperPhone sandbox: ``superphone_sandbox`` (one per session) and ``sp``
(reset per test), ``sp_runtime`` (a strict runtime pointed at it with its API key) and
``sp_receiver`` (a real webhook receiver it delivers to)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from connector.auth.credentials import api_key_provider
from connector.catalog import Catalog, build_catalog
from connector.client.retry import RetryPolicy
from connector.hookspecs import RateLimit
from connector.runtime import Runtime, Settings
from connector.sandbox.superphone import SuperPhoneConfig, SuperPhoneSandboxServer

SUPERPHONE_SEED_CONTACTS = 5


@pytest.fixture(scope="session")
def superphone_sandbox() -> Iterator[SuperPhoneSandboxServer]:
    """The SuperPhone sandbox on 127.0.0.1 in a background thread for the whole session."""
    config = SuperPhoneConfig(seed_contacts=SUPERPHONE_SEED_CONTACTS, seed=11,
                              rate_limit_requests=50, webhook_backoff=0.01)
    with SuperPhoneSandboxServer(config) as server:
        yield server


@pytest.fixture
def sp(superphone_sandbox: SuperPhoneSandboxServer) -> Iterator[SuperPhoneSandboxServer]:
    """The sandbox back at its seed state: no faults, zero counters, default limits; after the
    test, back on the wall clock (a test may set its own, ``use_clock``)."""
    superphone_sandbox.reset()
    yield superphone_sandbox
    superphone_sandbox.use_clock(None)


@pytest.fixture(scope="session")
def superphone_catalog() -> Catalog:
    """The pack's catalog, built once (it only reads the committed manifest and schemas)."""
    return build_catalog()


@pytest.fixture
def sp_runtime(sp: SuperPhoneSandboxServer, superphone_catalog: Catalog) -> Iterator[Runtime]:
    """A strict runtime calling the sandbox with its key (short backoffs, the sandbox's limit)."""
    settings = Settings(strict=True, base_urls={"superphone": sp.base_url},
                        retry=RetryPolicy(attempts=3, base=0.01, cap=0.05),
                        rate_limits={"superphone": RateLimit(50, 1.0)})
    runtime = Runtime(superphone_catalog, settings,
                      auth=api_key_provider(keys={"superphone": sp.api_key}))
    with runtime:
        yield runtime


class Receiver:
    """A real webhook receiver: a stdlib HTTP server on 127.0.0.1 in a thread.

    It records ``(raw body, lower-cased headers)`` of every POST and answers with the next
    status of ``statuses`` (200 once they run out).
    """

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.received: list[tuple[bytes, dict[str, str]]] = []
        self.statuses = list(statuses or [])
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver._lock:
                    receiver.received.append(
                        (body, {k.lower(): v for k, v in self.headers.items()})
                    )
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)

    @property
    def url(self) -> str:
        """Where to send webhooks."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/hooks/superphone"

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture
def sp_receiver(sp: SuperPhoneSandboxServer) -> Iterator[Receiver]:
    """A webhook receiver the (reset) sandbox delivers every event to."""
    with Receiver() as receiver:
        sp.set_webhook_urls([receiver.url])
        yield receiver
