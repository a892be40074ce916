"""The three tools of ``ghl-connector mcp --dynamic``: the whole catalog on demand.

Agents choose badly among hundreds of tools, so instead of one tool per action the server
offers ``search_actions`` (the words search of ``catalog search``), ``describe_action`` (an
action's schemas, scopes and an example input, as ``catalog show --json``) and
``call_action`` (an action called through the runtime, validated exactly as ``call``
validates it). They reach the actions of the server's selection (``--actions``, default every
action; ``--read-only`` keeps the reads).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from mcp_types import CallToolResult, ToolAnnotations

from connector.catalog import did_you_mean
from connector.catalogsearch import action_row, search
from connector.documents.schema import compile_validator, problems
from connector.errors import ConnectorError, InputError, Location
from connector.hookspecs import Action
from connector.mcpserver.tools import (
    ActionTool,
    checked_input,
    error_result,
    hints,
    json_tool,
    success,
)
from connector.mcpserver.toolset import tool_name
from connector.runtime import Runtime

__all__ = ["dynamic_tools"]

SEARCH_LIMIT = 20

_SEARCH_INPUT = {
    "type": "object",
    "properties": {
        "words": {
            "type": "string",
            "minLength": 1,
            "maxLength": 400,
            "description": "Words the action's id, title, description, path or tags must all"
            " hold (any case), e.g. 'opportunity update' or 'contact tag'.",
        },
        "limit": {
            "type": "integer",
            "minimum": 1,
            "maximum": 100,
            "default": SEARCH_LIMIT,
            "description": "At most this many actions, best first.",
        },
    },
    "required": ["words"],
    "additionalProperties": False,
}
_SEARCH_OUTPUT = {
    "type": "object",
    "properties": {
        "total": {"type": "integer", "description": "How many actions hold every word."},
        "hint": {
            "type": "string",
            "description": "When none holds every word: how many hold each word alone.",
        },
        "actions": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "title": {"type": "string"},
                    "method": {"type": "string"},
                    "path": {"type": "string"},
                    "read_only": {"type": "boolean"},
                    "deprecated": {"type": "boolean"},
                    "description": {"type": "string"},
                },
                "required": ["id", "title"],
            },
        },
    },
    "required": ["total", "actions"],
}
_ACTION_ID = {
    "type": "string",
    "minLength": 1,
    "maxLength": 200,
    "description": "An action id from search_actions, e.g. ghl.contacts.get.",
}
_DESCRIBE_INPUT = {
    "type": "object",
    "properties": {"action": _ACTION_ID},
    "required": ["action"],
    "additionalProperties": False,
}
_DESCRIBE_OUTPUT = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "input_schema": {"type": "object"},
        "output_schema": {"type": "object"},
        "example_input": {},
    },
    "required": ["id", "input_schema", "output_schema"],
}
_CALL_INPUT = {
    "type": "object",
    "properties": {
        "action": _ACTION_ID,
        "input": {
            "type": "object",
            "description": "The action's input: one flat object, path, query and body fields"
            " side by side under their official names (its input_schema in describe_action).",
        },
    },
    "required": ["action", "input"],
    "additionalProperties": False,
}
_CALL_OUTPUT = {
    "type": "object",
    "properties": {
        "action": {"type": "string"},
        "output": {"description": "The action's output (its output_schema)."},
    },
    "required": ["action", "output"],
}


def dynamic_tools(
    actions: Mapping[str, Action],
    runtime: Runtime,
    *,
    known: Iterable[str] = (),
    read_only: bool = False,
) -> list[ActionTool]:
    """The three tools, reaching ``actions`` (id -> action) through ``runtime``; ``known`` are
    the catalog's other ids (asking for one says it was left out, not that it is unknown);
    ``read_only``: the actions only read, so ``call_action`` is hinted read-only."""
    left_out = frozenset(known) - set(actions)
    def find(arguments: dict[str, Any]) -> CallToolResult:
        words = str(arguments["words"]).split()
        limit = int(arguments.get("limit", SEARCH_LIMIT))
        rows = [action_row(a) for a in actions.values()]
        found = search(rows, words)
        listed = [
            {
                "id": row["id"],
                "title": row["title"],
                "method": row["method"],
                "path": row["path"],
                "read_only": bool(hints(actions[row["id"]]).read_only_hint),
                "deprecated": row["deprecated"],
                "description": _short(row["description"]),
            }
            for row in found[:limit]
        ]
        answer: dict[str, Any] = {"total": len(found), "actions": listed}
        if not found and len(words) > 1:  # say which word narrowed it to nothing
            alone = ", ".join(f"{w!r}: {len(search(rows, [w]))}" for w in words[:20])
            answer["hint"] = (f"no action holds every word; actions holding each word alone:"
                              f" {alone}. Search again with fewer or other words.")
        return success(answer, "search_actions")

    def describe(arguments: dict[str, Any]) -> CallToolResult:
        from connector.cli.describe import describe_action

        action = _offered(actions, arguments["action"], left_out)
        _, data = describe_action(action)
        given = hints(action).model_dump(exclude_none=True, by_alias=True)
        return success({**data, "tool": tool_name(action.id), "annotations": given}, action.id)

    def call(arguments: dict[str, Any]) -> CallToolResult:
        action = _offered(actions, arguments["action"], left_out)
        data = checked_input(arguments["input"])
        return success({"action": action.id, "output": runtime.call(action.id, data)}, action.id)

    read = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
    return [
        json_tool(
            "search_actions",
            _validated("search_actions", _SEARCH_INPUT, find),
            title="Search actions",
            description="Find the actions (HighLevel API operations, and the other apps')"
            " whose id, title, description, path or tags hold every word given. Then read one"
            " with describe_action and run it with call_action.",
            input_schema=_SEARCH_INPUT,
            output=_SEARCH_OUTPUT,
            annotations=read.model_copy(update={"title": "Search actions"}),
        ),
        json_tool(
            "describe_action",
            _validated("describe_action", _DESCRIBE_INPUT, describe),
            title="Describe an action",
            description="One action in detail: its input_schema (what call_action's input"
            " must be), output_schema, method, path, scopes and an example input.",
            input_schema=_DESCRIBE_INPUT,
            output=_DESCRIBE_OUTPUT,
            annotations=read.model_copy(update={"title": "Describe an action"}),
        ),
        json_tool(
            "call_action",
            _validated("call_action", _CALL_INPUT, call),
            title="Call an action",
            description="Call one action with its input (checked against its input_schema"
            " first: every wrong field is reported and nothing is sent). Answers the"
            " action's output. Writes (creates, updates, deletes) change the account.",
            input_schema=_CALL_INPUT,
            output=_CALL_OUTPUT,
            annotations=ToolAnnotations(
                title="Call an action", read_only_hint=True, open_world_hint=True
            )
            if read_only
            else ToolAnnotations(
                title="Call an action",
                read_only_hint=False,
                destructive_hint=True,
                idempotent_hint=False,
                open_world_hint=True,
            ),
        ),
    ]


def _validated(
    name: str, schema: Mapping[str, Any], answer: Callable[[dict[str, Any]], CallToolResult]
) -> Callable[[dict[str, Any]], CallToolResult]:
    """``answer``, called once the arguments match ``schema``; every failure a tool error."""
    checker = compile_validator(schema, source=f"{name} input schema", check=False)

    def run(arguments: dict[str, Any]) -> CallToolResult:
        try:
            found = problems(checker, arguments, lambda path: Location(None, pointer=_at(path)))
            if found:
                raise InputError(name, found)
            return answer(arguments)
        except ConnectorError as exc:
            return error_result(exc)

    return run


def _offered(actions: Mapping[str, Action], action_id: str, left_out: frozenset[str]) -> Action:
    """The action ``action_id`` if this server offers it.

    :raises ConnectorError: left out by the server's options, or unknown (with a close id).
    """
    found = actions.get(action_id)
    if found is None and action_id in left_out:
        raise ConnectorError(
            f"action {action_id!r} is not offered by this server [it was started without it:"
            " --actions or --read-only]"
        )
    if found is None:
        hint = did_you_mean(action_id, actions)
        where = f" ({hint})" if hint else " [find one with search_actions]"
        raise ConnectorError(f"action {action_id!r} is not offered by this server{where}")
    return found


def _short(text: str, limit: int = 240) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _at(path: tuple[str | int, ...]) -> str:
    from connector.documents.document import pointer

    return pointer(path)
