"""`ghl-connector mcp`, driven by the official MCP SDK's client: over stdio (a real
`ghl-connector mcp` process), over streamable HTTP (a real process on 127.0.0.1), and in
process for the options (--read-only, --dynamic, a plugin's actions). Calls reach the GHL
sandbox (or Zenline's test server) for real."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from conftest import ROOT
from hypothesis import given, settings
from hypothesis import strategies as st
from mcp import Client, StdioServerParameters
from zenline_server import API_KEY, ZenlineServer

from connector.auth.bearer import StaticBearer
from connector.auth.credentials import api_key_provider, ghl_only
from connector.catalog import Catalog, build_catalog
from connector.cli import main
from connector.mcpserver.server import ServerOptions, build_server
from connector.mcpserver.toolset import DEFAULT_ACTIONS, TOOL_NAME, is_read, tool_name, tool_names
from connector.runtime import Runtime, Settings
from connector.sandbox.server import SandboxServer

THIRDPARTY = ROOT / "tests" / "thirdparty"


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a server process: no CONNECTOR_* of the caller, its own state."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    env["CONNECTOR_HOME"] = str(home)
    env.update(extra)
    return env


def drive(client: Client, body: Callable[[Client], Awaitable[Any]]) -> Any:
    """Run ``body`` with the client connected (the SDK's client is async)."""

    async def main() -> Any:
        async with client as connected:
            return await body(connected)

    return anyio.run(main)


async def create_then_get(client: Client) -> dict[str, Any]:
    """The shared scenario: list, create, get, and a bad input; returns what it saw."""
    tools = {t.name: t for t in (await client.list_tools()).tools}
    created = await client.call_tool(
        "ghl-contacts-create", {"firstName": "Ada", "email": "ada.mcp@example.com"}
    )
    contact_id = created.structured_content["contact"]["id"]
    got = await client.call_tool("ghl-contacts-get", {"contactId": contact_id})
    bad = await client.call_tool(
        "ghl-contacts-create", {"firstName": 5, "email": ["x"], "favouriteColour": "red"}
    )
    return {"tools": tools, "created": created, "got": got, "bad": bad}


def check_scenario(seen: dict[str, Any]) -> str:
    tools = seen["tools"]
    assert sorted(tools) == sorted(tool_name(i) for i in build_catalog().actions
                                   if i.startswith("ghl.contacts."))  # fmt: skip
    for name, tool in tools.items():
        assert TOOL_NAME.match(name)
        assert tool.input_schema["type"] == "object" and tool.output_schema["type"] == "object"
    get, delete, update = tools["ghl-contacts-get"], tools["ghl-contacts-delete"], tools["ghl-contacts-update"]
    assert get.title == "Get Contact" and "contactId" in get.input_schema["properties"]
    assert get.annotations.read_only_hint is True
    assert delete.annotations.destructive_hint is True and delete.annotations.read_only_hint is False
    assert update.annotations.idempotent_hint is True and update.annotations.destructive_hint is False
    assert "contact" in get.output_schema["properties"]

    created, got, bad = seen["created"], seen["got"], seen["bad"]
    assert created.is_error is False
    contact = created.structured_content["contact"]
    assert got.is_error is False and got.structured_content["contact"]["id"] == contact["id"]
    assert got.structured_content["contact"]["email"] == "ada.mcp@example.com"
    assert json.loads(got.content[0].text) == got.structured_content

    assert bad.is_error is True
    problems = {p["field"]: p["message"] for p in bad.structured_content["problems"]}
    assert bad.structured_content["error"] == "invalid_input"
    assert set(problems) == {"firstName", "email", "favouriteColour"}
    assert "not of type" in problems["firstName"] and "unknown input" in problems["favouriteColour"]
    assert "firstName" in bad.content[0].text and "favouriteColour" in bad.content[0].text
    return contact["id"]


# -- over stdio: a real `ghl-connector mcp --sandbox` process ---------------------------------


def test_mcp_stdio_lists_calls_and_refuses_bad_input(tmp_path: Path) -> None:
    """An MCP client starts `ghl-connector mcp --sandbox` (with Zenline, a third-party plugin
    package from tests/thirdparty, installed), lists the tools (valid names, annotations from
    the method), creates a contact and gets it back, and sees every field of a bad input named
    in a tool error; the resources hold the catalog and trigger samples. Zenline's actions are
    tools too, with no other change, and a call reaches Zenline's API with its key."""
    env = clean_env(tmp_path, PYTHONPATH=str(THIRDPARTY), CONNECTOR_ZENLINE_API_KEY=API_KEY)

    async def body(client: Client) -> dict[str, Any]:
        seen = await create_then_get(client)
        seen["made"] = await client.call_tool(
            "zenline-people-create", {"given_name": "Zed", "email": "zed@example.com"}
        )
        seen["resources"] = [str(r.uri) for r in (await client.list_resources()).resources]
        catalog = await client.read_resource("ghl-connector://catalog")
        seen["catalog"] = json.loads(catalog.contents[0].text)
        sample = await client.read_resource("ghl-connector://triggers/ghl.contacts.created/sample")
        seen["sample"] = json.loads(sample.contents[0].text)
        return seen

    with ZenlineServer() as zenline:
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "connector", "mcp", "--sandbox", "--actions", "ghl.contacts.*",
                  "zenline.*", "--base-url", f"zenline={zenline.base_url}"],
            env=env, cwd=str(ROOT),
        )  # fmt: skip
        seen = drive(Client(params, raise_exceptions=True), body)
    zenline_tools = {n: t for n, t in seen["tools"].items() if n.startswith("zenline-")}
    seen["tools"] = {n: t for n, t in seen["tools"].items() if n not in zenline_tools}
    check_scenario(seen)
    assert "ghl-connector://catalog" in seen["resources"]
    assert "ghl-connector://triggers/ghl.contacts.created/sample" in seen["resources"]
    assert "ghl-connector://triggers/zenline.people.created/sample" in seen["resources"]
    ids = {row["id"] for row in seen["catalog"]}
    assert {"ghl.contacts.get", "ghl.contacts.created", "http.request", "zenline.people.get"} <= ids
    assert seen["sample"]["type"] == "ContactCreate"

    assert set(zenline_tools) == {"zenline-people-get", "zenline-people-create",
                                  "zenline-people-find", "zenline-people-update"}  # fmt: skip
    assert zenline_tools["zenline-people-get"].title == "Get person"
    assert zenline_tools["zenline-people-get"].annotations.read_only_hint is True
    assert "person_id" in zenline_tools["zenline-people-get"].input_schema["properties"]
    assert seen["made"].is_error is False, seen["made"].content
    assert [p["given_name"] for p in zenline.people.values()] == ["Zed"]


