"""`ghl-connector sandbox` as a real process: banner, a working API, a clean Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx
import pytest
from conftest import ROOT


def test_cli_sandbox_prints_banner_and_serves():
    """The command prints its URL, credentials and keys, serves the API, and stops on Ctrl-C."""
    with subprocess.Popen(
        [sys.executable, "-m", "connector", "sandbox", "--port", "0", "--seed-contacts", "3",
         "--rate-limit", "50/5"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as proc:
        _check_running_sandbox(proc)
        proc.send_signal(signal.SIGINT)
        status = proc.wait(15)
        errors = proc.stderr.read()
    assert status == 0
    assert "Traceback" not in errors


def _check_running_sandbox(proc):
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        info = {}
        for line in iter(proc.stdout.readline, ""):
            if not line.strip():
                break
            name, _, value = line.partition(":")
            info[name.strip()] = value.strip()
        assert base_url.startswith("http://127.0.0.1:")
        assert {"client_id", "client_secret", "location_id", "private_token"} <= set(info)
        headers = {"Authorization": f"Bearer {info['private_token']}", "Version": "2021-07-28"}
        found = httpx.post(f"{base_url}/contacts/search", headers=headers,
                           json={"locationId": info["location_id"], "pageLimit": 10})
        assert found.status_code == 200
        assert found.json()["total"] == 3
        assert found.headers["x-ratelimit-max"] == "50"
        assert found.headers["x-ratelimit-interval-milliseconds"] == "5000"
    except BaseException:
        proc.kill()
        raise


def test_cli_sandbox_bad_rate_limit_is_one_line():
    """A malformed --rate-limit is a one-line error, exit 1."""
    result = subprocess.run([sys.executable, "-m", "connector", "sandbox", "--rate-limit", "ten"],
                            cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert result.stderr == "error: --rate-limit: rate limit 'ten' is not N/SECONDS [e.g. '100/10']\n"


def test_cli_sandbox_port_in_use_is_one_line():
    """`sandbox --port N` on a port something listens on: one error line naming it, no traceback."""
    import socket

    from conftest import run_cli

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_cli("sandbox", "--port", str(port), timeout=30)
    assert result.status == 1, result
    assert result.stderr.strip().splitlines() == [
        f"error: 127.0.0.1:{port}: cannot listen: Address already in use [use another --port]"
    ]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("sandbox", "--port", "99999"), "argument --port: '99999' is not a port"),
        (("sandbox", "--seed-contacts", "-3"), "argument --seed-contacts: '-3' is not a whole"),
        (("sandbox", "--token-lifetime", "nan"), "argument --token-lifetime: 'nan' is not a"),
        (("serve", "--recipes", ".", "--port", "70000"), "argument --port: '70000' is not a port"),
    ],
)
def test_cli_server_options_out_of_range_are_usage_errors(args, expected):
    """A port out of range or a negative count is a usage error (exit 2), not a traceback."""
    from conftest import run_cli

    result = run_cli(*args, timeout=30)
    assert result.status == 2, result
    assert expected in result.stderr and "Traceback" not in result.stderr
