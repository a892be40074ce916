"""``ghl-connector export openapi``: the HTTP API's OpenAPI document, without a server."""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``export``."""
    parser = sub.add_parser(
        "export",
        help="print the HTTP API's OpenAPI document (3.1, or Swagger 2.0 for Power Automate)",
        description=(
            "Print the OpenAPI document 'ghl-connector api' serves at /openapi.json: one "
            "operation per action, from the catalog. --format 2.0 lowers it to Swagger 2.0, "
            "which Power Automate and Logic Apps import as a custom connector; operations "
            "it cannot state are listed under x-omitted-operations, and on stderr."
        ),
        epilog=(
            "examples:\n"
            "  ghl-connector export openapi > openapi.json\n"
            "  ghl-connector export openapi --format 2.0 --actions 'ghl.contacts.*' \\\n"
            "      --server https://connector.example.com > contacts-swagger.json\n"
            "\nSee docs/api.md and docs/platforms/power-automate.md."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("what", choices=["openapi"], help="what to export (openapi)")
    parser.add_argument("--format", choices=["3.1", "2.0"], default="3.1",
                        help="OpenAPI 3.1 (default) or Swagger 2.0")
    parser.add_argument("--actions", nargs="+", default=[], metavar="GLOB",
                        help="only the actions (and triggers) whose ids match (default: all)")
    parser.add_argument("--server", metavar="URL",
                        help="the API's base URL in the document (default:"
                        " http://127.0.0.1:8787)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the document."""
    from connector.api.openapi import DEFAULT_SERVER, document
    from connector.catalog import build_catalog
    from connector.errors import ConnectorError

    server = args.server or DEFAULT_SERVER
    if not server.startswith(("http://", "https://")):
        raise ConnectorError(f"--server {server!r}: not an http:// or https:// URL")
    catalog = build_catalog()
    doc = document(catalog, server_url=server.rstrip("/"), globs=args.actions)
    if args.actions and not any(p.startswith(("/v1/actions/", "/v1/triggers/"))
                                and "{" not in p for p in doc["paths"]):  # fmt: skip
        raise ConnectorError(f"--actions {' '.join(args.actions)}: matches no action or"
                             " trigger [see 'ghl-connector catalog']")  # fmt: skip
    if args.format == "2.0":
        from connector.api.swagger import swagger

        doc = swagger(doc)
        for op, why in doc.get("x-omitted-operations", {}).items():
            print(f"warning: {op}: left out of the Swagger 2.0 document: {why}", file=sys.stderr)
    json.dump(doc, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0
