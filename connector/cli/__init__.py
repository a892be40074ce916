"""The ``ghl-connector`` command: argument parsing, logging set-up and the error boundary.

Each command lives in its own module with an ``add_parser(subparsers)`` function; handlers
import what they need when they run, so ``--help`` stays fast. A handled error
(:class:`~connector.errors.ConnectorError`) prints ``error: <message>`` on stderr and exits 1;
usage errors exit 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from importlib import import_module
from typing import Any, NoReturn

from connector.errors import ConnectorError

__all__ = ["main"]

COMMANDS = (
    "demo", "catalog", "call", "validate", "run", "runs", "serve", "worker", "replay", "audit",
    "backfill", "sandbox", "auth", "hooks", "api", "export", "mcpserve", "console", "store",
)
"""Modules of :mod:`connector.cli` that add a command, in the order ``--help`` lists them."""

LOG_ENV = "CONNECTOR_LOG_LEVEL"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
SERVICE_COMMANDS = frozenset({"serve", "worker"})
"""Commands whose log (JSON lines) is their record of work: INFO unless told otherwise."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line: the error, a close command name
    when one was misspelt, and where the help is (not the whole usage block)."""

    def error(self, message: str) -> NoReturn:
        hint = f"see '{self.prog} --help'"
        if message.startswith("argument ") and "invalid choice: " in message:
            import difflib
            import re

            found = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
            if found:
                choices = [c.strip(" '") for c in found.group(2).split(",")]
                close = difflib.get_close_matches(found.group(1), choices, n=1)
                message = f"invalid choice: {found.group(1)!r}"
                hint = (f"did you mean {close[0]!r}? " if close else "") + hint
        self.exit(2, f"{self.prog}: error: {message} [{hint}]\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (every command registered)."""
    parser = _Parser(
        prog="ghl-connector",
        description=(
            "A no-code connector pack for HighLevel (GoHighLevel, LeadConnector): "
            "every GHL API action and webhook event, YAML recipes and two-way syncs run by a"
            " service, and faces for automation platforms (HTTP API, OpenAPI, MCP)."
        ),
        epilog=(
            "examples:\n"
            "  ghl-connector demo                         the two-way sync demo (no account)\n"
            "  ghl-connector catalog search opportunity   find actions by words\n"
            "  ghl-connector catalog show ghl.contacts.get\n"
            "  ghl-connector sandbox --port 8800          a local GHL stand-in\n"
            '  ghl-connector call ghl.contacts.get --input \'{"contactId": "abc"}\' --dry-run\n'
            "  ghl-connector serve --recipes recipes --sandbox   the service, with /console\n"
            "  ghl-connector api | mcp                    the HTTP API, the MCP server\n"
            "\nRun 'ghl-connector COMMAND --help' for a command's options."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_Version, help="show the version and exit")
    parser.add_argument(
        "--log-level",
        default=None,
        choices=LOG_LEVELS,
        type=str.upper,
        help=f"log verbosity on stderr, for every command and the libraries it uses (default:"
        f" ${LOG_ENV}, else WARNING; serve and worker: INFO, as JSON lines); secrets are"
        " redacted",
    )
    parser.add_argument(
        "--store",
        metavar="URL|PATH",
        help="the state every command uses: an SQLite file or postgresql://user@host/db"
        " (default: $CONNECTOR_STORE, else $CONNECTOR_HOME/state.db)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = _command_module(name)
        if module is not None:
            module.add_parser(sub)
    for name in STATEFUL:
        if name in sub.choices:
            _take_store(sub.choices[name])
    return parser


STATEFUL = ("call", "run", "runs", "audit", "backfill", "auth", "mcp")
"""Commands that read the state: each of their subcommands takes ``--store`` after its name
too (``runs --store URL``), as serve, replay, hooks and api do."""


def _take_store(parser: argparse.ArgumentParser) -> None:
    """Give ``parser`` and its subcommands a ``--store`` option if they have none."""
    for action in parser._actions:  # noqa: SLF001  # argparse keeps its subparsers here
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for child in set(action.choices.values()):
                _take_store(child)
    if "--store" not in parser._option_string_actions:  # noqa: SLF001
        parser.add_argument("--store", metavar="URL|PATH", default=argparse.SUPPRESS,
                            help="the state: an SQLite file or postgresql://... (as before the"
                            " command)")


class _Version(argparse.Action):
    """``--version``: looks the version up only when asked (reading the installed package's
    metadata costs about 0.1 s, which every other command would pay)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        print(f"{parser.prog} {_version()}")
        parser.exit()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ghl-connector")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def _command_module(name: str) -> Any:
    try:
        return import_module(f"connector.cli.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"connector.cli.{name}":
            return None
        raise


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.log_level = log_level(args.log_level, args.command)
    _configure_logging(args.log_level)
    if getattr(args, "store", None):  # every command's Store() reads it
        os.environ["CONNECTOR_STORE"] = args.store
    try:
        status: int = args.func(args)
    except ConnectorError as exc:
        print(f"error: {_redacted(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return status


def log_level(given: str | None, command: str) -> str:
    """The level a command logs at: ``--log-level``, else ``$CONNECTOR_LOG_LEVEL`` (ignored when
    not a level), else INFO for :data:`SERVICE_COMMANDS` and WARNING for the others."""
    if given:
        return given
    from_env = os.environ.get(LOG_ENV, "").strip().upper()
    if from_env in LOG_LEVELS:
        return from_env
    return "INFO" if command in SERVICE_COMMANDS else "WARNING"


def _redacted(text: str) -> str:
    """Mask anything secret-shaped, in case a remote error body echoed a credential."""
    try:
        from connector.auth.redaction import redact
    except ModuleNotFoundError:
        return text
    return redact(text)


def _configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    try:
        from connector.auth.redaction import install_redaction
        from connector.service.logformat import follow_level
    except ModuleNotFoundError:
        root.setLevel(level)
        return
    follow_level(level)
    install_redaction()
