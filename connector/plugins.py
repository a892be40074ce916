"""The plugin manager: built-ins and external plugins registered the same way, and typed hook calls.

:func:`get_plugin_manager` adds the hook specs, registers :data:`BUILTIN_PLUGINS`, skips the
names in ``CONNECTOR_DISABLE_PLUGINS`` (comma-separated), loads the entry points of the
``ghl_connector`` group, then checks that every hook implementation matches a spec. Only this
module calls hooks; each call is wrapped in a typed ``collect_*`` function that also refuses
duplicate ids, naming both plugins.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.util
import logging
import os
import pkgutil
from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pluggy

from connector import hookspecs
from connector.errors import PluginError
from connector.hookspecs import PROJECT_NAME, Action, App, Executor, Trigger

if TYPE_CHECKING:
    from connector.expressions.syntax import FilterSpec
    from connector.hookspecs import Executor

__all__ = [
    "BUILTIN_PACKAGES",
    "BUILTIN_PLUGINS",
    "PluginManager",
    "builtin_plugins",
    "collect_actions",
    "collect_apps",
    "collect_executors",
    "collect_filters",
    "collect_triggers",
    "get_plugin_manager",
]

BUILTIN_PLUGINS: tuple[str, ...] = ("connector.expressions.filters",)
"""Dotted module names of the built-in plugins inside ``connector`` (the filters)."""
BUILTIN_PACKAGES: tuple[str, ...] = ("actions", "triggers")
"""Packages whose every module (or subpackage) is a built-in plugin, registered in name order
after :data:`BUILTIN_PLUGINS` and before any entry point. The core names none of them."""

DISABLE_ENV = "CONNECTOR_DISABLE_PLUGINS"

log = logging.getLogger("connector.plugins")


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, plus the plugins left out because they are broken (name -> why)."""

    def __init__(self, project_name: str) -> None:
        super().__init__(project_name)
        self.skipped: dict[str, str] = {}

    def skip(self, name: str, why: str) -> None:
        """Leave plugin ``name`` out (unregistered if it was), with a one-line warning."""
        if self.get_plugin(name) is not None:
            self.unregister(name=name)
        self.skipped[name] = why
        log.warning("plugin %r skipped: %s", name, why)


def get_plugin_manager(*, entry_points: bool = True) -> PluginManager:
    """A fresh plugin manager with the built-ins and (by default) the installed plugins.

    A plugin that cannot be imported, registered or checked is skipped with a one-line warning
    (see :attr:`PluginManager.skipped`); only a command that needs what it declares fails.
    """
    pm = PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    blocked = {name.strip() for name in os.environ.get(DISABLE_ENV, "").split(",") if name.strip()}
    for name in blocked:
        pm.set_blocked(name)
    for dotted in builtin_plugins():
        if dotted in blocked:
            continue
        _load(pm, dotted, functools.partial(importlib.import_module, dotted), dotted)
    if entry_points:
        _load_entry_points(pm, blocked)
    _check_pending(pm)
    return pm


def builtin_plugins() -> tuple[str, ...]:
    """Dotted names of every built-in plugin: :data:`BUILTIN_PLUGINS`, then the modules of
    :data:`BUILTIN_PACKAGES` (found on disk when the manager is built, never at import)."""
    found = list(BUILTIN_PLUGINS)
    for package in BUILTIN_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or spec.submodule_search_locations is None:
            continue
        modules = pkgutil.iter_modules(spec.submodule_search_locations)
        found.extend(sorted(f"{package}.{m.name}" for m in modules))
    return tuple(found)


