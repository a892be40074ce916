"""``ghl-connector call``: call one action with a JSON input and print its JSON output."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connector.cli.argtypes import env_name, seconds
from connector.errors import DocumentError, Location, Problem

if TYPE_CHECKING:
    from connector.catalog import Catalog
    from connector.hookspecs import App

__all__ = ["add_parser", "credential_context"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``call``."""
    parser = sub.add_parser(
        "call",
        help="call one action and print its JSON output",
        description=(
            "Call one action. The input is one flat JSON object: path, query and body fields "
            "side by side, under the official names (see 'ghl-connector catalog show ID')."
        ),
        epilog=(
            "examples:\n"
            '  ghl-connector call ghl.contacts.get --input \'{"contactId": "abc"}\' \\\n'
            "      --token-env GHL_TOKEN\n"
            "  ghl-connector call ghl.contacts.create --input @contact.json --dry-run\n"
            "  ghl-connector call ghl.contacts.search --input '{\"pageLimit\": 100}' \\\n"
            "      --location-id LOC --all-pages --max-items 500\n"
            "\nOutput is JSON on stdout; a handled error is one line on stderr and exit status 1."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", metavar="ID", help="action id, e.g. ghl.contacts.get")
    parser.add_argument(
        "--input",
        default="{}",
        metavar="JSON|@FILE|-",
        help="the input object: JSON text, @path to a JSON file, or - for stdin (default: {})",
    )
    parser.add_argument(
        "--base-url",
        metavar="[APP=]URL",
        help="send to this base URL instead of the app's (e.g. a sandbox); APP= may name the"
        " action's app, as serve's option does",
    )
    parser.add_argument(
        "--token-env",
        type=env_name,
        metavar="VAR",
        help="name of the environment variable holding the bearer token (never the token itself)",
    )
    parser.add_argument(
        "--connection",
        metavar="NAME",
        help="stored connection to use (see 'ghl-connector auth status'); default: "
        "$CONNECTOR_TOKEN, else the connection named 'default', else the only one",
    )
    parser.add_argument(
        "--location-id",
        help="fills the location input (locationId, location_id, altId) where the input needs"
        " it; keys the rate limiter",
    )
    parser.add_argument(
        "--all-pages", action="store_true", help="follow pagination; prints a JSON list"
    )
    parser.add_argument(
        "--max-items", type=int, metavar="N", help="with --all-pages: stop after N records"
    )
    parser.add_argument(
        "--strict", action="store_true", help="an output that fails its schema is an error"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the request it would send (token masked); send nothing",
    )
    parser.add_argument("--timeout", type=seconds, metavar="SECONDS", help="per-request timeout")
    parser.set_defaults(func=run)


def read_input(text: str) -> dict[str, Any]:
    """Parse ``--input``: JSON text, ``@file`` or ``-`` (stdin); it must be a JSON object
    within :func:`~connector.documents.payload.load_json`'s limits."""
    from connector.documents.payload import MAX_BYTES, load_json

    source, data = "--input", text.encode("utf-8", "surrogatepass")
    if text == "-":
        source, data = "<stdin>", sys.stdin.buffer.read(MAX_BYTES + 1)
    elif text.startswith("@"):
        source = text[1:]
        if not source:
            raise DocumentError([Problem(Location("--input"), "no file name after '@'")])
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise DocumentError(
                [Problem(Location(source), f"cannot read: {exc.strerror}")]
            ) from None
    value = load_json(data, source=source)
    if not isinstance(value, dict):
        raise DocumentError([Problem(Location(source), "the input must be a JSON object")])
    return value


def run(args: argparse.Namespace) -> int:
    """Call the action and print the result."""
    from connector.auth.credentials import auth_from_args
    from connector.catalog import build_catalog
    from connector.runtime import Runtime, Settings

    data = read_input(args.input)
    catalog = build_catalog()
    action = catalog.action(args.action)
    app = catalog.app(action.app)
    if action.deprecated:  # worded as validate's warning for a step that uses it
        instead = f" [use {action.use_instead!r} instead]" if action.use_instead else ""
        print(f"warning: action {action.id!r} is deprecated{instead}", file=sys.stderr)
    invented: dict[str, str] = {}
    if args.dry_run:
        auth = None
        location_id, base_url = credential_context(args, app)
        if not (args.location_id or location_id):
            added = action.location_fill(data, None)
            data.update(added)
            for param in (n for n in added if n in action.located_inputs()):
                invented[param] = (
                    "invented by the dry run: no connection to take it from [a real call takes"
                    " it from --location-id or the connection's location]"
                )
    else:
        auth, location_id, base_url = auth_from_args(args, app)
    base_url = _base_url(args.base_url, action.app, catalog) or base_url
    settings = Settings(
        strict=args.strict,
        base_urls={action.app: base_url} if base_url else {},
        location_id=args.location_id or location_id,
        timeout=args.timeout,
    )
    with Runtime(catalog, settings, auth=auth) as runtime:
        if args.dry_run:
            preview = runtime.dry_run(action.id, data)
            _dump({**preview, "placeholders": invented} if invented else preview)
        elif args.all_pages:
            _dump_stream(runtime.iterate(action.id, data, max_items=args.max_items))
        else:
            _dump(runtime.call(action.id, data))
    return 0


def credential_context(args: argparse.Namespace, app: App) -> tuple[str | None, str | None]:
    """The location and base URL a real call would take from its credential, read without
    using the credential (a dry run sends nothing); (None, None) when there is none to read."""
    from connector.auth.connection import ConnectionStore
    from connector.errors import ConnectorError

    if args.token_env or "none" in app.auth or "api_key" in app.auth:
        return None, None  # as in auth_from_args: no stored connection is used
    try:
        connection = ConnectionStore.open().resolve(getattr(args, "connection", None))
    except ConnectorError:
        return None, None
    return connection.location_id, connection.base_url


def _dump(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _dump_stream(items: Any) -> None:
    """A JSON list written item by item, so memory stays flat over many pages."""
    out = sys.stdout
    out.write("[")
    first = True
    for item in items:
        out.write("\n  " if first else ",\n  ")
        out.write(json.dumps(item))
        first = False
    out.write("\n]\n" if not first else "]\n")


def _base_url(text: str | None, app: str, catalog: Catalog) -> str | None:
    """``--base-url [APP=]URL`` for an action of ``app``: its URL, checked.

    :raises ConnectorError: the option names another app, or the URL is not http(s).
    """
    if not text:
        return None
    from connector.cli.argtypes import per_app
    from connector.errors import ConnectorError

    ((named, url),) = per_app([text], "--base-url", catalog, plain=app).items()
    if named != app:
        raise ConnectorError(
            f"--base-url {text!r}: names app {named!r}, but the action is {app!r}'s"
        )
    if not url.startswith(("http://", "https://")):
        raise ConnectorError(f"--base-url {text!r}: not an http:// or https:// URL")
    return url
