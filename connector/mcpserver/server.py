"""The MCP server itself: the SDK's ``MCPServer`` with the pack's tools and resources, run
over stdio or streamable HTTP (on 127.0.0.1 only).

The tool list is built from the catalog when the server starts: one tool per selected action
(:mod:`~connector.mcpserver.tools`), or the three ``--dynamic`` tools
(:mod:`~connector.mcpserver.discovery`); an action a plugin adds is a tool like the others.
"""

from __future__ import annotations

import difflib
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, InputRequiredResult

from connector.catalog import Catalog
from connector.mcpserver.discovery import dynamic_tools
from connector.mcpserver.resources import catalog_resources
from connector.mcpserver.tools import action_tool
from connector.mcpserver.toolset import select, tool_names
from connector.runtime import Runtime
from connector.service.logformat import library_level

__all__ = ["HOST", "MAX_TOOL_NAME", "MCP_PATH", "ServerOptions", "build_server", "serve_http",
           "serve_stdio", "unknown_tool"]

HOST = "127.0.0.1"
MCP_PATH = "/mcp"
MAX_TOOL_NAME = 64
"""The longest tool name MCP clients accept (``^[a-zA-Z0-9_-]{1,64}$``)."""
_SHOWN = 32

_INSTRUCTIONS = (
    "Tools call the HighLevel (GoHighLevel) API and the other apps of the GHL Connector Pack."
    " Each tool's input is one flat object: path, query and body fields side by side under"
    " their official names; a wrong input is refused with every field at fault and nothing is"
    " sent. The resource ghl-connector://catalog lists every action and trigger."
)
_DYNAMIC = (
    " Find an action with search_actions, read its input_schema with describe_action, and run"
    " it with call_action."
)


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """What the server offers: ``actions`` (globs; None: the default set, or every action
    with ``dynamic``), only reads (``read_only``), or the three discovery tools (``dynamic``)."""

    actions: Sequence[str] | None = None
    read_only: bool = False
    dynamic: bool = False


def build_server(catalog: Catalog, runtime: Runtime, options: ServerOptions) -> MCPServer:
    """The SDK server with the tools and resources ``options`` ask for.

    :raises ConnectorError: a glob matches no action, or two actions would share a tool name.
    """
    patterns = options.actions or (("*",) if options.dynamic else None)
    actions = select(catalog, patterns, read_only=options.read_only)
    tools: list[Tool]
    if options.dynamic:
        offered = {a.id: a for a in actions}
        found = dynamic_tools(offered, runtime, known=catalog.actions, read_only=options.read_only)
        tools = [*found]
    else:
        names = tool_names(a.id for a in actions)
        tools = [action_tool(name, catalog.action(i), runtime) for name, i in names.items()]
    return _PackServer(
        name="ghl-connector",
        title="GHL Connector Pack",
        version=_version(),
        instructions=_INSTRUCTIONS + (_DYNAMIC if options.dynamic else ""),
        tools=tools,
        resources=catalog_resources(catalog),
        log_level=library_level(),  # type: ignore[arg-type]  # one of its names
    )


class _PackServer(MCPServer[Any]):
    """The SDK server, answering a tool name it does not have with a short error: the SDK's
    own message (``Unknown tool: <name>``) echoes the whole name, however long."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        """Call a tool; an unknown name raises :class:`ToolError` quoting at most a prefix."""
        if len(name) > MAX_TOOL_NAME or self._tool_manager.get_tool(name) is None:
            raise ToolError(unknown_tool(name, [t.name for t in self._tool_manager.list_tools()]))
        return await super().call_tool(name, arguments, context)


def unknown_tool(name: str, known: Sequence[str]) -> str:
    """The one-line message for a tool name no tool has (bounded whatever ``name`` is)."""
    if len(name) > MAX_TOOL_NAME:
        return (f"unknown tool {name[:_SHOWN]!r}... ({len(name)} characters; a tool name is at"
                f" most {MAX_TOOL_NAME}) [list the tools with tools/list]")
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown tool {name!r} [{hint}list the tools with tools/list]"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ghl-connector")
    except PackageNotFoundError:  # run from a checkout that is not installed
        return ""


def serve_stdio(server: MCPServer) -> None:
    """Serve one client on stdin/stdout until it closes them."""
    server.run("stdio")


def serve_http(server: MCPServer, port: int, *, out: TextIO = sys.stderr) -> None:
    """Serve streamable HTTP at ``http://127.0.0.1:PORT/mcp`` until interrupted (``port`` 0:
    a free one); prints ``MCP server: URL`` to ``out`` once it accepts connections.

    :raises OSError: the port cannot be bound.
    """
    import uvicorn

    app = server.streamable_http_app(streamable_http_path=MCP_PATH, host=HOST)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    bound = sock.getsockname()[1]
    print(f"MCP server: http://{HOST}:{bound}{MCP_PATH}", file=out, flush=True)
    config = uvicorn.Config(app, log_level=library_level().lower(), lifespan="on",
                            proxy_headers=False)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
