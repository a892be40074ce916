"""Serving ASGI apps on uvicorn: the listening socket and the event loop, shared by every server.

The GHL sandbox, the partner sandboxes and the webhook receiver all run on uvicorn with
httptools. They bind their socket themselves (so a caller that reads the printed URL can
connect before uvicorn takes over, and port 0 can pick a free port) and prefer uvloop.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

from connector.errors import ConnectorError

__all__ = ["bind_socket", "loop_factory"]


def bind_socket(host: str, port: int, *, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one), inheritable by workers.

    :raises ConnectorError: the address cannot be listened on (in use, not this machine's).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        # Listen now, so clients that read the banner can connect before uvicorn takes over.
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise ConnectorError(
            f"{host}:{port}: cannot listen: {exc.strerror or exc} [use another --port]"
        ) from exc
    sock.set_inheritable(True)
    return sock


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop's event loop when installed (faster), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop
