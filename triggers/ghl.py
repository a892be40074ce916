"""Built-in plugin: the HighLevel triggers (webhook events, polling) manifest.yaml declares."""

from __future__ import annotations

from connector import Trigger, hookimpl, pack_manifest

APP_ID = "ghl"


@hookimpl
def connector_register_triggers() -> list[Trigger]:
    """Every GHL trigger the pack's manifest declares (the app itself comes from actions.ghl)."""
    return [t for t in pack_manifest().triggers.values() if t.app == APP_ID]
