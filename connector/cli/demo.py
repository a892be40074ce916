"""``ghl-connector demo``: two-way sync between local GHL and partner sandboxes, end to end."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parser"]

_PARTNERS = {"superphone": ("superphone",), "linkedphone": ("linkedphone",),
             "both": ("superphone", "linkedphone")}  # fmt: skip


def _new_file(text: str) -> Path:
    path = Path(text)
    if path.exists():
        # The sandboxes' ids repeat from run to run: an old id map would pair wrong records.
        raise argparse.ArgumentTypeError(f"{text!r} already exists [remove it or name another]")
    return path


def _seed_count(text: str) -> int:
    from connector.demo import MIN_SEED_CONTACTS

    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from exc
    if value < MIN_SEED_CONTACTS:
        raise argparse.ArgumentTypeError(f"{value} is too few (at least {MIN_SEED_CONTACTS})")
    return value


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``demo``."""
    parser = sub.add_parser(
        "demo",
        help="run the two-way sync demo against local sandboxes (no credentials, no network)",
        description=(
            "Start local GHL, SuperPhone and LinkedPhone sandboxes with sample data, run the "
            "shipped sync documents (recipes/sync_*.yaml) through a local webhook relay, make "
            "changes on both sides (creates, edits, tags, notes, tasks, a conflict, a delete) "
            "and show each sync decision live. Ends with a summary; exit 0 when both sides "
            "converged as the sync policy says, with no 429 answer."
        ),
    )
    parser.add_argument(
        "--partner",
        choices=sorted(_PARTNERS),
        default="both",
        help="which partner app(s) to sync with GHL (default both)",
    )
    parser.add_argument(
        "--seed-contacts",
        type=_seed_count,
        default=10,
        metavar="N",
        help="contacts the GHL sandbox starts with (default 10, at least 6)",
    )
    parser.add_argument(
        "--state",
        type=_new_file,
        metavar="FILE",
        help="keep the sync state (id map, audit trail) in FILE, a new file, for "
        "`ghl-connector audit`",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the sandboxes and the web console serving after the story (Ctrl-C stops)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo."""
    from connector.demo import DemoOptions, run_demo

    options = DemoOptions(
        partners=_PARTNERS[args.partner], seed_contacts=args.seed_contacts, state=args.state,
        keep=args.keep,
    )
    return run_demo(options)
