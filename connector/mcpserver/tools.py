"""One catalog action as an MCP tool, called through the runtime exactly as ``call`` calls it.

A tool's ``inputSchema`` is the action's input schema (the flat input of ``call``), its
``outputSchema`` the action's output schema; MCP wants an object there, so an output that is
not an object (a list, a bare value, an unknown shape) is offered as ``{"result": ...}``. Its
annotations come from the method: reads (GET, and the POST searches the pack counts as reads)
are read-only and idempotent, a DELETE is destructive and idempotent, a PUT idempotent.

A call's arguments pass the limits ``call --input`` puts on its JSON
(:func:`~connector.documents.payload.load_json`), then :meth:`Runtime.call
<connector.runtime.Runtime.call>`: the same validation, every bad field reported at once. Every
refusal and failure is a tool result with ``isError`` (never a protocol error), its text the
message ``call`` prints and its ``structuredContent`` ``{"error": KIND, "message": ...}``, with
``problems`` (each ``field`` and ``message``) for a bad input and ``status`` for a remote error.
An answer that does not match the output schema is such an error too (``output_mismatch``,
with the answer under ``output``): the call was made and must not be repeated blindly.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import anyio.to_thread
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import UnexpectedToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, TextContent, ToolAnnotations

from connector.auth.redaction import redact
from connector.documents.lazyschema import plain
from connector.documents.payload import load_json
from connector.documents.schema import Validator, compile_validator, problems
from connector.errors import (
    AuthError,
    ConnectorError,
    DocumentError,
    InputError,
    Location,
    Problem,
    RateLimitError,
    RemoteError,
)
from connector.hookspecs import Action
from connector.recipes.footprints import is_read
from connector.runtime import Runtime, location_optional

__all__ = [
    "ActionTool",
    "action_tool",
    "checked_input",
    "description",
    "error_result",
    "hints",
    "json_tool",
    "output_schema",
    "success",
]

_WRAPPED = "result"


class ActionTool(Tool):
    """An SDK tool whose schemas are JSON Schemas rather than a Python signature: ``fn`` takes
    the arguments object and returns the :class:`CallToolResult`; it runs on a worker thread
    (the runtime is synchronous)."""

    async def run(
        self,
        arguments: dict[str, Any],
        context: Context[Any, Any],
        convert_result: bool = False,
    ) -> Any:
        """Call ``fn`` with the arguments; a crash is the SDK's generic tool error."""
        try:
            return await anyio.to_thread.run_sync(self.fn, arguments)
        except MCPError:
            raise
        except Exception as exc:  # a bug: logged by the SDK, its text kept off the wire
            raise UnexpectedToolError(f"Error executing tool {self.name}") from exc


def json_tool(
    name: str,
    fn: Callable[[dict[str, Any]], CallToolResult],
    *,
    title: str,
    description: str,
    input_schema: Mapping[str, Any],
    output: Mapping[str, Any] | None,
    annotations: ToolAnnotations,
) -> ActionTool:
    """A tool with these schemas, whose calls ``fn`` answers."""
    return ActionTool(
        fn=fn,
        name=name,
        title=title,
        description=description,
        parameters=dict(input_schema),
        fn_metadata=FuncMetadata(
            arg_model=ArgModelBase, output_schema=dict(output) if output else None
        ),
        is_async=False,
        context_kwarg=None,
        annotations=annotations,
    )


def output_schema(action: Action) -> tuple[dict[str, Any], bool]:
    """The tool's ``outputSchema`` for ``action``, and whether its output is wrapped in
    ``{"result": ...}`` (an output schema whose root is not an object)."""
    schema = plain(action.output_schema)
    if schema.get("type") == "object":
        return schema, False
    wrapped = {
        "type": "object",
        "description": f"The output of {action.id}, under {_WRAPPED!r}.",
        "properties": {_WRAPPED: schema},
        "required": [_WRAPPED],
    }
    return wrapped, True


def hints(action: Action) -> ToolAnnotations:
    """Hints from the method: reads are read-only, DELETE destructive, PUT and DELETE
    idempotent; every action talks to an outside API (open world)."""
    method = action.method.upper()
    if is_read(action):
        return ToolAnnotations(
            title=action.title, read_only_hint=True, idempotent_hint=True, open_world_hint=True
        )
    return ToolAnnotations(
        title=action.title,
        read_only_hint=False,
        destructive_hint=method == "DELETE",
        idempotent_hint=method in ("PUT", "DELETE"),
        open_world_hint=True,
    )


