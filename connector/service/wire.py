"""The raw ASGI wire: reading a request's headers, body and query, writing JSON answers, and
cutting a connection without answering (a reset, for the sandboxes' fault injection).

The sandboxes are raw ASGI apps; the HTTP API reads its bodies with :func:`read_body` and
its fast route's headers with :func:`header_map`; these are their few shared steps."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

__all__ = [
    "TRANSPORT_KEY",
    "Disconnected",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "cut",
    "header",
    "header_map",
    "parse_query",
    "read_body",
    "send_json",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

TRANSPORT_KEY = "sandbox.transport"
_JSON = (b"content-type", b"application/json; charset=utf-8")


def header(scope: Scope, name: bytes) -> str | None:
    """A request header's value (names are lower-case in ASGI), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def header_map(raw: Sequence[tuple[bytes, bytes]]) -> dict[str, str]:
    """A request's headers by lower-case name (the first of repeated names wins, as
    Starlette's ``Headers.get`` has it)."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in reversed(raw)}


class Disconnected(Exception):
    """The client went away before the request's body ended (there is no one to answer)."""


def parse_query(raw: bytes) -> dict[str, str]:
    """The query string as a dict (the last value wins for repeated names)."""
    if not raw:
        return {}
    return dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None when it is longer than ``limit`` bytes.

    :raises Disconnected: the client went away before the body ended."""
    declared = header(scope, b"content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        return None
    chunks = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            raise Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


async def send_json(
    send: Send, status: int, body: object, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """Answer with ``body`` as compact JSON (a 204 has no body)."""
    payload = b"" if status == 204 else json.dumps(body, separators=(",", ":")).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [_JSON, (b"content-length", str(len(payload)).encode()), *headers],
    })
    await send({"type": "http.response.body", "body": payload})


async def cut(scope: Scope) -> bool:
    """Close the connection without answering, as a dropped connection or reset looks.

    Needs the server's protocol to put its transport in ``scope["state"]`` (``server.py``
    does). :returns: False when no transport is known (the caller must answer instead).
    """
    transport = scope.get("state", {}).get(TRANSPORT_KEY)
    if transport is None:
        return False
    transport.abort()
    # Let the server notice the lost connection before the app returns, so it does not try
    # to answer on a dead transport.
    for _ in range(3):
        await asyncio.sleep(0)
    return True
