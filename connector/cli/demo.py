"""``ghl-connector demo``: the pack's main job on embedded defaults (a local GHL sandbox)."""

from __future__ import annotations

import argparse

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``demo``."""
    parser = sub.add_parser(
        "demo",
        help="run the demo against a local GHL sandbox (no credentials, no network)",
        description=(
            "Start a local GHL sandbox and drive it through the connector: create contacts, "
            "tags, tasks and notes, search across pages, and hammer it from several threads "
            "while staying under its rate limit. Ends with a summary; exit 0 when all is well."
        ),
    )
    parser.add_argument(
        "--seed-contacts",
        type=int,
        default=25,
        metavar="N",
        help="contacts the sandbox starts with (default 25)",
    )
    parser.add_argument(
        "--lookups",
        type=int,
        default=120,
        metavar="N",
        help="parallel lookups in the last step (default 120)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo."""
    from connector.demo import DemoOptions, run_demo

    return run_demo(DemoOptions(seed_contacts=args.seed_contacts, lookups=args.lookups))
