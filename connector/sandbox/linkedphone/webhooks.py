"""The LinkedPhone sandbox's webhooks: event envelopes, their HMAC-SHA256 signature, and delivery.

Each change is posted as ``{"id", "type", "timestamp", "data"}`` (compact JSON) to every
configured URL, with ``X-LinkedPhone-Signature: sha256=<hex>``: the HMAC-SHA256 of the exact
body bytes under the account's webhook secret. The event ``id`` is unique and stays the same on
every attempt, so a receiver can drop duplicates. A delivery is retried on 429 and 5xx (up to
``max_retries`` more attempts, backoff doubling) and dropped on any other status or a connection
error. :meth:`WebhookSender.emit` returns at once and never raises: the request that caused the
event neither waits for nor fails because of its delivery.

(The GHL sandbox's sender signs with Ed25519/RSA keys; this one signs with a shared secret.)
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

__all__ = ["SIGNATURE_HEADER", "WebhookSender", "envelope", "sign", "verify"]

SIGNATURE_HEADER = "X-LinkedPhone-Signature"
_log = logging.getLogger(__name__)
_RETRY = frozenset({429, 500, 502, 503, 504})


def sign(secret: str, body: bytes) -> str:
    """The signature header value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the signature of ``body`` under ``secret`` (constant-time)."""
    return header is not None and hmac.compare_digest(sign(secret, body), header.strip())


def envelope(event_type: str, record: dict[str, Any], timestamp: str) -> dict[str, Any]:
    """One event: a fresh ``evt_`` id, the type, when it happened, and a copy of the record."""
    return {"id": f"evt_{secrets.token_hex(8)}", "type": event_type, "timestamp": timestamp,
            "data": json.loads(json.dumps(record))}


class WebhookSender:
    """Delivers signed events to the configured URLs from the server's event loop.

    :param secret: the shared signing secret.
    :param urls: where each event goes.
    :param max_retries: further attempts after a 429 or 5xx answer.
    :param backoff: seconds before the first retry; doubled before each next one.

    ``deliveries`` holds one record per finished delivery: ``{"url", "id", "type", "status"
    (None when no answer came), "attempts", "outcome" ("delivered" | "dropped")}``; ``sent``
    holds every event body sent, in order.
    """

    def __init__(self, secret: str, urls: Sequence[str] = (), *, max_retries: int = 3,
                 backoff: float = 0.2, timeout: float = 5.0) -> None:
        self._secret = secret
        self._max_retries = max_retries
        self._backoff = backoff
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.urls: tuple[str, ...] = ()
        self.set_urls(urls)
        self.deliveries: list[dict[str, Any]] = []
        self.sent: list[bytes] = []

    def __repr__(self) -> str:
        return f"WebhookSender(urls={len(self.urls)}, pending={len(self._tasks)}, secret=****)"

    def set_urls(self, urls: Sequence[str]) -> None:
        """Replace the delivery URLs.

        :raises ValueError: a URL is not an absolute ``http``/``https`` URL.
        """
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"webhooks: {url!r} is not an http(s) URL")
        self.urls = tuple(urls)

    def clear(self) -> None:
        """Forget the delivery records and sent bodies."""
        self.deliveries.clear()
        self.sent.clear()

    def emit(self, event: dict[str, Any]) -> None:
        """Send one event to every URL in the background (needs the running loop)."""
        if not self.urls:
            return
        body = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
        self.sent.append(body)
        task = asyncio.get_running_loop().create_task(self._send(body, event, self.urls))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float | None = None) -> None:
        """Wait until every delivery started so far has finished (or ``timeout`` passes)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    async def aclose(self, timeout: float = 5.0) -> None:
        """Wait up to ``timeout`` for pending deliveries, cancel the rest, close the client."""
        await self.drain(timeout)
        for task in set(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks))
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _send(self, body: bytes, event: dict[str, Any], urls: Sequence[str]) -> None:
        headers = {"content-type": "application/json", SIGNATURE_HEADER: sign(self._secret, body)}
        try:
            await asyncio.gather(*(self._deliver(url, body, headers, event) for url in urls))
        except asyncio.CancelledError:
            raise
        except Exception:  # a delivery task is a top level: log, never crash the server loop
            _log.exception("webhooks: delivery of %r failed", event.get("type"))

    async def _deliver(self, url: str, body: bytes, headers: dict[str, str],
                       event: dict[str, Any]) -> None:
        if self._client is None:
            # trust_env=False: deliveries go straight to the URL, never through a proxy.
            self._client = httpx.AsyncClient(timeout=self._timeout, trust_env=False)
        attempts, status, delay = 0, None, self._backoff
        while True:
            attempts += 1
            try:
                status = (await self._client.post(url, content=body, headers=headers)).status_code
            except httpx.HTTPError as exc:
                status = None
                _log.info("webhooks: %s to %s: %s, dropped", event["type"], _where(url), exc)
                break
            if status not in _RETRY or attempts > self._max_retries:
                break
            await asyncio.sleep(delay)
            delay *= 2
        ok = status is not None and 200 <= status < 300
        self.deliveries.append({"url": _where(url), "id": event["id"], "type": event["type"],
                                "status": status, "attempts": attempts,
                                "outcome": "delivered" if ok else "dropped"})


def _where(url: str) -> str:
    """The URL without its query: webhook URLs may carry secrets there."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
