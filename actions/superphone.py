"""Built-in plugin: the SuperPhone app, its GraphQL actions (declared in manifest.yaml) and the
``graphql`` executor kind they run on.

Every action is data: ``tools/apps/superphone.yaml`` declares its GraphQL document and where its
result is, ``schemas/actions/superphone.*.json`` its variables and output. Nothing here is
written per action. What SuperPhone documents and what the catalog assumes: docs/superphone.md.
"""

from __future__ import annotations

from collections.abc import Mapping

from connector import Action, App, hookimpl, pack_manifest
from connector.client.executor import Executor
from connector.client.graphql import GraphqlExecutor

APP_ID = "superphone"


@hookimpl
def connector_register_apps() -> list[App]:
    """The SuperPhone app (base URL, API-key header, rate limit, assumptions)."""
    return [pack_manifest().apps[APP_ID]]


@hookimpl
def connector_register_actions() -> list[Action]:
    """Every SuperPhone action the pack's manifest declares."""
    return [a for a in pack_manifest().actions.values() if a.app == APP_ID]


@hookimpl
def connector_register_executors() -> Mapping[str, Executor]:
    """The ``graphql`` kind: POST the declared document with the input as its variables."""
    return {"graphql": GraphqlExecutor()}
