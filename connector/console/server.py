"""The console on its own port, without a service (the demo): :class:`ConsoleServer`.

It serves ``/console`` and ``/metrics`` of one state file from a background thread, through
the same guarded HTTP server as ``serve``; other paths answer 404. Without workers, dead
letters can be discarded here but replayed only with ``ghl-connector replay``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from types import TracebackType
from typing import Any

from starlette.responses import PlainTextResponse

from connector.activity import BUS
from connector.console.access import is_loopback
from connector.console.app import CONSOLE_PATH, ServiceApp
from connector.console.metrics import Metrics
from connector.console.state import ConsoleState
from connector.service.listener import ServerThread, bind_socket, guarded_server, socket_url
from connector.store import Store

__all__ = ["ConsoleServer"]


async def _not_found(scope: MutableMapping[str, Any], receive: Callable[[], Awaitable[Any]],
                     send: Callable[[Any], Awaitable[None]]) -> None:
    if scope["type"] == "http":
        await PlainTextResponse("not found: the console is at /console/", 404)(
            scope, receive, send)


class ConsoleServer:
    """``/console`` and ``/metrics`` of ``store`` on ``host:port`` (0: a free port).

    Use it as a context manager; :attr:`url` is the console's URL once entered.
    """

    def __init__(self, store: Store, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = ConsoleState(store, login_required=not is_loopback(host))
        self.metrics = Metrics(store, BUS)
        self._sock = bind_socket(host, port)
        self.url = socket_url(self._sock, CONSOLE_PATH + "/")
        app = ServiceApp(self.state, _not_found, self.metrics)
        self._thread = ServerThread(
            guarded_server(app, log_config=None, timeout_graceful_shutdown=1), self._sock,
            name="console-http",
        )

    def __repr__(self) -> str:
        return f"ConsoleServer({self.url!r})"

    def __enter__(self) -> ConsoleServer:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.state.stopping.set()
        self.metrics.close()
        self._thread.stop()
        self._sock.close()
