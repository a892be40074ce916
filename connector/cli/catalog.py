"""``ghl-connector catalog``: list the actions and triggers, or show one in detail."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``catalog`` and ``catalog show``."""
    parser = sub.add_parser(
        "catalog",
        help="list the actions and triggers the pack provides",
        description="List every action and trigger, or show one with its inputs and output.",
        epilog="examples:\n  ghl-connector catalog --app ghl\n  ghl-connector catalog --json\n"
        "  ghl-connector catalog --tag Contacts\n  ghl-connector catalog search contact tag\n"
        "  ghl-connector catalog show ghl.contacts.create\n"
        "  ghl-connector catalog show ghl.contacts.created --sample > event.json\n"
        "  ghl-connector catalog show ghl.notes.create --sample > input.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_filters(parser)
    parser.set_defaults(func=run_list)
    inner = parser.add_subparsers(dest="catalog_command", metavar="{show,search}")
    show = inner.add_parser("show", help="one action or trigger in detail")
    show.add_argument("id", help="action or trigger id, e.g. ghl.contacts.get")
    show.add_argument("--json", action="store_true", help="print the full entry as JSON")
    show.add_argument(
        "--sample",
        action="store_true",
        help="print only a sample to start from: a trigger's event (for 'run --event FILE') or"
        " an action's input (for 'call --input @FILE')",
    )
    show.set_defaults(func=run_show)
    search = inner.add_parser(
        "search",
        help="the entries whose id, title, description, path or tags hold every word",
        description="List the actions and triggers whose id, title, description, path, operation"
        " or tags contain every word given (any case); those naming a word in their id or title"
        " come first.",
    )
    search.add_argument("words", nargs="+", metavar="WORD", help="e.g. contact tag")
    _add_filters(search)
    search.set_defaults(func=run_list)


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--app", help="only this app's entries (e.g. ghl)")
    parser.add_argument(
        "--tag", help="only actions with this tag of the app's documentation (e.g. Contacts)"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")


def run_list(args: argparse.Namespace) -> int:
    """Print the catalog (or the entries a search finds) as a table or JSON."""
    from connector.catalog import build_catalog
    from connector.catalogsearch import rows as catalog_rows
    from connector.catalogsearch import search
    from connector.cli.table import print_table

    catalog = build_catalog()
    rows = catalog_rows(catalog)
    if args.app:
        if args.app not in catalog.apps:
            catalog.app(args.app)
        rows = [r for r in rows if r["app"] == args.app]
    if args.tag:
        rows = _tagged(rows, args.tag)
    words = getattr(args, "words", None) or ()
    if words:
        rows = search(rows, words)
        if not rows:
            print(f"no action or trigger holds every word of {' '.join(args.words)!r}",
                  file=sys.stderr)
            return 1
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print_table(
        [
            (
                r["id"] + (" (deprecated)" if r.get("deprecated") else ""),
                r["title"],
                r.get("method") or r["kind"],
                r.get("path") or r.get("event") or "",
                " ".join(r["scopes"]),
            )
            for r in rows
        ],
        headers=("ID", "TITLE", "METHOD", "PATH / EVENT", "SCOPES"),
    )
    return 0


def _tagged(rows: list[dict[str, Any]], tag: str) -> list[dict[str, Any]]:
    """The rows carrying ``tag`` (any case); an unknown tag is an error naming a close one."""
    wanted = tag.casefold()
    kept = [r for r in rows if any(t.casefold() == wanted for t in r["tags"])]
    if not kept:
        from connector.catalog import did_you_mean
        from connector.errors import ConnectorError

        known = sorted({t for r in rows for t in r["tags"]})
        hint = did_you_mean(tag, known)
        where = f" ({hint})" if hint else f" [tags: {', '.join(known)}]" if known else ""
        raise ConnectorError(f"no action is tagged {tag!r}{where}")
    return kept


def run_show(args: argparse.Namespace) -> int:
    """Print one catalog entry: inputs, output shape, scopes, an example input."""
    from connector.catalog import build_catalog
    from connector.cli.describe import describe_action, describe_trigger

    catalog = build_catalog()
    if args.id in catalog.triggers:
        text, data = describe_trigger(catalog.trigger(args.id))
        example = data["example_event"]
    elif args.id in catalog.actions:
        text, data = describe_action(catalog.action(args.id))
        example = data["example_input"]
    else:
        from connector.catalog import did_you_mean
        from connector.errors import ConnectorError

        hint = did_you_mean(args.id, [*catalog.actions, *catalog.triggers])
        where = f" ({hint})" if hint else " [see `ghl-connector catalog`]"
        raise ConnectorError(f"unknown action or trigger {args.id!r}{where}")
    if args.sample or args.json:
        json.dump(example if args.sample else data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(text)
    return 0