# -- over streamable HTTP: a real process, calling the test's sandbox --------------------------


class HttpServer:
    """`ghl-connector mcp --http --port 0 ...` as a process; its URL read from stderr."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "connector", "mcp", "--http", "--port", "0", *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, cwd=ROOT, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self.url: str | None = None
        self._found = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self._found.wait(30) or self.url is None:
            self.stop()
            raise AssertionError(f"no URL from the server: {self.lines}")

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            if line.startswith("MCP server: "):
                self.url = line.split(": ", 1)[1].strip()
                self._found.set()
        self._found.set()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def http_server(ghl: SandboxServer, tmp_path: Path) -> Iterator[HttpServer]:
    server = HttpServer(
        "--base-url", ghl.base_url, "--token-env", "MCP_TEST_TOKEN", "--location-id",
        ghl.location_id, env=clean_env(tmp_path, MCP_TEST_TOKEN=ghl.private_token),
    )  # fmt: skip
    yield server
    server.stop()


def test_mcp_http_lists_calls_and_refuses_bad_input(
    http_server: HttpServer, ghl: SandboxServer
) -> None:
    """Over streamable HTTP on 127.0.0.1, the same: tools, a create and a get that reach the
    test's sandbox, and a structured error for a bad input (nothing sent for it). It listens on
    127.0.0.1 only and refuses a request for another Host (DNS rebinding)."""
    assert http_server.url is not None and http_server.url.startswith("http://127.0.0.1:")
    seen = drive(Client(http_server.url, raise_exceptions=True), create_then_get)
    contact_id = check_scenario(seen)
    assert ghl.writes("POST /contacts/") == 1  # the bad input was never sent
    answer = httpx.get(f"{ghl.base_url}/contacts/{contact_id}", headers=ghl.auth_headers())
    assert answer.status_code == 200 and answer.json()["contact"]["firstName"] == "Ada"

    # Bound to 127.0.0.1 only, and a request naming another Host (DNS rebinding) is refused.
    port = int(re.search(r":(\d+)/", http_server.url).group(1))
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"http://127.0.0.2:{port}/mcp", json={}, timeout=5)
    answer = httpx.post(http_server.url, json={}, headers={"Host": "evil.example"}, timeout=5)
    assert answer.status_code in (400, 403, 421)


# -- in process: the options ------------------------------------------------------------------


@pytest.fixture
def sandbox_runtime(ghl: SandboxServer, catalog: Catalog) -> Iterator[Runtime]:
    settings = Settings(base_urls={"ghl": ghl.base_url}, location_id=ghl.location_id)
    auth = api_key_provider(ghl_only(StaticBearer(ghl.private_token)))
    with Runtime(catalog, settings, auth=auth) as runtime:
        yield runtime


def test_mcp_read_only_drops_every_write(
    catalog: Catalog, sandbox_runtime: Runtime, ghl: SandboxServer
) -> None:
    """--read-only keeps the reads (GETs and the POST search) and drops creates, updates,
    deletes; over '*', no write of the catalog (nor http.request) is left; with --dynamic,
    search finds only reads and call_action refuses a write."""
    server = build_server(catalog, sandbox_runtime, ServerOptions(read_only=True))
    names = drive(Client(server), lambda c: c.list_tools())
    listed = {t.name: t for t in names.tools}
    assert set(listed) == {"ghl-contacts-get", "ghl-contacts-list", "ghl-contacts-search",
                           "ghl-contacts-find_duplicate", "ghl-contacts-list_by_business"}  # fmt: skip
    assert all(t.annotations.read_only_hint for t in listed.values())
    everything = build_server(catalog, sandbox_runtime, ServerOptions(actions=["*"], read_only=True))
    tools = drive(Client(everything), lambda c: c.list_tools()).tools
    by_name = tool_names(catalog.actions)
    kept = {by_name[t.name] for t in tools}
    assert kept and all(catalog.action(i).method in ("GET", "POST") for i in kept)
    assert "http.request" not in kept and "ghl.contacts.delete" not in kept
    assert {i for i in catalog.actions if catalog.action(i).method == "GET"} <= kept

    dynamic = build_server(catalog, sandbox_runtime, ServerOptions(dynamic=True, read_only=True))

    async def body(client: Client) -> tuple[Any, Any, Any]:
        tools = (await client.list_tools()).tools
        found = await client.call_tool("search_actions", {"words": "contact", "limit": 100})
        refused = await client.call_tool(
            "call_action", {"action": "ghl.contacts.create", "input": {"firstName": "No"}}
        )
        return tools, found, refused

    tools, found, refused = drive(Client(dynamic), body)
    assert all(t.annotations.read_only_hint for t in tools)
    assert all(a["read_only"] for a in found.structured_content["actions"])
    assert refused.is_error and "--read-only" in refused.content[0].text
    assert ghl.writes("POST /contacts/") == 0


def test_mcp_tools_take_every_location_input_from_the_connection(
    catalog: Catalog, sandbox_runtime: Runtime, ghl: SandboxServer
) -> None:
    """With a location, a tool's inputSchema does not require what the connection fills
    (`locationId`, `location_id`, the `altId`/`altType` pair) and a call without them reaches
    the sandbox (which answers 422 without them); without a location they stay required."""
    wanted = ["ghl.opportunities.search", "ghl.invoices.list", "ghl.contacts.create"]
    server = build_server(catalog, sandbox_runtime, ServerOptions(actions=wanted))

    async def body(client: Client) -> dict[str, Any]:
        return {
            "tools": {t.name: t for t in (await client.list_tools()).tools},
            "searched": await client.call_tool("ghl-opportunities-search", {}),
            "listed": await client.call_tool(
                "ghl-invoices-list", {"limit": "10", "offset": "0"}),
        }  # fmt: skip

    seen = drive(Client(server), body)
    tools = seen["tools"]
    assert "required" not in tools["ghl-opportunities-search"].input_schema
    assert tools["ghl-invoices-list"].input_schema["required"] == ["limit", "offset"]
    assert "locationId" not in tools["ghl-contacts-create"].input_schema.get("required", [])
    assert seen["searched"].is_error is False, seen["searched"].content
    assert "opportunities" in seen["searched"].structured_content
    assert seen["listed"].is_error is False, seen["listed"].content
    assert seen["listed"].structured_content["invoices"] == []

    from connector.mcpserver.tools import action_tool

    with Runtime(catalog, Settings(base_urls={"ghl": ghl.base_url})) as bare:
        tool = action_tool("ghl-invoices-list", catalog.action("ghl.invoices.list"), bare)
    assert set(tool.parameters["required"]) == {"altId", "altType", "limit", "offset"}


def test_mcp_dynamic_finds_describes_and_calls_an_action_outside_the_default_set(
    catalog: Catalog, sandbox_runtime: Runtime, ghl: SandboxServer
) -> None:
    """--dynamic offers three tools; they find ghl.notes.create by words, describe its schemas,
    and call it (validated like `call`: a bad input names its fields, nothing is sent)."""
    assert not any(re.fullmatch(p.replace("*", ".*"), "ghl.notes.create") for p in DEFAULT_ACTIONS)
    contact_id = sandbox_runtime.call("ghl.contacts.search", {"pageLimit": 1})["contacts"][0]["id"]
    server = build_server(catalog, sandbox_runtime, ServerOptions(dynamic=True))

    async def body(client: Client) -> dict[str, Any]:
        return {
            "tools": (await client.list_tools()).tools,
            "found": await client.call_tool("search_actions", {"words": "create note"}),
            "described": await client.call_tool("describe_action", {"action": "ghl.notes.create"}),
            "called": await client.call_tool("call_action", {
                "action": "ghl.notes.create", "input": {"contactId": contact_id, "body": "via MCP"}}),
            "bad": await client.call_tool("call_action", {
                "action": "ghl.notes.create", "input": {"contactId": contact_id, "body": 7}}),
            "unknown": await client.call_tool("describe_action", {"action": "ghl.notes.craete"}),
            "malformed": await client.call_tool("search_actions", {"words": "", "limit": 0}),
        }  # fmt: skip

    seen = drive(Client(server), body)
    assert [t.name for t in seen["tools"]] == ["search_actions", "describe_action", "call_action"]
    found = [a["id"] for a in seen["found"].structured_content["actions"]]
    assert "ghl.notes.create" in found[:5] and seen["found"].is_error is False
    assert all("note" in i and "create" in i for i in found[:5])
    described = seen["described"].structured_content
    assert "body" in described["input_schema"]["properties"] and described["method"] == "POST"
    assert described["tool"] == "ghl-notes-create"
    called = seen["called"]
    assert called.is_error is False and called.structured_content["action"] == "ghl.notes.create"
    note = called.structured_content["output"]["note"]
    assert note["body"] == "via MCP"
    notes = sandbox_runtime.call("ghl.notes.list", {"contactId": contact_id})["notes"]
    assert [n["body"] for n in notes].count("via MCP") == 1  # the bad call sent nothing
    assert seen["bad"].is_error and seen["bad"].structured_content["problems"][0]["field"] == "body"
    assert seen["unknown"].is_error and "ghl.notes.create" in seen["unknown"].content[0].text
    malformed = {p["field"] for p in seen["malformed"].structured_content["problems"]}
    assert malformed == {"words", "limit"}


# -- names and command-line mistakes -----------------------------------------------------------


def test_mcp_tool_names_are_valid_and_one_to_one(catalog: Catalog) -> None:
    """Every action of the catalog gets a valid, distinct tool name: its id with '-' for '.'."""
    names = tool_names(catalog.actions)
    assert len(names) == len(catalog.actions)
    assert all(TOOL_NAME.match(n) for n in names)
    assert names["ghl-contacts-get"] == "ghl.contacts.get"
    long_id = "acme." + "x" * 80 + ".get"
    odd = tool_name("acme.people-v2.get")
    assert TOOL_NAME.match(tool_name(long_id)) and "--" in tool_name(long_id)
    assert TOOL_NAME.match(odd) and odd != tool_name("acme.people_v2.get")


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=100), min_size=1, max_size=6, unique=True))
def test_mcp_tool_names_fuzz(ids: list[str]) -> None:
    """Any ids at all: every name is valid, and distinct ids get distinct names."""
    names = tool_names(ids)
    assert sorted(names.values()) == sorted(ids)
    assert all(TOOL_NAME.match(n) for n in names)


def test_mcp_is_read_rule(catalog: Catalog) -> None:
    """Reads: GETs and POST searches; every DELETE, PUT and create is a write."""
    assert is_read(catalog.action("ghl.contacts.search"))
    assert not any(is_read(a) for a in catalog.actions.values() if a.method in ("DELETE", "PUT"))
    assert not is_read(catalog.action("http.request"))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--actions", "ghl.nope.*"], "--actions 'ghl.nope.*': matches no action"),
        (["--read-only", "--actions", "ghl.contacts.create"], "--read-only: no action"),
        (["--base-url", "ftp://x"], "not an http:// or https:// URL"),
        (["--base-url", "nosuchapp=http://x"], "nosuchapp"),
    ],
)
def test_mcp_cli_mistakes_are_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str], clean_environ: Path
) -> None:
    """A mistake in the options is one `error:` line and status 1, before anything serves."""
    status = main(["mcp", *args])
    out, err = capsys.readouterr()
    assert status == 1 and err.startswith("error: ") and message in err, err
    assert out == "" and "Traceback" not in err


def test_mcp_cli_port_in_use_is_one_line(
    sandbox: SandboxServer, capsys: pytest.CaptureFixture[str], clean_environ: Path
) -> None:
    """A port already taken is a one-line error, not a traceback."""
    port = int(sandbox.base_url.rsplit(":", 1)[1].split("/")[0])
    status = main(["mcp", "--http", "--port", str(port)])
    err = capsys.readouterr().err
    assert status == 1 and f"error: --port {port}: cannot listen on 127.0.0.1" in err, err
    assert "Traceback" not in err


def test_mcp_answer_off_its_schema_is_an_error_holding_the_answer(
    catalog: Catalog, sandbox_runtime: Runtime, ghl: SandboxServer
) -> None:
    """An answer that does not match the tool's outputSchema is not passed off as structured
    content (the client would refuse it): it is a tool error saying the call was made, the
    answer under `output`. (The action here is ghl.contacts.get with a schema asking for a
    field the sandbox never sends: test data, the call itself is real.)"""
    import dataclasses

    from connector.catalog import Catalog as CatalogType

    action = catalog.action("ghl.contacts.get")
    stricter = {"type": "object", "required": ["never_sent"], "properties": {"never_sent": {}}}
    changed = dataclasses.replace(action, output_schema=stricter)
    altered = CatalogType(catalog.apps, {**catalog.actions, action.id: changed}, catalog.triggers,
                          catalog.filters, catalog.executors)  # fmt: skip
    with Runtime(altered, sandbox_runtime.settings, auth=sandbox_runtime._auth) as runtime:
        server = build_server(altered, runtime, ServerOptions(actions=["ghl.contacts.get"]))
        contact_id = runtime.call("ghl.contacts.search", {"pageLimit": 1})["contacts"][0]["id"]
        result = drive(Client(server), lambda c: c.call_tool("ghl-contacts-get", {"contactId": contact_id}))
    assert result.is_error is True
    assert result.structured_content["error"] == "output_mismatch"
    assert result.structured_content["output"]["contact"]["id"] == contact_id
    assert "the call was made" in result.content[0].text and "never_sent" in result.content[0].text


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@pytest.fixture(scope="module")
def get_tool(catalog: Catalog, sandbox: SandboxServer) -> Iterator[Any]:
    """The ghl-contacts-get tool, calling the session's sandbox."""
    from connector.mcpserver.tools import action_tool

    settings_ = Settings(base_urls={"ghl": sandbox.base_url}, location_id=sandbox.location_id)
    bearer = StaticBearer(sandbox.private_token)
    with Runtime(catalog, settings_, auth=lambda app, action: bearer) as runtime:
        yield action_tool("ghl-contacts-get", catalog.action("ghl.contacts.get"), runtime)


