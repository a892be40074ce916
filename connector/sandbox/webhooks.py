"""The sandbox's webhook delivery: signs each event's exact bytes and POSTs them to every URL.

Like HighLevel, a delivery is retried only when the receiver answers 429 (up to ``max_retries``
more attempts, with exponential backoff) and is dropped on any other status and on connection
errors. :meth:`WebhookSender.emit` runs on the server's event loop, returns at once and never
raises: the request that caused the event does not wait for, or fail because of, its delivery.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from connector.sandbox.keys import WebhookKeys

__all__ = ["WebhookSender"]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")


class WebhookSender:
    """Delivers signed webhook payloads to the configured URLs.

    :param keys: the keys that sign every body.
    :param urls: where each event goes (``http``/``https`` URLs).
    :param max_retries: further attempts after a 429 answer (GHL: 6).
    :param backoff: seconds before the first retry; doubled before each next one.
    :param timeout: seconds one attempt may take.
    :param history: how many delivery records and sent bodies to keep.

    ``deliveries`` lists one record per finished delivery: ``{"url", "webhookId", "type",
    "status" (None when no answer came), "attempts", "outcome" ("delivered" | "dropped")}``.
    ``sent_bodies`` holds the raw bytes of the last ``history`` events sent.
    """

    def __init__(
        self,
        keys: WebhookKeys,
        urls: Sequence[str] = (),
        *,
        max_retries: int = 6,
        backoff: float = 0.5,
        timeout: float = 5.0,
        history: int = 1000,
    ) -> None:
        self._keys = keys
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
        return f"WebhookSender(urls={len(self._urls)}, pending={len(self._tasks)})"

    @property
    def urls(self) -> tuple[str, ...]:
        """The URLs each event is delivered to."""
        return self._urls

    def set_urls(self, urls: Sequence[str]) -> None:
        """Replace the delivery URLs (events already emitted keep their old targets).

        :raises ValueError: a URL is not an absolute ``http``/``https`` URL.
        """
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"WebhookSender: {url!r} is not an http(s) URL")
        self._urls = tuple(urls)

    def emit(self, payload: dict[str, Any]) -> None:
        """Send one event to every URL, in the background; returns at once and never raises.

        The payload is serialised now (later changes to it are not sent); it is signed and
        delivered by a task on the running event loop. Without a running loop it is dropped.
        """
        urls = self._urls
        if not urls:
            return
        if "webhookId" not in payload:
            payload = {**payload, "webhookId": str(uuid.uuid4())}
        try:
            body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
            loop = asyncio.get_running_loop()
        except (TypeError, ValueError, RuntimeError) as exc:
            _log.warning("webhooks: event %r dropped: %s", payload.get("type"), exc)
            return
        task = loop.create_task(self._send(body, payload, urls))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float | None = None) -> None:
        """Wait until every delivery started so far has finished (or ``timeout`` passes)."""
        pending = set(self._tasks)
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    async def aclose(self, timeout: float = 5.0) -> None:
        """Wait up to ``timeout`` seconds for pending deliveries, cancel the rest, close."""
        await self.drain(timeout)
        for task in set(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks))
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _send(self, body: bytes, payload: dict[str, Any], urls: Sequence[str]) -> None:
        try:
            headers = {"content-type": "application/json", **self._keys.sign(body)}
            self._remember(self.sent_bodies, body)
            webhook_id = str(payload["webhookId"])
            event_type = str(payload.get("type"))
            await asyncio.gather(
                *(self._deliver(url, body, headers, webhook_id, event_type) for url in urls)
            )
        except asyncio.CancelledError:
            raise
        except Exception:  # a delivery task is a top level: log, never crash the server loop
            _log.exception("webhooks: delivery of %r failed", payload.get("type"))

    async def _deliver(
        self, url: str, body: bytes, headers: dict[str, str], webhook_id: str, event_type: str
    ) -> None:
        client = self._http()
        attempts = 0
        status: int | None = None
        delay = self._backoff
        while True:
            attempts += 1
            try:
                response = await client.post(url, content=body, headers=headers)
                status = response.status_code
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                status = None
                _log.info("webhooks: %s to %s: %s, dropped", event_type, _where(url), exc)
                break
            if status != 429 or attempts > self._max_retries:
                break
            await asyncio.sleep(delay)
            delay *= 2
        outcome = "delivered" if status is not None and 200 <= status < 300 else "dropped"
        self._remember(
            self.deliveries,
            {
                "url": url,
                "webhookId": webhook_id,
                "type": event_type,
                "status": status,
                "attempts": attempts,
                "outcome": outcome,
            },
        )

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
