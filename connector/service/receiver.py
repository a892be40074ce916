"""The webhook receiver: an ASGI app that verifies GHL webhooks and stores them before answering.

``POST /webhooks/ghl`` runs these checks in order; the first that fails decides the answer, and
nothing is stored unless every check passed:

- 408, 431, 503: the HTTP layer (:func:`connector.service.listener.guarded_server`) cut a slow,
  oversized
  or (past the shared budget of unfinished bodies) large request before the app saw it;
- 413: the body is larger than ``max_body`` (by Content-Length, or counted while streaming);
- 401: the signature is missing or wrong over the raw bytes;
- 400: the body is no UTF-8 JSON object (:mod:`connector.documents.payload`) or its ``timestamp``
  no date;
- 401: its ``timestamp`` is further than ``max_age`` from now;
- 429: the event could not be committed to the inbox (or checking it failed unexpectedly);
- 200: stored, or already stored under the same ``webhookId``.

``POST /webhooks/<app>`` takes a partner's webhooks (the apps given as
:class:`~connector.service.partnerhooks.PartnerHook` objects, built from each app's manifest)
through the same checks, the signature being the HMAC of the body its manifest declares (a
missing one is wrong: fail closed); the
stored ``webhookId`` is ``<app>:<event id>``. Other apps get 404.

A stale timestamp is a 401, like a bad signature: the signature proves who sent the bytes, the
timestamp proves when, and a replayed delivery fails the second half of that authentication.
GHL retries only after a 429, which is why a store failure (disk full, database locked or
read-only) answers 429 and never 500. ``GET /healthz`` (and ``HEAD``, without the body) answers
200 while the inbox writer runs and its last transaction succeeded, 503 otherwise (``serve``
passes its own ``health``, which adds the workers' state and the inbox counts).

:class:`ReceiverServer` runs the app on a free port in a thread (tests, the demo); :func:`main`
is ``python -m connector.service.receiver`` (the benchmark and the reliability tests run it as a
real
process).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import uvicorn

from connector.activity import BUS, contact_fields
from connector.auth.redaction import install_redaction
from connector.documents.payload import load_json
from connector.errors import ConnectorError, DocumentError, StoreError
from connector.service.inbox import EventTypes, Inbox, InboxWriter, NewEvent
from connector.service.listener import (
    Limits,
    ServerThread,
    bind_socket,
    guarded_server,
    serve_forever,
    socket_url,
)
from connector.service.logformat import library_level
from connector.service.partnerhooks import PartnerHook
from connector.service.signatures import (
    ED25519_HEADER,
    RSA_HEADER,
    PublicKeys,
    default_keys,
    load_keys,
    verify,
)
from connector.store import Store

__all__ = [
    "DEFAULT_MAX_AGE",
    "DEFAULT_MAX_BODY",
    "WEBHOOK_PATH",
    "WEBHOOK_PREFIX",
    "ReceiverApp",
    "ReceiverServer",
    "Settings",
    "main",
    "open_store",
    "serve",
]

WEBHOOK_PATH = "/webhooks/ghl"
WEBHOOK_PREFIX = "/webhooks/"
HEALTH_PATH = "/healthz"
DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_MAX_AGE = 300.0
DEFAULT_BUSY_TIMEOUT = 2.0
# Epoch numbers above this are milliseconds (1e11 seconds is the year 5138).
_MILLIS_THRESHOLD = 1e11
_SIGNATURE_HEADERS = (ED25519_HEADER.encode(), RSA_HEADER.encode())
_log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Settings:
    """How the receiver checks requests.

    :param keys: the trusted webhook public keys (GHL's published ones by default).
    :param max_body: the largest body accepted, in bytes.
    :param max_age: how far (seconds) a body's ``timestamp`` may be from now; 0 turns the
        check off. A body without ``timestamp`` is accepted.
    :param events: what type a GHL body is stored under: ``EventTypes.of_catalog(catalog)``
        reads the hub's trigger data (ProviderOutboundMessage's ``match``); the default keeps
        every body's ``type``.
    """

    keys: PublicKeys = field(default_factory=default_keys)
    max_body: int = DEFAULT_MAX_BODY
    max_age: float = DEFAULT_MAX_AGE
    events: EventTypes = field(default_factory=EventTypes)

    def __post_init__(self) -> None:
        if self.max_body < 1 or not self.max_age >= 0:
            raise ValueError(
                f"Settings: max_body {self.max_body!r} must be >= 1 and max_age"
                f" {self.max_age!r} >= 0"
            )
        if not self.keys:
            raise ValueError("Settings: no public keys: every webhook would be refused")


class _Rejected(Exception):
    """A request fails a check: answer ``status`` with ``reason`` (internal to this module)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class ReceiverApp:
    """The ASGI application (HTTP only; run uvicorn with ``lifespan="off"``).

    :param writer: the started inbox writer every accepted event goes through.
    :param settings: the checks' parameters.
    :param partners: app id -> how ``/webhooks/<app>`` takes that partner's webhooks.
    :param health: what ``GET`` and ``HEAD /healthz`` report: (healthy, details), called in a
        worker thread; by default the inbox writer's state (``serve`` adds its workers').
    :param details: whether a request with this ``Authorization`` and ``Host`` header sees
        the details; to
        others ``/healthz`` answers only ``{"status": ...}`` (see
        :func:`connector.console.access.health_details`). None: everyone sees them.
    """

    def __init__(self, writer: InboxWriter, settings: Settings | None = None, *,
                 partners: Mapping[str, PartnerHook] | None = None,
                 health: Callable[[], tuple[bool, dict[str, Any]]] | None = None,
                 details: Callable[[str, str], bool] | None = None) -> None:
        self.writer = writer
        self.details = details
        self.settings = settings or Settings()
        self.partners = dict(partners or {})
        self.health = health or self.writer_health
        self._wanted = {*_SIGNATURE_HEADERS, b"content-length",
                        *(hook.header.encode() for hook in self.partners.values())}

    def __repr__(self) -> str:
        return f"ReceiverApp({self.writer!r}, {self.settings.keys!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        hook = self.partners.get(path.removeprefix(WEBHOOK_PREFIX))
        if path == WEBHOOK_PATH or (hook is not None and path.startswith(WEBHOOK_PREFIX)):
            if method != "POST":
                await _answer(send, 405, {"error": "use POST"}, allow=b"POST")
                return
            status, payload = await self._webhook(scope, receive, hook)
            await _answer(send, status, payload)
        elif path == HEALTH_PATH:
            if method not in ("GET", "HEAD"):
                await _answer(send, 405, {"error": "use GET"}, allow=b"GET, HEAD")
                return
            healthy, details = await asyncio.to_thread(self.health)
            await _answer(send, 200 if healthy else 503, await self._shown(scope, details),
                          head=method == "HEAD")
        else:
            await _answer(send, 404, {"error": f"no route {path!r}"})

    async def _shown(self, scope: Scope, details: dict[str, Any]) -> dict[str, Any]:
        """``details``, or only their status to a request ``self.details`` refuses them."""
        if self.details is None:
            return details
        heads = _headers(scope, {b"authorization", b"host"})
        if await asyncio.to_thread(self.details, heads.get("authorization", ""),
                                   heads.get("host", "")):
            return details
        return {"status": details.get("status")}

    def writer_health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy while the inbox writer runs and its last transaction succeeded."""
        healthy = self.writer.alive and self.writer.healthy
        return healthy, {"status": "ok" if healthy else "inbox unavailable"}

    async def _webhook(
        self, scope: Scope, receive: Receive, hook: PartnerHook | None
    ) -> tuple[int, dict[str, Any]]:
        received_at = time.time()
        app = hook.app if hook is not None else WEBHOOK_PATH.removeprefix(WEBHOOK_PREFIX)
        try:
            event, about = await self._accept(scope, receive, received_at, hook)
        except _Rejected as rejected:
            _log.info("receiver: %s %s from %s", rejected.status, rejected.reason,
                      _client(scope))
            BUS.publish("webhook", status="refused", app=app, code=_code(rejected),
                        reason=rejected.reason, http=rejected.status)
            return rejected.status, {"error": rejected.reason}
        except Exception:  # a bug must not drop the event: GHL retries a 429, never a 500
            _log.exception("receiver: unexpected error checking a webhook from %s",
                           _client(scope))
            BUS.publish("webhook", status="refused", app=app, code="internal",
                        reason="internal error", http=429)
            return 429, {"error": "internal error, retry later"}
        try:
            stored = await self.writer.add(event)
        except StoreError as exc:
            _log.info("receiver: 429 for %r: %s", event.webhook_id, exc)
            BUS.publish("webhook", status="refused", app=app, code="unavailable",
                        reason="inbox unavailable", http=429, webhook_id=event.webhook_id)
            return 429, {"error": "inbox unavailable, retry later"}
        BUS.publish("webhook", status="accepted" if stored else "refused", app=app,
                    type=event.type, location=event.location_id, webhook_id=event.webhook_id,
                    **({} if stored else {"code": "duplicate", "reason": "duplicate"}), **about)
        return 200, {"stored": stored, "webhookId": event.webhook_id}

    async def _accept(
        self, scope: Scope, receive: Receive, received_at: float, hook: PartnerHook | None
    ) -> tuple[NewEvent, dict[str, str]]:
        """Run every check; return the event to store and the contact it is about
        (:func:`connector.activity.contact_fields`), or raise :class:`_Rejected`."""
        settings = self.settings
        headers = _headers(scope, self._wanted)
        _check_length(headers.get("content-length"), settings.max_body)
        body = await _read_body(receive, settings.max_body)
        if hook is None:
            verdict = verify(body, headers, settings.keys)
            if not verdict.ok:
                raise _Rejected(401, f"signature: {verdict.value}")
        elif not hook.check(body, headers):
            raise _Rejected(401, f"signature: {hook.header} missing or wrong")
        payload = _parse(body, settings.max_body)
        if settings.max_age > 0:
            _check_age(payload.get("timestamp"), received_at, settings.max_age)
        about = contact_fields(payload)
        if hook is not None:
            return hook.event(body, payload, received_at), about
        return NewEvent.from_payload(body, payload, received_at, settings.events), about


def _code(rejected: _Rejected) -> str:
    """A refusal's reason as a short label (metrics, console filters)."""
    if rejected.status == 401:
        return "signature" if rejected.reason.startswith("signature") else "stale"
    return {400: "bad_body", 413: "too_large"}.get(rejected.status, "refused")


