"""Keeping secrets out of logs and messages: a registry of known secret values and redaction.

Two layers, so a secret is masked even when nobody knew it would be logged:

1. Known values. Whoever reads a secret (a token from the store, a client secret from the
   environment) calls :func:`register`; every later occurrence of that exact text is masked.
2. Names. A value whose name says it is secret (:func:`is_secret_name`: ``X-Partner-Secret``,
   ``access_token``, ``api_key``, ``password``, ``Authorization``, ``code``...) is masked in
   headers, query strings, JSON bodies and raw text alike, whatever its value; so is
   ``Bearer <anything>``. The history, the ledger, dry runs, error messages and logs all mask
   through :func:`redact`, so they cannot disagree.

:func:`install_redaction` puts :class:`RedactingFilter` on the root logger, its handlers and the
``httpx``, ``httpcore`` and ``authlib`` loggers, and wraps the log-record factory so records of
*any* logger, at any level, are redacted before a handler sees them.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any

__all__ = [
    "MASK",
    "RedactingFilter",
    "install_redaction",
    "is_secret_name",
    "redact",
    "redact_json",
    "register",
]

MASK = "***"
LIBRARY_LOGGERS = ("httpx", "httpcore", "authlib", "connector")
_MIN_SECRET_LENGTH = 6

_NAME = r"[A-Za-z0-9_.\-]{1,64}"
_PATTERNS = (
    # Authorization: Bearer abc / "Authorization": "Bearer abc" / bearer abc
    re.compile(r"(?i)(?P<prefix>\bbearer\s+)[^\s\"',;&}\]\\]+"),
    re.compile(r"(?i)(?P<prefix>\bbasic\s+)[A-Za-z0-9+/=]{6,}"),
    # "name": "value" / 'name': 'value' / \"name\": \"value\" (JSON inside a JSON string)
    re.compile(
        rf"(?P<prefix>(?P<q>\\*[\"'])(?P<name>{_NAME})(?P=q)\s*:\s*(?P<v>\\*[\"']))"
        r"(?:(?!(?P=v))[^\r\n])+"
    ),
    # "name": 123456 (numbers and other bare values)
    re.compile(rf"(?P<prefix>(?P<q>\\*[\"'])(?P<name>{_NAME})(?P=q)\s*:\s*)(?=[\w.\-])[\w.+\-]+"),
    # name=value (forms, query strings, key=value logs)
    re.compile(rf"(?P<prefix>(?<![\w.\-])(?P<name>{_NAME})=)[^\s&\"'\\,;#]+"),
    # Name: value at the start of a line (headers, YAML), raw or escaped line breaks before it
    re.compile(
        rf"(?m)(?P<prefix>(?:^|(?<=\\n)|(?<=\\r))[ \t]*(?P<name>{_NAME})[ \t]*:[ \t]*)"
        r"(?![\s\"'\\])[^\r\n\"\\]+"
    ),
)

# Every shape above needs one of these words: text without any of them skips the passes.
_HINT = re.compile(
    r"(?i)bearer|basic|token|key|secret|passw|pwd|passphrase|auth|cookie|sig|credential|code"
    r"|session"
)
_MASKED = re.compile(r"(?i)(?:(?:bearer|basic)\s+)?\*+")
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_SECRET_WORDS = frozenset(
    {
        "secret", "password", "passwd", "passphrase", "pwd", "cookie", "signature",
        "credential", "credentials", "authorization", "apikey", "privatekey", "accesskey",
    }
)  # fmt: skip
_SECRET_LAST_WORDS = frozenset({"token", "auth", "sig"})
_SECRET_NAMES = frozenset({"code", "sessionid"})


def is_secret_name(name: str) -> bool:
    """Whether a header, query parameter or field called ``name`` holds a secret.

    The one rule for names, wherever they appear (headers, query strings, JSON bodies, raw
    text): a word of it is ``secret``, ``password``, ``cookie``, ``signature``,
    ``authorization``, ``credential``, ``apikey``... (``X-Partner-Secret``, ``Set-Cookie``,
    ``client_secret``); or its last word is ``token``, ``auth`` or ``sig`` (``access_token``,
    ``X-Auth-Token``, but not ``token_type`` nor a paging cursor such as ``nextPageToken``);
    or it ends in ``key`` after another word
    (``api_key``, ``X-Api-Key``, ``private_key``, but not ``key`` or ``keyword``); or it is
    ``code`` (an OAuth authorization code).
    """
    words = [word.lower() for word in _WORDS.findall(name)]
    if not words:
        return False
    if any(word in _SECRET_WORDS for word in words):
        return True
    last = words[-1]
    if last == "token" and len(words) > 1 and words[-2] in _PAGING_WORDS:
        return False  # nextPageToken, continuation_token: a cursor, not a credential
    if last in _SECRET_LAST_WORDS or (last == "key" and len(words) > 1):
        return True
    return "".join(words) in _SECRET_NAMES


_PAGING_WORDS = frozenset({"page", "continuation", "cursor", "sync", "next"})

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
    """``text`` with every known secret and every secret-named value masked as ``***``.

    Names are judged by :func:`is_secret_name`, in every syntax text carries them: JSON (also
    JSON escaped inside a JSON string, as a response's raw ``text`` is once its output is
    dumped), Python reprs, ``name=value`` (query strings, forms), ``Name: value`` lines
    (headers); and ``Bearer``/``Basic`` credentials anywhere.
    """
    pattern = _known_pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    if _HINT.search(text) is None:
        return text
    for shape in _PATTERNS:
        text = _masked(shape, text)
    return text


def redact_json(value: Any) -> Any:
    """A JSON value (a request preview, a step's output) with the same rule applied inside:
    a string or number under a secret name becomes ``***``, every other string (and key) is
    :func:`redact`-ed. Walked, not redacted as dumped text: masking ``"token": 123`` in text
    would leave ``"token": ***``, which is no longer JSON."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [redact_json(item) for item in value]
    if isinstance(value, dict):
        return {redact(key): _masked_value(key, item) for key, item in value.items()}
    return value


def _masked_value(name: str, value: Any) -> Any:
    """``value`` under ``name`` in a JSON object: ``***`` for a string or number under a secret
    name (one already masked, ``Bearer ****``, stays as it is), else walked."""
    if not is_secret_name(name) or isinstance(value, bool) or value == "":
        return redact_json(value)
    if isinstance(value, str):
        return value if _MASKED.fullmatch(value) else MASK
    return MASK if isinstance(value, int | float) else redact_json(value)


def _masked(shape: re.Pattern[str], text: str) -> str:
    """``text`` with the values ``shape`` finds masked where their name is secret.

    Not ``shape.sub``: a match of a harmless name must not swallow what follows it (the raw
    text of ``"text": "{\\"access_token\\": ...`` starts inside the value of ``text``), so
    the search resumes right after that name.
    """
    out: list[str] = []
    pos = 0
    while (match := shape.search(text, pos)) is not None:
        name = match.groupdict().get("name")
        if name is not None and not is_secret_name(name):
            out.append(text[pos : match.end("name")])
            pos = match.end("name")
            continue
        prefix = match.group("prefix")
        value = match.group(0)[len(prefix) :]
        if _MASKED.fullmatch(value):  # masked already (a preview's "Bearer ****")
            out.append(text[pos : match.end()])
        else:
            out.append(text[pos : match.start()] + prefix + MASK)
        pos = match.end()
    out.append(text[pos:])
    return "".join(out)


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
