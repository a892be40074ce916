"""``ghl-connector hooks``: REST-hook subscriptions and their deliveries, from the command line."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any

from connector.cli.argtypes import positive

if TYPE_CHECKING:
    from connector.store import Store

__all__ = ["add_parser"]

_STATUSES = ("pending", "sending", "delivered", "dead", "cancelled")
_MAX_FILTER_BYTES = 64 * 1024


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``hooks`` and its subcommands."""
    parser = sub.add_parser(
        "hooks",
        help="REST-hook subscriptions: list, add, remove; their deliveries; redeliver dead ones",
        description="REST hooks: each event of a trigger POSTed to a subscriber's URL, signed\n"
        "as Standard Webhooks says, by `ghl-connector serve` (see docs/rest-hooks.md).\n"
        "Without a subcommand: list the subscriptions of the state file.",
        epilog="examples:\n"
        "  ghl-connector hooks                        list the subscriptions\n"
        "  ghl-connector hooks add ghl.contacts.created https://hooks.example.com/abc \\\n"
        "      --filter '{\"country\": [\"US\", \"CA\"]}'\n"
        "  ghl-connector hooks deliveries --status dead\n"
        "  ghl-connector hooks redeliver --dead\n"
        "  ghl-connector hooks remove sub_0123...",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(parser, inner=False)
    parser.set_defaults(func=run_list)
    inner = parser.add_subparsers(dest="hooks_command", metavar="{list,add,remove,deliveries,"
                                  "redeliver}")
    shown = inner.add_parser("list", help="list the subscriptions (never their secrets); the"
                             " same as `hooks` alone")
    _common(shown)
    shown.set_defaults(func=run_list)
    add = inner.add_parser(
        "add", help="subscribe a URL to a trigger; prints the id and secret",
        description="Subscribe URL to TRIGGER: `ghl-connector serve` POSTs each of its events"
        " there,\nsigned with the secret printed now. Adding the same TRIGGER, URL and"
        " --filter again\nadds nothing: it prints that subscription (`already subscribed`),"
        " with its id and secret.",
        epilog="examples:\n"
        "  ghl-connector hooks add ghl.contacts.created https://hooks.example.com/abc\n"
        "  ghl-connector hooks add ghl.opportunities.status_updated https://hook.eu1.make.com/x"
        " \\\n      --filter '{\"status\": [\"won\", \"lost\"]}'\n"
        "  CONNECTOR_HTTP_ALLOW=127.0.0.1:8911 ghl-connector hooks add ghl.contacts.created"
        " \\\n      http://127.0.0.1:8911/hook\n\n"
        "The URL must reach a public address: loopback, private and link-local ones (cloud"
        " metadata)\nare refused unless CONNECTOR_HTTP_ALLOW lists them, for this command and"
        " for `serve`.\nTriggers: `ghl-connector catalog` (webhook and poll rows). See"
        " docs/rest-hooks.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add.add_argument("trigger", metavar="TRIGGER", help="a trigger id (ghl-connector catalog)")
    add.add_argument("url", metavar="URL", help="where each event is POSTed")
    add.add_argument("--filter", metavar="JSON",
                     help='deliver only events whose top-level fields match, e.g. \'{"a": 1}\'')
    _common(add)
    add.set_defaults(func=run_add)
    remove = inner.add_parser("remove", help="delete a subscription (unsent deliveries are"
                              " cancelled)")
    remove.add_argument("id", metavar="ID", help="the subscription id (sub_...)")
    _common(remove)
    remove.set_defaults(func=run_remove)
    listed = inner.add_parser("deliveries", help="list deliveries, newest first")
    listed.add_argument("--status", choices=_STATUSES, help="only deliveries with this status")
    listed.add_argument("--subscription", metavar="ID", help="only this subscription's")
    listed.add_argument("--limit", type=positive, default=20, metavar="N",
                        help="at most N deliveries (default 20)")
    _common(listed)
    listed.set_defaults(func=run_deliveries)
    again = inner.add_parser("redeliver", help="send dead deliveries again")
    which = again.add_mutually_exclusive_group(required=True)
    which.add_argument("ids", metavar="ID", nargs="*", default=[],
                       help="the deliveries (msg_...)")
    which.add_argument("--dead", action="store_true", help="every dead delivery")
    _common(again)
    again.set_defaults(func=run_redeliver)


def _common(parser: argparse.ArgumentParser, *, inner: bool = True) -> None:
    """``--db`` and ``--json``, before or after the subcommand. A subcommand's own copies
    default to SUPPRESS: argparse would otherwise overwrite ``hooks --db X add ...``'s X with
    the subcommand's default (None), and the command would use the default state file."""
    default = argparse.SUPPRESS if inner else None
    parser.add_argument("--store", "--db", dest="db", metavar="URL|PATH", default=default,
                        help="the state: a file or postgresql://... (default: $CONNECTOR_STORE,"
                        " else $CONNECTOR_HOME/state.db)")
    parser.add_argument("--json", action="store_true", default=default or False,
                        help="print JSON")


def _store(args: argparse.Namespace) -> Store:
    from connector.store import Store

    return Store(args.db)


def _print_json(value: Any) -> None:  # noqa: ANN401
    json.dump(value, sys.stdout, indent=2)
    sys.stdout.write("\n")


def run_list(args: argparse.Namespace) -> int:
    """Print the subscriptions (never their secrets)."""
    from connector.api.apikeys import ApiKeys
    from connector.api.subscriptions import public_subscriptions
    from connector.cli.table import print_table

    with _store(args) as store:
        subs = public_subscriptions(store)
        names = {key.id: key.name for key in ApiKeys(store).list()}
    for sub in subs:  # the API key that subscribed, by name ("-": hooks add)
        sub["owner"] = names.get(sub["owner"], sub["owner"]) if sub["owner"] else None
    if args.json:
        _print_json(subs)
        return 0
    if not subs:
        print("no subscriptions [add one with `ghl-connector hooks add TRIGGER URL`]")
        return 0
    print_table(
        [(s["id"], _when(s["created_at"]), s["trigger"], s["target_url"],
          json.dumps(s["filter"]) if s["filter"] is not None else "-", s["owner"] or "-")
         for s in subs],
        headers=("ID", "CREATED", "TRIGGER", "URL", "FILTER", "API KEY"),
    )
    return 0


def run_add(args: argparse.Namespace) -> int:
    """Subscribe, and print the id and the signing secret (shown only now)."""
    from dataclasses import replace

    from connector.api.subscriptions import subscribe
    from connector.documents.payload import load_json
    from connector.errors import DocumentError

    wanted = None
    if args.filter is not None:
        wanted = load_json(args.filter, source="--filter", max_bytes=_MAX_FILTER_BYTES)
    with _store(args) as store:
        try:
            sub = subscribe(store, args.trigger, args.url, wanted)
        except DocumentError as exc:  # name the command, not "<input>", as where they are
            raise DocumentError([replace(p, location=replace(p.location, file="hooks add"))
                                 for p in exc.problems]) from None
    for warning in sub.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        shown = {**sub.public(), "secret": sub.secret}  # what `hooks --json` lists, + secret
        _print_json({**shown, "existing": True} if sub.existing else shown)
        return 0
    if sub.existing:  # subscribing is idempotent: a second `add` makes no twin
        print(f"already subscribed: {sub.id} (same trigger, URL and filter; nothing added)")
    else:
        print(f"subscribed: {sub.id}")
    print(f"  trigger  {sub.trigger_id}")
    print(f"  url      {sub.target_url}")
    print(f"  secret   {sub.secret}")
    print("keep the secret: it verifies each delivery's webhook-signature (`hooks` never"
          " lists it)")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    """Delete one subscription."""
    from connector.api.subscriptions import unsubscribe
    from connector.errors import ConnectorError

    with _store(args) as store:
        if not unsubscribe(store, args.id):
            raise ConnectorError(f"no subscription {args.id!r} [list them with"
                                 " `ghl-connector hooks`]")
    print(f"removed: {args.id}")
    return 0


def run_deliveries(args: argparse.Namespace) -> int:
    """Print deliveries, newest first."""
    from connector.api.delivery import deliveries
    from connector.cli.table import print_table

    with _store(args) as store:
        found = deliveries(store, status=args.status, subscription_id=args.subscription,
                           limit=args.limit)
    if args.json:
        _print_json([d.as_dict() for d in found])
        return 0
    if not found:
        print("no deliveries")
        return 0
    now = time.time()
    print_table(
        [(d.id, _when(d.created_at), d.status, str(d.attempts), _next(d.status, d.available_at,
          now), str(d.last_status or "-"), d.subscription_id, d.last_error or "")
         for d in found],
        headers=("ID", "QUEUED", "STATUS", "ATTEMPTS", "NEXT TRY", "HTTP", "SUBSCRIPTION",
                 "LAST ERROR"),
    )
    return 0


def run_redeliver(args: argparse.Namespace) -> int:
    """Mark dead deliveries pending again."""
    from connector.api.delivery import deliveries, redeliver
    from connector.errors import ConnectorError

    with _store(args) as store:
        if not args.dead:  # every id must name a dead delivery, or none is sent again
            ids = list(dict.fromkeys(args.ids))
            found = {d.id: d.status for d in deliveries(store, ids=ids, limit=len(ids))}
            wrong = [f"{i!r} is {found[i]}, not dead" if i in found else f"no delivery {i!r}"
                     for i in ids if found.get(i) != "dead"]
            if wrong:
                raise ConnectorError(
                    "; ".join(wrong) + " [nothing redelivered; list the dead ones with"
                    " `ghl-connector hooks deliveries --status dead`]"
                )
        revived = redeliver(store, None if args.dead else args.ids)
    if args.json:
        _print_json({"redelivering": revived})
    else:
        print(f"redelivering {revived} dead deliveries (a running serve sends them)")
    return 0


def _next(status: str, available_at: float, now: float) -> str:
    """When a pending delivery is tried again: ``now``, or ``in 3m20s`` (others: ``-``)."""
    if status != "pending":
        return "-"
    wait = int(available_at - now)
    if wait <= 0:
        return "now"
    minutes, seconds = divmod(wait, 60)
    hours, minutes = divmod(minutes, 60)
    return "in " + (f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"
                    if minutes else f"{seconds}s")


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))
