"""Redaction of secrets in text and in log records of any logger."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from connector.auth.redaction import MASK, RedactingFilter, redact, register

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer abc.def-ghi_123", "abc.def-ghi_123"),
        ('{"access_token": "tok-123456", "token_type": "Bearer"}', "tok-123456"),
        ("{'refresh_token': 'rt-abcdef'}", "rt-abcdef"),
        ("grant_type=refresh_token&refresh_token=rt-987654&client_id=x", "rt-987654"),
        ("client_secret=cs-1234567&code=xyz", "cs-1234567"),
        ("GET /callback?code=authcode-42&state=s", "authcode-42"),
        ("headers={'authorization': 'Bearer zzz-999999'}", "zzz-999999"),
        ("api_key=key-5555555", "key-5555555"),
    ],
)
def test_redact_masks_secret_shapes(text, secret):
    """Bearer values and token-like fields are masked whatever their value."""
    out = redact(text)
    assert secret not in out
    assert MASK in out


def test_redact_masks_registered_values_anywhere():
    """A registered value is masked even in free text; short values are not registered."""
    register("canary-value-7c1e", "abc")
    assert redact("oops canary-value-7c1e leaked") == f"oops {MASK} leaked"
    assert redact("abc stays") == "abc stays"


def test_redact_keeps_ordinary_text():
    """Text without secrets is unchanged (status codes, token_type, urls)."""
    text = 'POST /oauth/token -> 400 {"statusCode": 400, "token_type": "Bearer"}'
    assert redact(text) == text


def test_filter_redacts_args_and_traceback():
    """The filter formats the message with its args and masks secrets in exception text."""
    register("traceback-secret-1")
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "token %s for %r", ("traceback-secret-1", "a"), None
    )
    try:
        raise ValueError("traceback-secret-1 in exception")
    except ValueError:
        record.exc_info = sys.exc_info()
    assert RedactingFilter().filter(record)
    formatted = logging.Formatter().format(record)
    assert "traceback-secret-1" not in formatted
    assert "ValueError" in formatted and "token *** for 'a'" in formatted


def test_install_redaction_covers_library_loggers_at_debug():
    """After install_redaction, httpx/httpcore/authlib/any logger's records are masked."""
    script = textwrap.dedent(
        """
        import logging, sys
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
        from connector.auth.redaction import install_redaction, register
        install_redaction()
        register("canary-secret-abcdef")
        for name in ("httpx", "httpcore.http11", "authlib", "some.other.lib", ""):
            logging.getLogger(name).debug("value=%s", "canary-secret-abcdef")
        logging.getLogger("late").warning("Authorization: Bearer canary-2-xyz")
        handler = logging.StreamHandler(sys.stdout)
        logging.getLogger("added.later").addHandler(handler)
        logging.getLogger("added.later").error({"access_token": "canary-3-xyz"})
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    output = proc.stdout + proc.stderr
    assert "canary-secret-abcdef" not in output
    assert "canary-2-xyz" not in output and "canary-3-xyz" not in output
    assert output.count(MASK) >= 7
