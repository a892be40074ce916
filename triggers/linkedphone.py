"""Built-in plugin: the LinkedPhone triggers (signed webhooks, polling) manifest.yaml declares."""

from __future__ import annotations

from connector import Trigger, hookimpl, pack_manifest

APP_ID = "linkedphone"


@hookimpl
def connector_register_triggers() -> list[Trigger]:
    """Every LinkedPhone trigger the manifest declares (the app comes from actions.linkedphone)."""
    return [t for t in pack_manifest().triggers.values() if t.app == APP_ID]
