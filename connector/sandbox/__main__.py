"""``python -m connector.sandbox``: run the GHL sandbox in the foreground.

Prints the base URL as the first line, then the test client credentials, a private token and
the webhook public keys, then a blank line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from connector.sandbox.config import SandboxConfig, parse_rate_limit
from connector.sandbox.server import serve

__all__ = ["main", "parse_args"]


def _rate(text: str) -> tuple[int, float]:
    try:
        return parse_rate_limit(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def parse_args(argv: Sequence[str] | None = None) -> SandboxConfig:
    """The sandbox settings from command-line arguments."""
    parser = argparse.ArgumentParser(prog="python -m connector.sandbox",
                                     description="Run the local GHL sandbox.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--seed-contacts", type=int, default=0, metavar="N")
    parser.add_argument("--seed", type=int, default=0, help="random seed (ids, faults)")
    parser.add_argument("--webhook-url", action="append", default=[], metavar="URL")
    parser.add_argument("--rate-limit", type=_rate, default=(100, 10.0), metavar="N/SECONDS")
    parser.add_argument("--daily-quota", type=int, default=200_000)
    parser.add_argument("--token-lifetime", type=float, default=86399.0, metavar="SECONDS")
    parser.add_argument("--private-token", default=None)
    args = parser.parse_args(argv)
    return SandboxConfig(
        host=args.host, port=args.port, seed_contacts=args.seed_contacts, seed=args.seed,
        webhook_urls=tuple(args.webhook_url), rate_limit_requests=args.rate_limit[0],
        rate_limit_seconds=args.rate_limit[1], daily_quota=args.daily_quota,
        access_token_lifetime=args.token_lifetime, private_token=args.private_token,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Parse arguments and serve until interrupted."""
    serve(parse_args(argv), sys.stdout)


if __name__ == "__main__":
    main()
