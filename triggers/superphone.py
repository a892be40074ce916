"""Built-in plugin: the SuperPhone webhook triggers (contact, note and task changes) that
manifest.yaml declares; the app itself comes from :mod:`actions.superphone`."""

from __future__ import annotations

from connector import Trigger, hookimpl, pack_manifest

APP_ID = "superphone"


@hookimpl
def connector_register_triggers() -> list[Trigger]:
    """Every SuperPhone trigger the pack's manifest declares."""
    return [t for t in pack_manifest().triggers.values() if t.app == APP_ID]
