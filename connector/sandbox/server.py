"""Running the sandbox in-process: in a background thread (:class:`SandboxServer`, for tests) or
in the foreground (:func:`serve`, for the CLI and ``python -m connector.sandbox``)."""

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

from connector.sandbox import appointments, control
from connector.sandbox.app import SandboxApp
from connector.sandbox.config import SandboxConfig
from connector.sandbox.transport import CoalescingTransport
from connector.sandbox.wire import TRANSPORT_KEY
from connector.serving import bind_socket, loop_factory

__all__ = ["SandboxServer", "banner", "serve"]

_T = TypeVar("_T")
_log = logging.getLogger(__name__)
_START_TIMEOUT = 10.0


class _Protocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a :class:`CoalescingTransport`, lending each request
    its transport so the app can cut the connection."""

    # uvicorn types its parameter more narrowly than asyncio.Protocol does.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, asyncio.get_running_loop()))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["state"][TRANSPORT_KEY] = self.transport


def _uvicorn(app: SandboxApp, *, own_logging: bool) -> uvicorn.Server:
    config = uvicorn.Config(
        app, http=_Protocol, lifespan="off", access_log=False, log_level=app.config.log_level,
        server_header=False,
        timeout_graceful_shutdown=1, log_config=uvicorn.config.LOGGING_CONFIG if own_logging
        else None,
    )
    return uvicorn.Server(config)


def banner(app: SandboxApp) -> str:
    """What :func:`serve` prints: the base URL first, then credentials and keys, then a blank
    line. Each credential is a ``name: value`` line."""
    config = app.config
    keys = app.keys.public_pem()
    lines = [
        app.base_url,
        f"client_id: {config.client_id}",
        f"client_secret: {config.client_secret}",
        f"redirect_uris: {' '.join(config.redirect_uris)}",
        f"company_id: {config.company_id}",
        f"location_id: {config.location_id}",
        f"private_token: {app.private_token}",
        "webhook_public_key_ed25519:",
        keys["ed25519"].strip(),
        "webhook_public_key_rsa:",
        keys["rsa"].strip(),
        "",
    ]
    return "\n".join(lines) + "\n"


def serve(config: SandboxConfig, out: TextIO) -> None:
    """Run the sandbox in the foreground until SIGINT/SIGTERM, printing :func:`banner` to ``out``.

    :param config: the settings (``port`` 0 picks a free port).
    :param out: where the banner goes (flushed before serving).
    """
    sock = bind_socket(config.host, config.port)
    app = SandboxApp(dataclasses.replace(config, port=sock.getsockname()[1]))
    server = _uvicorn(app, own_logging=True)
    out.write(banner(app))
    out.flush()

    async def main() -> None:
        try:
            await server.serve(sockets=[sock])
        finally:
            await app.sender.aclose(1.0)

    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(main())


class SandboxServer:
    """The sandbox on a free 127.0.0.1 port, served from a background thread with its own loop.

    Use it as a context manager. Every Python API method runs on the server's loop, so it is
    safe to call from the test thread::

        with SandboxServer(seed_contacts=5) as ghl:
            httpx.get(f"{ghl.base_url}/contacts/{id}", headers=ghl.auth_headers())

    :param config: the settings; keyword ``overrides`` replace single fields of it.
    """

    def __init__(self, config: SandboxConfig | None = None, **overrides: Any) -> None:  # noqa: ANN401  # replace() checks them
        self._config = dataclasses.replace(config or SandboxConfig(), **overrides)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._app: SandboxApp | None = None
        self._failure: BaseException | None = None

    def __repr__(self) -> str:
        return f"SandboxServer(base_url={self.base_url if self._app else None!r})"

    @property
    def app(self) -> SandboxApp:
        """The running app (for reading state in tests; change it only through :meth:`call`)."""
        if self._app is None:
            raise RuntimeError("SandboxServer: not started [use it as a context manager]")
        return self._app

    def start(self) -> SandboxServer:
        """Bind, start the thread, and wait until the server accepts connections."""
        sock = bind_socket(self._config.host, self._config.port)
        self._app = SandboxApp(dataclasses.replace(self._config, port=sock.getsockname()[1]))
        self._server = _uvicorn(self._app, own_logging=False)
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(sock, ready), daemon=True,
                                        name="ghl-sandbox")
        self._thread.start()
        if not ready.wait(_START_TIMEOUT) or self._failure is not None:
            self.stop()
            raise RuntimeError(f"SandboxServer: did not start: {self._failure!r}")
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
            with asyncio.Runner(loop_factory=loop_factory()) as runner:
                runner.run(main())
        except BaseException as exc:  # noqa: BLE001  # thread top level: report, never die loudly
            _log.exception("sandbox: the server thread failed")
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

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- running things on the server's loop --------------------------------------------------

    def call(self, function: Callable[[], _T], timeout: float = 10.0) -> _T:
        """Run ``function`` on the server's loop and return its result (or raise its error)."""
        return self.wait(_as_coroutine(function), timeout)

    def wait(self, awaitable: Awaitable[_T], timeout: float = 10.0) -> _T:
        """Await ``awaitable`` on the server's loop, from this thread."""
        if self._loop is None:
            raise RuntimeError("SandboxServer: not started [use it as a context manager]")

        async def run() -> _T:
            return await awaitable

        future = asyncio.run_coroutine_threadsafe(run(), self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            raise TimeoutError(f"SandboxServer: call took over {timeout}s") from exc

    # -- what tests read ----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return self.app.base_url

    @property
    def config(self) -> SandboxConfig:
        """The settings in force (with the real port)."""
        return self.app.config

    @property
    def private_token(self) -> str:
        """A private integration token for the default location (contacts read and write)."""
        return self.app.private_token

    @property
    def location_id(self) -> str:
        """The default location."""
        return self.app.config.location_id

    @property
    def client_id(self) -> str:
        """The test OAuth client's id."""
        return self.app.config.client_id

    @property
    def client_secret(self) -> str:
        """The test OAuth client's secret."""
        return self.app.config.client_secret

    @property
    def redirect_uris(self) -> tuple[str, ...]:
        """The test OAuth client's redirect URIs."""
        return self.app.config.redirect_uris

    @property
    def public_keys(self) -> dict[str, str]:
        """The webhook public keys as PEM: ``{"ed25519": ..., "rsa": ...}``."""
        return self.app.keys.public_pem()

    def auth_headers(self, token: str | None = None) -> dict[str, str]:
        """``Authorization`` (the private token unless given) and ``Version`` headers."""
        return {"Authorization": f"Bearer {token or self.private_token}",
                "Version": "2021-07-28"}

    def stats(self) -> dict[str, Any]:
        """Counters: see :meth:`SandboxApp.stats`."""
        return self.call(self.app.stats)

    def location_stats(self, location_id: str | None = None) -> dict[str, Any]:
        """The traffic counters of one location (the default one unless given)."""
        empty: dict[str, Any] = {"requests": 0, "max_window": 0, "throttled": 0, "routes": {}}
        return dict(self.stats()["locations"].get(location_id or self.location_id, empty))

    def within_limits(self, location_id: str | None = None) -> bool:
        """Whether a location's traffic never exceeded the burst window and drew no 429."""
        seen = self.location_stats(location_id)
        return bool(seen["max_window"] <= self.app.limiter.requests and seen["throttled"] == 0)

    def writes(self, route: str, location_id: str | None = None) -> int:
        """How many writes to ``route`` (``"POST /contacts/"``) took effect."""
        routes = self.location_stats(location_id)["routes"]
        return int(routes.get(route, {}).get("writes", 0))

    def reset(self) -> None:
        """Back to seed data: no faults, zero counters, no OAuth grants, no deliveries."""
        self.call(self.app.reset)

    def set_faults(self, *rules: Mapping[str, Any], replace: bool = True) -> list[dict[str, Any]]:
        """Install fault rules (see :class:`connector.sandbox.faults.FaultRule`)."""
        data = {"rules": [dict(r) for r in rules], "replace": replace}
        return self.call(lambda: control.add_faults(self.app, data))

    def clear_faults(self) -> None:
        """Drop every fault rule."""
        self.call(self.app.faults.rules.clear)

    def set_limits(self, *, requests: int | None = None, seconds: float | None = None,
                   daily: int | None = None) -> dict[str, Any]:
        """Change the rate limits (None keeps a value)."""
        data = {k: v for k, v in (("requests", requests), ("seconds", seconds),
                                  ("daily", daily)) if v is not None}
        return self.call(lambda: control.set_limits(self.app, data))

    def set_webhook_urls(self, urls: Sequence[str]) -> None:
        """Send every event to these URLs from now on."""
        self.call(lambda: self.app.sender.set_urls(urls))

    def drain_webhooks(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait for pending webhook deliveries; return every delivery record so far."""
        self.wait(self.app.sender.drain(timeout), timeout + 1)
        return self.call(lambda: list(self.app.sender.deliveries))

    def sent_bodies(self) -> list[bytes]:
        """The raw webhook bodies sent so far (most recent last)."""
        return self.call(lambda: list(self.app.sender.sent_bodies))

    def add_appointment(self, contact_id: str, **fields: object) -> dict[str, Any]:
        """Book an appointment for a contact (emits ``AppointmentCreate``)."""
        return self.call(lambda: dict(appointments.create(self.app.store, self.app.emit,
                                                          contact_id, fields)))

    def update_appointment(self, appointment_id: str, **fields: object) -> dict[str, Any]:
        """Change an appointment (emits ``AppointmentUpdate``)."""
        return self.call(lambda: dict(appointments.update(self.app.store, self.app.emit,
                                                          appointment_id, fields)))

    def delete_appointment(self, appointment_id: str) -> None:
        """Delete an appointment (emits ``AppointmentDelete``)."""
        self.call(lambda: appointments.delete(self.app.store, self.app.emit, appointment_id))

    def expire_tokens(self) -> int:
        """Expire every OAuth access token now; return how many there were."""
        return self.call(self.app.provider.expire_access_tokens)


async def _as_coroutine(function: Callable[[], _T]) -> _T:
    return function()


async def _signal_when_started(server: uvicorn.Server, ready: threading.Event) -> None:
    while not server.started:
        await asyncio.sleep(0.005)
    ready.set()
