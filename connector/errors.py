"""The exception hierarchy of the connector, and :class:`Location`, the "where" of an error.

Every error the connector raises on purpose is a :class:`ConnectorError`; the CLI prints
its message on one line and exits 1. Anything else is a bug and keeps its traceback.

```
ConnectorError          base; .location: Location | None
├── DocumentError       manifest/recipe/payload unreadable or fails its schema
├── RecipeError         valid recipe that cannot run (unknown action, bad step reference)
├── PluginError         plugin import/validation failure, duplicate ids
├── InputError          an action's input (or a CLI argument) fails validation
├── RemoteError         remote API failed: status >= 400, timeout, connection (.method .url .status)
│   ├── RateLimitError  the remote answered 429, or our own limiter's daily quota ran out
│   ├── AuthError       token missing, rejected, or its refresh refused
│   └── ResponseLimitError  an answer over the body cap, or not complete by the deadline
└── StoreError          persisted state could not be read or written
```

Messages have the shape ``where: what [hint]`` on one line, with ``!r`` around offending
values. No message ever holds a secret: callers pass values through
:func:`connector.auth.redaction.redact` (or never include them) before raising.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "AuthError",
    "ConnectorError",
    "DocumentError",
    "InputError",
    "Location",
    "PluginError",
    "Problem",
    "RateLimitError",
    "RecipeError",
    "RemoteError",
    "ResponseLimitError",
    "StoreError",
]


@dataclass(frozen=True, slots=True)
class Location:
    """Where in a document something is: file, 1-based line and column, and a JSON-path pointer."""

    file: str | None = None
    line: int | None = None
    column: int | None = None
    pointer: str = ""

    def __str__(self) -> str:
        parts = [self.file or "<input>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        where = ":".join(parts)
        return f"{where}: {self.pointer}" if self.pointer else where


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding about a document: where, what, and an optional hint."""

    location: Location
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        text = f"{self.location}: {self.message}"
        return f"{text} [{self.hint}]" if self.hint else text

    def as_dict(self) -> dict[str, object]:
        """The problem as JSON-ready data (for ``--json`` output)."""
        loc = self.location
        return {
            "file": loc.file,
            "line": loc.line,
            "column": loc.column,
            "path": loc.pointer,
            "message": self.message,
            "hint": self.hint,
        }


class ConnectorError(Exception):
    """Base of every error the connector raises on purpose."""

    def __init__(self, message: str, *, location: Location | None = None) -> None:
        self.location = location
        super().__init__(f"{location}: {message}" if location else message)


class DocumentError(ConnectorError):
    """A document (manifest, recipe, payload, schema) cannot be read or fails its schema.

    ``problems`` holds every finding; the message lists them one per line.
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems) or "invalid document")


class InputError(ConnectorError):
    """An action's input fails its schema; ``problems`` lists every field at fault."""

    def __init__(self, action_id: str, problems: Sequence[Problem]) -> None:
        self.action_id = action_id
        self.problems = tuple(problems)
        lines = "; ".join(
            f"{p.location.pointer or '(input)'}: {p.message}" + (f" [{p.hint}]" if p.hint else "")
            for p in problems
        )
        super().__init__(f"invalid input for {action_id}: {lines}")


class RecipeError(ConnectorError):
    """A recipe that is valid as a document but cannot run."""


class PluginError(ConnectorError):
    """A plugin failed to load or declared something inconsistent (e.g. a duplicate id)."""


class RemoteError(ConnectorError):
    """A remote API call failed: an error status, a timeout, or a connection failure.

    The message has the shape ``METHOD /path -> STATUS Reason: body`` (body cut short).
    """

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        url: str | None = None,
        status: int | None = None,
        body: str | None = None,
    ) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.body = body
        super().__init__(message)


class RateLimitError(RemoteError):
    """The remote answered 429 after all retries, or the daily quota is used up."""


class AuthError(RemoteError):
    """A token is missing, was rejected, or could not be refreshed."""


class ResponseLimitError(RemoteError):
    """An answer too big or too slow: its decoded body passed the size cap, or the exchange
    was not complete by its total deadline. Never retried: the server would do it again."""

    @classmethod
    def too_large(cls, method: str, url: str, status: int, limit: int) -> ResponseLimitError:
        """The decoded body of a ``status`` answer passed ``limit`` bytes."""
        return cls(
            f"{method} {url} -> {status}: response body larger than {limit} bytes (decoded) "
            "[CONNECTOR_HTTP_MAX_BODY sets the cap]",
            method=method,
            url=url,
            status=status,
        )

    @classmethod
    def too_slow(cls, method: str, url: str, seconds: float) -> ResponseLimitError:
        """No complete answer within ``seconds``, the exchange's total deadline."""
        return cls(
            f"{method} {url} -> no complete answer within {seconds:g}s, the total deadline "
            "[the server stalls or is too slow; CONNECTOR_HTTP_DEADLINE sets the deadline]",
            method=method,
            url=url,
        )


class StoreError(ConnectorError):
    """Persisted state (SQLite store, key file) could not be read or written."""
