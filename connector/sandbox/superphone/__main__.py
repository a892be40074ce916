"""``python -m connector.sandbox.superphone``: run the SuperPhone sandbox in the foreground.

Prints the base URL as the first line, then the GraphQL URL, the API key and the webhook
secret (``name: value`` lines), then a blank line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from connector.sandbox.config import parse_rate_limit
from connector.sandbox.superphone.config import SuperPhoneConfig
from connector.sandbox.superphone.server import serve

__all__ = ["main", "parse_args"]


def _rate(text: str) -> tuple[int, float]:
    try:
        return parse_rate_limit(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def parse_args(argv: Sequence[str] | None = None) -> SuperPhoneConfig:
    """The sandbox settings from command-line arguments."""
    parser = argparse.ArgumentParser(prog="python -m connector.sandbox.superphone",
                                     description="Run the local SuperPhone sandbox.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--seed-contacts", type=int, default=0, metavar="N")
    parser.add_argument("--seed", type=int, default=0, help="random seed (ids, faults)")
    parser.add_argument("--webhook-url", action="append", default=[], metavar="URL")
    parser.add_argument("--rate-limit", type=_rate, default=(10, 1.0), metavar="N/SECONDS")
    parser.add_argument("--api-key", default=None, help="default: a fresh random key")
    parser.add_argument("--webhook-secret", default=None, help="default: a fresh random secret")
    args = parser.parse_args(argv)
    return SuperPhoneConfig(
        host=args.host, port=args.port, seed_contacts=args.seed_contacts, seed=args.seed,
        webhook_urls=tuple(args.webhook_url), rate_limit_requests=args.rate_limit[0],
        rate_limit_seconds=args.rate_limit[1], api_key=args.api_key,
        webhook_secret=args.webhook_secret,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Parse arguments and serve until interrupted."""
    serve(parse_args(argv), sys.stdout)


if __name__ == "__main__":
    main()
