"""GHL Connector Pack: a manifest-driven, plugin-based connector runtime for HighLevel.

The public API. Plugins write ``from connector import hookimpl, Action, App``. Heavy parts
(schemas, HTTP) are imported on first use, so ``ghl-connector --help`` stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

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
    ResponseLimitError,
    StoreError,
)
from connector.hookspecs import (
    PROJECT_NAME,
    Action,
    App,
    Call,
    Executor,
    Param,
    RateLimit,
    Settings,
    Trigger,
    hookimpl,
)

if TYPE_CHECKING:
    from connector.auth.redaction import is_secret_name
    from connector.catalog import Catalog, build_catalog
    from connector.client.exchange import (
        REDIRECT_STATUSES,
        Answer,
        ClientFactory,
        Exchange,
        new_client,
        safe_url,
    )
    from connector.client.request import Reply, RequestSpec, check_target, fill_path
    from connector.client.transcript import HttpNote, Transcript, note_request
    from connector.client.urlguard import GuardedUrl, UrlGuard
    from connector.documents.manifest import Manifest, load_manifest, pack_manifest
    from connector.documents.schema import load_schema
    from connector.expressions.syntax import ExpressionError, FilterSpec
    from connector.plugins import get_plugin_manager
    from connector.runtime import Runtime

__all__ = [
    "PROJECT_NAME",
    "REDIRECT_STATUSES",
    "Action",
    "Answer",
    "App",
    "AuthError",
    "Call",
    "Catalog",
    "ClientFactory",
    "ConnectorError",
    "DocumentError",
    "Exchange",
    "Executor",
    "ExpressionError",
    "FilterSpec",
    "GuardedUrl",
    "HttpNote",
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
    "ResponseLimitError",
    "Runtime",
    "Settings",
    "StoreError",
    "Transcript",
    "Trigger",
    "UrlGuard",
    "build_catalog",
    "check_target",
    "fill_path",
    "get_plugin_manager",
    "hookimpl",
    "is_secret_name",
    "load_manifest",
    "load_schema",
    "new_client",
    "note_request",
    "pack_manifest",
    "safe_url",
]

_LAZY = {
    "Catalog": "connector.catalog",
    "build_catalog": "connector.catalog",
    "Manifest": "connector.documents.manifest",
    "load_manifest": "connector.documents.manifest",
    "pack_manifest": "connector.documents.manifest",
    "get_plugin_manager": "connector.plugins",
    "Reply": "connector.client.request",
    "RequestSpec": "connector.client.request",
    "fill_path": "connector.client.request",
    "check_target": "connector.client.request",
    "HttpNote": "connector.client.transcript",
    "Transcript": "connector.client.transcript",
    "note_request": "connector.client.transcript",
    "GuardedUrl": "connector.client.urlguard",
    "UrlGuard": "connector.client.urlguard",
    "REDIRECT_STATUSES": "connector.client.exchange",
    "Answer": "connector.client.exchange",
    "ClientFactory": "connector.client.exchange",
    "Exchange": "connector.client.exchange",
    "new_client": "connector.client.exchange",
    "safe_url": "connector.client.exchange",
    "is_secret_name": "connector.auth.redaction",
    "load_schema": "connector.documents.schema",
    "Runtime": "connector.runtime",
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