def description(action: Action) -> str:
    """What the agent reads: the action's description, then its id, method, path and scopes."""
    parts = []
    if action.deprecated:
        instead = f"; use {action.use_instead} instead" if action.use_instead else ""
        parts.append(f"DEPRECATED upstream{instead}.")
    parts.append(action.description or action.title)
    where = f"{action.method} {action.path}" if action.kind == "http" else action.kind
    scopes = f" Scopes: {' '.join(action.scopes)}." if action.scopes else ""
    parts.append(f"(Action {action.id}: {where}.{scopes})")
    return "\n\n".join(parts)


def action_tool(name: str, action: Action, runtime: Runtime) -> ActionTool:
    """``action`` as the tool ``name``, calling it through ``runtime``."""
    schema, wrapped = output_schema(action)
    checkers: list[Validator] = []  # compiled on the first call: most tools are never called

    def call(arguments: dict[str, Any]) -> CallToolResult:
        try:
            data = checked_input(arguments)
            output = runtime.call(action.id, data)
        except ConnectorError as exc:
            return error_result(exc)
        if not checkers:
            source = f"{action.id} output schema"
            checkers.append(compile_validator(schema, source=source, check=False))
        structured = {_WRAPPED: output} if wrapped else output
        return success(structured, action.id, checkers[0])

    return json_tool(
        name,
        call,
        title=action.title,
        description=description(action),
        input_schema=(
            location_optional(action, plain(action.input_schema))
            if runtime.settings.location_id
            else plain(action.input_schema)
        ),
        output=schema,
        annotations=hints(action),
    )


def checked_input(arguments: Any) -> dict[str, Any]:
    """The arguments within ``call --input``'s limits (size, depth, numbers), as an object.

    :raises DocumentError: over a limit, or not an object.
    """
    try:
        text = json.dumps(arguments, allow_nan=True)  # NaN is refused by load_json, by name
    except (ValueError, TypeError, RecursionError):
        raise DocumentError([Problem(Location("arguments"), "not JSON data")]) from None
    value = load_json(text.encode("utf-8", "surrogatepass"), source="arguments")
    if not isinstance(value, dict):
        raise DocumentError([Problem(Location("arguments"), "the input must be a JSON object")])
    return value


def success(
    structured: Any, action_id: str, checker: Validator | None = None
) -> CallToolResult:
    """A tool result holding ``structured`` (checked against ``checker`` when given)."""
    if checker is not None:
        found = problems(checker, structured, lambda path: Location(None, pointer=_pointer(path)))
        if found:
            detail = "; ".join(
                f"{p.location.pointer or '(output)'}: {p.message}" for p in found[:5]
            )
            message = (
                f"{action_id}: the call was made, but its answer does not match the output"
                f" schema: {detail} [the answer is under 'output'; do not repeat the call"
                " blindly]"
            )
            return _error("output_mismatch", message, output=structured)
    text = json.dumps(structured, ensure_ascii=False)
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=structured
    )


def error_result(exc: ConnectorError) -> CallToolResult:
    """``exc`` as a tool error: its message (secrets masked) and what kind of failure it is."""
    message = redact(str(exc))
    if isinstance(exc, InputError):
        found = [
            {"field": p.location.pointer or "(input)", "message": redact(p.message)}
            | ({"hint": redact(p.hint)} if p.hint else {})
            for p in exc.problems
        ]
        return _error("invalid_input", message, problems=found)
    if isinstance(exc, DocumentError):
        found = [
            {"field": p.location.pointer or str(p.location), "message": redact(p.message)}
            for p in exc.problems
        ]
        return _error("invalid_input", message, problems=found)
    if isinstance(exc, AuthError):
        return _error("auth", message)
    if isinstance(exc, RateLimitError):
        return _error("rate_limited", message, status=exc.status)
    if isinstance(exc, RemoteError):
        return _error("remote", message, status=exc.status)
    return _error("error", message)


def _error(kind: str, message: str, **fields: Any) -> CallToolResult:
    body = {"error": kind, "message": message, **{k: v for k, v in fields.items() if v is not None}}
    return CallToolResult(
        content=[TextContent(type="text", text=message)], structured_content=body, is_error=True
    )


def _pointer(path: tuple[str | int, ...]) -> str:
    from connector.documents.document import pointer

    return pointer(path)
