"""`--dynamic`'s search_actions: the examples its own schema gives an agent find actions, and a
search that finds none says which word narrowed it to nothing (the SDK's client, in memory)."""

from __future__ import annotations

import re
from typing import Any

import anyio
from mcp import Client

from connector.catalog import Catalog
from connector.mcpserver.server import ServerOptions, build_server
from connector.runtime import Runtime, Settings


def searched(catalog: Catalog, words: list[str]) -> tuple[Any, list[Any]]:
    """The search_actions tool as listed, and its answers to each of ``words``."""
    with Runtime(catalog, Settings()) as runtime:
        server = build_server(catalog, runtime, ServerOptions(dynamic=True))

        async def main() -> tuple[Any, list[Any]]:
            async with Client(server) as client:
                [tool] = [t for t in (await client.list_tools()).tools
                          if t.name == "search_actions"]
                told = tool.input_schema["properties"]["words"]["description"]
                asked = words or re.findall(r"'([\w ]+)'", told.partition("e.g.")[2])
                answers = [await client.call_tool("search_actions", {"words": w})
                           for w in asked]
                return tool, answers

        return anyio.run(main)


def test_mcp_search_examples_in_the_tool_schema_find_actions(catalog: Catalog) -> None:
    """The words description said "e.g. 'opportunity stage'", which found no action (the
    stage is an input field, not in any action's words): an agent copying it got nothing."""
    _, answers = searched(catalog, [])
    assert len(answers) >= 2
    for answer in answers:
        assert answer.is_error is False
        assert answer.structured_content["total"] > 0, answer.structured_content


def test_mcp_search_without_results_says_how_many_hold_each_word(catalog: Catalog) -> None:
    _, [none, one] = searched(catalog, ["opportunity stage", "zzqx"])
    answer = none.structured_content
    assert answer["total"] == 0 and answer["actions"] == []
    assert "'opportunity': " in answer["hint"] and "'stage': 0" in answer["hint"]
    count = int(re.search(r"'opportunity': (\d+)", answer["hint"]).group(1))  # type: ignore[union-attr]
    assert count > 0
    assert "hint" not in one.structured_content  # one word: nothing to narrow
