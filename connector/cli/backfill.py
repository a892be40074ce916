"""``ghl-connector backfill``: copy every GHL contact, with notes and tasks, to a partner app."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from connector.cli.argtypes import per_app, positive, rate_limits

if TYPE_CHECKING:
    from connector.catalog import Catalog
    from connector.runtime import Runtime
    from connector.sync.backfill import BackfillReport, Progress

__all__ = ["add_parser"]

def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``backfill``."""
    parser = sub.add_parser(
        "backfill",
        help="copy every GHL contact, with its notes and tasks, to a partner app",
        description=(
            "The first sync: read every contact of the GHL location page by page and copy it,\n"
            "with its notes and tasks, to the partner app, through the shipped sync document\n"
            "(recipes/sync_<partner>.yaml) or --sync. A contact the partner already has (same\n"
            "e-mail, else phone) is linked, not copied. Records are remembered in the sync's id\n"
            "map, so running it again copies only what is new, and the two-way sync sees the\n"
            "copies as its own. Progress goes to stderr. See docs/backfill.md."
        ),
        epilog=(
            "examples:\n"
            "  ghl-connector backfill --to linkedphone\n"
            "  ghl-connector backfill --to superphone --limit 100 --workers 8\n"
            "  ghl-connector backfill --to linkedphone --base-url http://127.0.0.1:8800 \\\n"
            "      --base-url linkedphone=http://127.0.0.1:8900 --rate-limit linkedphone=300/1\n"
            "\nThe partner's API key is read from $CONNECTOR_<APP>_API_KEY."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--to", required=True, metavar="APP",
        help="the partner app (one whose manifest declares sync_adapters)",
    )  # fmt: skip
    parser.add_argument(
        "--sync", type=Path, metavar="FILE", help="the sync document (default: the shipped one)"
    )
    parser.add_argument("--limit", type=positive, metavar="N", help="at most N contacts")
    parser.add_argument(
        "--workers", type=positive, default=16, metavar="N",
        help="contacts copied at once, each by its own thread (default: 16)",
    )  # fmt: skip
    parser.add_argument(
        "--connection", metavar="NAME",
        help="the stored GHL connection (default: $CONNECTOR_TOKEN, else the default one)",
    )  # fmt: skip
    parser.add_argument(
        "--base-url", action="append", metavar="[APP=]URL",
        help="send GHL calls (or, as APP=URL, that app's calls) to this base URL instead, "
        "e.g. a local sandbox; repeat it for several apps",
    )  # fmt: skip
    parser.add_argument(
        "--rate-limit", action="append", metavar="APP=N/SECONDS",
        help="the app's rate limit, if not the catalog's (e.g. a plan with a higher one)",
    )  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the backfill and print what it did."""
    from connector.catalog import build_catalog
    from connector.errors import ConnectorError
    from connector.pack import pack_root
    from connector.store import Store
    from connector.sync.backfill import Backfill
    from connector.sync.spec import load_sync

    catalog = build_catalog()
    partners = sorted(a for a, app in catalog.apps.items() if app.sync_adapters and not app.hub)
    if args.to not in partners:
        raise ConnectorError(
            f"backfill: --to {args.to!r} is not a partner app a sync can write to"
            f" [partners: {', '.join(partners) or 'none'}]"
        )
    default = pack_root() / "recipes" / f"sync_{args.to}.yaml"
    if args.sync is None and not default.is_file():
        raise ConnectorError(f"backfill: no shipped sync document for {args.to!r} [give --sync]")
    spec = load_sync(args.sync or default, apps=catalog.apps)
    if spec.partner != args.to:
        raise ConnectorError(
            f"{args.sync}: the sync's partner is {spec.partner!r}, not {args.to!r}"
        )
    progress = None if args.quiet else _Printer(sys.stderr).show
    with _runtime(args, catalog) as runtime, Store() as store:
        backfill = Backfill(spec, runtime, store, workers=args.workers, progress=progress)
        total = backfill.total()
        report = backfill.run(limit=args.limit, total=total)
    _summary(report, spec.partner, sys.stdout)
    return 1 if report.failed else 0


def _runtime(args: argparse.Namespace, catalog: Catalog) -> Runtime:
    """A runtime calling GHL with the chosen connection and the partner with its API key."""
    from connector.auth.credentials import api_key_provider, auth_from_args
    from connector.runtime import Runtime, Settings

    urls = per_app(args.base_url, "--base-url", catalog)
    limits = rate_limits(args.rate_limit, catalog, plain=None)
    chosen = argparse.Namespace(token_env=None, connection=args.connection)
    hub = catalog.hub_app()
    fallback, location_id, base_url = auth_from_args(chosen, hub)
    if base_url and hub.id not in urls:
        urls[hub.id] = base_url
    settings = Settings(base_urls=urls, location_id=location_id, rate_limits=limits)
    return Runtime(catalog, settings, auth=api_key_provider(fallback))


class _Printer:
    """Progress lines: rewritten in place on a terminal, one every 10 s otherwise."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._tty = out.isatty()
        self._last = 0.0

    def show(self, progress: Progress) -> None:
        done = f"{progress.contacts:,}" + (f"/{progress.total:,}" if progress.total else "")
        line = (
            f"backfill: {done} contacts, {progress.written:,} records written "
            f"({progress.written / max(progress.elapsed, 1e-9):.0f}/s), {progress.elapsed:.0f}s"
        )
        if self._tty:
            self._out.write("\r" + line)
        elif progress.final or time.monotonic() - self._last >= 10.0:
            self._last = time.monotonic()
            self._out.write(line + "\n")
        self._out.flush()


def _summary(report: BackfillReport, partner: str, out: TextIO) -> None:
    created = ", ".join(f"{n:,} {name}" for name, n in sorted(report.created.items())) or "nothing"
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    out.write(
        f"backfill to {partner}: {report.contacts:,} contacts in {report.elapsed:.1f}s; "
        f"created {created}; linked {report.linked:,} by e-mail/phone; "
        f"{report.known:,} already linked; {report.skipped:,} skipped; {report.failed:,} failed\n"
    )
    for error in report.errors:
        out.write(f"  failed: {error}\n")
