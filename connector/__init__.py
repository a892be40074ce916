"""GHL Connector Pack: a manifest-driven, plugin-based connector runtime for HighLevel.

The public API. Plugins write ``from connector import hookimpl, Action, App``. Heavy parts
(schemas, HTTP) are imported on first use, so ``ghl-connector --help`` stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

import pluggy

from connector.errors import (
    AuthError,
    ConnectorError,
    DocumentError,
    InputError,
    Location,
    PluginError,
    Problem,
    RateLimitError,
    RecipeError,
    RemoteError,
    StoreError,
)
from connector.hookspecs import PROJECT_NAME, Action, App, Param, RateLimit, Trigger

if TYPE_CHECKING:
    from connector.catalog import Catalog, build_catalog
    from connector.client.request import Reply, RequestSpec
    from connector.documents.manifest import Manifest, load_manifest, pack_manifest
    from connector.expressions.syntax import ExpressionError, FilterSpec
    from connector.plugins import get_plugin_manager
    from connector.runtime import Runtime, Settings

__all__ = [
    "PROJECT_NAME",
    "Action",
    "App",
    "AuthError",
    "Catalog",
    "ConnectorError",
    "DocumentError",
    "ExpressionError",
    "FilterSpec",
    "InputError",
    "Location",
    "Manifest",
    "Param",
    "PluginError",
    "Problem",
    "RateLimit",
    "RateLimitError",
    "RecipeError",
    "RemoteError",
    "Reply",
    "RequestSpec",
    "Runtime",
    "Settings",
    "StoreError",
    "Trigger",
    "build_catalog",
    "get_plugin_manager",
    "hookimpl",
    "load_manifest",
    "pack_manifest",
]

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marks a plugin function as the implementation of a hook (see :mod:`connector.hookspecs`)."""

_LAZY = {
    "Catalog": "connector.catalog",
    "build_catalog": "connector.catalog",
    "Manifest": "connector.documents.manifest",
    "load_manifest": "connector.documents.manifest",
    "pack_manifest": "connector.documents.manifest",
    "get_plugin_manager": "connector.plugins",
    "Reply": "connector.client.request",
    "RequestSpec": "connector.client.request",
    "Runtime": "connector.runtime",
    "Settings": "connector.runtime",
    "ExpressionError": "connector.expressions.syntax",
    "FilterSpec": "connector.expressions.syntax",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'connector' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
