"""Running the HTTP API (``ghl-connector api``): the state file, the app, and the guarded
uvicorn server of :mod:`connector.service.listener` on ``host:port`` (127.0.0.1 by default).

Its first line on stdout says where it listens (``api: listening on http://HOST:PORT``), so a
caller that started it on port 0 knows where to connect. SIGINT/SIGTERM stop it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from connector.api.app import build_app
from connector.api.context import Api
from connector.api.runtimes import RuntimeOptions, Runtimes
from connector.catalog import Catalog
from connector.service.listener import bind_socket, guarded_server, serve_forever, socket_url
from connector.store import Store

__all__ = ["serve"]


def serve(
    catalog: Catalog,
    *,
    host: str,
    port: int,
    db: Path | None,
    options: RuntimeOptions,
    out: TextIO = sys.stdout,
) -> None:
    """Serve the API until a signal stops it.

    :raises ConnectorError: the state file cannot be opened, or the address listened on.
    """
    sock = bind_socket(host, port)
    with Store(db) as store:
        api = Api(catalog, store, Runtimes(catalog, store, options))
        try:
            server = guarded_server(build_app(api), log_level="warning")
            print(f"api: listening on {socket_url(sock)} (OpenAPI: "
                  f"{socket_url(sock, '/openapi.json')})", file=out, flush=True)  # fmt: skip
            serve_forever(server, sock)
        finally:
            api.close()
            sock.close()
