"""Built-in plugin: the generic HTTP app and its ``http.request`` action (any URL, guarded).

Declared here in Python rather than in a manifest because the manifest format's action ids
have three parts (``<app>.<resource>.<verb>``) and the issue names this action ``http.request``.
Its schema is ``schemas/actions/http.request.json``; it runs on the ``http_request`` kind this
plugin registers (:mod:`actions.httprequest.request`), which checks every URL with
:mod:`connector.client.urlguard`.
"""

from __future__ import annotations

from collections.abc import Mapping

from actions.httprequest.request import HttpRequestExecutor
from connector import Action, App, Executor, hookimpl, load_schema

APP_ID = "http"
ACTION_ID = "http.request"


@hookimpl
def connector_register_apps() -> list[App]:
    """The generic HTTP app: no base URL of its own (each call gives a full URL), no auth."""
    return [
        App(
            id=APP_ID,
            title="Generic HTTP",
            base_url="https://example.invalid",
            auth=("none",),
            description="Any HTTP API the catalog does not cover yet, called by full URL.",
        )
    ]


@hookimpl
def connector_register_actions() -> list[Action]:
    """``http.request``: method, URL, headers, query, JSON body -> status, headers, json, text."""
    schema = load_schema(f"actions/{ACTION_ID}.json")
    return [
        Action(
            id=ACTION_ID,
            app=APP_ID,
            title=schema["title"],
            description=schema["description"],
            input_schema=schema["properties"]["input"],
            output_schema=schema["properties"]["output"],
            kind="http_request",
            # The method and URL come from the input; these only label the catalog listing.
            method="ANY",
            path="{url}",
            body=True,
            source=__name__,
        )
    ]


@hookimpl
def connector_register_executors() -> Mapping[str, Executor]:
    """The ``http_request`` kind: one request to the URL in the input, checked by the guard."""
    return {"http_request": HttpRequestExecutor()}
