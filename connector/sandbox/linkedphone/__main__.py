"""``python -m connector.sandbox.linkedphone``: run the LinkedPhone sandbox in the foreground.

Prints the base URL as the first line, then ``api_key:``, ``api_key_header:``,
``webhook_secret:`` and ``signature_header:`` lines, then a blank line.
"""

from __future__ import annotations

from collections.abc import Sequence

from connector.sandbox.linkedphone.config import LinkedPhoneConfig
from connector.sandbox.linkedphone.server import serve
from connector.sandbox.partnerargs import partner_main

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Parse arguments and serve until interrupted."""
    partner_main("linkedphone", "LinkedPhone", LinkedPhoneConfig, serve, (120, 60.0), argv)


if __name__ == "__main__":
    main()
