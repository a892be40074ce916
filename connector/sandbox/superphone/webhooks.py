"""The SuperPhone sandbox's webhooks: each change event as signed JSON, POSTed to every URL.

The body is ``{"eventId", "type", "timestamp", "data"}`` (``data``: the record after the change).
It is signed with HMAC-SHA256 over its exact bytes and the shared secret, sent as
``X-SuperPhone-Signature: sha256=<hex>``; ``X-SuperPhone-Event`` repeats the type. A delivery
is retried on 429, on 5xx and when no answer comes, up to ``max_retries`` more times with
exponential backoff; any other answer ends it. :meth:`WebhookSender.emit` runs on the server's
loop, returns at once and never raises: the request that made the change never waits for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

__all__ = ["EVENT_HEADER", "SIGNATURE_HEADER", "WebhookSender", "signature"]

SIGNATURE_HEADER = "X-SuperPhone-Signature"
EVENT_HEADER = "X-SuperPhone-Event"
_log = logging.getLogger(__name__)
_T = TypeVar("_T")


def signature(secret: str, body: bytes) -> str:
    """The signature header's value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSender:
    """Signs and delivers change events.

    ``deliveries`` lists one record per finished delivery: ``{"url", "eventId", "type",
    "status" (None when no answer came), "attempts", "outcome" ("delivered" | "dropped")}``;
    ``sent_bodies`` the raw bytes of every event sent (the last ``history`` of each).
    """

    def __init__(self, secret: str, urls: Sequence[str] = (), *, max_retries: int = 3,
                 backoff: float = 0.1, timeout: float = 5.0, history: int = 1000) -> None:
        self._secret = secret
        self._urls: tuple[str, ...] = ()
        self.set_urls(urls)
        self._max_retries = max_retries
        self._backoff = backoff
        self._timeout = timeout
        self._history = history
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.deliveries: list[dict[str, Any]] = []
        self.sent_bodies: list[bytes] = []

    def __repr__(self) -> str:
        return f"WebhookSender(urls={len(self._urls)}, pending={len(self._tasks)}, secret=****)"

    @property
    def urls(self) -> tuple[str, ...]:
        """Where each event goes."""
        return self._urls

    def set_urls(self, urls: Sequence[str]) -> None:
        """Replace the delivery URLs.

        :raises ValueError: a URL is not an absolute ``http``/``https`` URL.
        """
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"webhooks: {url!r} is not an http(s) URL")
        self._urls = tuple(urls)

    def emit(self, event_type: str, data: dict[str, Any]) -> None:
        """Send one event to every URL in the background (dropped without a running loop)."""
        if not self._urls:
            return
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        payload = {"eventId": f"evt_{uuid.uuid4().hex}", "type": event_type,
                   "timestamp": stamp, "data": data}
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            _log.warning("webhooks: %s dropped: no running event loop", event_type)
            return
        self._remember(self.sent_bodies, body)
        headers = {"content-type": "application/json", EVENT_HEADER: event_type,
                   SIGNATURE_HEADER: signature(self._secret, body)}
        for url in self._urls:
            task = loop.create_task(self._deliver(url, body, headers, payload))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float | None = None) -> None:
        """Wait until every delivery started so far has finished (or ``timeout`` passes)."""
        pending = set(self._tasks)
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    async def aclose(self, timeout: float = 5.0) -> None:
        """Wait up to ``timeout`` s for pending deliveries, cancel the rest, close the client."""
        await self.drain(timeout)
        for task in set(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks))
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _deliver(self, url: str, body: bytes, headers: dict[str, str],
                       payload: dict[str, Any]) -> None:
        attempts, status, delay = 0, None, self._backoff
        try:
            while True:
                attempts += 1
                try:
                    response = await self._http().post(url, content=body, headers=headers)
                    status = response.status_code
                except (httpx.HTTPError, httpx.InvalidURL) as exc:
                    status = None
                    _log.info("webhooks: %s to %s: %s", payload["type"], _where(url), exc)
                retry = status is None or status == 429 or status >= 500
                if not retry or attempts > self._max_retries:
                    break
                await asyncio.sleep(delay)
                delay *= 2
        except asyncio.CancelledError:
            raise
        except Exception:  # a delivery task is a top level: log, never crash the server loop
            _log.exception("webhooks: delivery of %r failed", payload["type"])
        ok = status is not None and 200 <= status < 300
        self._remember(self.deliveries, {
            "url": url, "eventId": payload["eventId"], "type": payload["type"],
            "status": status, "attempts": attempts, "outcome": "delivered" if ok else "dropped",
        })

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            # trust_env=False: deliveries go straight to the URL, never through a proxy.
            self._client = httpx.AsyncClient(timeout=self._timeout, trust_env=False)
        return self._client

    def _remember(self, bucket: list[_T], item: _T) -> None:
        bucket.append(item)
        if len(bucket) > self._history:
            del bucket[: len(bucket) - self._history]


def _where(url: str) -> str:
    """The URL without its query: webhook URLs may carry secrets there."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
