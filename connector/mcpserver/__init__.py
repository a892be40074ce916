"""The MCP server (``ghl-connector mcp``): the catalog's actions as Model Context Protocol
tools, its triggers' samples and the catalog as resources, on the official ``mcp`` SDK.

:mod:`~connector.mcpserver.toolset` picks the actions and names their tools,
:mod:`~connector.mcpserver.tools` turns one action into a tool that calls it through the
runtime, :mod:`~connector.mcpserver.discovery` holds the three tools of ``--dynamic``,
:mod:`~connector.mcpserver.resources` the resources, and :mod:`~connector.mcpserver.server`
puts them in an SDK server run over stdio or streamable HTTP. docs/platforms/mcp.md says how
MCP clients use it.
"""