def _headers(scope: Scope, names: set[bytes]) -> dict[str, str]:
    """The headers this app reads (names are lower case in ASGI)."""
    wanted: dict[str, str] = {}
    for name, value in scope["headers"]:
        if name in names:
            wanted[name.decode("latin-1")] = value.decode("latin-1")
    return wanted


def _check_length(text: str | None, limit: int) -> None:
    if text is None:
        return
    if not (text.strip().isascii() and text.strip().isdigit()):
        raise _Rejected(400, f"bad Content-Length {text!r}")
    if int(text) > limit:
        raise _Rejected(413, f"body of {int(text)} bytes is over the {limit}-byte limit")


async def _read_body(receive: Receive, limit: int) -> bytes:
    """The whole body, refusing it as soon as it grows past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Rejected(400, "client went away before the body ended")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _Rejected(413, f"body is over the {limit}-byte limit")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _parse(body: bytes, max_body: int) -> dict[str, Any]:
    try:
        payload = load_json(body, source="body", max_bytes=max_body)
    except DocumentError as exc:
        raise _Rejected(400, str(exc)) from exc
    if not isinstance(payload, dict):
        raise _Rejected(400, f"body is a JSON {type(payload).__name__}, not an object")
    return payload


def _check_age(value: object, now: float, max_age: float) -> None:
    """Refuse a ``timestamp`` (ISO 8601, or epoch seconds or milliseconds) too far from now."""
    if value is None:
        return
    moment = _epoch(value)
    if moment is None:
        raise _Rejected(400, f"timestamp {str(value)[:40]!r} is not a date")
    if abs(now - moment) > max_age:
        raise _Rejected(401, f"timestamp {str(value)[:40]!r} is more than {max_age:g}s from now")


def _epoch(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
        if not math.isfinite(number):
            return None
        return number / 1000 if number > _MILLIS_THRESHOLD else number
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    except (ValueError, OverflowError):  # not ISO 8601, or beyond what a datetime holds
        return None


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "?"


async def _answer(send: Send, status: int, payload: Mapping[str, Any], *,
                  allow: bytes | None = None, head: bool = False) -> None:
    """Answer JSON; to a ``HEAD`` (``head``) the same status and headers without the body."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if allow is not None:
        headers.append((b"allow", allow))
    if status == 429:
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


