"""Calling actions through the runtime against a real local server."""

from __future__ import annotations

import json
import logging

import pytest
from conftest import run_cli

from connector.auth.credentials import StaticBearer
from connector.catalog import build_catalog
from connector.client.retry import RetryPolicy
from connector.errors import ConnectorError, InputError, RemoteError
from connector.runtime import Runtime, Settings

CATALOG = build_catalog()
CONTACT = {"contact": {"id": "c1", "locationId": "L1", "firstName": "Ann", "tags": ["vip"]}}


def runtime_for(api, *, strict=True, token="tok-123"):
    settings = Settings(
        strict=strict,
        base_urls={"ghl": api.url},
        location_id="L1",
        retry=RetryPolicy(attempts=3, base=0.01, cap=0.05, seed=1),
    )
    bearer = StaticBearer(token)
    return Runtime(CATALOG, settings, auth=lambda app, action: bearer)


def test_runtime_get_sends_headers_and_returns_output(api):
    """A call sends the Version header and the bearer token, and returns the JSON output."""
    api.add("GET", "/contacts/c1", json=CONTACT)
    with runtime_for(api) as runtime:
        assert runtime.call("ghl.contacts.get", {"contactId": "c1"}) == CONTACT
    (seen,) = api.requests
    assert seen.headers["version"] == "2021-07-28"
    assert seen.headers["authorization"] == "Bearer tok-123"


def test_runtime_input_errors_list_every_field(api):
    """Every input problem is reported at once, with its field path, and nothing is sent."""
    with runtime_for(api) as runtime, pytest.raises(InputError) as info:
        runtime.call(
            "ghl.tasks.create", {"contactId": "c1", "title": 5, "dueDate": "x", "bogus": 1}
        )
    assert str(info.value) == (
        "invalid input for ghl.tasks.create: bogus: unknown input 'bogus' for ghl.tasks.create"
        " [inputs: assignedTo, body, completed, contactId, dueDate, title]; completed: missing"
        " required input 'completed' for ghl.tasks.create; title: 5 is not of type 'string'"
    )
    assert api.requests == []


def test_runtime_location_filled_from_settings(api):
    """The location input is filled from --location-id when the caller leaves it out."""
    api.add("POST", "/contacts/", status=201, json=CONTACT)
    with runtime_for(api) as runtime:
        runtime.call("ghl.contacts.create", {"firstName": "Ann"})
    assert api.requests[0].json == {"firstName": "Ann", "locationId": "L1"}


def test_runtime_output_mismatch_warns_once_by_default(api, caplog):
    """Outside strict mode a bad output is logged once per action and field, and still returned."""
    bad = {"contact": {"id": 12, "tags": "vip"}}
    api.add("GET", "/contacts/c1", json=bad, times=2)
    with (
        runtime_for(api, strict=False) as runtime,
        caplog.at_level(logging.WARNING, "connector.runtime"),
    ):
        assert runtime.call("ghl.contacts.get", {"contactId": "c1"}) == bad
        assert runtime.call("ghl.contacts.get", {"contactId": "c1"}) == bad
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "ghl.contacts.get: response field contact.id: 12 is not of type 'string'",
        "ghl.contacts.get: response field contact.tags: 'vip' is not of type 'array'",
    ]


def test_runtime_output_mismatch_is_error_in_strict_mode(api):
    """In strict mode a bad output is an error naming the action and the field."""
    api.add("GET", "/contacts/c1", json={"contact": {"id": 12}})
    with (
        runtime_for(api) as runtime,
        pytest.raises(
            ConnectorError,
            match=(
                r"ghl.contacts.get: the response does not match the output schema: contact.id: 12 is not of type 'string'"
            ),
        ),
    ):
        runtime.call("ghl.contacts.get", {"contactId": "c1"})


def test_runtime_ghl_error_is_one_clear_line(api):
    """A GHL error surfaces with method, path, status and GHL's message."""
    api.add(
        "PUT",
        "/contacts/c1",
        status=422,
        json={
            "statusCode": 422,
            "message": ["email must be an email"],
            "error": "Unprocessable Entity",
        },
    )
    with runtime_for(api) as runtime, pytest.raises(RemoteError) as info:
        runtime.call("ghl.contacts.update", {"contactId": "c1", "firstName": "A"})
    assert info.value.status == 422
    assert str(info.value).startswith("PUT /contacts/c1 -> 422 Unprocessable Entity: ")
    assert "email must be an email" in str(info.value)
    assert "tok-123" not in str(info.value)


