"""``ghl-connector api``: the HTTP action API; ``api keys create|list|revoke``: its keys."""

from __future__ import annotations

import argparse
import json
import sys

from connector.cli.argtypes import port

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``api`` and ``api keys``."""
    parser = sub.add_parser(
        "api",
        help="serve every action over HTTP, described by OpenAPI (and manage its API keys)",
        description=(
            "Serve the catalog over HTTP for automation platforms: GET /v1/actions, "
            "POST /v1/actions/ID (the same flat input as 'call'; ?dry_run=true; "
            "Idempotency-Key), GET /v1/triggers/ID/events and /sample for polling, and "
            "GET /openapi.json. Every request needs an API key (X-API-Key); the connection is "
            "the X-Connection header's, else the default one. See docs/api.md."
        ),
        epilog=(
            "examples:\n"
            "  ghl-connector api keys create zapier --actions 'ghl.contacts.*'\n"
            "  ghl-connector api --port 8787\n"
            "  ghl-connector api keys list\n"
            "  ghl-connector api keys revoke zapier"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1",
                        help="where to listen (127.0.0.1; another address exposes the API)")
    parser.add_argument("--port", type=port, default=8787, help="0 picks a free port (8787)")
    parser.add_argument("--store", "--db", dest="db", metavar="URL|PATH",
                        help="the state: an SQLite file (default: $CONNECTOR_STORE, else"
                        " $CONNECTOR_HOME/state.db) or postgresql://user@host/db")
    parser.add_argument("--base-url", action="append", default=[], metavar="[APP=]URL",
                        help="send an app's calls to this base URL (a sandbox); repeatable")
    parser.add_argument("--rate-limit", action="append", default=[], metavar="[APP=]N/SECONDS",
                        help="an app's rate limit per location instead of its manifest's")
    parser.add_argument("--strict", action="store_true",
                        help="an output that fails its schema is an error (502)")
    parser.add_argument("--timeout", type=float, metavar="SECONDS", help="per-request timeout")
    parser.set_defaults(func=run_server)
    commands = parser.add_subparsers(dest="api_command", metavar="keys")
    keys = commands.add_parser("keys", help="create, list and revoke API keys")
    verbs = keys.add_subparsers(dest="keys_command", metavar="COMMAND", required=True)
    create = verbs.add_parser(
        "create", help="create a key (printed once: only its digest is stored)",
        usage="ghl-connector api keys create NAME [--actions GLOB [GLOB ...]] [--read-only]"
              " [--store URL|PATH]",
    )
    create.add_argument("name", metavar="NAME")
    create.add_argument("--actions", nargs="+", default=[], metavar="GLOB",
                        help="the action and trigger ids it may use (default: all)")
    create.add_argument("--read-only", action="store_true",
                        help="no action that changes something, no hook subscription")
    create.add_argument("--store", "--db", dest="db", metavar="URL|PATH",
                        help="the state (default: $CONNECTOR_STORE, else $CONNECTOR_HOME/state.db)")
    create.set_defaults(func=run_keys)
    listing = verbs.add_parser("list", help="list the keys (never the keys themselves)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.add_argument("--store", "--db", dest="db", metavar="URL|PATH",
                        help="the state (default: $CONNECTOR_STORE, else $CONNECTOR_HOME/state.db)")
    listing.set_defaults(func=run_keys)
    revoke = verbs.add_parser("revoke", help="revoke a key; its requests get 401 at once")
    revoke.add_argument("name", metavar="NAME")
    revoke.add_argument("--store", "--db", dest="db", metavar="URL|PATH",
                        help="the state (default: $CONNECTOR_STORE, else $CONNECTOR_HOME/state.db)")
    revoke.set_defaults(func=run_keys)


def run_server(args: argparse.Namespace) -> int:
    """Serve the API."""
    from connector.api.runtimes import RuntimeOptions
    from connector.api.server import serve
    from connector.catalog import build_catalog
    from connector.cli.argtypes import per_app, rate_limits
    from connector.errors import ConnectorError

    catalog = build_catalog()
    urls = per_app(args.base_url, "--base-url", catalog)
    for app, url in urls.items():
        if not url.startswith(("http://", "https://")):
            raise ConnectorError(f"--base-url {app}={url}: not an http:// or https:// URL")
    options = RuntimeOptions(
        base_urls=urls, rate_limits=rate_limits(args.rate_limit, catalog),
        strict=args.strict, timeout=args.timeout,
    )  # fmt: skip
    serve(catalog, host=args.host, port=args.port, db=args.db, options=options)
    return 0


def run_keys(args: argparse.Namespace) -> int:
    """``api keys create|list|revoke``."""
    from connector.api.apikeys import ApiKeys
    from connector.errors import ConnectorError
    from connector.store import Store

    with Store(args.db) as store:
        keys = ApiKeys(store)
        if args.keys_command == "create":
            record, key = keys.create(args.name, args.actions, read_only=args.read_only)
            print(key)
            scope = ", ".join(record.actions) or "every action"
            print(f"api key {record.name!r} created ({scope}"
                  f"{', read-only' if record.read_only else ''}); it is shown only now:"
                  " keep it in the platform's connection settings", file=sys.stderr)  # fmt: skip
            return 0
        if args.keys_command == "revoke":
            if not keys.revoke(args.name):
                raise ConnectorError(f"no live api key named {args.name!r}"
                                     " [see 'ghl-connector api keys list']")  # fmt: skip
            print(f"api key {args.name!r} revoked", file=sys.stderr)
            return 0
        listed = keys.list()
        if args.json:
            json.dump([k.summary() for k in listed], sys.stdout, indent=2)
            sys.stdout.write("\n")
            return 0
        from connector.cli.table import print_table

        rows = [
            [k.name, k.id, " ".join(k.actions) or "*", "yes" if k.read_only else "no",
             "revoked" if k.revoked_at else "live"]
            for k in listed
        ]  # fmt: skip
        if not rows:
            print("no api keys [create one: ghl-connector api keys create NAME]")
            return 0
        print_table(rows, headers=["name", "id", "actions", "read-only", "state"])
        return 0
