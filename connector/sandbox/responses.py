"""GHL-shaped answers: the error bodies HighLevel's NestJS API sends, and :class:`ApiError`.

Bodies follow the spec's common DTOs (``common/common-schemas.json``): ``BadRequestDTO``
``{statusCode, message}``, ``UnauthorizedDTO`` ``{statusCode, message, error}`` and
``UnprocessableDTO`` ``{statusCode, message: [...], error}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "PHRASES",
    "ApiError",
    "bad_request",
    "error_body",
    "not_found",
    "unprocessable",
]

PHRASES: dict[int, str] = {
    200: "OK",
    201: "Created",
    302: "Found",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def error_body(status: int, message: str | Sequence[str], *, error: bool = True) -> dict[str, Any]:
    """A NestJS error body: ``{statusCode, message, error}`` (``error`` left out when False)."""
    body: dict[str, Any] = {
        "statusCode": status,
        "message": message if isinstance(message, str) else list(message),
    }
    if error:
        body["error"] = PHRASES.get(status, "Error")
    return body


class ApiError(Exception):
    """An HTTP error answer: raised by handlers, turned into a response by the app."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"sandbox: {status} {body.get('message')!r}")
        self.status = status
        self.body = body


def bad_request(message: str, **extra: object) -> ApiError:
    """A 400 the way GHL sends it for a failed lookup or a rejected value (``BadRequestDTO``)."""
    body = error_body(400, message, error=False)
    body.update(extra)
    return ApiError(400, body)


def unprocessable(messages: Sequence[str]) -> ApiError:
    """A 422 from GHL's validation pipe: one message per problem."""
    return ApiError(422, error_body(422, messages))


def not_found(method: str, path: str) -> ApiError:
    """The 404 NestJS answers for a route it does not have."""
    return ApiError(404, error_body(404, f"Cannot {method} {path}"))
