"""Running a sandbox app on uvicorn, for every sandbox (GHL, SuperPhone, LinkedPhone).

:func:`serve_app` runs one in the foreground (the CLI and ``python -m``); :class:`Background`
runs one on a free 127.0.0.1 port in a thread with its own event loop (tests, the demo) and
lets the caller run functions on that loop. Both bind and run through
:mod:`connector.service.listener`, and speak through :class:`_Protocol`: uvicorn's httptools
protocol over a :class:`~connector.sandbox.transport.CoalescingTransport` (one TCP segment per
answer), lending each request its transport so a fault can cut the connection.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, ClassVar, Generic, Protocol, TextIO, TypeVar

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from connector.sandbox.transport import CoalescingTransport
from connector.service.listener import START_TIMEOUT, ServerThread, bind_socket, serve_forever
from connector.service.logformat import library_level
from connector.service.wire import TRANSPORT_KEY

__all__ = ["Background", "SandboxAppLike", "serve_app", "uvicorn_server"]

_T = TypeVar("_T")


class _Sender(Protocol):
    async def aclose(self, timeout: float = ...) -> None: ...


class SandboxAppLike(Protocol):
    """What a sandbox app offers the runner: ASGI, its settings, a base URL, a webhook sender."""

    @property
    def config(self) -> Any: ...

    @property
    def base_url(self) -> str: ...

    @property
    def sender(self) -> _Sender: ...

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None: ...

    def set_clock(self, clock: Callable[[], float] | None) -> None: ...


AppT = TypeVar("AppT", bound=SandboxAppLike)
ConfigT = TypeVar("ConfigT")


class _Protocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a :class:`CoalescingTransport`, lending each request
    its transport so the app can cut the connection."""

    # uvicorn types its parameter more narrowly than asyncio.Protocol does.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, asyncio.get_running_loop()))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["state"][TRANSPORT_KEY] = self.transport


def uvicorn_server(app: SandboxAppLike, *, own_logging: bool) -> uvicorn.Server:
    """A uvicorn server for ``app`` (no lifespan, no access log, quick graceful shutdown, and no
    proxy-headers middleware: nothing sits in front of a sandbox, and it costs every request)."""
    # Embedded (serve --sandbox, tests): uvicorn's loggers are the process's, so they follow
    # the process's level rather than the sandbox's own setting.
    level = app.config.log_level if own_logging else library_level().lower()
    config = uvicorn.Config(
        app, http=_Protocol, lifespan="off", access_log=False, log_level=level,
        server_header=False, timeout_graceful_shutdown=1, proxy_headers=False,
        log_config=uvicorn.config.LOGGING_CONFIG if own_logging else None,
    )  # fmt: skip
    return uvicorn.Server(config)


def serve_app(
    make_app: Callable[[ConfigT], AppT],
    config: ConfigT,
    out: TextIO,
    banner: Callable[[AppT], str],
) -> None:
    """Run a sandbox in the foreground until SIGINT/SIGTERM, printing its banner first.

    :param config: the settings (a dataclass with ``host`` and ``port``; port 0 picks one).
    """
    sock = bind_socket(config.host, config.port)  # type: ignore[attr-defined]  # dataclass config
    app = make_app(dataclasses.replace(config, port=sock.getsockname()[1]))  # type: ignore[type-var]
    server = uvicorn_server(app, own_logging=True)
    out.write(banner(app))
    out.flush()
    serve_forever(server, sock, on_exit=lambda: app.sender.aclose(1.0))


class Background(ABC, Generic[AppT, ConfigT]):
    """A sandbox on a free 127.0.0.1 port, served from a background thread with its own loop.

    Subclasses say how to build the app (:meth:`make_app`) and the default settings; use it as
    a context manager. :meth:`call` runs a function on the server's loop, so tests can read
    and change state safely from their own thread.

    :param config: the settings; keyword ``overrides`` replace single fields of it.
    """

    label: ClassVar[str] = "sandbox"

    def __init__(self, config: ConfigT, **overrides: Any) -> None:  # noqa: ANN401  # replace() checks them
        self._config: ConfigT = dataclasses.replace(config, **overrides)  # type: ignore[type-var]
        self._served: ServerThread | None = None
        self._app: AppT | None = None

    @abstractmethod
    def make_app(self, config: ConfigT) -> AppT:
        """The app for ``config`` (whose port is the bound one)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url if self._app else None!r})"

    @property
    def app(self) -> AppT:
        """The running app (read its state in tests; change it only through :meth:`call`)."""
        if self._app is None:
            raise RuntimeError(f"{type(self).__name__}: not started [use it as a context manager]")
        return self._app

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return self.app.base_url

    def start(self) -> Background[AppT, ConfigT]:
        """Bind, start the thread, and wait until the server accepts connections.

        :raises ConnectorError: the port cannot be listened on, or the server did not start.
        """
        sock = bind_socket(self._config.host, self._config.port)  # type: ignore[attr-defined]
        port = sock.getsockname()[1]
        app = self._app = self.make_app(dataclasses.replace(self._config, port=port))  # type: ignore[type-var]
        self._served = ServerThread(
            uvicorn_server(app, own_logging=False), sock, name=self.label,
            on_exit=lambda: app.sender.aclose(1.0),
        )  # fmt: skip
        self._served.start(START_TIMEOUT)
        return self

    def stop(self) -> None:
        """Ask the server to exit and wait for its thread."""
        if self._served is not None:
            self._served.stop(START_TIMEOUT)

    def __enter__(self: _B) -> _B:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def use_clock(self, clock: Callable[[], float] | None) -> None:
        """Stamp the sandbox's records by ``clock`` (epoch seconds) until the next reset;
        None: the wall clock. Tests order two moments with it instead of sleeping."""
        self.call(lambda: self.app.set_clock(clock))

    def call(self, function: Callable[[], _T], timeout: float = 10.0) -> _T:
        """Run ``function`` on the server's loop and return its result (or raise its error)."""
        return self.wait(_as_coroutine(function), timeout)

    def wait(self, awaitable: Awaitable[_T], timeout: float = 10.0) -> _T:
        """Await ``awaitable`` on the server's loop, from this thread."""
        loop = self._served.loop if self._served is not None else None
        if loop is None:
            raise RuntimeError(f"{type(self).__name__}: not started [use it as a context manager]")

        async def run() -> _T:
            return await awaitable

        future = asyncio.run_coroutine_threadsafe(run(), loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            raise TimeoutError(f"{type(self).__name__}: call took over {timeout}s") from exc


_B = TypeVar("_B", bound=Background[Any, Any])


async def _as_coroutine(function: Callable[[], _T]) -> _T:
    return function()

