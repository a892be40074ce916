"""Keeping secrets out of logs and messages: a registry of known secret values and redaction.

Two layers, so a secret is masked even when nobody knew it would be logged:

1. Known values. Whoever reads a secret (a token from the store, a client secret from the
   environment) calls :func:`register`; every later occurrence of that exact text is masked.
2. Shapes. ``Bearer <anything>``, ``Authorization: ...`` and ``access_token`` /
   ``refresh_token`` / ``client_secret`` / ``code`` / ``api_key`` fields, in JSON, form or query
   syntax, are masked whatever their value.

:func:`install_redaction` puts :class:`RedactingFilter` on the root logger, its handlers and the
``httpx``, ``httpcore`` and ``authlib`` loggers, and wraps the log-record factory so records of
*any* logger, at any level, are redacted before a handler sees them.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable

__all__ = ["MASK", "RedactingFilter", "install_redaction", "redact", "register"]

MASK = "***"
LIBRARY_LOGGERS = ("httpx", "httpcore", "authlib", "connector")
_MIN_SECRET_LENGTH = 6

_SECRET_FIELDS = (
    r"access_token|refresh_token|id_token|client_secret|api[_-]?key|password|code|token"
    r"|authorization|x-api-key"
)
_PATTERNS = (
    # Authorization: Bearer abc / "Authorization": "Bearer abc" / bearer abc
    re.compile(r"(?i)(\bbearer\s+)[^\s\"',;&}\]]+"),
    re.compile(r"(?i)(\bbasic\s+)[A-Za-z0-9+/=]{6,}"),
    # "field": "value" (JSON, Python repr)
    re.compile(rf"(?i)([\"']?\b(?:{_SECRET_FIELDS})\b[\"']?\s*:\s*[\"'])[^\"']+"),
    # field=value (forms, query strings, key=value logs)
    re.compile(rf"(?i)(\b(?:{_SECRET_FIELDS})=)[^\s&\"',;]+"),
)

# Every shape above needs one of these words: text without any of them skips the four passes.
_HINT = re.compile(
    r"(?i)bearer|basic|token|api[_-]?key|password|secret|authorization|\bcode\b"
)

_known: set[str] = set()
_known_lock = threading.Lock()
_known_pattern: re.Pattern[str] | None = None


def register(*values: str | None) -> None:
    """Remember secret values so :func:`redact` masks them wherever they appear.

    Values shorter than 6 characters are ignored (masking them would mangle ordinary text).
    """
    global _known_pattern
    fresh = {v for v in values if v and len(v) >= _MIN_SECRET_LENGTH} - _known
    if not fresh:
        return
    with _known_lock:
        _known.update(fresh)
        ordered = sorted(_known, key=len, reverse=True)
        _known_pattern = re.compile("|".join(re.escape(v) for v in ordered))


def redact(text: str) -> str:
    """``text`` with every known secret and every secret-shaped field masked as ``***``."""
    pattern = _known_pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    if _HINT.search(text) is None:
        return text
    for shape in _PATTERNS:
        text = shape.sub(lambda m: m.group(1) + MASK, text)
    return text


def _redact_record(record: logging.LogRecord) -> None:
    """Freeze a record's message (and traceback text) in redacted form."""
    if getattr(record, "_connector_redacted", False):
        return
    try:
        message = record.getMessage()
    except (TypeError, ValueError):
        message = f"{record.msg!s} {record.args!r}"
    record.msg = redact(message)
    record.args = None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    record.__dict__["_connector_redacted"] = True


class RedactingFilter(logging.Filter):
    """A filter that lets every record through, with its secrets masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record`` in place; always keep it."""
        _redact_record(record)
        return True


_FILTER = RedactingFilter()
_install_lock = threading.Lock()
_factory_installed = False


def install_redaction(*loggers: str) -> None:
    """Redact every log record from now on. Safe to call more than once.

    :param loggers: extra logger names to put the filter on (besides the root, ``httpx``,
        ``httpcore``, ``authlib`` and ``connector``).
    """
    global _factory_installed
    with _install_lock:
        root = logging.getLogger()
        targets = [root, *(logging.getLogger(n) for n in (*LIBRARY_LOGGERS, *loggers))]
        for target in targets:
            if _FILTER not in target.filters:
                target.addFilter(_FILTER)
            for handler in target.handlers:
                if _FILTER not in handler.filters:
                    handler.addFilter(_FILTER)
        if not _factory_installed:
            logging.setLogRecordFactory(_redacting_factory(logging.getLogRecordFactory()))
            _factory_installed = True


def _redacting_factory(
    inner: Callable[..., logging.LogRecord],
) -> Callable[..., logging.LogRecord]:
    """Wrap a log-record factory so each record is redacted as it is made."""

    def make(*args: object, **kwargs: object) -> logging.LogRecord:
        record = inner(*args, **kwargs)
        _redact_record(record)
        return record

    return make
