"""The convergence test's webhook receiver: a real HTTP server on 127.0.0.1 keeping every
body GHL and SuperPhone post to it, in arrival order."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from connector.sync.spec import Side


class Inbox:
    """A real webhook receiver on 127.0.0.1: ``/ghl`` and ``/partner`` bodies, in arrival order."""

    def __init__(self) -> None:
        self.bodies: list[tuple[Side, dict[str, Any]]] = []
        self._lock = threading.Lock()
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                side: Side = "ghl" if self.path.endswith("/ghl") else "partner"
                with inbox._lock:
                    inbox.bodies.append((side, json.loads(raw)))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        self._taken = 0

    def url(self, side: Side) -> str:
        """Where ``side``'s sandbox posts its webhooks."""
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}/{side}"

    def take(self) -> list[tuple[Side, dict[str, Any]]]:
        """The bodies received since the last call."""
        with self._lock:
            new = self.bodies[self._taken :]
            self._taken = len(self.bodies)
        return new

    def close(self) -> None:
        """Stop the server."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
