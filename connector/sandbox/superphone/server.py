"""Running the SuperPhone sandbox: in a background thread (:class:`SuperPhoneSandboxServer`, for
tests) or in the foreground (:func:`serve`, for ``python -m connector.sandbox.superphone``).

The uvicorn protocol is the GHL sandbox server's, rebuilt here from the same generic parts (its
:class:`~connector.sandbox.transport.CoalescingTransport`, so an answer leaves in one segment,
and the transport lent to each request, so fault rules can cut a connection).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, TextIO, TypeVar

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from connector.sandbox.superphone import control
from connector.sandbox.superphone.app import ENDPOINT, SuperPhoneApp
from connector.sandbox.superphone.config import SuperPhoneConfig
from connector.sandbox.transport import CoalescingTransport
from connector.sandbox.wire import TRANSPORT_KEY

__all__ = ["SuperPhoneSandboxServer", "banner", "serve"]

_T = TypeVar("_T")
_log = logging.getLogger(__name__)
_START_TIMEOUT = 10.0


class _Protocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a :class:`CoalescingTransport` (one segment per
    answer), lending each request its transport so a fault can cut the connection."""

    # uvicorn types its parameter more narrowly than asyncio.Protocol does.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, asyncio.get_running_loop()))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["state"][TRANSPORT_KEY] = self.transport


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    return sock


def _uvicorn(app: SuperPhoneApp, *, own_logging: bool) -> uvicorn.Server:
    config = uvicorn.Config(
        app, http=_Protocol, lifespan="off", access_log=False, log_level=app.config.log_level,
        server_header=False, timeout_graceful_shutdown=1,
        log_config=uvicorn.config.LOGGING_CONFIG if own_logging else None,
    )
    return uvicorn.Server(config)


def banner(app: SuperPhoneApp) -> str:
    """What :func:`serve` prints: the base URL, then ``name: value`` lines, then a blank line."""
    return "\n".join([
        app.base_url,
        f"graphql_url: {app.base_url}{ENDPOINT}",
        f"api_key: {app.api_key}",
        f"webhook_secret: {app.config.webhook_secret}",
        "",
    ]) + "\n"


def serve(config: SuperPhoneConfig, out: TextIO) -> None:
    """Run the sandbox in the foreground until interrupted, printing :func:`banner` first."""
    sock = _bind(config.host, config.port)
    app = SuperPhoneApp(dataclasses.replace(config, port=sock.getsockname()[1]))
    server = _uvicorn(app, own_logging=True)
    out.write(banner(app))
    out.flush()

    async def main() -> None:
        try:
            await server.serve(sockets=[sock])
        finally:
            await app.sender.aclose(1.0)

    asyncio.run(main())


