"""The catalog: every app, action and trigger the registered plugins declare, with lookups.

Built once per process from a plugin manager; lookups of unknown ids fail with a
"did you mean" hint.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pluggy

from connector.errors import ConnectorError
from connector.hookspecs import Action, App, Executor, Trigger
from connector.plugins import (
    PluginManager,
    collect_actions,
    collect_apps,
    collect_executors,
    collect_filters,
    collect_triggers,
    get_plugin_manager,
)

if TYPE_CHECKING:
    from connector.expressions.syntax import FilterSpec
    from connector.hookspecs import Executor

__all__ = ["Catalog", "build_catalog", "did_you_mean", "hub_of"]


def did_you_mean(name: str, known: Iterable[str]) -> str | None:
    """A ``did you mean 'x'?`` hint for a misspelled ``name``, or None."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def hub_of(apps: Mapping[str, App]) -> str | None:
    """The id of the app of ``apps`` declared the hub (``hub: true``), or None."""
    return next((key for key, app in apps.items() if app.hub), None)


@dataclass(frozen=True, slots=True)
class Catalog:
    """Apps, actions and triggers by id; the filters recipes may use; executors by kind."""

    apps: Mapping[str, App]
    actions: Mapping[str, Action]
    triggers: Mapping[str, Trigger]
    filters: Mapping[str, FilterSpec] = field(default_factory=dict)
    executors: Mapping[str, Executor] = field(default_factory=dict)
    skipped: Mapping[str, str] = field(default_factory=dict)
    """Plugins left out because they are broken (name -> why): an unknown id may be theirs."""

    def action(self, action_id: str) -> Action:
        """The action ``action_id``; unknown ids raise with a hint."""
        try:
            return self.actions[action_id]
        except KeyError:
            message = _unknown("action", action_id, self.actions, self.skipped)
            raise ConnectorError(message) from None

    def trigger(self, trigger_id: str) -> Trigger:
        """The trigger ``trigger_id``; unknown ids raise with a hint."""
        try:
            return self.triggers[trigger_id]
        except KeyError:
            message = _unknown("trigger", trigger_id, self.triggers, self.skipped)
            raise ConnectorError(message) from None

    @property
    def hub(self) -> str | None:
        """The id of the hub app (``hub: true`` in its manifest; HighLevel's ``ghl`` in the
        pack), or None when no registered app is the hub."""
        return hub_of(self.apps)

    def hub_app(self) -> App:
        """The hub app; a catalog without one raises (a command that needs a connection)."""
        if (hub := self.hub) is not None:
            return self.apps[hub]
        raise ConnectorError(
            "no app of the catalog is the hub [one app's manifest entry needs `hub: true`;"
            " the pack's is `ghl`]"
        )

    def app(self, app_id: str) -> App:
        """The app ``app_id``; unknown ids raise with a hint."""
        try:
            return self.apps[app_id]
        except KeyError:
            message = _unknown("app", app_id, self.apps, self.skipped)
            raise ConnectorError(message) from None


def _unknown(kind: str, name: str, known: Mapping[str, object], skipped: Mapping[str, str]) -> str:
    hint = did_you_mean(name, known)
    text = f"unknown {kind} {name!r}"
    if skipped:
        broken = "; ".join(f"plugin {p!r} was skipped: {why}" for p, why in skipped.items())
        return f"{text} [{hint + ' ' if hint else ''}it may be a broken plugin's: {broken}]"
    return f"{text} ({hint})" if hint else f"{text} [see `ghl-connector catalog`]"


def build_catalog(pm: pluggy.PluginManager | None = None) -> Catalog:
    """Collect the catalog from ``pm`` (default: a new manager with entry points)."""
    pm = pm or get_plugin_manager()
    apps = collect_apps(pm)
    actions = collect_actions(pm, apps)
    triggers = collect_triggers(pm, apps)
    filters, executors = collect_filters(pm), collect_executors(pm)
    skipped = dict(pm.skipped) if isinstance(pm, PluginManager) else {}
    return Catalog(apps, actions, triggers, filters, executors, skipped)