def _check_pending(pm: PluginManager) -> None:
    """Skip plugins with hook implementations that match no spec (a misspelled hook name)."""
    specs = [name for name in dir(hookspecs) if name.startswith("connector_")]
    for hook_name, caller in list(vars(pm.hook).items()):
        if not isinstance(caller, pluggy.HookCaller) or caller.spec is not None:
            continue
        for impl in caller.get_hookimpls():
            if impl.optionalhook or impl.plugin_name in pm.skipped:
                continue
            close = difflib.get_close_matches(hook_name, specs, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            pm.skip(
                impl.plugin_name,
                f"unknown hook {hook_name!r}{hint}; known hooks: {', '.join(specs)}",
            )


def _load(pm: PluginManager, name: str, load: Callable[[], object], what: str) -> None:
    """Import (``load``) and register one plugin; a broken one is skipped, saying why."""
    try:
        plugin = load()
    # A plugin's import runs its authors' code: any error there is theirs, and must not stop
    # the commands that do not need it.
    except Exception as exc:  # noqa: BLE001
        pm.skip(name, f"cannot load {what}: {type(exc).__name__}: {exc}")
        return
    try:
        pm.register(plugin, name=name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        pm.skip(name, str(exc))


def _load_entry_points(pm: PluginManager, blocked: set[str]) -> None:
    for ep in entry_points(group=PROJECT_NAME):
        if ep.name in blocked or pm.get_plugin(ep.name) is not None:
            continue
        dist = ep.dist.name if ep.dist else "?"
        _load(pm, ep.name, ep.load, f"{ep.value}, from {dist}")


def _calls(pm: pluggy.PluginManager, hook: str) -> Iterator[tuple[str, Any]]:
    """Each plugin's result of ``hook`` (registration order: built-ins first); a plugin whose
    hook raises is skipped, saying why."""
    for impl in getattr(pm.hook, hook).get_hookimpls():
        try:
            result = impl.function()
        # As in _load: the hook is the plugin's code; its failure leaves that plugin out.
        except Exception as exc:  # noqa: BLE001
            _skip(pm, impl.plugin_name, f"{hook} failed: {type(exc).__name__}: {exc}")
            continue
        yield impl.plugin_name, result


def _skip(pm: pluggy.PluginManager, name: str, why: str) -> None:
    if isinstance(pm, PluginManager):
        pm.skip(name, why)
    else:
        raise PluginError(f"plugin {name!r}: {why}")


def _collect(pm: pluggy.PluginManager, hook: str, kind: str) -> dict[str, Any]:
    """Call ``hook`` on each plugin separately, so a duplicate id can name both plugins."""
    found: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for plugin, items in _calls(pm, hook):
        for item in items or ():
            if item.id in found:
                _refuse(
                    pm,
                    f"duplicate {kind} id {item.id!r}: declared by plugin"
                    f" {owner[item.id]!r} and by plugin {plugin!r}; the later one is left out",
                )
                continue
            found[item.id] = item
            owner[item.id] = plugin
    return found


def _refuse(pm: pluggy.PluginManager, message: str) -> None:
    """A declaration that cannot be used: left out with a warning (our manager), else an error."""
    if not isinstance(pm, PluginManager):
        raise PluginError(message)
    log.warning("%s", message)


def collect_apps(pm: pluggy.PluginManager) -> dict[str, App]:
    """All registered apps by id; of apps declaring themselves the hub, only the first is kept."""
    apps: dict[str, App] = _collect(pm, "connector_register_apps", "app")
    hub: App | None = None
    for key, app in list(apps.items()):
        if not app.hub:
            continue
        if hub is None:
            hub = app
            continue
        _refuse(
            pm,
            f"app {app.id!r} declares itself the hub (`hub: true`), but app {hub.id!r} already"
            " is; a catalog has one hub, so the later one is left out",
        )
        del apps[key]
    return apps


def collect_actions(pm: pluggy.PluginManager, apps: Mapping[str, App]) -> dict[str, Action]:
    """All registered actions by id; each must belong to a registered app."""
    actions: dict[str, Action] = _collect(pm, "connector_register_actions", "action")
    return _check_apps(pm, actions, apps, "action")


def collect_triggers(pm: pluggy.PluginManager, apps: Mapping[str, App]) -> dict[str, Trigger]:
    """All registered triggers by id; each must belong to a registered app."""
    triggers: dict[str, Trigger] = _collect(pm, "connector_register_triggers", "trigger")
    return _check_apps(pm, triggers, apps, "trigger")


_Declared = TypeVar("_Declared", Action, Trigger)


def _check_apps(
    pm: pluggy.PluginManager, items: Mapping[str, _Declared], apps: Mapping[str, App], kind: str
) -> dict[str, _Declared]:
    """The items whose app is registered; the others are left out (or refused)."""
    kept: dict[str, _Declared] = {}
    for key, item in items.items():
        if item.app in apps:
            kept[key] = item
            continue
        _refuse(
            pm,
            f"{kind} {item.id!r} ({item.source or 'unknown source'}) belongs to unknown"
            f" app {item.app!r}; registered apps: {', '.join(sorted(apps)) or 'none'}; it is"
            " left out",
        )
    return kept


def collect_filters(pm: pluggy.PluginManager) -> dict[str, FilterSpec]:
    """All expression filters by name (built-in ones first; a plugin may not redefine one)."""
    return _collect_named(pm, "connector_register_filters", "filter")


def collect_executors(pm: pluggy.PluginManager) -> dict[str, Executor]:
    """All action executors by kind (``http`` is built in; a plugin may not redefine one)."""
    return _collect_named(pm, "connector_register_executors", "executor kind")


def _collect_named(pm: pluggy.PluginManager, hook: str, kind: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for plugin, result in _calls(pm, hook):
        declared = cast("Mapping[str, Any]", result or {})
        for name, value in declared.items():
            if name in found:
                _refuse(
                    pm,
                    f"duplicate {kind} {name!r}: declared by plugin {owner[name]!r}"
                    f" and by plugin {plugin!r}; the later one is left out",
                )
                continue
            found[name] = value
            owner[name] = plugin
    return found
