"""``ghl-connector replay``: list dead letters, or re-queue them for the running service."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connector.deadletter import DeadLetter

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``replay``."""
    parser = sub.add_parser(
        "replay",
        help="list dead letters, or re-queue them (one, by recipe, or all)",
        description=(
            "Events the service gave up on (a recipe run ended dead_letter, or the event could "
            "not run) wait on the dead-letter list. Re-queued, the running service ('ghl-"
            "connector serve') runs them again: the chosen dead runs resume (steps they "
            "completed are skipped), runs that had ended are left alone."
        ),
        epilog=(
            "examples:\n"
            "  ghl-connector replay --list\n"
            "  ghl-connector replay --id 42                  an event (inbox id or webhookId)\n"
            "  ghl-connector replay --id 'wh-1:new_contact'  one run (its run id)\n"
            "  ghl-connector replay --recipe new_contact_task\n"
            "  ghl-connector replay --all"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--list", action="store_true", help="list the dead letters")
    which.add_argument("--id", metavar="ID",
                       help="re-queue one event (inbox id or webhookId) or one run (run id)")
    which.add_argument("--recipe", metavar="NAME",
                       help="re-queue the dead runs of this recipe (name or file name)")
    which.add_argument("--all", action="store_true", help="re-queue every dead letter")
    parser.add_argument("--db", metavar="PATH",
                        help="the state file (default: $CONNECTOR_HOME/state.db)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """List or re-queue; exit 1 when ``--recipe`` matched nothing."""
    from connector.deadletter import DeadLetters
    from connector.store import Store

    with Store(args.db) as store:
        letters = DeadLetters(store)
        if args.list:
            chosen = letters.dead()
        elif args.id is not None:
            chosen = [letters.requeue_one(args.id)]
        elif args.recipe is not None:
            chosen = letters.requeue_recipe(args.recipe)
        else:
            chosen = letters.requeue_all()
    _print(chosen, listing=args.list, as_json=args.json)
    if args.recipe is not None and not chosen:
        print(f"error: no dead run of recipe {args.recipe!r}", file=sys.stderr)
        return 1
    return 0


def _print(chosen: list[DeadLetter], *, listing: bool, as_json: bool) -> None:
    if as_json:
        json.dump([d.as_dict() for d in chosen], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    verb = "dead" if listing else "re-queued"
    for letter in chosen:
        event = letter.event
        print(f"{verb} {event.id} {event.webhook_id} {event.type} ({event.attempts} attempts)")
        for run_id, recipe in letter.runs:
            print(f"  run {run_id}  {recipe}")
        if listing and event.last_error:
            print(f"  error: {event.last_error}")
    noun = "dead letter" if len(chosen) == 1 else "dead letters"
    print(f"{len(chosen)} {noun} {'listed' if listing else 're-queued'}")
