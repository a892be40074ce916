"""``python -m connector.sandbox.superphone``: run the SuperPhone sandbox in the foreground.

Prints the base URL as the first line, then the GraphQL URL, the API key and the webhook
secret (``name: value`` lines), then a blank line.
"""

from __future__ import annotations

from collections.abc import Sequence

from connector.sandbox.partnerargs import partner_main
from connector.sandbox.superphone.config import SuperPhoneConfig
from connector.sandbox.superphone.server import serve

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Parse arguments and serve until interrupted."""
    partner_main("superphone", "SuperPhone", SuperPhoneConfig, serve, (10, 1.0), argv)


if __name__ == "__main__":
    main()
