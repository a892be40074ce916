"""``ghl-connector sandbox``: run the local GHL sandbox in the foreground."""

from __future__ import annotations

import argparse

from connector.cli.argtypes import count, port, positive, seconds

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``sandbox``."""
    parser = sub.add_parser(
        "sandbox",
        help="run a local, stateful GHL stand-in (OAuth, scopes, rate limits, signed webhooks)",
        description=(
            "Run a local HighLevel sandbox that follows GHL's official API specs: the Contacts "
            "API stateful, every other operation answered from its spec (input checked, "
            "records kept, lists paged). It prints its base URL, a test OAuth client, a private "
            "token (every scope) and the public keys it signs webhooks with, then serves until "
            "Ctrl-C."
        ),
        epilog=(
            "examples:\n"
            "  ghl-connector sandbox --port 8800 --seed-contacts 50\n"
            "  ghl-connector sandbox --webhook-url http://127.0.0.1:8900/webhooks/ghl "
            "--rate-limit 100/10\n"
            "\nControl endpoints (no token): GET /_sandbox/stats, POST /_sandbox/reset,\n"
            "POST /_sandbox/faults, POST /_sandbox/limits, GET /_sandbox/keys (webhook public\n"
            "keys), POST /_sandbox/webhooks, POST /_sandbox/tokens/expire, and\n"
            "POST|PUT|DELETE /_sandbox/appointments: book, move or cancel an appointment with its\n"
            "AppointmentCreate/Update/Delete webhook (the calendar API's own writes are answered\n"
            "from the spec and send no webhook). docs/running.md lists them."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument("--port", type=port, default=0, help="port (default: a free one)")
    parser.add_argument(
        "--seed-contacts",
        type=count,
        default=10,
        metavar="N",
        help="contacts to start with (default 10)",
    )
    parser.add_argument(
        "--webhook-url",
        action="append",
        default=[],
        metavar="URL",
        help="send signed webhooks for every change here (repeatable)",
    )
    parser.add_argument(
        "--rate-limit",
        default="100/10",
        metavar="N/SECONDS",
        help="burst limit per location, like GHL's (default 100/10)",
    )
    parser.add_argument(
        "--daily-quota",
        type=positive,
        default=200_000,
        metavar="N",
        help="requests per location per day (default 200000)",
    )
    parser.add_argument(
        "--token-lifetime",
        type=seconds,
        default=86399.0,
        metavar="SECONDS",
        help="OAuth access-token lifetime (default 86399, as GHL)",
    )
    parser.add_argument("--seed", type=count, default=0, help="random seed for ids and faults")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    import sys

    from connector.errors import ConnectorError
    from connector.sandbox.config import SandboxConfig, parse_rate_limit
    from connector.sandbox.server import serve

    try:
        requests, seconds = parse_rate_limit(args.rate_limit)
    except ValueError as exc:
        raise ConnectorError(f"--rate-limit: {exc}") from None
    config = SandboxConfig(
        host=args.host,
        port=args.port,
        seed_contacts=args.seed_contacts,
        webhook_urls=tuple(args.webhook_url),
        rate_limit_requests=requests,
        rate_limit_seconds=seconds,
        daily_quota=args.daily_quota,
        access_token_lifetime=args.token_lifetime,
        seed=args.seed,
    )
    try:
        serve(config, sys.stdout)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a foreground sandbox ends
    return 0
