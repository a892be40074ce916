"""The request an action sends and the reply it gets, as plain data independent of httpx.

:class:`RequestSpec` is what the runtime builds from an action's declaration and its flat
input (path, query and body side by side); the HTTP layer sends it. Keeping it as data lets
``--dry-run`` print exactly what would go out, and lets tests check it against the spec.
Credentials are never part of a RequestSpec: the HTTP layer adds them when sending.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

__all__ = ["Reply", "RequestSpec"]


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """One HTTP request, before credentials are added.

    :param method: upper-case HTTP method.
    :param path: the path with its parameters filled in (already percent-encoded).
    :param query: query parameters in order; values are strings.
    :param json: the JSON body, or ``None`` for no body.
    :param headers: non-secret headers the app or action declares (e.g. ``Version``).
    """

    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def target(self) -> str:
        """The path with its query string: what the request line carries."""
        return f"{self.path}?{urlencode(self.query)}" if self.query else self.path

    def url(self, base_url: str) -> str:
        """The absolute URL against ``base_url``."""
        return base_url.rstrip("/") + self.target

    def with_query(self, **values: str) -> RequestSpec:
        """A copy with the given query parameters set (replacing same-named ones)."""
        kept = tuple((k, v) for k, v in self.query if k not in values)
        return RequestSpec(
            self.method, self.path, kept + tuple(values.items()), self.json, self.headers
        )

    def with_json(self, **values: Any) -> RequestSpec:
        """A copy whose JSON body has the given properties set."""
        body = dict(self.json or {})
        body.update(values)
        return RequestSpec(self.method, self.path, self.query, body, self.headers)


def fill_path(template: str, values: Mapping[str, Any]) -> str:
    """Fill ``{name}`` placeholders of a path template, percent-encoding each value."""
    out = template
    for name, value in values.items():
        out = out.replace("{" + name + "}", quote(str(value), safe=""))
    return out


@dataclass(frozen=True, slots=True)
class Reply:
    """A response as the runtime sees it: status, headers (lower-case names) and parsed JSON."""

    status: int
    headers: Mapping[str, str]
    data: Any
    elapsed_ms: float = 0.0
