"""The HTTP API's answers: JSON bodies, and every error as one documented shape.

An error answers ``{"error": {"status", "message", "source", "problems"?}}``:

- ``source: "api"``: the request itself (no or a bad API key 401, outside the key's actions
  403, unknown action 404, unreadable body 400, bad input 422 with ``problems``, each with its
  field ``path`` (a JSON pointer), ``message`` and ``hint``, exactly as ``call`` reports them);
- ``source: "connection"``: the connection cannot be used (unknown, needs a login, lacks a
  scope): 401 for an unusable token, 400 for a connection that does not exist;
- ``source: "remote"``: the app (GHL) answered an error: its 4xx status and message are kept
  (429 keeps ``Retry-After``); a 5xx, a timeout or a failed connection answers 502 (504 for
  a timeout) with the app's status in ``remote_status``.

Messages are the connector's own one-line messages, which never hold a secret
(:mod:`connector.errors`); they are passed through redaction once more all the same.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from connector.auth.redaction import redact
from connector.errors import (
    AuthError,
    ConnectorError,
    DocumentError,
    InputError,
    Problem,
    RateLimitError,
    RemoteError,
    ResponseLimitError,
)

__all__ = ["DRY_RUN_TYPE", "ERROR_SCHEMA", "error", "error_answer", "json_answer", "encode"]

DRY_RUN_TYPE = "application/vnd.ghl-connector.dry-run+json"
"""The media type of a dry run's answer (the request it would send)."""

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "message", "source"],
            "properties": {
                "status": {"type": "integer"},
                "message": {"type": "string"},
                "source": {"type": "string", "enum": ["api", "connection", "remote"]},
                "remote_status": {"type": ["integer", "null"]},
                "problems": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["path", "message"],
                        "properties": {
                            "path": {"type": "string"},
                            "message": {"type": "string"},
                            "hint": {"type": ["string", "null"]},
                        },
                    },
                },
            },
        }
    },
}
"""The JSON Schema of every error answer (``Error`` in the OpenAPI document)."""


def encode(value: Any) -> bytes:
    """``value`` as compact JSON bytes."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "surrogatepass"
    )


def json_answer(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer."""
    return Response(encode(value), status, headers, media_type="application/json")


def error(
    status: int,
    message: str,
    *,
    source: str = "api",
    problems: tuple[Problem, ...] = (),
    remote_status: int | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """An error answer of the documented shape."""
    body: dict[str, Any] = {"status": status, "message": redact(message), "source": source}
    if problems:
        body["problems"] = [
            {"path": p.location.pointer, "message": redact(p.message), "hint": p.hint}
            for p in problems
        ]
    if remote_status is not None:
        body["remote_status"] = remote_status
    return json_answer({"error": body}, status, headers)


def error_answer(exc: ConnectorError) -> Response:
    """The answer to a call that raised ``exc``."""
    text = str(exc)
    if isinstance(exc, InputError):
        return error(422, text, problems=exc.problems)
    if isinstance(exc, DocumentError):
        return error(400, text, problems=exc.problems)
    if isinstance(exc, RemoteError):
        status = exc.status
        if isinstance(exc, AuthError) and status is None:
            return error(401, text, source="connection")
        if isinstance(exc, RateLimitError):
            return error(429, text, source="remote", remote_status=status,
                         headers={"Retry-After": "10"})  # fmt: skip
        if status is not None and 400 <= status < 500:
            return error(status, text, source="remote", remote_status=status)
        gateway = 504 if isinstance(exc, ResponseLimitError) and status is None else 502
        if status is None and "timed out" in text.lower():
            gateway = 504
        return error(gateway, text, source="remote", remote_status=status)
    return error(400, text)
