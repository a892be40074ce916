"""Delivering signed webhook bodies from a sandbox: URLs, background tasks, retries, history.

Every sandbox (GHL, SuperPhone, LinkedPhone) sends its change events the same way: the body is
serialised once, signed over its exact bytes, and POSTed to every configured URL by a task on
the server's event loop, so the request that made the change never waits. What differs per
app is only how a body is signed (:meth:`Delivery.sign`) and which answers are retried
(:meth:`Delivery.retry`): GHL retries only a 429; the partners also retry 5xx and no answer.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

__all__ = ["Delivery", "where"]

_T = TypeVar("_T")
_log = logging.getLogger(__name__)


def where(url: str) -> str:
    """The URL without its query: webhook URLs may carry secrets there."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


class Delivery(ABC):
    """Signs and delivers webhook bodies to the configured URLs, in the background.

    :param urls: where each event goes (``http``/``https`` URLs).
    :param max_retries: further attempts after a retryable answer.
    :param backoff: seconds before the first retry; doubled before each next one.
    :param timeout: seconds one attempt may take.
    :param history: how many delivery records and sent bodies to keep.

    ``deliveries`` lists one record per finished delivery (the event's ids, ``url``,
    ``status`` (None when no answer came), ``attempts``, ``outcome``: delivered or dropped);
    ``sent_bodies`` the raw bytes of the last ``history`` events sent.
    """

    def __init__(
        self,
        urls: Sequence[str] = (),
        *,
        max_retries: int,
        backoff: float,
        timeout: float = 5.0,
        history: int = 1000,
    ) -> None:
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
        return f"{type(self).__name__}(urls={len(self._urls)}, pending={len(self._tasks)})"

    @abstractmethod
    def sign(self, body: bytes) -> dict[str, str]:
        """The signature headers for ``body``."""

    @abstractmethod
    def retry(self, status: int | None) -> bool:
        """Whether an answer (None: no answer) is worth another attempt."""

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
                raise ValueError(f"{type(self).__name__}: {url!r} is not an http(s) URL")
        self._urls = tuple(urls)

    def dispatch(self, body: bytes, record: dict[str, Any], headers: dict[str, str]) -> None:
        """Deliver ``body`` to every URL in the background; never raises.

        :param record: the event's ids for :attr:`deliveries` (``type`` and its id field).
        :param headers: extra headers besides the content type and the signature.
        """
        urls = self._urls
        if not urls:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            _log.warning("webhooks: %s dropped: no running event loop", record.get("type"))
            return
        task = loop.create_task(self._send(body, record, headers, urls))
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

    async def _send(
        self,
        body: bytes,
        record: dict[str, Any],
        extra: dict[str, str],
        urls: Sequence[str],
    ) -> None:
        try:
            headers = {"content-type": "application/json", **extra, **self.sign(body)}
            self._remember(self.sent_bodies, body)
            await asyncio.gather(*(self._deliver(url, body, headers, record) for url in urls))
        except asyncio.CancelledError:
            raise
        except Exception:  # a delivery task is a top level: log, never crash the server loop
            _log.exception("webhooks: delivery of %r failed", record.get("type"))

    async def _deliver(
        self, url: str, body: bytes, headers: dict[str, str], record: dict[str, Any]
    ) -> None:
        attempts, status, delay = 0, None, self._backoff
        while True:
            attempts += 1
            try:
                response = await self._http().post(url, content=body, headers=headers)
                status = response.status_code
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                status = None
                _log.info("webhooks: %s to %s: %s", record.get("type"), where(url), exc)
            if not self.retry(status) or attempts > self._max_retries:
                break
            await asyncio.sleep(delay)
            delay *= 2
        ok = status is not None and 200 <= status < 300
        self._remember(
            self.deliveries,
            {**record, "url": where(url), "status": status, "attempts": attempts,
             "outcome": "delivered" if ok else "dropped"},
        )  # fmt: skip

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            # trust_env=False: deliveries go straight to the URL, never through a proxy.
            self._client = httpx.AsyncClient(timeout=self._timeout, trust_env=False)
        return self._client

    def _remember(self, bucket: list[_T], item: _T) -> None:
        bucket.append(item)
        if len(bucket) > self._history:
            del bucket[: len(bucket) - self._history]
