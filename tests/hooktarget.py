"""A REST-hook target on 127.0.0.1 for the delivery tests: it verifies every request with the
Standard Webhooks reference library (``standardwebhooks``) and answers as scripted."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    """One request the target got."""

    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    error: str | None

    @property
    def id(self) -> str:
        return self.headers.get("webhook-id", "")

    def json(self) -> Any:  # noqa: ANN401
        return json.loads(self.body)


class HookTarget:
    """An HTTP server answering POSTs: ``statuses`` in turn (then ``default``), each request
    verified against ``secret`` and recorded in ``received``.

    :param port: 0 for a free port; a given port is bound with SO_REUSEADDR.
    """

    def __init__(self, *, statuses: list[int] | None = None, default: int = 200,
                 port: int = 0) -> None:
        self.statuses = list(statuses or [])
        self.default = default
        self.secret = ""
        self.received: list[Received] = []
        self.hold = threading.Event()
        """Cleared: requests wait (unanswered) until it is set again. Set by default."""
        self.hold.set()
        self._lock = threading.Lock()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                verified, error = True, None
                try:
                    Webhook(target.secret).verify(body, headers)
                except (WebhookVerificationError, ValueError) as exc:
                    verified, error = False, str(exc)
                with target._lock:
                    target.received.append(Received(self.path, headers, body, verified, error))
                    status = target.statuses.pop(0) if target.statuses else target.default
                target.hold.wait(30)
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                return

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/hooks/zap/s3cr3t-path"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> HookTarget:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
