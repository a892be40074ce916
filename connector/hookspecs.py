"""The plugin contract: the project name, the hook specifications and the descriptors hooks return.

Built-in plugins (``actions/``, ``triggers/``) and external packages implement these hooks the
same way. External packages are found through the entry-point group named
:data:`PROJECT_NAME`::

    [project.entry-points.ghl_connector]
    myapp = "myapp.plugin"

A hook implementation is a module-level function (or method) decorated with
``connector.hookimpl`` whose name is one of the specs below; a misspelled name fails loudly
when the plugin is registered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from connector.client.executor import Executor
    from connector.expressions.syntax import FilterSpec

__all__ = [
    "PROJECT_NAME",
    "Action",
    "App",
    "Param",
    "RateLimit",
    "Trigger",
    "hookspec",
]

PROJECT_NAME = "ghl_connector"
"""Name of the plugin project and of the entry-point group external plugins declare."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Requests allowed per sliding window of ``per_seconds``, and per day, for one location."""

    requests: int
    per_seconds: float
    daily: int | None = None


@dataclass(frozen=True, slots=True)
class App:
    """An API the pack talks to (HighLevel, SuperPhone, ...)."""

    id: str
    title: str
    base_url: str
    auth: tuple[str, ...]
    description: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    oauth: Mapping[str, str] = field(default_factory=dict)
    rate_limit: RateLimit | None = None
    timeout_seconds: float = 30.0
    api_key_header: str | None = None
    assumptions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Param:
    """Where one input property goes on the wire: ``path``, ``query``, ``header`` or ``body``."""

    name: str
    location: str
    wire_name: str


@dataclass(frozen=True, slots=True)
class Action:
    """A callable operation of an app, with its input and output schemas.

    Input is one flat JSON object; :attr:`params` says where each property goes (properties
    not listed go to the JSON body when :attr:`body` is true).
    """

    id: str
    app: str
    title: str
    input_schema: Mapping[str, Any]
    output_schema: Mapping[str, Any]
    method: str = "GET"
    path: str = "/"
    kind: str = "http"
    description: str = ""
    operation: str | None = None
    scopes: tuple[str, ...] = ()
    deprecated: bool = False
    use_instead: str | None = None
    params: tuple[Param, ...] = ()
    body: bool = False
    retry_safe: bool = False
    pagination: Mapping[str, Any] | None = None
    location_param: str | None = None
    success: tuple[int, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    """Settings of the action's executor, by kind (e.g. ``{"graphql": {"document": ...}}``)."""
    source: str = ""
    """Where the action was declared (a manifest file or a plugin module), for error messages."""
    tags: tuple[str, ...] = ()
    """Its groups in the app's own documentation (GHL's spec tags); ``catalog --tag`` filters."""


@dataclass(frozen=True, slots=True)
class Trigger:
    """Something that starts a recipe: a webhook event or records found by polling."""

    id: str
    app: str
    title: str
    kind: str
    payload_schema: Mapping[str, Any]
    event: str | None = None
    description: str = ""
    scopes: tuple[str, ...] = ()
    options_schema: Mapping[str, Any] = field(default_factory=dict)
    action: str | None = None
    cursor: str | None = None
    dedupe: tuple[str, ...] = ()
    enrich: Mapping[str, Any] | None = None
    source: str = ""


@hookspec
def connector_register_apps() -> list[App]:
    """Declare apps (base URL, auth kinds, rate limits).

    Called once when the catalog is built, on every registered plugin.

    :returns: the apps this plugin provides; ids must be unique across all plugins.
    """
    raise AssertionError("hook specification")


@hookspec
def connector_register_actions() -> list[Action]:
    """Declare actions.

    Called once when the catalog is built, on every registered plugin, after
    :func:`connector_register_apps`. Each action's ``app`` must name a registered app.

    :returns: the actions this plugin provides; ids must be unique across all plugins.
    """
    raise AssertionError("hook specification")


@hookspec
def connector_register_triggers() -> list[Trigger]:
    """Declare triggers (webhook events and polling sources).

    Called once when the catalog is built, on every registered plugin.

    :returns: the triggers this plugin provides; ids must be unique across all plugins.
    """
    raise AssertionError("hook specification")


@hookspec
def connector_register_filters() -> Mapping[str, FilterSpec]:
    """Declare expression filters usable in recipes as ``{{ value | name(args) }}``.

    Called once when the catalog is built. Filters receive and return plain JSON values
    only; they must not reach files, the network or the process.

    :returns: filter name -> :class:`connector.expressions.filters.FilterSpec`; names must be
    unique.
    """
    raise AssertionError("hook specification")


@hookspec
def connector_register_executors() -> Mapping[str, Executor]:
    """Declare how actions of a ``kind`` run (declarative REST, GraphQL, custom Python).

    Called once when the catalog is built. The runtime validates an action's input before
    its executor runs and checks the output after; an executor sends through the app's pooled
    client (:attr:`connector.client.executor.Call.client`) so rate limits and retries apply.

    :returns: kind name -> :class:`connector.client.executor.Executor`; kinds must be unique.
    """
    raise AssertionError("hook specification")
