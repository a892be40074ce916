"""The MCP server's resources: the catalog, and a sample event of every trigger.

``ghl-connector://catalog`` is the JSON list ``catalog --json`` prints (every action and
trigger, a plugin's included); ``ghl-connector://triggers/{id}/sample`` is the event
``catalog show ID --sample`` prints for trigger ``id``: what a recipe started by it receives.
Each is built when it is read.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from mcp.server.mcpserver.resources import FunctionResource, Resource

from connector.catalog import Catalog
from connector.catalogsearch import rows
from connector.hookspecs import Trigger

__all__ = ["CATALOG_URI", "catalog_resources", "sample_uri"]

CATALOG_URI = "ghl-connector://catalog"


def sample_uri(trigger_id: str) -> str:
    """The URI of trigger ``trigger_id``'s sample event."""
    return f"ghl-connector://triggers/{trigger_id}/sample"


def catalog_resources(catalog: Catalog) -> list[Resource]:
    """The catalog resource, then one sample resource per trigger, in id order."""

    def listing() -> str:
        return json.dumps(rows(catalog), indent=2)

    found: list[Resource] = [
        FunctionResource(
            uri=CATALOG_URI,
            name="catalog",
            title="Catalog of actions and triggers",
            description="Every action and trigger: id, app, title, method and path or event,"
            " scopes, tags, description (as `ghl-connector catalog --json`).",
            mime_type="application/json",
            fn=listing,
        )
    ]
    for trigger_id in sorted(catalog.triggers):
        trigger = catalog.triggers[trigger_id]
        found.append(
            FunctionResource(
                uri=sample_uri(trigger_id),
                name=f"{trigger_id} sample",
                title=f"Sample event: {trigger.title}",
                description=f"An example {trigger_id} event ({trigger.kind} trigger"
                + (f" on {trigger.event}" if trigger.event else "")
                + "): the payload a recipe started by it receives.",
                mime_type="application/json",
                fn=_sampler(trigger),
            )
        )
    return found


def _sampler(trigger: Trigger) -> Callable[[], str]:
    def sample_event() -> str:
        from connector.cli.describe import describe_trigger

        return json.dumps(describe_trigger(trigger)[1]["example_event"], indent=2)

    return sample_event