class SuperPhoneSandboxServer:
    """The SuperPhone sandbox on a free 127.0.0.1 port, served from a background thread.

    Use it as a context manager; every method runs on the server's loop, so it is safe to
    call from the test thread::

        with SuperPhoneSandboxServer() as sp:
            httpx.post(sp.graphql_url, json={"query": "{ contacts { totalCount } }"},
                       headers=sp.auth_headers())

    :param config: the settings; keyword ``overrides`` replace single fields of it.
    """

    def __init__(self, config: SuperPhoneConfig | None = None, **overrides: Any) -> None:
        self._config = dataclasses.replace(config or SuperPhoneConfig(), **overrides)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._app: SuperPhoneApp | None = None
        self._failure: BaseException | None = None

    def __repr__(self) -> str:
        return f"SuperPhoneSandboxServer(base_url={self.base_url if self._app else None!r})"

    @property
    def app(self) -> SuperPhoneApp:
        """The running app (read its state in tests; change it only through :meth:`call`)."""
        if self._app is None:
            raise RuntimeError("SuperPhoneSandboxServer: not started [use it as a context manager]")
        return self._app

    def start(self) -> SuperPhoneSandboxServer:
        """Bind, start the thread, and wait until the server accepts connections."""
        sock = _bind(self._config.host, self._config.port)
        self._app = SuperPhoneApp(dataclasses.replace(self._config, port=sock.getsockname()[1]))
        self._server = _uvicorn(self._app, own_logging=False)
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(sock, ready), daemon=True,
                                        name="superphone-sandbox")
        self._thread.start()
        if not ready.wait(_START_TIMEOUT) or self._failure is not None:
            self.stop()
            raise RuntimeError(f"SuperPhoneSandboxServer: did not start: {self._failure!r}")
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
            _log.exception("superphone sandbox: the server thread failed")
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

    def __enter__(self) -> SuperPhoneSandboxServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def call(self, function: Callable[[], _T], timeout: float = 10.0) -> _T:
        """Run ``function`` on the server's loop and return its result (or raise its error)."""
        if self._loop is None:
            raise RuntimeError("SuperPhoneSandboxServer: not started [use it as a context manager]")

        async def run() -> _T:
            return function()

        future = asyncio.run_coroutine_threadsafe(run(), self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            raise TimeoutError(f"SuperPhoneSandboxServer: call took over {timeout}s") from exc

    # -- what tests read and change ------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` (the GraphQL endpoint is :attr:`graphql_url`)."""
        return self.app.base_url

    @property
    def graphql_url(self) -> str:
        """``<base_url>/graphql``."""
        return self.app.base_url + ENDPOINT

    @property
    def api_key(self) -> str:
        """The account's API key."""
        return self.app.api_key

    @property
    def webhook_secret(self) -> str:
        """The shared secret that signs every webhook body."""
        assert self.app.config.webhook_secret is not None
        return self.app.config.webhook_secret

    def auth_headers(self) -> dict[str, str]:
        """``X-Api-Key`` with the account's key."""
        return {"X-Api-Key": self.api_key}

    def stats(self) -> dict[str, Any]:
        """Counters: see :meth:`SuperPhoneApp.stats`."""
        return self.call(self.app.stats)

    def writes(self, operation: str) -> int:
        """How many ``operation`` mutations (``"createContact"``) took effect."""
        return int(self.stats()["writes"].get(operation, 0))

    def requests(self, operation: str) -> int:
        """How many requests for ``operation`` (a root field) arrived with the right key."""
        routes = self.stats()["traffic"]["routes"]
        return int(routes.get(operation, {}).get("requests", 0))

    def reset(self) -> None:
        """Back to seed data: no faults, zero counters, no deliveries."""
        self.call(self.app.reset)

    def set_faults(self, *rules: Mapping[str, Any], replace: bool = True) -> list[dict[str, Any]]:
        """Install fault rules (see :class:`connector.sandbox.faults.FaultRule`)."""
        data = {"rules": [dict(r) for r in rules], "replace": replace}
        return self.call(lambda: control.add_faults(self.app, data))

    def set_limits(self, *, requests: int | None = None, seconds: float | None = None) -> None:
        """Change the rate limit (None keeps a value)."""
        data = {k: v for k, v in (("requests", requests), ("seconds", seconds)) if v is not None}
        self.call(lambda: control.set_limits(self.app, data))

    def set_webhook_urls(self, urls: Sequence[str]) -> None:
        """Send every event to these URLs from now on."""
        self.call(lambda: self.app.sender.set_urls(urls))

    def drain_webhooks(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait for pending deliveries; return every delivery record so far."""
        if self._loop is None:
            raise RuntimeError("SuperPhoneSandboxServer: not started [use it as a context manager]")
        future = asyncio.run_coroutine_threadsafe(self.app.sender.drain(timeout), self._loop)
        future.result(timeout + 1)
        return self.call(lambda: list(self.app.sender.deliveries))


async def _signal_when_started(server: uvicorn.Server, ready: threading.Event) -> None:
    while not server.started:
        await asyncio.sleep(0.005)
    ready.set()
