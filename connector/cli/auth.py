"""``ghl-connector auth``: log in, list, remove and add connections; no token is ever printed."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from connector.cli.argtypes import env_name, seconds

__all__ = ["add_parser"]

SECRET_ENV = "GHL_CLIENT_SECRET"
CLIENT_ID_ENV = "GHL_CLIENT_ID"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``auth`` and its subcommands."""
    parser = subparsers.add_parser(
        "auth",
        help="manage connections: OAuth login, private tokens, status, logout",
        description="Manage named connections to HighLevel. Tokens are stored encrypted in the"
        " state file ($CONNECTOR_HOME/state.db) and never printed.",
        epilog="examples:\n"
        "  ghl-connector auth login --client-id ID --scopes 'contacts.readonly contacts.write'\n"
        "  GHL_PIT=... ghl-connector auth set-token acme --token-env GHL_PIT --location-id LOC\n"
        "  ghl-connector auth status\n"
        "  ghl-connector auth logout acme",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="auth_command", metavar="SUBCOMMAND", required=True)
    _add_login(sub)
    status = sub.add_parser("status", help="list connections (never their tokens)")
    status.add_argument("--json", action="store_true", help="print a JSON list")
    status.set_defaults(func=run_status)
    logout = sub.add_parser("logout", help="delete a connection and its tokens")
    logout.add_argument("name", help="the connection to delete")
    logout.set_defaults(func=run_logout)
    _add_set_token(sub)
    location = sub.add_parser(
        "location-token", help="derive a location connection from an agency connection"
    )
    location.add_argument("--from", dest="source", required=True, help="the agency connection")
    location.add_argument("--location-id", required=True, help="the location (sub-account) id")
    location.add_argument("--name", required=True, help="the name of the new connection")
    location.set_defaults(func=run_location_token)


