"""What a tester found in the REST hooks and the MCP server (second round): duplicate
subscriptions, unbounded errors, URLs too long, DNS at subscribe time, usage mistakes (real
processes, real servers on 127.0.0.1, real state files)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from conftest import run_cli
from hooktarget import HookTarget
from inboxes import find
from mcp import Client
from test_mcp_server import drive

from connector.api.delivery import Deliverer, DeliverySettings, deliveries, fan_out
from connector.api.subscriptions import list_subscriptions, subscribe
from connector.auth.bearer import StaticBearer
from connector.auth.credentials import api_key_provider, ghl_only
from connector.catalog import Catalog
from connector.client.retry import RetryPolicy
from connector.client.urlguard import allowing
from connector.mcpserver.server import ServerOptions, build_server
from connector.runtime import Runtime, Settings
from connector.sandbox.server import SandboxServer
from connector.service.inbox import Inbox, NewEvent
from connector.store import Store

FAST = DeliverySettings(retry=RetryPolicy(attempts=2, base=0.05, cap=0.1), timeout=2.0,
                        senders=1, idle=0.05)


def _contact_created(store: Store) -> None:
    payload = {"webhookId": str(uuid.uuid4()), "type": "ContactCreate", "locationId": "loc1",
               "id": uuid.uuid4().hex[:12], "country": "US", "source": "web"}
    Inbox(store).add(NewEvent.from_payload(json.dumps(payload).encode(), payload, time.time()))
    event = find(Inbox(store), payload["webhookId"])
    assert event is not None
    fan_out(store, event)


def test_subscribing_twice_answers_the_existing_subscription_and_delivers_once(
    store: Store, catalog: Catalog
) -> None:
    """The same trigger, URL and filter (keys in another order) subscribed twice answer one
    subscription, with the same id and secret, marked existing; an event then reaches the
    target once. A different filter on the same URL is a subscription of its own."""
    with HookTarget() as target, allowing("127.0.0.1"):
        first = subscribe(store, "ghl.contacts.created", target.url,
                          {"country": "US", "source": ["web", "ads"]}, catalog=catalog)
        again = subscribe(store, "ghl.contacts.created", target.url,
                          {"source": ["web", "ads"], "country": "US"}, catalog=catalog)
        assert (again.id, again.secret, again.existing) == (first.id, first.secret, True)
        assert first.existing is False
        assert [s.id for s in list_subscriptions(store)] == [first.id]
        other = subscribe(store, "ghl.contacts.created", target.url, {"country": "CA"},
                          catalog=catalog)
        assert other.id != first.id and not other.existing
        target.secret = first.secret
        _contact_created(store)
        assert [d.subscription_id for d in deliveries(store)] == [first.id]
        assert Deliverer(store, FAST).run_once() == 1
        assert len(target.received) == 1


def test_hooks_add_twice_says_already_subscribed(tmp_path: Path) -> None:
    """`hooks add` run twice with the same arguments prints `already subscribed: <id>` with the
    same id and secret the first run printed, and the state file holds one subscription."""
    env = {"CONNECTOR_HOME": str(tmp_path), "CONNECTOR_HTTP_ALLOW": "127.0.0.1"}
    args = ("hooks", "add", "ghl.contacts.created", "http://127.0.0.1:9/h",
            "--filter", '{"country": "US"}')
    made = run_cli(*args, "--json", env=env)
    assert made.status == 0, made.stderr
    first = json.loads(made.stdout)
    assert "existing" not in first
    again = run_cli(*args, env=env)
    assert again.status == 0, again.stderr
    assert again.stdout.startswith(f"already subscribed: {first['id']} ")
    assert first["secret"] in again.stdout
    third = json.loads(run_cli(*args, "--json", env=env).stdout)
    assert third == {**first, "existing": True}
    listed = json.loads(run_cli("hooks", "--json", env=env).stdout)
    assert [s["id"] for s in listed] == [first["id"]]


def test_mcp_unknown_tool_names_get_a_short_error(catalog: Catalog, ghl: SandboxServer) -> None:
    """Over the SDK client: a 100,000-character tool name, a near miss and a name with
    characters no tool has are each answered with one short error quoting at most a short
    prefix (before, the SDK echoed the whole name back); a known tool still answers."""
    settings = Settings(base_urls={"ghl": ghl.base_url}, location_id=ghl.location_id)
    auth = api_key_provider(ghl_only(StaticBearer(ghl.private_token)))
    with Runtime(catalog, settings, auth=auth) as runtime:
        server = build_server(catalog, runtime, ServerOptions())

        async def body(client: Client) -> dict[str, Any]:
            return {name: await client.call_tool(name, {}) for name in
                    ("x" * 100_000, "ghl-contacts-gte", "ghl contacts get\n", "ghl-contacts-get")}

        seen = drive(Client(server), body)
    huge, miss, odd, known = seen.values()
    for result in (huge, miss, odd):
        assert result.is_error is True
        text = result.content[0].text
        assert len(text) < 300 and "\n" not in text, len(text)
    assert "x" * 40 not in huge.content[0].text and "100000 characters" in huge.content[0].text
    assert "'ghl-contacts-gte'" in miss.content[0].text and "tools/list" in miss.content[0].text
    assert known.is_error is True and known.structured_content["error"] == "invalid_input"


def test_a_url_too_long_is_an_input_error_naming_its_field(
    catalog: Catalog, ghl: SandboxServer, tmp_path: Path
) -> None:
    """A 100 KB `query` for ghl.contacts.list is an input error pointing at /query, nothing
    sent: over MCP `invalid_input` (before: a `remote` error "InvalidURL: URL too long"); from
    `call` exit 1 with one line naming the field, and with --dry-run no traceback. A query
    just under the limit still reaches the sandbox."""
    huge = "a" * 100_000
    settings = Settings(base_urls={"ghl": ghl.base_url}, location_id=ghl.location_id)
    auth = api_key_provider(ghl_only(StaticBearer(ghl.private_token)))
    with Runtime(catalog, settings, auth=auth) as runtime:
        server = build_server(catalog, runtime, ServerOptions(actions=["ghl.contacts.list"]))

        async def body(client: Client) -> list[Any]:
            return [await client.call_tool("ghl-contacts-list", {"query": huge}),
                    await client.call_tool("ghl-contacts-list", {"query": "a" * 4000})]

        refused, fine = drive(Client(server), body)
    assert refused.is_error is True
    answer = refused.structured_content
    assert answer["error"] == "invalid_input", answer["error"]
    [problem] = answer["problems"]
    assert problem["field"] == "query" and "URL" in problem["message"]
    assert len(refused.content[0].text) < 500 and "InvalidURL" not in refused.content[0].text
    assert fine.is_error is False, fine.content[0].text[:300]

    env = {"CONNECTOR_HOME": str(tmp_path), "CONNECTOR_TOKEN": ghl.private_token,
           "CONNECTOR_LOCATION_ID": ghl.location_id}
    for extra in ((), ("--dry-run",)):
        called = run_cli("call", "ghl.contacts.list", "--base-url", ghl.base_url, *extra,
                         "--input", json.dumps({"query": huge}), env=env)
        assert called.status == 1 and "Traceback" not in called.stderr, called.stderr[-300:]
        [line] = [x for x in called.stderr.splitlines() if x.startswith("error")]
        assert "query: makes the request URL" in line and "InvalidURL" not in line, line[:300]
        assert len(line) < 500


def test_hooks_add_accepts_a_host_that_does_not_resolve_now_with_a_warning(
    tmp_path: Path,
) -> None:
    """A target whose name does not resolve at subscribe time is subscribed, with a warning
    on stderr (before: refused); a literal private address and a name that resolves to
    loopback are still refused, nothing stored for them."""
    env = {"CONNECTOR_HOME": str(tmp_path)}
    added = run_cli("hooks", "add", "ghl.contacts.created", "https://nonexistent.invalid/abc",
                    "--json", env=env)
    assert added.status == 0, added.stderr
    made = json.loads(added.stdout)
    assert made["target_url"] == "https://nonexistent.invalid/abc"
    [warning] = added.stderr.strip().splitlines()
    assert warning.startswith("warning: ") and "cannot resolve host" in warning
    for url, risk in (("http://10.1.2.3/h", "private"), ("http://localhost:9/h", "loopback")):
        refused = run_cli("hooks", "add", "ghl.contacts.created", url, env=env)
        assert refused.status == 1 and "Traceback" not in refused.stderr
        assert "/target_url" in refused.stderr and risk in refused.stderr, refused.stderr
    listed = json.loads(run_cli("hooks", "--json", env=env).stdout)
    assert [s["id"] for s in listed] == [made["id"]]


def test_subscribe_answers_the_warning_of_a_host_that_does_not_resolve(
    store: Store, catalog: Catalog
) -> None:
    """From Python the warning is on the subscription; the row is stored."""
    sub = subscribe(store, "ghl.contacts.created", "https://nonexistent.invalid/x",
                    catalog=catalog)
    assert len(sub.warnings) == 1 and "subscribed anyway" in sub.warnings[0]
    assert [s.id for s in list_subscriptions(store)] == [sub.id]


def test_mcp_sandbox_with_a_ghl_base_url_is_a_usage_error(tmp_path: Path) -> None:
    """`mcp --sandbox --base-url X` used to ignore X silently; now it is one line, exit 2,
    before anything starts. A base URL for another app stays allowed (the server starts, and
    stops when its stdin closes)."""
    env = {"CONNECTOR_HOME": str(tmp_path)}
    for url in ("http://127.0.0.1:9", "ghl=http://127.0.0.1:9"):
        run = run_cli("mcp", "--sandbox", "--base-url", url, env=env, input="")
        assert run.status == 2, run.stderr
        [line] = run.stderr.splitlines()
        assert line.startswith("ghl-connector mcp: error: --sandbox") and "--base-url" in line
        assert run.stdout == ""
    other = run_cli("mcp", "--sandbox", "--base-url", "superphone=http://127.0.0.1:9",
                    env=env, input="")
    assert other.status == 0 and "ghl sandbox: http://127.0.0.1:" in other.stderr, other.stderr
