"""A credential goes only to its own app and host.

A plugin app with its own host and ``auth: [private_token]`` is never sent the stored GHL token:
it needs its own (``CONNECTOR_<APP>_TOKEN``) and without one fails before anything is sent. A
stored connection's token goes only to the host it was stored for. ``http.request`` never
attaches a stored token. Each test runs the CLI as a real process against a recording HTTP
server on 127.0.0.1.
"""

from __future__ import annotations

import json

import pytest
from conftest import run_cli
from test_plugins import PLUGIN_MODULE, PLUGIN_SCHEMA

GHL_TOKEN = "pit-canary-0123456789abcdef"
ACME_TOKEN = "acme-canary-fedcba9876543210"

MANIFEST = """\
version: 1
apps:
  acme:
    title: Acme Widgets
    base_url: {url}
    auth: [private_token]
actions:
  acme.widgets.get:
    title: Get widget
    method: GET
    path: /widgets/{{widgetId}}
    params: {{widgetId: path}}
    schema: schemas/actions/acme.widgets.get.json
"""


@pytest.fixture
def acme(tmp_path, api):
    """An installed plugin whose app 'acme' lives at the recording server and takes a
    private token of its own."""
    site = tmp_path / "site"
    pkg = site / "acme_plugin"
    (pkg / "schemas" / "actions").mkdir(parents=True)
    (pkg / "__init__.py").write_text(PLUGIN_MODULE)
    (pkg / "manifest.yaml").write_text(MANIFEST.format(url=api.url))
    (pkg / "schemas" / "actions" / "acme.widgets.get.json").write_text(json.dumps(PLUGIN_SCHEMA))
    info = site / "acme_connector-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-connector\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[ghl_connector]\nacme = acme_plugin\n")
    return site


@pytest.fixture
def home(tmp_path):
    """A state folder holding a stored GHL connection (the default) for GHL's own host."""
    folder = tmp_path / "home"
    stored = run_cli(
        "auth", "set-token", "default", "--token-env", "PIT", "--location-id", "L1",
        env={"CONNECTOR_HOME": str(folder), "PIT": GHL_TOKEN},
    )  # fmt: skip
    assert stored.status == 0, stored
    return folder


def _sent_headers(api) -> list[dict[str, str]]:
    return [{k.lower(): v for k, v in r.headers.items()} for r in api.requests]


def test_a_plugin_app_without_its_own_token_fails_before_sending(acme, home, api):
    """The stored GHL token is not a fallback for another app: a clear error, no request."""
    env = {"PYTHONPATH": str(acme), "CONNECTOR_HOME": str(home)}
    called = run_cli("call", "acme.widgets.get", "--input", '{"widgetId": "w1"}', env=env)
    assert called.status == 1, called
    assert "no credential for app 'acme'" in called.stderr
    assert "CONNECTOR_ACME_TOKEN" in called.stderr
    assert "Traceback" not in called.stderr
    assert api.requests == []
    assert GHL_TOKEN not in called.stderr + called.stdout


def test_a_plugin_app_gets_its_own_token_and_never_the_ghl_one(acme, home, api):
    env = {"PYTHONPATH": str(acme), "CONNECTOR_HOME": str(home), "CONNECTOR_ACME_TOKEN": ACME_TOKEN}
    api.add("GET", "/widgets/w1", json={"widget": {"id": "w1"}})
    called = run_cli("call", "acme.widgets.get", "--input", '{"widgetId": "w1"}', env=env)
    assert called.status == 0, called
    (headers,) = _sent_headers(api)
    assert headers["authorization"] == f"Bearer {ACME_TOKEN}"
    assert all(GHL_TOKEN not in value for value in headers.values())


def test_a_stored_connection_is_not_sent_to_another_host(home, api):
    """``--base-url`` elsewhere does not take the stored token along: refused, nothing sent."""
    env = {"CONNECTOR_HOME": str(home)}
    called = run_cli("call", "ghl.contacts.get", "--input", '{"contactId": "c1"}',
                     "--base-url", api.url, env=env)
    assert called.status == 1, called
    assert "connection 'default' is for https://services.leadconnectorhq.com" in called.stderr
    assert "Traceback" not in called.stderr
    assert api.requests == []


def test_http_request_never_attaches_a_stored_token(home, api, tmp_path):
    """A recipe's generic HTTP step sends no Authorization, even with a default connection."""
    api.add("POST", "/hook", json={"ok": True})
    recipe = tmp_path / "mirror.yaml"
    recipe.write_text(
        "name: mirror\ntrigger:\n  use: ghl.contacts.created\nsteps:\n"
        "  - id: post\n    use: http.request\n    with:\n"
        f"      method: POST\n      url: {api.url}/hook\n      json: {{id: '{{{{ trigger.id }}}}'}}\n"
    )
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"type": "ContactCreate", "locationId": "L1", "id": "c1"}))
    env = {"CONNECTOR_HOME": str(home), "CONNECTOR_HTTP_ALLOW": "127.0.0.1"}
    ran = run_cli("run", str(recipe), "--event", str(event), env=env)
    if api.requests == []:
        pytest.fail(f"the step sent nothing: {ran}")
    (headers,) = _sent_headers(api)
    assert "authorization" not in headers
    assert all(GHL_TOKEN not in value for value in headers.values())
