"""Fixtures for the LinkedPhone sandbox: ``linkedphone_server`` (one per session), ``lp`` (reset
per test), ``lp_runtime`` (a strict Runtime pointed at it) and ``webhook_receiver`` (a real
HTTP receiver that checks each delivery's HMAC signature)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from connector.auth.credentials import api_key_provider
from connector.catalog import build_catalog
from connector.client.retry import RetryPolicy
from connector.plugins import get_plugin_manager
from connector.runtime import Runtime, Settings
from connector.sandbox.linkedphone.config import LinkedPhoneConfig
from connector.sandbox.linkedphone.server import LinkedPhoneSandboxServer

LP_SEED_CONTACTS = 3
LP_SECRET = "whsec_test_linkedphone"


@pytest.fixture(scope="session")
def linkedphone_server() -> Iterator[LinkedPhoneSandboxServer]:
    """The LinkedPhone sandbox on 127.0.0.1 in a background thread for the whole session."""
    config = LinkedPhoneConfig(seed_contacts=LP_SEED_CONTACTS, seed=11,
                               webhook_secret=LP_SECRET, webhook_backoff=0.01)
    with LinkedPhoneSandboxServer(config) as server:
        yield server


@pytest.fixture
def lp(linkedphone_server: LinkedPhoneSandboxServer) -> Iterator[LinkedPhoneSandboxServer]:
    """The LinkedPhone sandbox back at its seed state: no faults, zero counters, no webhooks;
    after the test, back on the wall clock (a test may set its own, ``use_clock``)."""
    linkedphone_server.reset()
    yield linkedphone_server
    linkedphone_server.use_clock(None)


@pytest.fixture(scope="session")
def lp_catalog() -> Any:
    """The pack's catalog (built-ins only), built once."""
    return build_catalog(get_plugin_manager(entry_points=False))


@pytest.fixture
def lp_runtime(lp: LinkedPhoneSandboxServer, lp_catalog: Any) -> Iterator[Runtime]:
    """A strict Runtime calling the sandbox with its API key, with short retry waits."""
    settings = Settings(strict=True, base_urls={"linkedphone": lp.base_url},
                        retry=RetryPolicy(attempts=3, base=0.01, cap=2.0, seed=1))
    runtime = Runtime(lp_catalog, settings, auth=api_key_provider(keys={"linkedphone": lp.api_key}))
    with runtime:
        yield runtime


class Receiver:
    """What the webhook receiver got: each delivery's body, headers and signature verdict."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.url = ""
        self.deliveries: list[dict[str, Any]] = []
        self.answers: list[int] = []
        self.lock = threading.Lock()

    def events(self) -> list[dict[str, Any]]:
        """The parsed bodies of the deliveries whose signature was valid."""
        with self.lock:
            return [json.loads(d["body"]) for d in self.deliveries if d["valid"]]


@pytest.fixture
def webhook_receiver() -> Iterator[Receiver]:
    """A real HTTP server on 127.0.0.1 that verifies X-LinkedPhone-Signature independently
    (hmac over the raw body) and answers 204, or the statuses queued in ``answers`` first."""
    receiver = Receiver(LP_SECRET)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            expected = "sha256=" + hmac.new(receiver.secret.encode(), body,
                                            hashlib.sha256).hexdigest()
            given = self.headers.get("x-linkedphone-signature", "")
            with receiver.lock:
                receiver.deliveries.append({
                    "body": body, "signature": given,
                    "valid": hmac.compare_digest(expected, given),
                })
                status = receiver.answers.pop(0) if receiver.answers else 204
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/linkedphone"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
