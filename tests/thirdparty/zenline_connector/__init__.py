"""Zenline for the GHL Connector Pack: a partner app shipped as its own plugin package.

Everything Zenline-specific is in ``manifest.yaml`` beside this file: the app (base URL, API
key header, rate limit), its REST actions, its signed webhook triggers, how its webhooks are
signed and shaped (``webhooks``) and how a two-way sync reads and writes its people
(``sync_adapters``). This module only hands the manifest to the hooks. It does no work when
imported: the manifest is read the first time a hook asks for it.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import connector
from connector import hookimpl

if TYPE_CHECKING:
    from connector import Action, App, Manifest, Trigger


@cache
def manifest() -> Manifest:
    """Zenline's manifest, read once (on the first hook call, not at import: reading it needs
    the YAML and schema libraries, which ``connector`` itself loads only on first use)."""
    return connector.load_manifest(Path(__file__).with_name("manifest.yaml"))


@hookimpl
def connector_register_apps() -> list[App]:
    """The Zenline app."""
    return list(manifest().apps.values())


@hookimpl
def connector_register_actions() -> list[Action]:
    """Zenline's REST actions (``kind: http``, the built-in REST kind)."""
    return list(manifest().actions.values())


@hookimpl
def connector_register_triggers() -> list[Trigger]:
    """Zenline's signed webhook triggers."""
    return list(manifest().triggers.values())