# -- running it ------------------------------------------------------------------------------


def open_store(path: str | Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
               synchronous: str = "FULL") -> Store:
    """Open the state file for receiving: ``synchronous`` as given (FULL: every acknowledged
    event survives a power loss, see docs/webhooks.md) and a short ``busy_timeout``, so a locked
    database turns into a quick 429 instead of a request that hangs until GHL gives up.

    :raises StoreError: the file cannot be opened or migrated.
    """
    if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
        raise ValueError(f"open_store: synchronous {synchronous!r} is not FULL, NORMAL or EXTRA")
    store = Store(path)
    store.set_synchronous(synchronous)
    store.set_busy_timeout(busy_timeout)
    return store


def _uvicorn(app: ReceiverApp, *, own_logging: bool, limits: Limits | None) -> uvicorn.Server:
    return guarded_server(app, limits, log_level="info" if own_logging else library_level().lower(),
                          log_config=uvicorn.config.LOGGING_CONFIG if own_logging else None,
                          timeout_graceful_shutdown=2)


class ReceiverServer:
    """The receiver on a free 127.0.0.1 port, served from a background thread.

    Use it as a context manager; it opens the inbox writer on ``store`` and closes it (after
    the server stopped, so every answered event is committed) on exit.

    :param store: the state file the inbox lives in.
    :param settings: the checks' parameters.
    :param host: where to listen (tests and the demo stay on 127.0.0.1).
    :param port: 0 picks a free port.
    :param limits: what one client may hold (deadlines, header and body budgets).
    :param partners: partner apps whose webhooks ``/webhooks/<app>`` takes.
    """

    def __init__(self, store: Store, settings: Settings | None = None, *,
                 host: str = "127.0.0.1", port: int = 0, limits: Limits | None = None,
                 partners: Mapping[str, PartnerHook] | None = None) -> None:
        self.writer = InboxWriter(Inbox(store))
        self.app = ReceiverApp(self.writer, settings, partners=partners)
        self._host, self._port, self.limits = host, port, limits
        self._served: ServerThread | None = None
        self.url = ""

    def __repr__(self) -> str:
        return f"ReceiverServer(url={self.url!r})"

    def __enter__(self) -> ReceiverServer:
        sock = bind_socket(self._host, self._port)
        self.url = socket_url(sock, WEBHOOK_PATH)
        self.writer.start()
        self._served = ServerThread(_uvicorn(self.app, own_logging=False, limits=self.limits),
                                    sock, name="ghl-receiver")
        try:
            self._served.start()
        except BaseException:
            self.writer.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._served is not None:
            self._served.stop()
        self.writer.close()


