"""The plugin manager: built-ins and external plugins registered the same way, and typed hook calls.

:func:`get_plugin_manager` adds the hook specs, registers :data:`BUILTIN_PLUGINS`, skips the
names in ``CONNECTOR_DISABLE_PLUGINS`` (comma-separated), loads the entry points of the
``ghl_connector`` group, then checks that every hook implementation matches a spec. Only this
module calls hooks; each call is wrapped in a typed ``collect_*`` function that also refuses
duplicate ids, naming both plugins.
"""

from __future__ import annotations

import difflib
import importlib
import os
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, cast

import pluggy

from connector import hookspecs
from connector.errors import PluginError
from connector.hookspecs import PROJECT_NAME, Action, App, Trigger

if TYPE_CHECKING:
    from connector.executor import Executor
    from connector.syntax import FilterSpec

__all__ = [
    "BUILTIN_PLUGINS",
    "collect_actions",
    "collect_apps",
    "collect_executors",
    "collect_filters",
    "collect_triggers",
    "get_plugin_manager",
]

BUILTIN_PLUGINS: tuple[str, ...] = (
    "connector.filters",
    "connector.executor",
    "actions.ghl",
    "actions.http",
    "actions.superphone",
    "actions.linkedphone",
    "triggers.ghl",
    "triggers.superphone",
    "triggers.linkedphone",
)
"""Dotted module names of the built-in plugins, registered before any entry point."""

DISABLE_ENV = "CONNECTOR_DISABLE_PLUGINS"


def get_plugin_manager(*, entry_points: bool = True) -> pluggy.PluginManager:
    """A fresh plugin manager with the built-ins and (by default) the installed plugins."""
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    blocked = {name.strip() for name in os.environ.get(DISABLE_ENV, "").split(",") if name.strip()}
    for name in blocked:
        pm.set_blocked(name)
    for dotted in BUILTIN_PLUGINS:
        if dotted in blocked:
            continue
        _register(pm, _import(dotted, dotted), dotted)
    if entry_points:
        _load_entry_points(pm, blocked)
    _check_pending(pm)
    return pm


def _check_pending(pm: pluggy.PluginManager) -> None:
    """Fail on hook implementations that match no spec (a misspelled hook name)."""
    specs = [name for name in dir(hookspecs) if name.startswith("connector_")]
    for hook_name, caller in vars(pm.hook).items():
        if caller.spec is not None:
            continue
        for impl in caller.get_hookimpls():
            if impl.optionalhook:
                continue
            close = difflib.get_close_matches(hook_name, specs, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise PluginError(
                f"plugin {impl.plugin_name!r}: unknown hook {hook_name!r}{hint}; "
                f"known hooks: {', '.join(specs)}"
            )


def _import(dotted: str, what: str) -> object:
    try:
        return importlib.import_module(dotted)
    except ImportError as exc:
        raise PluginError(f"cannot import plugin {what!r}: {exc}") from None


def _register(pm: pluggy.PluginManager, plugin: object, name: str) -> None:
    try:
        pm.register(plugin, name=name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise PluginError(f"plugin {name!r}: {exc}") from None


def _load_entry_points(pm: pluggy.PluginManager, blocked: set[str]) -> None:
    for ep in entry_points(group=PROJECT_NAME):
        if ep.name in blocked or pm.get_plugin(ep.name) is not None:
            continue
        try:
            plugin = ep.load()
        except (ImportError, AttributeError) as exc:
            dist = ep.dist.name if ep.dist else "?"
            raise PluginError(
                f"cannot load plugin {ep.name!r} ({ep.value}, from {dist}): {exc}"
            ) from None
        _register(pm, plugin, ep.name)


def _collect(pm: pluggy.PluginManager, hook: str, kind: str) -> dict[str, Any]:
    """Call ``hook`` on each plugin separately, so a duplicate id can name both plugins."""
    found: dict[str, Any] = {}
    owner: dict[str, str] = {}
    caller = getattr(pm.hook, hook)
    for impl in caller.get_hookimpls():  # registration order: built-ins first
        for item in impl.function() or ():
            if item.id in found:
                raise PluginError(
                    f"duplicate {kind} id {item.id!r}: declared by plugin {owner[item.id]!r} "
                    f"and by plugin {impl.plugin_name!r}"
                )
            found[item.id] = item
            owner[item.id] = impl.plugin_name
    return found


def collect_apps(pm: pluggy.PluginManager) -> dict[str, App]:
    """All registered apps by id."""
    return _collect(pm, "connector_register_apps", "app")


def collect_actions(pm: pluggy.PluginManager, apps: Mapping[str, App]) -> dict[str, Action]:
    """All registered actions by id; each must belong to a registered app."""
    actions: dict[str, Action] = _collect(pm, "connector_register_actions", "action")
    _check_apps(actions, apps, "action")
    return actions


def collect_triggers(pm: pluggy.PluginManager, apps: Mapping[str, App]) -> dict[str, Trigger]:
    """All registered triggers by id; each must belong to a registered app."""
    triggers: dict[str, Trigger] = _collect(pm, "connector_register_triggers", "trigger")
    _check_apps(triggers, apps, "trigger")
    return triggers


def _check_apps(items: Mapping[str, Action | Trigger], apps: Mapping[str, App], kind: str) -> None:
    for item in items.values():
        if item.app not in apps:
            raise PluginError(
                f"{kind} {item.id!r} ({item.source or 'unknown source'}) belongs to unknown app "
                f"{item.app!r}; registered apps: {', '.join(sorted(apps)) or 'none'}"
            )


def collect_filters(pm: pluggy.PluginManager) -> dict[str, FilterSpec]:
    """All expression filters by name (built-in ones first; a plugin may not redefine one)."""
    return _collect_named(pm, "connector_register_filters", "filter")


def collect_executors(pm: pluggy.PluginManager) -> dict[str, Executor]:
    """All action executors by kind (``http`` is built in; a plugin may not redefine one)."""
    return _collect_named(pm, "connector_register_executors", "executor kind")


def _collect_named(pm: pluggy.PluginManager, hook: str, kind: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for impl in getattr(pm.hook, hook).get_hookimpls():
        declared = cast("Mapping[str, Any]", impl.function() or {})
        for name, value in declared.items():
            if name in found:
                raise PluginError(
                    f"duplicate {kind} {name!r}: declared by plugin {owner[name]!r} "
                    f"and by plugin {impl.plugin_name!r}"
                )
            found[name] = value
            owner[name] = impl.plugin_name
    return found
