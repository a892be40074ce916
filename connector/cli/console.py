"""``ghl-connector console``: where the web console of ``serve`` is (``--open`` opens it), and
``console token``: a login token for a console bound beyond loopback."""

from __future__ import annotations

import argparse

from connector.cli.argtypes import port

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``console`` and ``console token``."""
    parser = sub.add_parser(
        "console",
        help="print the URL of serve's web console (--open opens it); `console token` logs in",
        description=(
            "'ghl-connector serve' answers a web console at /console (live activity, runs, "
            "syncs, dead letters, connections and limits) and Prometheus metrics at /metrics. "
            "This prints the console's URL and opens nothing unless --open is given. Bound to "
            "127.0.0.1 (the default) it needs no login; bound beyond loopback (--host 0.0.0.0) "
            "it asks for a console token, which 'console token' creates."
        ),
        epilog="examples:\n  ghl-connector console\n  ghl-connector console --port 8800 --open\n"
        "  ghl-connector console token --label laptop",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1",
                        help="the host serve listens on (127.0.0.1)")
    parser.add_argument("--port", type=port, default=8000, help="serve's port (8000)")
    parser.add_argument("--open", action="store_true", help="open the console in a browser")
    parser.set_defaults(func=run_url)
    inner = parser.add_subparsers(dest="console_command", metavar="token")
    token = inner.add_parser(
        "token", help="create a console login token (printed once; only its hash is stored)"
    )
    token.add_argument("--store", "--db", dest="db", metavar="URL|PATH",
                       help="serve's state: a file or postgresql://... (default:"
                       " $CONNECTOR_STORE, else $CONNECTOR_HOME/state.db)")
    token.add_argument("--label", default="console", help="a name to remember it by")
    token.set_defaults(func=run_token)


def console_url(host: str, port_number: int) -> str:
    """The console's URL for serve's ``--host`` and ``--port`` (a wildcard host: 127.0.0.1)."""
    literal = host.strip().removeprefix("[").removesuffix("]")
    if literal in ("0.0.0.0", "::", ""):  # noqa: S104  # a wildcard bind is reached here
        literal = "127.0.0.1"
    shown = f"[{literal}]" if ":" in literal else literal
    return f"http://{shown}:{port_number}/console/"


def run_url(args: argparse.Namespace) -> int:
    """Print the console URL, whether serve answers there, and open it with ``--open``."""
    import httpx

    url = console_url(args.host, args.port)
    try:
        answer = httpx.get(url.removesuffix("console/") + "healthz", timeout=2)
        note = "serve answers there" if answer.status_code in (200, 503) else (
            f"something else answers there (HTTP {answer.status_code})")
    except httpx.HTTPError:
        note = "nothing answers there yet: start `ghl-connector serve`"
    print(url)
    print(f"  ({note})")
    if args.open:
        import webbrowser

        if not webbrowser.open(url):
            print("  (no browser could be opened here: open the URL yourself)")
    return 0


def run_token(args: argparse.Namespace) -> int:
    """Create a token, store its hash and print it once."""
    from connector.console.access import create_token
    from connector.store import Store

    with Store(args.db) as store:
        token = create_token(store, args.label)
        path = store.where
    print(token)
    print(f"  (a console login token for {path}: only its hash is stored, so keep it now;"
          " log in at the console's /console/login)")
    return 0
