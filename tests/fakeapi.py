"""A programmable HTTP server for tests: queued answers per route, recorded requests.

A stdlib ``ThreadingHTTPServer`` on ``127.0.0.1:0`` in a daemon thread (the shape of httpx's
``tests/conftest.py`` ``serve_in_thread``). Tests queue answers with :meth:`FakeApi.add`, or
answer from a function with :meth:`FakeApi.route`, and assert on :attr:`FakeApi.requests`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["Answer", "FakeApi", "Recorded", "serve"]


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request as the server saw it; ``arrived`` is ``time.monotonic()`` on arrival."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    arrived: float

    @property
    def json(self) -> Any:
        """The body parsed as JSON, or ``None`` if empty or not JSON."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    @property
    def form(self) -> dict[str, str]:
        """The body parsed as a form (``application/x-www-form-urlencoded``)."""
        return dict(parse_qsl(self.body.decode("utf-8", "replace")))


@dataclass(frozen=True, slots=True)
class Answer:
    """What the server sends back: status, JSON (or raw ``body``), headers, after ``delay`` s.

    ``drop=True`` closes the connection without answering (a reset after the request was sent).
    """

    status: int = 200
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    body: bytes | str | None = None
    drop: bool = False

    def payload(self) -> tuple[bytes, str]:
        """The bytes to send and their content type."""
        if self.body is not None:
            raw = self.body.encode() if isinstance(self.body, str) else self.body
            return raw, "text/plain; charset=utf-8"
        if self.json is None:
            return b"", "application/json"
        return json.dumps(self.json).encode(), "application/json"


Handler = Callable[[Recorded], Answer]


def _not_found(request: Recorded) -> Answer:
    message = f"fakeapi: nothing queued for {request.method} {request.path}"
    return Answer(404, {"statusCode": 404, "message": message})


class FakeApi:
    """The programmable state behind the server; thread-safe."""

    def __init__(self) -> None:
        self.url = ""
        self._lock = threading.Lock()
        self._queued: dict[tuple[str, str], deque[Answer]] = {}
        self._routes: dict[tuple[str, str], Handler] = {}
        self._requests: list[Recorded] = []
        self.default: Handler = _not_found

    def add(
        self,
        method: str,
        path: str,
        status: int = 200,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        body: bytes | str | None = None,
        drop: bool = False,
        times: int = 1,
    ) -> None:
        """Queue an answer for ``method path`` (path without query), ``times`` times over."""
        answer = Answer(status, json, dict(headers or {}), delay, body, drop)
        with self._lock:
            self._queued.setdefault((method.upper(), path), deque()).extend([answer] * times)

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Answer ``method path`` with ``handler(request)`` once its queued answers are used up."""
        with self._lock:
            self._routes[(method.upper(), path)] = handler

    @property
    def requests(self) -> list[Recorded]:
        """Every request received since the last :meth:`reset`, in arrival order."""
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        """Forget queued answers, routes and recorded requests; restore the default handler."""
        with self._lock:
            self._queued.clear()
            self._routes.clear()
            self._requests.clear()
            self.default = _not_found

    def answer(self, request: Recorded) -> Answer:
        """Record ``request`` and pick its answer: queued, then route, then the default."""
        key = (request.method, request.path)
        with self._lock:
            self._requests.append(request)
            queue = self._queued.get(key)
            if queue:
                return queue.popleft()
            handler = self._routes.get(key, self.default)
        return handler(request)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _handle(self) -> None:
        arrived = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = Recorded(
            method=self.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            arrived=arrived,
        )
        answer = self.server.api.answer(request)
        if answer.delay:
            time.sleep(answer.delay)
        if answer.drop:
            self.close_connection = True
            return
        payload, content_type = answer.payload()
        self.send_response(answer.status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, api: FakeApi) -> None:
        self.api = api
        super().__init__(("127.0.0.1", 0), _RequestHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timeout test) breaks the pipe; that is expected here."""


@contextmanager
def serve() -> Iterator[FakeApi]:
    """Run a :class:`FakeApi` server in a daemon thread for the duration of the block."""
    api = FakeApi()
    server = _Server(api)
    host, port = server.server_address[:2]
    api.url = f"http://{host!s}:{port}"
    thread = threading.Thread(target=server.serve_forever, name="fakeapi", daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
