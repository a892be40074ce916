"""``ghl-connector mcp``: serve the catalog's actions as MCP tools (stdio, or streamable HTTP).

The module is not named ``mcp`` so that it never stands for the SDK of that name.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from typing import TYPE_CHECKING

from connector.cli.argtypes import env_name, port, rate_limits, seconds

if TYPE_CHECKING:
    import httpx

    from connector.catalog import Catalog
    from connector.hookspecs import AuthProvider, Settings

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``mcp``."""
    parser = sub.add_parser(
        "mcp",
        help="serve actions as Model Context Protocol tools (Claude Desktop, other agents)",
        description=(
            "Serve the catalog's actions as MCP tools, over stdio (the default: an MCP client"
            " starts this command) or streamable HTTP on 127.0.0.1 (--http). Each tool is one"
            " action (tool name: its id with '-' for '.'), validated as 'call' validates"
            " input; the catalog and every trigger's sample event are resources."
            " See docs/platforms/mcp.md."
        ),
        epilog=(
            "examples:\n"
            "  ghl-connector mcp                          the Contacts actions, stdio\n"
            "  ghl-connector mcp --actions 'ghl.opportunities.*' 'ghl.contacts.*' --read-only\n"
            "  ghl-connector mcp --dynamic                search, describe, call: every action\n"
            "  ghl-connector mcp --sandbox --http --port 8765   against a local GHL sandbox\n"
            "\nLogs go to stderr; on stdio, stdout carries only the protocol."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--actions",
        nargs="+",
        metavar="GLOB",
        help="the actions offered, as id globs ('*': all; default: ghl.contacts.*, or all"
        " with --dynamic)",
    )
    parser.add_argument(
        "--read-only", action="store_true", help="offer only actions that read (no writes)"
    )
    parser.add_argument(
        "--dynamic",
        action="store_true",
        help="offer three tools instead (search_actions, describe_action, call_action) that"
        " reach every selected action on demand",
    )
    parser.add_argument(
        "--http",
        action="store_true",
        help="serve streamable HTTP at http://127.0.0.1:PORT/mcp instead of stdio",
    )
    parser.add_argument(
        "--port", type=port, default=8765, help="with --http: the port (8765; 0: a free one)"
    )
    parser.add_argument(
        "--sandbox",
        action="store_true",
        help="demo/test mode: start a local GHL sandbox in this process and call it (its"
        " token and location); nothing leaves 127.0.0.1",
    )
    parser.add_argument(
        "--base-url",
        action="append",
        default=[],
        metavar="[APP=]URL",
        help="send GHL calls (or APP's) to this base URL, e.g. a sandbox's (repeatable;"
        " for GHL, not with --sandbox)",
    )
    parser.add_argument(
        "--rate-limit",
        action="append",
        default=[],
        metavar="[APP=]N/SECONDS",
        help="GHL's per-location limit, if not 100/10, or APP's (repeatable)",
    )
    parser.add_argument(
        "--connection",
        metavar="NAME",
        help="stored connection for GHL calls (default: $CONNECTOR_TOKEN, else the"
        " connection named 'default', else the only one)",
    )
    parser.add_argument(
        "--token-env",
        type=env_name,
        metavar="VAR",
        help="environment variable holding the GHL bearer token (never the token itself)",
    )
    parser.add_argument(
        "--location-id",
        help="fills the location input (locationId, location_id, altId) where an input needs"
        " it; keys the rate limiter",
    )
    parser.add_argument("--timeout", type=seconds, metavar="SECONDS", help="per-request timeout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the tools from the catalog and serve until the client leaves (or Ctrl-C)."""
    from connector.catalog import build_catalog
    from connector.mcpserver.server import ServerOptions, build_server, serve_http, serve_stdio
    from connector.mcpserver.toolset import select
    from connector.runtime import Runtime

    catalog = build_catalog()
    patterns = args.actions or (["*"] if args.dynamic else None)
    select(catalog, patterns, read_only=args.read_only)  # a mistake there first, alone
    hub = catalog.hub
    if args.sandbox and hub is not None and hub in _urls(args, catalog):  # else ignored
        print(f"ghl-connector mcp: error: --sandbox calls its own GHL sandbox, so --base-url"
              f" for {hub} cannot apply [give one of them; --base-url APP=URL for"
              " another app is fine]", file=sys.stderr)
        return 2
    with ExitStack() as stack:
        settings, auth = (
            _sandbox(args, catalog, stack) if args.sandbox else _connection(args, catalog)
        )
        runtime = stack.enter_context(Runtime(catalog, settings, auth=auth))
        options = ServerOptions(
            actions=args.actions, read_only=args.read_only, dynamic=args.dynamic
        )
        server = build_server(catalog, runtime, options)
        if args.http:
            try:
                serve_http(server, args.port)
            except OSError as exc:
                from connector.errors import ConnectorError

                raise ConnectorError(
                    f"--port {args.port}: cannot listen on 127.0.0.1: {exc.strerror}"
                    " [choose another port, or 0 for a free one]"
                ) from None
        else:
            if sys.stdin.isatty():  # run by hand: say why nothing seems to happen
                print("MCP server on stdio: waiting for an MCP client's JSON-RPC on stdin. An"
                      " MCP client (Claude Desktop, ...) starts this command itself; to try it"
                      " by hand use --http (see docs/platforms/mcp.md). Ctrl-C stops.",
                      file=sys.stderr, flush=True)
            serve_stdio(server)
    return 0


def _urls(args: argparse.Namespace, catalog: Catalog) -> dict[str, str]:
    """``--base-url`` values by app, each an http(s) URL.

    :raises ConnectorError: an unknown app, or not an http(s) URL.
    """
    from connector.cli.argtypes import per_app
    from connector.errors import ConnectorError

    urls = per_app(args.base_url, "--base-url", catalog, plain=catalog.hub)
    for app, url in urls.items():
        if not url.startswith(("http://", "https://")):
            raise ConnectorError(f"--base-url {app}={url}: not an http:// or https:// URL")
    return urls


def _settings(
    args: argparse.Namespace, catalog: Catalog, urls: dict[str, str], location: str | None
) -> Settings:
    from connector.runtime import Settings

    return Settings(
        base_urls=urls,
        location_id=args.location_id or location,
        timeout=args.timeout,
        rate_limits=rate_limits(args.rate_limit, catalog, plain=catalog.hub),
    )


def _connection(args: argparse.Namespace, catalog: Catalog) -> tuple[Settings, AuthProvider]:
    """Credentials as ``call`` takes them: the hub's from ``--token-env`` or a stored
    connection (refreshed, scopes checked), other apps' from their own variables. Without a
    connection the server still starts: GHL calls then answer the reason as a tool error."""
    from connector.auth.bearer import app_token
    from connector.auth.credentials import api_key_provider, auth_from_args
    from connector.errors import AuthError
    from connector.hookspecs import Action, App

    urls = _urls(args, catalog)
    hub = catalog.hub_app()
    hub_auth: AuthProvider | None
    location: str | None = None
    stored_url: str | None = None
    try:
        hub_auth, location, stored_url = auth_from_args(args, hub)
    except AuthError as exc:
        reason = exc
        print(f"warning: {reason} [GHL calls will fail until this is fixed]", file=sys.stderr)

        def refuse(app: App, action: Action) -> httpx.Auth | None:
            raise reason

        hub_auth = refuse
    if stored_url and hub.id not in urls:
        urls[hub.id] = stored_url

    def other(app: App, action: Action) -> httpx.Auth | None:
        return None if not app.auth or "none" in app.auth else app_token(app)

    partners = api_key_provider(other)

    def provide(app: App, action: Action) -> httpx.Auth | None:
        if app.hub:
            return hub_auth(app, action) if hub_auth else None
        return partners(app, action)

    return _settings(args, catalog, urls, location), provide


def _sandbox(
    args: argparse.Namespace, catalog: Catalog, stack: ExitStack
) -> tuple[Settings, AuthProvider]:
    """A GHL sandbox in this process, its token for GHL's actions, its location by default."""
    from connector.auth.bearer import StaticBearer
    from connector.auth.credentials import api_key_provider, ghl_only
    from connector.auth.redaction import register
    from connector.hookspecs import RateLimit
    from connector.sandbox.config import SandboxConfig
    from connector.sandbox.server import SandboxServer

    hub = catalog.hub_app()
    sandbox = stack.enter_context(SandboxServer(SandboxConfig(seed_contacts=5)))
    register(sandbox.private_token)
    config = sandbox.config
    print(
        f"ghl sandbox: {sandbox.base_url} (location {sandbox.location_id})",
        file=sys.stderr,
        flush=True,
    )
    urls = {**_urls(args, catalog), hub.id: sandbox.base_url}
    settings = _settings(args, catalog, urls, sandbox.location_id)
    limits = {hub.id: RateLimit(config.rate_limit_requests, config.rate_limit_seconds)}
    from dataclasses import replace

    settings = replace(settings, rate_limits={**settings.rate_limits, **limits})
    return settings, api_key_provider(ghl_only(StaticBearer(sandbox.private_token)))
