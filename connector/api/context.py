"""What the HTTP API's routes share: :class:`Api` (the catalog, the state file and what lives
in it, the connections' runtimes), the API-key check and the bounded body read."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.responses import Response

from connector.api.answers import encode, error, json_answer
from connector.api.apikeys import ApiKey, ApiKeys
from connector.api.idempotency import Idempotency
from connector.api.runtimes import Runtimes
from connector.catalog import Catalog
from connector.documents.payload import MAX_BYTES
from connector.service import wire
from connector.store import Store

__all__ = ["API_KEY_HEADER", "Api", "authorize", "ok", "permit", "presented_key", "read_body"]

API_KEY_HEADER = "X-API-Key"
_PLACEHOLDER = "http://ghl-connector.invalid/server-url"
WORKERS = 40
"""Threads that run requests (the runtime's I/O is synchronous): calls in flight at once."""
T = TypeVar("T")


@dataclass
class Api:
    """What the API's routes share: the catalog, the state file and what lives in it, and
    the runtimes of the connections."""

    catalog: Catalog
    store: Store
    runtimes: Runtimes
    keys: ApiKeys = field(init=False)
    idempotency: Idempotency = field(init=False)
    _document: bytes | None = field(default=None, init=False, repr=False)
    _pool: ThreadPoolExecutor = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.keys = ApiKeys(self.store)
        self.idempotency = Idempotency(self.store)
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="api")

    async def run(self, work: Callable[..., T], *args: Any) -> T:  # noqa: ANN401
        """``work(*args)`` in one of the API's threads. The thread hands its result (or
        exception) straight to an asyncio future with one ``call_soon_threadsafe``: lighter
        than ``run_in_executor``, which chains a second future to the executor's."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def job() -> None:
            try:
                result = work(*args)
            except BaseException as exc:  # noqa: BLE001  # handed to the awaiting request
                loop.call_soon_threadsafe(_settle, future, None, exc)
            else:
                loop.call_soon_threadsafe(_settle, future, result, None)

        self._pool.submit(job)
        return await future

    def openapi(self, server_url: str) -> bytes:
        """The OpenAPI 3.1 document of this API at ``server_url``: built and encoded once,
        the server's URL put in per request (so no Host header makes it build again)."""
        with self._lock:
            found = self._document
        if found is None:
            from connector.api.openapi import document

            found = encode(document(self.catalog, server_url=_PLACEHOLDER))
            with self._lock:
                self._document = found
        return found.replace(encode(_PLACEHOLDER), encode(server_url), 1)

    def close(self) -> None:
        """Stop the threads and close the runtimes' clients (the store is the caller's)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.runtimes.close()


def _settle(future: asyncio.Future[T], result: T | None, exc: BaseException | None) -> None:
    if future.cancelled():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)  # type: ignore[arg-type]  # result is a T when exc is None


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The API key a request carries, if any (``headers``: Starlette's, or
    :func:`connector.service.wire.header_map`'s, whose names are lower-case)."""
    key = headers.get(API_KEY_HEADER.lower())
    if key:
        return key
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def authorize(api: Api, presented: str | None) -> ApiKey | Response:
    """The live key ``presented`` is, or the 401 answer."""
    key = api.keys.check(presented)
    if key is None:
        return error(
            401,
            "a valid API key is required [send it in the X-API-Key header, or in the Authorization"
            " header (scheme: Bearer); create one with 'ghl-connector api keys create NAME']",
            headers={"WWW-Authenticate": 'Bearer realm="ghl-connector"'},
        )
    return key


def permit(
    key: ApiKey, item_id: str | None, *, write: bool = False, doing: str = ""
) -> Response | None:
    """The 403 answer when ``item_id`` (an action or trigger id) is outside the key's globs,
    or ``write`` with a read-only key (``doing``: what was refused, default: calling
    ``item_id``); None when the key may."""
    if item_id is not None and not key.allows(item_id):
        return error(403, f"API key {key.name!r} may not use {item_id!r} (its actions: "
                          f"{', '.join(key.actions)})")  # fmt: skip
    if write and key.read_only:
        refused = doing or f"{item_id or 'this'} may write"
        return error(403, f"API key {key.name!r} is read-only; {refused}")
    return None


async def read_body(scope: wire.Scope, receive: wire.Receive, limit: int = MAX_BYTES
                    ) -> bytes | Response:
    """The request body, or a 413 answer past ``limit`` bytes (a 400 one, which nobody reads,
    when the client went away mid-body)."""
    try:
        body = await wire.read_body(scope, receive, limit)
    except wire.Disconnected:
        return error(400, "the client went away before the body ended")
    if body is None:
        return error(413, f"request body larger than {limit} bytes")
    return body


def ok(value: Any) -> Response:  # noqa: ANN401  # any JSON
    """A 200 JSON answer."""
    return json_answer(value)
