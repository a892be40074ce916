"""Running the LinkedPhone sandbox: in a background thread (:class:`LinkedPhoneSandboxServer`,
for tests) or in the foreground (:func:`serve`, for ``python -m connector.sandbox.linkedphone``).

It runs on uvicorn like the GHL sandbox, with the same coalescing transport lent to each request
so a fault can cut the connection (:func:`connector.sandbox.wire.cut`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import socket
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, TextIO, TypeVar

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from connector.sandbox.linkedphone import control
from connector.sandbox.linkedphone.app import ACCOUNT, LinkedPhoneApp
from connector.sandbox.linkedphone.config import LinkedPhoneConfig
from connector.sandbox.transport import CoalescingTransport
from connector.sandbox.wire import TRANSPORT_KEY

__all__ = ["LinkedPhoneSandboxServer", "banner", "serve"]

_T = TypeVar("_T")
_log = logging.getLogger(__name__)
_START_TIMEOUT = 10.0
_NOT_STARTED = "LinkedPhoneSandboxServer: not started [use it as a context manager]"


class _Protocol(HttpToolsProtocol):
    """uvicorn's httptools protocol lending each request its transport (for cut connections)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # uvicorn narrows asyncio's type
        super().connection_made(CoalescingTransport(transport, asyncio.get_running_loop()))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["state"][TRANSPORT_KEY] = self.transport


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)  # listen now: a client that read the banner may connect at once
    sock.set_inheritable(True)
    return sock


def _uvicorn(app: LinkedPhoneApp, *, own_logging: bool) -> uvicorn.Server:
    config = uvicorn.Config(
        app, http=_Protocol, lifespan="off", access_log=False, log_level=app.config.log_level,
        server_header=False, timeout_graceful_shutdown=1,
        log_config=uvicorn.config.LOGGING_CONFIG if own_logging else None,
    )
    return uvicorn.Server(config)


def banner(app: LinkedPhoneApp) -> str:
    """What :func:`serve` prints: the base URL, then ``name: value`` lines, then a blank line."""
    lines = [app.base_url, f"api_key: {app.api_key}", "api_key_header: X-Api-Key",
             f"webhook_secret: {app.webhook_secret}", "signature_header: X-LinkedPhone-Signature",
             ""]
    return "\n".join(lines) + "\n"


def serve(config: LinkedPhoneConfig, out: TextIO) -> None:
    """Run the sandbox in the foreground until SIGINT/SIGTERM, printing :func:`banner` first."""
    sock = _bind(config.host, config.port)
    app = LinkedPhoneApp(dataclasses.replace(config, port=sock.getsockname()[1]))
    server = _uvicorn(app, own_logging=True)
    out.write(banner(app))
    out.flush()

    async def main() -> None:
        try:
            await server.serve(sockets=[sock])
        finally:
            await app.sender.aclose(1.0)

    asyncio.run(main())


