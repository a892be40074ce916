"""The plugin seam is real: a third partner app, Zenline, installed as its own package
(tests/thirdparty: its manifest, REST actions, a signed webhook trigger, a sync adapter, found
through its entry point like any `pip install`), kept in step with GHL by `serve` against a
small local server, and named by not one line of connector/."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from zenline_server import API_KEY, SECRET, ZenlineServer, sign

from connector.auth.credentials import StaticBearer
from connector.catalog import build_catalog
from connector.plugins import get_plugin_manager
from connector.runtime import Runtime, Settings
from connector.sandbox.server import SandboxServer
from connector.store import Store
from connector.sync.idmap import IdMap
from tests.serveproc import ROOT, ServeProcess
from tests.test_serve_sync import audit, find_ghl, hook_url, settle

INSTALLED = ROOT / "tests" / "thirdparty"
SYNC = """\
name: ghl-zenline
sync:
  partner: zenline
  objects:
    contacts:
      direction: two_way
      match: [email]
      fields:
        firstName: given_name
        lastName: family_name
        email: email
"""


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The package is installed: its folder (with its .dist-info) is on the import path."""
    monkeypatch.syspath_prepend(str(INSTALLED))


@pytest.fixture
def zenline() -> Iterator[ZenlineServer]:
    with ZenlineServer() as server:
        yield server


def test_thirdparty_partner_is_found_by_its_entry_point(installed: None) -> None:
    """The catalog lists Zenline's app, actions and triggers, with its webhooks and adapters."""
    catalog = build_catalog(get_plugin_manager())
    app = catalog.app("zenline")
    assert app.webhooks is not None and app.webhooks.algorithm == "hmac-sha512"
    assert app.sync_adapters["contacts"]["create"] == "zenline.people.create"
    assert {"zenline.people.get", "zenline.people.create"} <= set(catalog.actions)
    assert catalog.trigger("zenline.people.updated").event == "person.updated"
    assert "zenline" not in build_catalog(get_plugin_manager(entry_points=False)).apps


def test_thirdparty_partner_import_does_no_work() -> None:
    """Importing the plugin reads no file and loads no YAML, schema or HTTP library."""
    code = ("import sys, zenline_connector; "
            "print(sorted(m for m in sys.modules if m in ('yaml', 'jsonschema', 'httpx')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=INSTALLED, check=True)  # fmt: skip
    assert out.stdout.strip() == "[]"


def test_thirdparty_partner_is_named_nowhere_in_connector() -> None:
    """Not one line of connector/ names the third partner app."""
    named = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "connector").rglob("*"))
             if p.is_file() and "zenline" in p.read_bytes().decode(errors="replace").lower()]
    assert named == []


def _serve(ghl: SandboxServer, zenline: ZenlineServer, tmp_path: Path) -> ServeProcess:
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "sync_zenline.yaml").write_text(SYNC)
    proc = ServeProcess(folder, tmp_path / "home", base_url=ghl.base_url, token=ghl.private_token,
                        location_id=ghl.location_id, public_keys=ghl.public_keys,
                        extra=("--base-url", f"zenline={zenline.base_url}"))  # fmt: skip
    proc.env["PYTHONPATH"] = f"{INSTALLED}:{proc.env['PYTHONPATH']}"
    proc.env["CONNECTOR_ZENLINE_API_KEY"] = API_KEY
    proc.env["ZENLINE_HOOK_SECRET"] = SECRET  # the manifest's secret_env
    return proc


@pytest.fixture
def runtime(ghl: SandboxServer) -> Iterator[Runtime]:
    """The test's own hands on GHL."""
    settings = Settings(location_id=ghl.location_id, base_urls={"ghl": ghl.base_url})
    bearer = StaticBearer(ghl.private_token)
    with Runtime(build_catalog(), settings, auth=lambda app, action: bearer) as rt:
        yield rt


def test_thirdparty_partner_two_way_sync(
    ghl: SandboxServer, zenline: ZenlineServer, runtime: Runtime, tmp_path: Path
) -> None:
    """A GHL contact reaches Zenline; a Zenline edit, signed with Zenline's own scheme,
    comes back to GHL; a delivery with a wrong signature is refused."""
    email = f"zoe-{uuid.uuid4().hex[:6]}@example.org"
    with _serve(ghl, zenline, tmp_path) as proc:
        assert "  ghl-zenline: ghl <-> zenline (contacts)" in "\n".join(proc.summary)
        ghl.set_webhook_urls([proc.url])
        zenline.set_webhook_urls([hook_url(proc, "zenline")])
        contact = runtime.call("ghl.contacts.create", {
            "firstName": "Zoe", "lastName": "Park", "email": email})["contact"]  # fmt: skip
        settle(proc, ghl, {"zenline": zenline})
        with Store(proc.db) as store:
            link = IdMap(store, "ghl-zenline").find("contacts", "ghl", contact["id"])
        assert link is not None
        person = zenline.people[link.partner_id]
        assert (person["given_name"], person["family_name"]) == ("Zoe", "Park")

        zenline.change(link.partner_id, given_name="Zoey")
        settle(proc, ghl, {"zenline": zenline})
        forged = json.dumps({"uid": "ev_x", "kind": "person.updated", "body": person}).encode()
        refused = httpx.post(hook_url(proc, "zenline"), content=forged,
                             headers={"Zenline-Signature": sign(forged, "wrong")})  # fmt: skip
        ghl.set_webhook_urls([])
    assert refused.status_code == 401
    assert (find_ghl(runtime, email) or {}).get("firstName") == "Zoey"
    assert set(zenline.deliveries) == {200}
    rows = [(r["direction"], r["action"]) for r in audit(proc.db) if r["action"] != "skip"]
    assert rows == [("ghl->zenline", "create"), ("zenline->ghl", "update")]
