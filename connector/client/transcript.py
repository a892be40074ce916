"""What went over the wire during one call: each request's method, redacted URL and the status
answered (or why none was), per attempt, kept for the run history and the console.

A :class:`Transcript` is opened with :func:`transcribing` (``Runtime.transcribing`` hands it to
the recipe engine) and lives in a :class:`contextvars.ContextVar`, so nothing in the plugin
contract changes: :class:`~connector.client.httpclient.HttpClient` (every ``call.client.send``)
and :class:`~connector.client.exchange.Exchange` (the ``http_request`` kind) note each attempt
themselves, and an executor that sends some other way notes its requests with
:func:`note_request` (``connector.note_request``). Outside a transcript noting costs one
context-variable read.

What is kept is bounded and safe to store: no headers and no body, ever; the URL without user
info or fragment, every secret-named query value and every registered secret masked
(:func:`connector.auth.redaction.redact`), cut to :data:`URL_CAP` characters; at most
:data:`KEPT_FIRST` first and :data:`KEPT_LAST` last attempts of a call (``total`` counts all).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import httpx

from connector.auth.redaction import redact

__all__ = [
    "KEPT_FIRST",
    "KEPT_LAST",
    "URL_CAP",
    "HttpNote",
    "Transcript",
    "note_request",
    "transcribing",
    "wire_url",
]

URL_CAP = 512
"""Characters of a URL kept (longer ones end in ``…``)."""
KEPT_FIRST = 2
"""The first requests of a call kept: what was sent at first."""
KEPT_LAST = 4
"""The last requests of a call kept: how it ended."""
_OUTCOME_CAP = 200


@dataclass(frozen=True, slots=True)
class HttpNote:
    """One request sent (one attempt) and what came back.

    :param method: upper-case method.
    :param url: the redacted, capped URL (scheme, host, port, path and query).
    :param status: the HTTP status answered, or ``None`` when no answer came.
    :param outcome: why there was no usable answer (``timeout``, ``cannot connect``...),
        else ``None``.
    :param attempt: the attempt number within one send (1 for the first try).
    :param elapsed_ms: how long the attempt took.
    :param at: when it was sent (epoch seconds).
    """

    method: str
    url: str
    status: int | None
    outcome: str | None = None
    attempt: int = 1
    elapsed_ms: float = 0.0
    at: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready data."""
        return {
            "method": self.method,
            "url": self.url,
            "status": self.status,
            "outcome": self.outcome,
            "attempt": self.attempt,
            "elapsed_ms": round(self.elapsed_ms, 3),
            "at": round(self.at, 3),
        }

    @classmethod
    def from_dict(cls, data: Any) -> HttpNote | None:
        """A note read back from stored JSON, or ``None`` when ``data`` is not one."""
        if not isinstance(data, dict):
            return None
        status, attempt = data.get("status"), data.get("attempt")
        outcome = data.get("outcome")
        return cls(
            method=str(data.get("method", "")),
            url=str(data.get("url", "")),
            status=status if isinstance(status, int) and not isinstance(status, bool) else None,
            outcome=outcome if isinstance(outcome, str) else None,
            attempt=attempt if isinstance(attempt, int) and not isinstance(attempt, bool) else 1,
            elapsed_ms=_number(data.get("elapsed_ms")),
            at=_number(data.get("at")),
        )


@dataclass(slots=True)
class Transcript:
    """The requests of one call (or one recipe step), bounded: the first :data:`KEPT_FIRST`
    and the last :data:`KEPT_LAST`; ``total`` counts every one noted."""

    first: list[HttpNote] = field(default_factory=list)
    last: deque[HttpNote] = field(default_factory=lambda: deque(maxlen=KEPT_LAST))
    total: int = 0

    def add(self, note: HttpNote) -> None:
        """Keep ``note`` (dropping the oldest of the last ones past the bound)."""
        self.total += 1
        if len(self.first) < KEPT_FIRST:
            self.first.append(note)
        else:
            self.last.append(note)

    @property
    def notes(self) -> list[HttpNote]:
        """The kept notes, oldest first."""
        return [*self.first, *self.last]

    @property
    def dropped(self) -> int:
        """How many notes between the first and the last ones were not kept."""
        return self.total - len(self.first) - len(self.last)


_CURRENT: ContextVar[Transcript | None] = ContextVar("connector_transcript", default=None)


@contextmanager
def transcribing() -> Iterator[Transcript]:
    """Note every request sent in this context (thread or task) until the block ends.

    Nested blocks each get their own transcript; requests go to the innermost one.
    """
    transcript = Transcript()
    token = _CURRENT.set(transcript)
    try:
        yield transcript
    finally:
        _CURRENT.reset(token)


def recording() -> bool:
    """Whether a transcript is open here (callers may skip building a note when not)."""
    return _CURRENT.get() is not None


def note_request(
    method: str,
    url: str | httpx.URL,
    status: int | None,
    *,
    outcome: str | None = None,
    attempt: int = 1,
    elapsed_ms: float = 0.0,
) -> None:
    """Note one request sent and the status answered (``None`` and an ``outcome`` when no answer
    came) in the open transcript, if any: for executors that send outside ``call.client``.

    The URL is redacted and cut here; headers and bodies are never taken.
    """
    transcript = _CURRENT.get()
    if transcript is None:
        return
    text = None if outcome is None else _cut(redact(" ".join(outcome.split())), _OUTCOME_CAP)
    transcript.add(HttpNote(
        method=method.upper()[:16], url=wire_url(url), status=status, outcome=text,
        attempt=attempt, elapsed_ms=elapsed_ms, at=time.time(),
    ))  # fmt: skip


def wire_url(url: str | httpx.URL) -> str:
    """``url`` fit to store: no user info nor fragment, secrets masked, cut to
    :data:`URL_CAP` characters."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        bare = parsed.copy_with(username=None, password=None, fragment=None)
        text = str(bare)
    except (httpx.InvalidURL, TypeError, ValueError):
        text = str(url).split("#", 1)[0]
        if "@" in text.split("?", 1)[0]:
            scheme, _, rest = text.partition("://")
            text = f"{scheme}://{rest.split('@', 1)[1]}" if rest else text
    return _cut(redact(text), URL_CAP)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
