"""``serve --sandbox`` prints what a user needs to act on each sandbox it starts."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.serveproc import ServeProcess
from tests.test_serve_sync import sync_folder


def test_serve_sandbox_prints_the_ghl_sandbox_token_that_it_accepts(tmp_path: Path) -> None:
    """The summary names the GHL sandbox's URL, location and token; the token creates a
    contact there (a GHL-side change a user makes by hand)."""
    folder = sync_folder(tmp_path, "superphone")
    proc = ServeProcess(folder, tmp_path / "home", base_url="http://127.0.0.1:9", token="unused",
                        location_id="unused", public_keys={}, extra=("--sandbox",))
    with proc:
        line = next(x for x in proc.summary if x.startswith("ghl sandbox: "))
        found = re.match(r"ghl sandbox: (\S+) \(location (\S+), private token (\S+),", line)
        assert found, line
        url, location, token = found.groups()
        made = httpx.post(
            f"{url}/contacts/", json={"locationId": location, "firstName": "Hand"},
            headers={"Authorization": f"Bearer {token}", "Version": "2021-07-28"}, timeout=10,
        )
        assert made.status_code in (200, 201), made.text
