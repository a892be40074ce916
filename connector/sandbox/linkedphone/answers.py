"""LinkedPhone-shaped answers: the assumed error body ``{error, message}`` and :class:`ApiError`.

The catalog assumes (tools/apps/linkedphone.yaml, ``assumptions``) that LinkedPhone answers
errors as ``{"error": "<code>", "message": "<text>"}``; the connector's HTTP client shows the
``message`` in its error text.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ApiError", "error_body"]


def error_body(code: str, message: str) -> dict[str, Any]:
    """An error body: ``{"error": code, "message": message}``."""
    return {"error": code, "message": message}


class ApiError(Exception):
    """An HTTP error answer: raised by the sandbox's parts, turned into a response by the app.

    :param status: the HTTP status.
    :param code: the machine-readable ``error`` code (``not_found``, ``conflict``, ...).
    :param message: one line for people.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"linkedphone sandbox: {status} {code}: {message}")
        self.status = status
        self.body = error_body(code, message)
