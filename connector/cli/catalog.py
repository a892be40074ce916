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
        "  ghl-connector catalog show ghl.contacts.create\n"
        "  ghl-connector catalog show ghl.contacts.created --sample > event.json\n"
        "  ghl-connector catalog show ghl.notes.create --sample > input.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--app", help="only this app's entries (e.g. ghl)")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.set_defaults(func=run_list)
    inner = parser.add_subparsers(dest="catalog_command", metavar="show")
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


def run_list(args: argparse.Namespace) -> int:
    """Print the catalog as a table or JSON."""
    from connector.catalog import build_catalog
    from connector.cli.table import print_table

    catalog = build_catalog()
    rows = [_action_row(a) for a in catalog.actions.values()]
    rows += [_trigger_row(t) for t in catalog.triggers.values()]
    if args.app:
        if args.app not in catalog.apps:
            catalog.app(args.app)
        rows = [r for r in rows if r["app"] == args.app]
    rows.sort(key=lambda r: (r["app"], r["kind"] != "action", r["id"]))
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


def _action_row(action: Any) -> dict[str, Any]:
    return {
        "id": action.id,
        "app": action.app,
        "kind": "action",
        "title": action.title,
        "method": action.method,
        "path": action.path,
        "scopes": list(action.scopes),
        "operation": action.operation,
        "deprecated": action.deprecated,
        "use_instead": action.use_instead,
        "paginated": bool(action.pagination),
    }


def _trigger_row(trigger: Any) -> dict[str, Any]:
    return {
        "id": trigger.id,
        "app": trigger.app,
        "kind": trigger.kind,
        "title": trigger.title,
        "event": trigger.event,
        "scopes": list(trigger.scopes),
        "deprecated": False,
    }


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
