"""The command line of the partner sandboxes (``python -m connector.sandbox.<partner>``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO, TypeVar

from connector.sandbox.config import parse_rate_limit

__all__ = ["partner_main"]

ConfigT = TypeVar("ConfigT")


def _rate(text: str) -> tuple[int, float]:
    try:
        return parse_rate_limit(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def partner_main(
    app: str,
    title: str,
    make_config: Callable[..., ConfigT],
    serve: Callable[[ConfigT, TextIO], None],
    default_rate: tuple[int, float],
    argv: Sequence[str] | None = None,
) -> None:
    """Parse a partner sandbox's arguments and serve it until interrupted.

    :param app: the partner's id (``superphone``), naming the module in ``--help``.
    :param make_config: the sandbox's config class (takes the keyword fields below).
    """
    parser = argparse.ArgumentParser(
        prog=f"python -m connector.sandbox.{app}", description=f"Run the local {title} sandbox."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--seed-contacts", type=int, default=0, metavar="N")
    parser.add_argument("--seed", type=int, default=0, help="random seed (ids, faults)")
    parser.add_argument("--webhook-url", action="append", default=[], metavar="URL")
    parser.add_argument("--rate-limit", type=_rate, default=default_rate, metavar="N/SECONDS")
    parser.add_argument("--api-key", default=None, help="default: a fresh random key")
    parser.add_argument("--webhook-secret", default=None, help="default: a fresh random secret")
    args = parser.parse_args(argv)
    fields: dict[str, Any] = {
        "host": args.host, "port": args.port, "seed_contacts": args.seed_contacts,
        "seed": args.seed, "webhook_urls": tuple(args.webhook_url),
        "rate_limit_requests": args.rate_limit[0], "rate_limit_seconds": args.rate_limit[1],
        "api_key": args.api_key, "webhook_secret": args.webhook_secret,
    }  # fmt: skip
    serve(make_config(**fields), sys.stdout)
