"""Command-line values several commands share: positive counts, and options given per app
(``APP=VALUE``, or a plain value for GHL)."""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connector.catalog import Catalog
    from connector.hookspecs import RateLimit

__all__ = [
    "HUB_APP", "count", "days", "env_name", "per_app", "per_window", "port", "positive",
    "rate_limits", "seconds",
]  # fmt: skip

HUB_APP = "@hub"
"""As ``plain``: a plain value is the catalog's hub app's (HighLevel's in the pack)."""
_APP_ID = re.compile(r"[a-z][a-z0-9_]*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    value = int(text) if text.isascii() and text.isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def per_window(text: str) -> tuple[int, float]:
    """An argparse type: ``N/SECONDS`` (a count of at least 1 in a window of seconds > 0)."""
    count, sep, seconds = text.partition("/")
    try:
        value = (int(count), float(seconds))
    except ValueError:
        value = (0, 0.0)
    if not sep or value[0] < 1 or not value[1] > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not N/SECONDS (e.g. 10/60)")
    return value


def count(text: str) -> int:
    """An argparse type: a whole number of at least 0."""
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 0 or more")
    return int(text)


def env_name(text: str) -> str:
    """An argparse type: the name of an environment variable (``--token-env VAR``).

    Anything else is most likely the secret itself pasted in its place: the message never
    repeats the value, so it cannot reach a terminal's scrollback or an MCP client's log.
    """
    if not _ENV_NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(
            "takes the NAME of an environment variable holding the secret (letters, digits and"
            " _), never the secret itself [e.g. GHL_PIT=... ghl-connector call ... --token-env"
            " GHL_PIT]"
        )
    return text


def port(text: str) -> int:
    """An argparse type: a TCP port, 0 (a free one) to 65535."""
    if not (text.isascii() and text.isdigit()) or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0 to 65535; 0: a free one)")
    return int(text)


def days(text: str) -> float:
    """An argparse type: a number of days above 0 (fractions allowed), as seconds."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days above 0 (e.g. 7)")
    return value * 86400


def seconds(text: str) -> float:
    """An argparse type: a number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0")
    return value


def per_app(
    values: list[str] | None, option: str, catalog: Catalog, *, plain: str | None = HUB_APP
) -> dict[str, str]:
    """App id -> value of the ``option`` values (``--base-url``, ``--rate-limit``): ``APP=VALUE``,
    or a plain value (a URL with ``=`` in its query too), which is ``plain``'s app if allowed.

    :raises ConnectorError: an ``APP=`` names no app of the catalog, a value is empty, or a
        plain value where an app must be named.
    """
    from connector.errors import ConnectorError

    if plain == HUB_APP:
        plain = catalog.hub
    found: dict[str, str] = {}
    for text in values or []:
        name, sep, value = text.partition("=")
        if not (sep and _APP_ID.fullmatch(name)):
            if plain is None:
                raise ConnectorError(f"{option} {text!r}: name the app [write APP=VALUE]")
            name, value = plain, text
        try:
            catalog.app(name)
        except ConnectorError as exc:
            raise ConnectorError(f"{option} {text!r}: {exc}") from exc
        if not value:
            raise ConnectorError(f"{option} {text!r}: no value [write APP=VALUE, or a plain value]")
        found[name] = value
    return found


def rate_limits(
    values: list[str] | None, catalog: Catalog, *, plain: str | None = HUB_APP
) -> dict[str, RateLimit]:
    """App id -> rate limit from ``--rate-limit [APP=]N/SECONDS`` values.

    :raises ConnectorError: as :func:`per_app`, or a limit that is not ``N/SECONDS``.
    """
    from connector.errors import ConnectorError
    from connector.hookspecs import RateLimit
    from connector.sandbox.config import parse_rate_limit

    limits: dict[str, RateLimit] = {}
    for app, text in per_app(values, "--rate-limit", catalog, plain=plain).items():
        try:
            requests, seconds = parse_rate_limit(text)
        except ValueError as exc:
            raise ConnectorError(f"--rate-limit {app}={text}: {exc}") from exc
        limits[app] = RateLimit(requests, seconds)
    return limits
