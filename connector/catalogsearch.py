"""The catalog's entries as rows, and the word search behind ``catalog search``.

One row per action or trigger (``catalog --json`` prints them); :func:`search` keeps the rows
holding every word and ranks those naming a word in their id or title first. The MCP server's
``search_actions`` tool and ``catalog`` resource use the same rows and the same search.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from connector.catalog import Catalog
from connector.hookspecs import Action, Trigger

__all__ = ["action_row", "rows", "search", "trigger_row"]

_SEARCHED = ("id", "title", "description", "path", "operation", "event")


def action_row(action: Action) -> dict[str, Any]:
    """One action as a row: id, app, title, method, path, scopes, tags, description, ..."""
    return {
        "id": action.id,
        "app": action.app,
        "kind": "action",
        "title": action.title,
        "method": action.method,
        "path": action.path,
        "scopes": list(action.scopes),
        "operation": action.operation,
        "deprecated": action.deprecated,
        "use_instead": action.use_instead,
        "paginated": bool(action.pagination),
        "tags": list(action.tags),
        "description": action.description,
    }


def trigger_row(trigger: Trigger) -> dict[str, Any]:
    """One trigger as a row: id, app, kind, title, event, scopes, description."""
    return {
        "id": trigger.id,
        "app": trigger.app,
        "kind": trigger.kind,
        "title": trigger.title,
        "event": trigger.event,
        "scopes": list(trigger.scopes),
        "deprecated": False,
        "tags": [],
        "description": trigger.description,
    }


def rows(catalog: Catalog) -> list[dict[str, Any]]:
    """Every action and trigger of ``catalog`` as a row, by app, actions first, then id."""
    found = [action_row(a) for a in catalog.actions.values()]
    found += [trigger_row(t) for t in catalog.triggers.values()]
    found.sort(key=lambda r: (r["app"], r["kind"] != "action", r["id"]))
    return found


def search(entries: Iterable[dict[str, Any]], words: Iterable[str]) -> list[dict[str, Any]]:
    """The rows whose id, title, description, path, operation, event or tags hold every word
    (any case); those with more of the words in their id or title first, then in the given
    order."""
    wanted = [w.lower() for w in words]
    scored = []
    for row in entries:
        text = " ".join([*(str(row.get(k) or "") for k in _SEARCHED), *row["tags"]]).lower()
        if all(w in text for w in wanted):
            named = f"{row['id']} {row['title']}".lower()
            scored.append((-sum(w in named for w in wanted), row))
    scored.sort(key=lambda pair: pair[0])  # stable: the given order within a score
    return [row for _, row in scored]
