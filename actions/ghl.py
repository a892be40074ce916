"""Built-in plugin: the HighLevel app and its Contacts API actions, as declared in manifest.yaml."""

from __future__ import annotations

from connector import Action, App, hookimpl, pack_manifest

APP_ID = "ghl"


@hookimpl
def connector_register_apps() -> list[App]:
    """The HighLevel app (base URL, Version header, auth kinds, rate limits)."""
    return [pack_manifest().apps[APP_ID]]


@hookimpl
def connector_register_actions() -> list[Action]:
    """Every GHL action the pack's manifest declares."""
    return [a for a in pack_manifest().actions.values() if a.app == APP_ID]
