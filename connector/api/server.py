"""Running the HTTP API (``ghl-connector api``): the state file, the app, and the guarded
thread-per-connection server of :mod:`connector.service.threadserver` on ``host:port``
(127.0.0.1 by default).

Its first line on stdout says where it listens (``api: listening on http://HOST:PORT``), so a
caller that started it on port 0 knows where to connect; the next lines say where the web
console (``/console/``, :mod:`connector.console`, a login beyond loopback) and the Prometheus
metrics (``/metrics``) are, mounted in front of the API as ``serve`` mounts them.
SIGINT/SIGTERM stop it.
"""

from __future__ import annotations

import sys
from typing import TextIO

from connector.api.app import build_app, fast_route, refusal
from connector.api.context import Api
from connector.api.runtimes import RuntimeOptions, Runtimes
from connector.catalog import Catalog
from connector.console.app import ServiceApp
from connector.console.mount import console_banner, service_console
from connector.documents.payload import MAX_BYTES
from connector.service.listener import bind_socket, socket_url
from connector.service.threadserver import ThreadServer
from connector.store import Store

__all__ = ["serve"]


def serve(
    catalog: Catalog,
    *,
    host: str,
    port: int,
    db: str | None,
    options: RuntimeOptions,
    out: TextIO = sys.stdout,
) -> None:
    """Serve the API until a signal stops it.

    :param db: the state (an SQLite path or a store URL; None: the default).

    :raises ConnectorError: the state file cannot be opened, or the address listened on.
    """
    sock = bind_socket(host, port)
    with Store(db) as store:
        runtimes = Runtimes(catalog, store, options)
        api = Api(catalog, store, runtimes)
        console, metrics = service_console(store, host, routes=tuple, catalog=catalog,
                                           rate_limits=runtimes.rate_limits, replay=None)
        try:
            app = ServiceApp(console, build_app(api), metrics)
            server = ThreadServer(app, sock, fast=fast_route(api), refusal=refusal,
                                  max_body=MAX_BYTES, name="api")  # fmt: skip
            lines = [f"api: listening on {socket_url(sock)} (OpenAPI: "
                     f"{socket_url(sock, '/openapi.json')})",
                     *console_banner(socket_url(sock), console)]  # fmt: skip
            print("\n".join(lines), file=out, flush=True)
            server.serve_forever()
        finally:
            console.stopping.set()
            metrics.close()
            api.close()
            sock.close()
