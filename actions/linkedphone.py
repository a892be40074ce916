"""Built-in plugin: the LinkedPhone app and its REST actions (tools/apps/linkedphone.yaml).

LinkedPhone publishes no API reference: the app's ``assumptions`` (in the manifest) list what
the catalog assumes, and ``connector.sandbox.linkedphone`` serves exactly this declared API.
"""

from __future__ import annotations

from connector import Action, App, hookimpl, pack_manifest

APP_ID = "linkedphone"


@hookimpl
def connector_register_apps() -> list[App]:
    """The LinkedPhone app (base URL, API-key header, rate limit, assumptions)."""
    return [pack_manifest().apps[APP_ID]]


@hookimpl
def connector_register_actions() -> list[Action]:
    """Every LinkedPhone action the pack's manifest declares (all ``kind: http``)."""
    return [a for a in pack_manifest().actions.values() if a.app == APP_ID]
