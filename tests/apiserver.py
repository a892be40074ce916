"""A real ``ghl-connector api`` server for tests: the API app on its thread-per-connection
server (:mod:`connector.service.threadserver`, the fast route included) on 127.0.0.1 (in a thread), over a fresh state file (or the store at a given location) whose default connection reaches
the GHL sandbox, with API keys made as ``api keys create`` makes them."""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType

import httpx

from connector.api.app import build_app, fast_route, refusal
from connector.api.context import Api
from connector.api.runtimes import RuntimeOptions, Runtimes
from connector.auth.connection import ConnectionStore
from connector.auth.tokens import set_token
from connector.catalog import Catalog
from connector.client.retry import RetryPolicy
from connector.documents.payload import MAX_BYTES
from connector.sandbox.server import SandboxServer
from connector.service.listener import bind_socket, socket_url
from connector.service.threadserver import ThreadServer
from connector.store import Store


class ApiServer:
    """The API over ``catalog`` with ``sandbox`` behind it; ``keys`` holds an all-actions key
    (``all``), a read-only one (``reader``) and one limited to contacts (``contacts``)."""

    def __init__(self, catalog: Catalog, sandbox: SandboxServer, folder: Path,
                 location: Path | str | None = None, *, fast: bool = True) -> None:
        self.catalog = catalog
        self.sandbox = sandbox
        self.store = Store(location or folder / "state.db")
        set_token(ConnectionStore(self.store), name="default", token=sandbox.private_token,
                  base_url=sandbox.base_url, location_id=sandbox.location_id)
        options = RuntimeOptions(retry=RetryPolicy(attempts=1))
        self.api = Api(catalog, self.store, Runtimes(catalog, self.store, options))
        self.keys = {
            "all": self.api.keys.create("all")[1],
            "reader": self.api.keys.create("reader", read_only=True)[1],
            "contacts": self.api.keys.create("contacts", ["ghl.contacts.*"])[1],
        }
        sock = bind_socket("127.0.0.1", 0)
        self.url = socket_url(sock)
        self.server = ThreadServer(build_app(self.api), sock,
                                   fast=fast_route(self.api) if fast else None,
                                   refusal=refusal, max_body=MAX_BYTES, name="api")
        self.thread = threading.Thread(target=self.server.run, name="api", daemon=True)

    def __enter__(self) -> ApiServer:
        self.thread.start()
        self.client = httpx.Client(base_url=self.url, timeout=30)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.client.close()
        self.server.stop()
        self.thread.join(20)
        self.api.close()
        self.store.close()

    def headers(self, key: str = "all", **more: str) -> dict[str, str]:
        return {"X-API-Key": self.keys[key], **more}

    def post(self, action: str, body: object, key: str = "all", **kwargs: object) -> httpx.Response:
        headers = {**self.headers(key), **kwargs.pop("headers", {})}  # type: ignore[dict-item]
        return self.client.post(f"/v1/actions/{action}", json=body, headers=headers, **kwargs)  # type: ignore[arg-type]