def test_runtime_all_pages_through_runtime(api):
    """iterate() walks GET /contacts/ pages with startAfterId/startAfter and stops at the cap."""

    def page(request):
        from fakeapi import Answer

        after = int(request.query.get("startAfter", "0"))
        contacts = [
            {"id": f"c{n}", "dateAdded": str(n)} for n in range(after + 1, min(after + 3, 7) + 1)
        ]
        meta = (
            {"startAfterId": contacts[-1]["id"], "startAfter": after + len(contacts)}
            if contacts
            else {}
        )
        return Answer(json={"contacts": contacts, "count": len(contacts), "meta": meta})

    api.route("GET", "/contacts/", page)
    with runtime_for(api, strict=False) as runtime:
        ids = [c["id"] for c in runtime.iterate("ghl.contacts.list", {"limit": 3})]
        assert ids == [f"c{n}" for n in range(1, 8)]
        capped = [c["id"] for c in runtime.iterate("ghl.contacts.list", {"limit": 3}, max_items=4)]
        assert capped == ["c1", "c2", "c3", "c4"]


def test_cli_call_dry_run_masks_token(api):
    """--dry-run prints the request with the token masked and sends nothing."""
    result = run_cli(
        "call",
        "ghl.contacts.create",
        "--input",
        '{"firstName": "Ann"}',
        "--location-id",
        "L9",
        "--dry-run",
        "--base-url",
        api.url,
        env={"MY_TOKEN": "secret-canary-1"},
    )
    assert result.status == 0, result
    out = json.loads(result.stdout)
    assert out == {
        "action": "ghl.contacts.create",
        "method": "POST",
        "url": f"{api.url}/contacts/",
        "headers": {"Version": "2021-07-28", "Authorization": "Bearer ****"},
        "json": {"firstName": "Ann", "locationId": "L9"},
    }
    assert api.requests == []
    assert "secret-canary-1" not in result.stdout + result.stderr


def test_cli_call_against_server(api):
    """call sends the request with the token from --token-env and prints JSON."""
    api.add("GET", "/contacts/c1", json=CONTACT)
    result = run_cli(
        "call",
        "ghl.contacts.get",
        "--input",
        '{"contactId": "c1"}',
        "--strict",
        "--base-url",
        api.url,
        "--token-env",
        "MY_TOKEN",
        env={"MY_TOKEN": "tok-9"},
    )
    assert result.status == 0, result
    assert json.loads(result.stdout) == CONTACT
    assert api.requests[0].headers["authorization"] == "Bearer tok-9"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["call", "ghl.contacts.gte"],
            "error: unknown action 'ghl.contacts.gte' (did you mean 'ghl.contacts.get'?)",
        ),
        (
            ["call", "ghl.contacts.get", "--input", "{bad"],
            "error: --input:1:2: invalid JSON: Expecting property name",
        ),
        (
            ["call", "ghl.contacts.get", "--input", "[]"],
            "error: --input: the input must be a JSON object",
        ),
        (
            ["call", "ghl.contacts.get", "--input", "@/nonexistent.json"],
            "error: /nonexistent.json: cannot read: No such file",
        ),
        (
            ["call", "ghl.contacts.get", "--input", '{"contactId": "c1"}'],
            "error: no connection named 'default' (stored: none) [hint: run `ghl-connector auth login",
        ),
        (["catalog", "show", "nope.x.y"], "error: unknown action or trigger 'nope.x.y'"),
        (["catalog", "show", "ghl.contacts.craeted"], "error: unknown action or trigger 'ghl.contacts.craeted' (did you mean 'ghl.contacts.created'?)"),
    ],
)
def test_cli_handled_errors_are_one_line(args, message):
    """Bad CLI input gives one line on stderr, exit 1, no traceback."""
    result = run_cli(*args)
    assert result.status == 1, result
    assert result.stderr.startswith(message), result
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_cli_connection_refused_is_clear():
    """A server that is not there gives a clear one-line error."""
    result = run_cli(
        "call",
        "ghl.contacts.get",
        "--input",
        '{"contactId": "c1"}',
        "--base-url",
        "http://127.0.0.1:9",
        "--token-env",
        "T",
        "--timeout",
        "2",
        env={"T": "x"},
    )
    assert result.status == 1
    assert result.stderr.startswith("error: GET /contacts/c1 -> cannot connect to 127.0.0.1:9"), (
        result
    )


def test_cli_call_with_stored_connection(ghl, tmp_path):
    """`call --connection NAME` uses a stored private token, its location and base URL."""
    home = {"CONNECTOR_HOME": str(tmp_path / "home"), "PIT": ghl.private_token}
    stored = run_cli("auth", "set-token", "acme", "--token-env", "PIT", "--location-id",
                     ghl.location_id, "--base-url", ghl.base_url, env=home)
    assert stored.status == 0, stored
    created = run_cli("call", "ghl.contacts.create", "--connection", "acme", "--strict",
                      "--input", '{"firstName": "Zed", "email": "zed@example.com"}', env=home)
    assert created.status == 0, created
    contact = json.loads(created.stdout)["contact"]
    assert contact["locationId"] == ghl.location_id
    assert ghl.writes("POST /contacts/") == 1
    assert ghl.private_token not in created.stdout + created.stderr
