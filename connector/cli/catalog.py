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
    from connector.cli.table import print_table

    catalog = build_catalog()
    rows = [_action_row(a) for a in catalog.actions.values()]
    rows += [_trigger_row(t) for t in catalog.triggers.values()]
    if args.app:
        if args.app not in catalog.apps:
            catalog.app(args.app)
        rows = [r for r in rows if r["app"] == args.app]
    if args.tag:
        rows = _tagged(rows, args.tag)
    rows.sort(key=lambda r: (r["app"], r["kind"] != "action", r["id"]))
    words = [w.lower() for w in getattr(args, "words", None) or ()]
    if words:
        rows = _found(rows, words)
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
        "tags": list(action.tags),
        "description": action.description,
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
        "tags": [],
        "description": trigger.description,
    }


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


_SEARCHED = ("id", "title", "description", "path", "operation", "event")


def _found(rows: list[dict[str, Any]], words: list[str]) -> list[dict[str, Any]]:
    """The rows holding every word; those with more words in their id or title first."""
    scored = []
    for row in rows:
        text = " ".join([*(str(row.get(k) or "") for k in _SEARCHED), *row["tags"]]).lower()
        if all(w in text for w in words):
            named = f"{row['id']} {row['title']}".lower()
            scored.append((-sum(w in named for w in words), row))
    scored.sort(key=lambda pair: pair[0])  # stable: the catalog order within a score
    return [row for _, row in scored]


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
