"""The service's log format: one JSON object per line, secrets redacted.

Each line holds ``time`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger`` and
``message``, the members of a record's ``fields`` extra (``log.info("...", extra={"fields":
{...}})``), and ``error`` with the traceback when there is one. Redaction is
:func:`connector.auth.redaction.install_redaction`: records are masked as they are made.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping
from typing import TextIO

from connector.auth.redaction import install_redaction

__all__ = ["JsonFormatter", "configure_logging", "follow_level", "library_level"]

_LIBRARIES = ("alembic", "uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "httpx",
              "httpcore")
"""Libraries whose INFO lines are noise for us (alembic's plugin set-up at every open,
uvicorn's start banner, httpx's request lines): they log at WARNING and above, or at DEBUG when
the level is DEBUG, so ``--log-level ERROR`` silences their warnings too."""


class JsonFormatter(logging.Formatter):
    """One JSON object per log line: time, level, logger, message (and the traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            data.update(fields)
        if record.exc_info:
            data["error"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send every log record to ``stream`` (stderr) as redacted JSON lines, at ``level``."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    follow_level(level)
    install_redaction()


def library_level(level: str | int | None = None) -> str:
    """The level the chatty libraries log at for ``level`` (default: the root logger's):
    ``DEBUG`` stays ``DEBUG``, ``INFO`` becomes ``WARNING``, higher levels stay as they are.
    Upper-case, as :mod:`logging` names it (uvicorn wants it lower-cased)."""
    number = logging.getLogger().level if level is None else logging.getLevelName(level)
    if isinstance(number, str):  # an unknown name
        number = logging.WARNING
    if number != logging.DEBUG:
        number = max(number, logging.WARNING)
    return logging.getLevelName(number)


def follow_level(level: str) -> None:
    """Set the root logger to ``level`` and the libraries' loggers to :func:`library_level`."""
    logging.getLogger().setLevel(level)
    for name in _LIBRARIES:
        logging.getLogger(name).setLevel(library_level(level))