def _add_login(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    login = sub.add_parser(
        "login",
        help="authorize the app (OAuth authorization code) and store the token",
        description="Print the authorize URL, receive the redirect on http://127.0.0.1:PORT/"
        "callback, check its state, exchange the code and store the token.",
    )
    login.add_argument(
        "--client-id",
        default=os.environ.get(CLIENT_ID_ENV),
        help=f"the marketplace app's client id (default: ${CLIENT_ID_ENV})",
    )
    login.add_argument(
        "--client-secret-env",
        type=env_name,
        default=SECRET_ENV,
        metavar="VAR",
        help=f"environment variable holding the client secret (default: {SECRET_ENV});"
        " prompted for (hidden) when unset on a terminal",
    )
    login.add_argument(
        "--scopes",
        default="",
        help="scopes to request, space-separated (added to those --recipes need)",
    )
    login.add_argument(
        "--scopes-for",
        "--recipes",
        dest="recipes",
        nargs="+",
        default=[],
        metavar="RECIPE",
        help="ask for exactly the scopes these recipes (files or folders) need: every action's"
        " and trigger's scopes (checked with validate first)",
    )
    login.add_argument(
        "--print-scopes",
        action="store_true",
        help="print the scopes the login would ask for, one a line, and exit (no login)",
    )
    login.add_argument("--name", default="default", help="connection name (default: default)")
    login.add_argument("--base-url", help="API base URL (default: $CONNECTOR_GHL_BASE_URL or GHL)")
    login.add_argument(
        "--authorize-url", help="authorize endpoint (default: GHL's, or BASE_URL's for others)"
    )
    login.add_argument(
        "--port",
        type=int,
        default=0,
        help="loopback port of the redirect URI (must match the app's registered redirect URI;"
        " default: any free port)",
    )
    login.add_argument("--timeout", type=seconds, default=300.0, help="seconds to wait (300)")
    login.add_argument(
        "--no-browser", action="store_true", help="only print the URL, never offer to open it"
    )
    login.set_defaults(func=run_login)


def _add_set_token(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = sub.add_parser(
        "set-token",
        help="store a private integration token",
        description="Store a private integration token, read from --token-env VAR or a hidden"
        " prompt (never from the command line).",
    )
    token.add_argument("name", help="the connection name")
    token.add_argument("--token-env", type=env_name, metavar="VAR",
                       help="environment variable holding the token")
    token.add_argument("--location-id", help="the location (sub-account) the token belongs to")
    token.add_argument("--company-id", help="the company (agency) id")
    token.add_argument(
        "--scopes", help="the token's scopes, space-separated (enables local scope checks)"
    )
    token.add_argument("--base-url", help="API base URL (default: $CONNECTOR_GHL_BASE_URL or GHL)")
    token.set_defaults(func=run_set_token)


def _login_scopes(args: argparse.Namespace) -> list[str]:
    """The scopes to request: --scopes plus what every --recipes file needs."""
    scopes = set(_split_scopes(args.scopes))
    if args.recipes:
        from pathlib import Path

        from connector.catalog import build_catalog
        from connector.cli.validate import recipe_files
        from connector.errors import ConnectorError
        from connector.recipes.checker import validate_file

        catalog = build_catalog()
        for recipe in args.recipes:
            files = recipe_files(Path(recipe))
            if not files:
                raise ConnectorError(f"auth login: {recipe}: no recipe (*.yaml) in this folder")
            for path in files:
                report = validate_file(path, catalog, filters=catalog.filters)
                report.raise_for_problems()
                scopes.update(report.scopes)
    if not scopes:
        from connector.errors import ConnectorError

        raise ConnectorError(
            "auth login: no scopes to request [hint: pass --scopes '...' or --scopes-for RECIPE...]"
        )
    return sorted(scopes)


def _split_scopes(text: str) -> list[str]:
    return sorted({s for s in text.replace(",", " ").split() if s})


def _read_secret(var: str | None, prompt: str, what: str, flag: str) -> str:
    """A secret from ``$var``, else a hidden prompt on a terminal; never from argv."""
    from connector.errors import AuthError

    if var:
        value = os.environ.get(var)
        if value:
            return value
    if not sys.stdin.isatty():
        where = f"${var} is not set" if var else "no terminal to prompt on"
        raise AuthError(
            f"{what}: {where} [hint: put the secret in an environment variable and pass"
            f" {flag} VAR, or run on a terminal to be prompted]"
        )
    import getpass

    value = getpass.getpass(prompt)
    if not value:
        raise AuthError(f"{what}: nothing entered")
    return value


def run_login(args: argparse.Namespace) -> int:
    """Run the authorization-code flow and store the connection."""
    from connector.auth import connection, oauth
    from connector.auth import tokens as auth
    from connector.errors import AuthError

    scopes = _login_scopes(args)  # a recipe that does not check stops us before any prompt
    if args.print_scopes:
        print("\n".join(scopes))
        return 0
    if not args.client_id:
        raise AuthError(f"auth login: no client id [hint: pass --client-id or set {CLIENT_ID_ENV}]")
    print(f"scopes to request: {' '.join(scopes)}", flush=True)
    secret = _read_secret(
        args.client_secret_env, "Client secret: ", "auth login", "--client-secret-env"
    )
    base_url = (args.base_url or connection.default_base_url()).rstrip("/")
    authorize = args.authorize_url or (
        oauth.DEFAULT_AUTHORIZE_URL
        if base_url == connection.DEFAULT_BASE_URL
        else f"{base_url}/oauth/chooselocation"
    )
    store = auth.ConnectionStore.open()
    saved = auth.login(
        store,
        name=args.name,
        client_id=args.client_id,
        client_secret=secret,
        scopes=scopes,
        base_url=base_url,
        authorize_endpoint=authorize,
        announce=lambda url: _announce(url, offer=not args.no_browser),
        port=args.port,
        timeout=args.timeout,
    )
    print(f"connection {saved.name!r} saved: {_describe(saved.summary())}")
    return 0


def _announce(url: str, *, offer: bool) -> None:
    print("Open this URL to authorize the app:", flush=True)
    print(f"  {url}", flush=True)
    if offer and sys.stdin.isatty() and sys.stdout.isatty():
        answer = input("Open it in your browser now? [Y/n] ").strip().lower()
        if answer in ("", "y", "yes"):
            import webbrowser

            webbrowser.open(url)
    print("Waiting for the redirect...", flush=True)


def run_status(args: argparse.Namespace) -> int:
    """List connections with their type, location, scopes and expiry."""
    from connector.auth import connection
    from connector.auth import tokens as auth

    stored = auth.ConnectionStore.open()
    rows = stored.summaries()
    key_problems = stored.key_problems()
    for row in rows:
        if row["name"] in key_problems:
            row["key_error"] = key_problems[str(row["name"])]
    env = connection.env_connection()
    if env is not None:
        rows.append(env.summary())
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if not rows:
        print("no connections [hint: run `ghl-connector auth login` or `auth set-token NAME`]")
        return 0
    from connector.cli.table import print_table

    print_table(
        [
            (
                str(r["name"]),
                str(r["kind"]),
                str(r["user_type"]),
                str(r["location_id"] or r["company_id"] or "-"),
                " ".join(r["scopes"]) if isinstance(r["scopes"], list) else "(unknown)",
                _expiry(r["expires_at"]),
                "key mismatch" if r.get("key_error") else
                "needs login" if r["needs_login"] else "ok",
            )
            for r in rows
        ],
        headers=("NAME", "KIND", "TYPE", "LOCATION", "SCOPES", "EXPIRES", "STATE"),
    )
    if key_problems:
        first = next(iter(key_problems.values()))
        print(f"warning: the key does not open {len(key_problems)} stored connection(s):"
              f" {first.partition(': ')[2] or first}", file=sys.stderr)
    return 0


def _expiry(value: object) -> str:
    if not isinstance(value, int | float):
        return "never"
    stamp = datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    left = value - time.time()
    return f"{stamp} (expired)" if left <= 0 else f"{stamp} (in {int(left // 60)} min)"


def _describe(summary: Mapping[str, object]) -> str:
    where = summary["location_id"] or summary["company_id"] or "?"
    scopes = summary["scopes"]
    shown = " ".join(scopes) if isinstance(scopes, list) else "unknown"
    return (
        f"{summary['kind']} {summary['user_type']} {where}, scopes: {shown},"
        f" expires: {_expiry(summary['expires_at'])}"
    )


def run_logout(args: argparse.Namespace) -> int:
    """Delete a connection and its tokens."""
    from connector.auth import tokens as auth
    from connector.errors import AuthError

    if not auth.ConnectionStore.open().delete(args.name):
        raise AuthError(f"auth logout: no connection named {args.name!r}")
    print(f"connection {args.name!r} deleted")
    return 0


def run_set_token(args: argparse.Namespace) -> int:
    """Store a private integration token read from the environment or a hidden prompt."""
    from connector.auth import connection
    from connector.auth import tokens as auth

    token = _read_secret(
        args.token_env, f"Token for {args.name}: ", f"auth set-token {args.name}", "--token-env"
    )
    saved = auth.set_token(
        auth.ConnectionStore.open(),
        name=args.name,
        token=token,
        base_url=(args.base_url or connection.default_base_url()).rstrip("/"),
        location_id=args.location_id,
        company_id=args.company_id,
        scopes=_split_scopes(args.scopes) if args.scopes is not None else None,
    )
    print(f"connection {saved.name!r} saved: {_describe(saved.summary())}")
    return 0


def run_location_token(args: argparse.Namespace) -> int:
    """Derive a location connection from an agency connection."""
    from connector.auth import tokens as auth

    tokens = auth.TokenManager(auth.ConnectionStore.open())
    saved = auth.connect_location(
        tokens, source=args.source, location_id=args.location_id, name=args.name
    )
    print(f"connection {saved.name!r} saved: {_describe(saved.summary())}")
    return 0