@settings(max_examples=60, deadline=None)
@given(arguments=st.dictionaries(st.sampled_from(["contactId", "locationId", "x", ""]), JSON, max_size=4))
def test_mcp_fuzzed_arguments_always_answer_a_result(arguments: dict[str, Any], get_tool: Any) -> None:
    """Whatever the arguments, a tool answers a result (an input error, GHL's error, or the
    contact), never a crash; a wrong input names its fields."""
    result = get_tool.fn(arguments)
    body = result.structured_content
    if result.is_error:
        assert body["error"] in ("invalid_input", "remote", "rate_limited")
        if body["error"] == "invalid_input":
            assert body["problems"] and all(p["field"] for p in body["problems"])
    else:
        assert "contact" in body


def test_mcp_arguments_over_the_limits_are_input_errors(catalog: Catalog, sandbox_runtime: Runtime) -> None:
    """The limits `call --input` has hold for tool arguments: too deep, too long a number."""
    from connector.mcpserver.tools import action_tool

    tool = action_tool("ghl-contacts-create", catalog.action("ghl.contacts.create"), sandbox_runtime)
    deep: Any = "x"
    for _ in range(300):
        deep = [deep]
    for arguments in ({"firstName": deep}, {"firstName": 10**5000}, {"firstName": float("nan")}):
        result = tool.fn(arguments)
        assert result.is_error and result.structured_content["error"] == "invalid_input", result
