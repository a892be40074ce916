"""``ghl-connector audit``: list or export the sync audit trail (every change made or skipped)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from connector.cli.argtypes import positive

if TYPE_CHECKING:
    from connector.sync.audit import AuditEntry

__all__ = ["add_parser"]

_OBJECTS = ("contacts", "tasks", "notes")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``audit``."""
    parser = sub.add_parser(
        "audit",
        help="list or export the sync audit trail",
        description="Every change the two-way sync made or skipped, and why, oldest first, "
        "with the values before and after of the fields it changed. Secrets and fields "
        "that are not synced are never stored.",
        epilog="examples:\n  ghl-connector audit --object contacts --limit 20\n"
        "  ghl-connector audit --since 2026-01-01T00:00:00Z --format csv --output audit.csv\n"
        "  ghl-connector audit --format jsonl | jq .reason",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--object", choices=_OBJECTS, help="only this object type")
    parser.add_argument("--sync", metavar="NAME", help="only this sync (its name)")
    parser.add_argument(
        "--since", type=_moment, metavar="ISO", help="only entries at or after this time"
    )
    parser.add_argument(
        "--limit", type=positive, metavar="N", help="only the newest N entries (default: all)"
    )
    parser.add_argument(
        "--format", choices=("table", "csv", "jsonl"), default="table", help="output format"
    )
    parser.add_argument("--output", type=Path, metavar="FILE", help="write to FILE, not stdout")
    parser.set_defaults(func=run_audit)


def _moment(text: str) -> float:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time (e.g. 2026-01-31T09:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def run_audit(args: argparse.Namespace) -> int:
    """Print or write the audit entries the options select."""
    from connector.errors import StoreError
    from connector.store import Store
    from connector.sync.audit import entries

    with Store() as store:
        found = entries(store, obj=args.object, since=args.since, sync=args.sync, limit=args.limit)
    if args.output is None:
        _write(found, args.format, sys.stdout)
        return 0
    try:
        with args.output.open("w", encoding="utf-8", newline="") as out:
            _write(found, args.format, out)
    except OSError as exc:
        raise StoreError(f"{args.output}: cannot write the export: {exc.strerror}") from exc
    print(f"{len(found)} entries written to {args.output}", file=sys.stderr)
    return 0


def _write(found: list[AuditEntry], fmt: str, out: TextIO) -> None:
    from connector.sync.audit import write_csv, write_jsonl

    if fmt == "csv":
        write_csv(found, out)
    elif fmt == "jsonl":
        write_jsonl(found, out)
    else:
        _table(found, out)


def _table(found: list[AuditEntry], out: TextIO) -> None:
    from connector.cli.table import print_table

    rows = []
    for entry in found:
        data = entry.as_json()
        ids = f"{entry.ghl_id or '-'} / {entry.partner_id or '-'}"
        changed = ", ".join(entry.changes) or "-"
        rows.append(
            [data["at"], entry.object, entry.direction, entry.action, ids, changed, entry.reason]
        )
    if not rows:
        out.write("no audit entries\n")
        return
    headers = ["AT", "OBJECT", "DIRECTION", "ACTION", "GHL / PARTNER ID", "FIELDS", "REASON"]
    print_table(rows, headers=headers, out=out)