class LinkedPhoneSandboxServer:
    """The sandbox on a free 127.0.0.1 port, served from a background thread with its own loop.

    Use it as a context manager; every method runs on the server's loop, so it is safe to call
    from the test thread::

        with LinkedPhoneSandboxServer(seed_contacts=3) as lp:
            httpx.get(f"{lp.base_url}/contacts", headers={"X-Api-Key": lp.api_key})

    :param config: the settings; keyword ``overrides`` replace single fields of it.
    """

    def __init__(self, config: LinkedPhoneConfig | None = None, **overrides: Any) -> None:  # noqa: ANN401  # replace() checks them
        self._config = dataclasses.replace(config or LinkedPhoneConfig(), **overrides)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._app: LinkedPhoneApp | None = None
        self._failure: BaseException | None = None

    def __repr__(self) -> str:
        return f"LinkedPhoneSandboxServer(base_url={self.base_url if self._app else None!r})"

    @property
    def app(self) -> LinkedPhoneApp:
        """The running app (read its state in tests; change it only through :meth:`call`)."""
        if self._app is None:
            raise RuntimeError(_NOT_STARTED)
        return self._app

    def start(self) -> LinkedPhoneSandboxServer:
        """Bind, start the thread, and wait until the server accepts connections."""
        sock = _bind(self._config.host, self._config.port)
        self._app = LinkedPhoneApp(dataclasses.replace(self._config, port=sock.getsockname()[1]))
        self._server = _uvicorn(self._app, own_logging=False)
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(sock, ready), daemon=True,
                                        name="linkedphone-sandbox")
        self._thread.start()
        if not ready.wait(_START_TIMEOUT) or self._failure is not None:
            self.stop()
            raise RuntimeError(f"LinkedPhoneSandboxServer: did not start: {self._failure!r}")
        return self

    def _run(self, sock: socket.socket, ready: threading.Event) -> None:
        assert self._server is not None and self._app is not None
        server, app = self._server, self._app

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            watcher = asyncio.create_task(_signal_when_started(server, ready))
            try:
                await server.serve(sockets=[sock])
            finally:
                watcher.cancel()
                await app.sender.aclose(1.0)

        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001  # thread top level: report, never die loudly
            _log.exception("linkedphone sandbox: the server thread failed")
            self._failure = exc
        finally:
            sock.close()
            ready.set()

    def stop(self) -> None:
        """Ask the server to exit and wait for its thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(_START_TIMEOUT)
            self._thread = None

    def __enter__(self) -> LinkedPhoneSandboxServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def call(self, function: Callable[[], _T], timeout: float = 10.0) -> _T:
        """Run ``function`` on the server's loop and return its result (or raise its error)."""
        return self.wait(_as_coroutine(function), timeout)

    def wait(self, awaitable: Awaitable[_T], timeout: float = 10.0) -> _T:
        """Await ``awaitable`` on the server's loop, from this thread."""
        if self._loop is None:
            raise RuntimeError(_NOT_STARTED)

        async def run() -> _T:
            return await awaitable

        future = asyncio.run_coroutine_threadsafe(run(), self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            raise TimeoutError(f"LinkedPhoneSandboxServer: call took over {timeout}s") from exc

    # -- what tests read and set ----------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return self.app.base_url

    @property
    def api_key(self) -> str:
        """The account's API key (send it in ``X-Api-Key``)."""
        return self.app.api_key

    @property
    def webhook_secret(self) -> str:
        """The shared secret that signs every webhook body."""
        return self.app.webhook_secret

    def headers(self) -> dict[str, str]:
        """The auth header for raw requests: ``{"X-Api-Key": <key>}``."""
        return {"X-Api-Key": self.api_key}

    def stats(self) -> dict[str, Any]:
        """Counters: see :meth:`LinkedPhoneApp.stats`."""
        return self.call(self.app.stats)

    def writes(self, route: str) -> int:
        """How many writes to ``route`` (``"POST /tasks"``) changed state."""
        routes = self.stats()["traffic"]["routes"]
        return int(routes.get(route, {}).get("writes", 0))

    def requests(self, route: str) -> int:
        """How many requests ``route`` received (admitted or not)."""
        return int(self.stats()["traffic"]["routes"].get(route, {}).get("requests", 0))

    def statuses(self, route: str) -> dict[str, int]:
        """The answers ``route`` gave, by status (``"0"``: connection cut)."""
        return dict(self.stats()["traffic"]["routes"].get(route, {}).get("statuses", {}))

    def record(self, kind: str, record_id: str) -> dict[str, Any] | None:
        """A copy of one stored record (``kind``: contacts, tasks or notes), or None."""
        def read() -> dict[str, Any] | None:
            found = getattr(self.app.store, kind).get(record_id)
            return dict(found) if found is not None else None

        return self.call(read)

    def reset(self) -> None:
        """Back to seed data: no faults, zero counters, configured limit, no deliveries."""
        self.call(self.app.reset)

    def set_faults(self, *rules: Mapping[str, Any], replace: bool = True) -> list[dict[str, Any]]:
        """Install fault rules (see :class:`connector.sandbox.faults.FaultRule`)."""
        data = {"rules": [dict(r) for r in rules], "replace": replace}
        return self.call(lambda: control.add_faults(self.app, data))

    def set_limits(self, *, requests: int | None = None,
                   seconds: float | None = None) -> dict[str, Any]:
        """Change the rate limit (None keeps a value)."""
        data = {k: v for k, v in (("requests", requests), ("seconds", seconds)) if v is not None}
        return self.call(lambda: control.set_limits(self.app, data))

    def set_webhook_urls(self, urls: Sequence[str]) -> None:
        """Send every event to these URLs from now on."""
        self.call(lambda: self.app.sender.set_urls(urls))

    def drain_webhooks(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait for pending deliveries; return every delivery record so far."""
        self.wait(self.app.sender.drain(timeout), timeout + 1)
        return self.call(lambda: list(self.app.sender.deliveries))

    def sent_bodies(self) -> list[bytes]:
        """The raw webhook bodies sent so far, in order."""
        return self.call(lambda: list(self.app.sender.sent))

    def traffic_key(self) -> str:
        """The key the sandbox counts traffic under (one account)."""
        return ACCOUNT


async def _as_coroutine(function: Callable[[], _T]) -> _T:
    return function()


async def _signal_when_started(server: uvicorn.Server, ready: threading.Event) -> None:
    while not server.started:
        await asyncio.sleep(0.005)
    ready.set()
