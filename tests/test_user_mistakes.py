"""Mistakes a newcomer makes with `hooks`, `mcp` and `call`: each is one clear line, never a
traceback, and never echoes a secret (real processes, real state files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli

from connector.client.urlguard import UrlGuard
from connector.errors import ConnectorError


@pytest.mark.parametrize(("url", "says"), [
    ("http://xn--/", "invalid URL"),            # a malformed IDNA label: idna raised through
    ("http://xn--a/", "invalid URL"),
    ("http://127.0.0.1:99999/", "port 99999"),  # httpx parses it; no socket can use it
])
def test_url_guard_refuses_malformed_hosts_and_ports_as_errors(url: str, says: str) -> None:
    """The guard answers a URL httpx parses but cannot use with its own error, not idna's."""
    with pytest.raises(ConnectorError, match=says):
        UrlGuard().check(url, where="target_url")


def test_hooks_add_and_http_request_with_a_malformed_host_print_one_line(tmp_path: Path) -> None:
    env = {"CONNECTOR_HOME": str(tmp_path)}
    added = run_cli("hooks", "add", "ghl.contacts.created", "http://xn--/", env=env)
    assert added.status == 1, added.stderr
    assert "Traceback" not in added.stderr
    assert "/target_url" in added.stderr and "invalid URL" in added.stderr
    called = run_cli("call", "http.request", "--input", json.dumps({"url": "http://xn--/"}),
                     env=env)
    assert called.status == 1, called.stderr
    assert "Traceback" not in called.stderr and "invalid URL" in called.stderr
