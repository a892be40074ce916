"""A small local Zenline: the REST API tests/thirdparty/zenline_connector/manifest.yaml
declares, and signed webhooks (HMAC-SHA512, ``v1=`` prefix) for every change, on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

API_KEY = "zl-key-1"
SECRET = "zl-hook-secret"
FIELDS = ("given_name", "family_name", "email", "phone")


def sign(body: bytes, secret: str = SECRET) -> str:
    """The ``Zenline-Signature`` value of a body."""
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha512).hexdigest()


class ZenlineServer:
    """People in memory; each create or update is POSTed, signed, to every webhook URL before
    the API answers (so a change's event is stored by the time the call returns)."""

    def __init__(self) -> None:
        self.people: dict[str, dict[str, Any]] = {}
        self.webhook_urls: list[str] = []
        self.writes: list[str] = []
        self.deliveries: list[int] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """The API's base URL (the manifest's ``base_url`` stands in for it)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/v2"

    def __enter__(self) -> ZenlineServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def set_webhook_urls(self, urls: list[str]) -> None:
        """Where change events are delivered."""
        self.webhook_urls = list(urls)

    def drain_webhooks(self) -> None:
        """Nothing to wait for: events are delivered before the API answers."""

    def change(self, person_id: str, **fields: Any) -> dict[str, Any]:
        """Edit a person as a Zenline user would (an event is sent)."""
        return self._write(person_id, fields, "person.updated")

    def _write(self, person_id: str | None, fields: dict[str, Any], kind: str) -> dict[str, Any]:
        with self._lock:
            pid = person_id or f"zp_{uuid.uuid4().hex[:10]}"
            person = self.people.setdefault(pid, {"id": pid})
            person.update({k: v for k, v in fields.items() if k in FIELDS})
            person["modified_at"] = datetime.now(UTC).isoformat(timespec="milliseconds")
            found = dict(person)
        self.writes.append(kind)
        self._deliver(kind, found)
        return found

    def _deliver(self, kind: str, person: dict[str, Any]) -> None:
        event = {"uid": f"ev_{uuid.uuid4().hex}", "kind": kind, "sent_at": person["modified_at"],
                 "body": person}
        body = json.dumps(event).encode()
        for url in self.webhook_urls:
            answer = httpx.post(url, content=body, timeout=10, headers={
                "Content-Type": "application/json", "Zenline-Signature": sign(body)})
            self.deliveries.append(answer.status_code)

    def find(self, email: str | None, phone: str | None) -> dict[str, Any] | None:
        with self._lock:
            for person in self.people.values():
                if (email and person.get("email") == email) or (phone and person.get("phone") == phone):
                    return dict(person)
        return None


def _handler(server: ZenlineServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

        def _answer(self, status: int, data: Any) -> None:
            body = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _authorized(self) -> bool:
            if self.headers.get("X-Zenline-Key") == API_KEY:
                return True
            self._answer(401, {"error": "bad key"})
            return False

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length) or b"{}")

        def do_GET(self) -> None:
            if not self._authorized():
                return
            path, _, query = self.path.partition("?")
            if path == "/v2/people/lookup":
                args = httpx.QueryParams(query)
                self._answer(200, {"person": server.find(args.get("email"), args.get("phone"))})
                return
            match = re.fullmatch(r"/v2/people/([\w-]+)", path)
            person = server.people.get(match.group(1)) if match else None
            if person is None:
                self._answer(404, {"error": "not found"})
                return
            self._answer(200, {"person": dict(person)})

        def do_POST(self) -> None:
            if not self._authorized():
                return
            if self.path != "/v2/people":
                self._answer(404, {"error": "not found"})
                return
            self._answer(201, {"person": server._write(None, self._body(), "person.created")})

        def do_PATCH(self) -> None:
            if not self._authorized():
                return
            match = re.fullmatch(r"/v2/people/([\w-]+)", self.path)
            if match is None or match.group(1) not in server.people:
                self._answer(404, {"error": "not found"})
                return
            self._answer(200, {"person": server._write(match.group(1), self._body(), "person.updated")})

    return Handler