def serve(store: Store, settings: Settings, *, host: str, port: int, out: TextIO) -> None:
    """Serve in the foreground until SIGINT/SIGTERM; print the webhook URL to ``out`` first."""
    sock = bind_socket(host, port)
    with InboxWriter(Inbox(store)) as writer:
        server = _uvicorn(ReceiverApp(writer, settings), own_logging=True, limits=None)
        out.write(socket_url(sock, WEBHOOK_PATH) + "\n")
        out.flush()
        serve_forever(server, sock)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m connector.service.receiver``: receive webhooks into an inbox until
    interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m connector.service.receiver", description=main.__doc__
    )
    parser.add_argument("--db", "--store", dest="db", required=True,
                        help="the store holding the inbox: an SQLite file or postgresql://...")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--public-key", action="append", default=[], metavar="PEM",
                        help="a trusted Ed25519 or RSA public key file (repeatable;"
                        " default: GHL's published keys)")
    parser.add_argument("--max-body", type=int, default=DEFAULT_MAX_BODY, help="bytes")
    parser.add_argument("--max-age", type=float, default=DEFAULT_MAX_AGE,
                        help="seconds a timestamp may be from now; 0 turns the check off")
    parser.add_argument("--busy-timeout", type=float, default=DEFAULT_BUSY_TIMEOUT,
                        help="seconds to wait for a locked database before answering 429")
    parser.add_argument("--synchronous", default="FULL", choices=("FULL", "NORMAL", "EXTRA"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    install_redaction()
    from connector.catalog import build_catalog  # the hub's event data; not needed for --help

    try:
        settings = Settings(load_keys(args.public_key) if args.public_key else default_keys(),
                            args.max_body, args.max_age,
                            EventTypes.of_catalog(build_catalog()))
    except ValueError as exc:
        parser.error(str(exc))
    except ConnectorError as exc:  # the keys' files, or the catalog's plugins and manifest
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        with open_store(args.db, busy_timeout=args.busy_timeout,
                        synchronous=args.synchronous) as store:
            serve(store, settings, host=args.host, port=args.port, out=sys.stdout)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ConnectorError as exc:  # bind_socket's: the address cannot be listened on
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
