"""``ghl-connector auth`` as a real process against the sandbox, and the secret canary."""

from __future__ import annotations

import json
import os
import pty
import select
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
import pytest

from connector.auth.tokens import ConnectionStore
from connector.sandbox.server import SandboxServer
from connector.store import Store

ROOT = Path(__file__).resolve().parents[1]
CLIENT_SECRET = "canary-client-secret-cli-7e2a"
PRIVATE_TOKEN = "canary-private-token-cli-51c0"
SCOPES = "contacts.readonly contacts.write oauth.write"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cli:
    """Runs the CLI against one sandbox and one state folder, keeping every byte it printed."""

    server: SandboxServer
    port: int
    home: Path
    transcript: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return self.server.app.base_url

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CONNECTOR_", "GHL_"))}
        env.update(CONNECTOR_HOME=str(self.home), CONNECTOR_GHL_BASE_URL=self.base_url)
        env.update(extra)
        return env

    def run(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "connector", "--log-level", "DEBUG", "auth", *args],
            cwd=ROOT, env=self.env(**extra), capture_output=True, text=True, timeout=60,
        )
        self.transcript += [proc.stdout, proc.stderr]
        return proc

    def login(self, *args: str, extra: str = "", secret: str = CLIENT_SECRET) -> tuple[int, str]:
        """``auth login``; plays the browser by following the printed URL headlessly."""
        command = [
            sys.executable, "-m", "connector", "--log-level", "DEBUG", "auth", "login",
            "--client-id", self.server.app.config.client_id, "--scopes", SCOPES,
            "--port", str(self.port), "--timeout", "20", "--no-browser", *args,
        ]
        proc = subprocess.Popen(
            command, cwd=ROOT, env=self.env(GHL_CLIENT_SECRET=secret), text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if line.strip().startswith("http://"):
                httpx.get(line.strip() + extra, follow_redirects=True, timeout=20)
                break
        out, err = proc.communicate(timeout=60)
        stdout = "".join(seen) + out
        self.transcript += [stdout, err]
        return proc.returncode, stdout + err

    def connections(self) -> ConnectionStore:
        return ConnectionStore(Store(self.home / "state.db"))


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[tuple[SandboxServer, int]]:
    port = free_port()
    with SandboxServer(
        redirect_uris=(f"http://127.0.0.1:{port}/callback",),
        client_secret=CLIENT_SECRET,
        private_token=PRIVATE_TOKEN,
    ) as server:
        yield server, port


@pytest.fixture
def cli(sandbox_server, tmp_path) -> Cli:
    server, port = sandbox_server
    server.call(server.app.reset)
    return Cli(server, port, tmp_path / "home")


def test_cli_login_status_logout(cli):
    """Login through the loopback redirect, list it (no token shown), then log out."""
    status, output = cli.login("--name", "acme")
    assert status == 0, output
    assert "connection 'acme' saved: oauth Location" in output
    listed = cli.run("status")
    assert listed.returncode == 0 and "acme" in listed.stdout and "needs login" not in listed.stdout
    rows = json.loads(cli.run("status", "--json").stdout)
    assert rows[0]["name"] == "acme" and rows[0]["scopes"] == sorted(SCOPES.split())
    assert rows[0]["location_id"] == cli.server.app.config.location_id
    assert oct((cli.home / "state.db").stat().st_mode & 0o777) == "0o600"
    assert cli.run("logout", "acme").returncode == 0
    missing = cli.run("logout", "acme")
    assert missing.returncode == 1
    assert missing.stderr.strip().endswith("error: auth logout: no connection named 'acme'")


def test_cli_set_token_from_env_and_hidden_prompt(cli):
    """set-token reads the environment or a no-echo prompt; the token is never printed."""
    done = cli.run("set-token", "pit", "--token-env", "PIT", "--scopes", "contacts.readonly",
                   PIT=PRIVATE_TOKEN)
    assert done.returncode == 0, done.stderr
    assert "private Location" not in done.stdout and "private Company" in done.stdout
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "connector", "auth", "set-token", "typed", "--location-id", "L1"],
        cwd=ROOT, env=cli.env(), stdin=secondary, stdout=secondary, stderr=secondary,
        start_new_session=True,
    )
    os.close(secondary)
    transcript = _read_until(primary, b"Token for typed: ")
    os.write(primary, PRIVATE_TOKEN.encode() + b"\n")
    transcript += _read_until(primary, None)
    os.close(primary)
    assert proc.wait(30) == 0, transcript
    assert PRIVATE_TOKEN.encode() not in transcript
    assert b"connection 'typed' saved: private Location L1" in transcript
    assert cli.connections().get("typed").access_token == PRIVATE_TOKEN
    no_tty = cli.run("set-token", "other")
    assert no_tty.returncode == 1 and "no terminal to prompt on" in no_tty.stderr


def _read_until(fd: int, marker: bytes | None) -> bytes:
    """Read a pty until ``marker`` appears (or EOF for None)."""
    data = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (marker is None or marker not in data):
        ready, _, _ = select.select([fd], [], [], 1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return data


RUNTIME_SCRIPT = textwrap.dedent(
    """
    import sys
    from connector.cli import main
    from connector.auth.tokens import ConnectionStore, TokenManager
    from connector.catalog import build_catalog
    from connector.errors import ConnectorError
    from connector.runtime import Runtime, Settings
    import logging
    main(["--log-level", "DEBUG", "auth", "status"])  # sets up logging as the CLI does
    tokens = TokenManager(ConnectionStore.open())
    settings = Settings(base_urls={"ghl": sys.argv[1]}, location_id=sys.argv[2])
    with Runtime(build_catalog(), settings, auth=tokens.provider(sys.argv[3])) as runtime:
        try:
            print(runtime.call("ghl.contacts.search", {"pageLimit": 1}))
        except ConnectorError as exc:
            logging.getLogger("test").exception("call failed")
            print(f"error: {exc}", file=sys.stderr)
    """
)


def test_cli_canary_secrets_never_leak(cli):
    """At debug level, through success, 401, refresh, revoked refresh and bad input, no secret
    appears in any output or file except as ciphertext."""
    location = cli.server.app.config.location_id
    provider = cli.server.app.provider
    seen: set[str] = {CLIENT_SECRET, PRIVATE_TOKEN}

    def collect() -> None:
        store = cli.connections()
        for name in store.names():
            conn = store.get(name)
            seen.update(s for s in (conn.access_token, conn.refresh_token) if s)
        store.store.close()

    def runtime(name: str) -> None:
        proc = subprocess.run(
            [sys.executable, "-c", RUNTIME_SCRIPT, cli.base_url, location, name],
            cwd=ROOT, env=cli.env(), capture_output=True, text=True, timeout=60,
        )
        cli.transcript += [proc.stdout, proc.stderr]

    assert cli.login("--name", "acme")[0] == 0
    assert cli.login("--name", "agency", extra="&user_type=Company")[0] == 0
    collect()
    assert cli.run("set-token", "pit", "--token-env", "PIT", PIT=PRIVATE_TOKEN).returncode == 0
    assert cli.run("location-token", "--from", "agency", "--location-id", location,
                   "--name", "loc").returncode == 0
    collect()
    provider.expire_access_tokens()  # 401, then a refresh
    runtime("acme")
    assert cli.run("location-token", "--from", "agency", "--location-id", location,
                   "--name", "loc2").returncode == 0
    collect()
    store = cli.connections()
    store.save(replace(store.get("acme"), expires_at=time.time() - 5))  # refresh before use
    runtime("acme")
    collect()
    provider.revoke(cli.connections().get("agency").refresh_token or "")
    provider.expire_access_tokens()
    refused = cli.run("location-token", "--from", "agency", "--location-id", location,
                      "--name", "loc3")
    assert refused.returncode == 1 and "auth login --name agency" in refused.stderr
    runtime("loc")
    bad = [
        cli.run("set-token", "bad name", "--token-env", "PIT", PIT=PRIVATE_TOKEN),
        cli.run("logout", "nobody"),
        cli.run("location-token", "--from", "pit", "--location-id", location, "--name", "x"),
    ]
    assert all(p.returncode == 1 for p in bad)
    status, output = cli.login("--name", "wrong", secret="canary-wrong-secret-0b9d")
    assert status == 1 and "invalid_client" in output
    seen.add("canary-wrong-secret-0b9d")
    collect()
    stats = provider.stats
    assert stats["refreshes"] >= 2 and stats["auth_failures"] >= 2
    assert stats["refresh_rejections"] == 1
    text = "".join(cli.transcript)
    assert "DEBUG" in text and "refreshing connection" in text
    files = [p for p in cli.home.rglob("*") if p.is_file()]
    assert any(p.name == "state.db" for p in files)
    for secret in seen:
        assert secret not in text, f"a secret leaked to output: {secret[:6]}..."
        for path in files:
            assert secret.encode() not in path.read_bytes(), f"a secret is in {path.name}"


def test_cli_login_scopes_from_recipes(cli):
    """`auth login --recipes` asks for exactly the scopes the recipes need."""
    recipe = str(ROOT / "tests" / "data" / "recipes" / "good" / "deprecated_action.yaml")
    status, output = cli.login("--name", "reader", "--scopes", "", "--recipes", recipe)
    assert status == 0, output
    rows = {r["name"]: r for r in json.loads(cli.run("status", "--json").stdout)}
    assert rows["reader"]["scopes"] == ["contacts.readonly"]


def test_cli_login_refuses_broken_recipe(cli):
    """A recipe that does not validate stops the login before anything is asked."""
    broken = ROOT / "tests" / "data" / "recipes" / "broken"
    some = sorted(broken.glob("*.yaml"))[0]
    result = cli.run("login", "--client-id", "x", "--scopes", "", "--recipes", str(some), "--no-browser")
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {some}:")
    assert "Traceback" not in result.stderr


def test_cli_scopes_for_folder_prints_scopes(cli, tmp_path):
    """`auth login --scopes-for FOLDER --print-scopes` prints every action's and trigger's scopes
    of every recipe in the folder, and exits without logging in."""
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "a.yaml").write_text(
        "name: A\ntrigger:\n  use: ghl.contacts.created\nsteps:\n"
        "  - id: deal\n    use: ghl.opportunities.get\n    with:\n      id: '{{ trigger.id }}'\n"
    )
    (folder / "b.yaml").write_text(
        "name: B\ntrigger:\n  use: ghl.invoices.paid\nsteps:\n"
        "  - id: c\n    use: ghl.contacts.get\n    with:\n      contactId: '{{ trigger._id }}'\n"
    )
    result = cli.run("login", "--scopes-for", str(folder), "--print-scopes")
    assert result.returncode == 0, result.stderr
    # contacts.readonly: a.yaml's trigger and b.yaml's step; invoices.readonly: b.yaml's trigger
    assert result.stdout.split() == [
        "contacts.readonly", "invoices.readonly", "opportunities.readonly"
    ]
    assert not (cli.home / "state.db").exists() or not cli.connections().names()


def test_cli_scopes_for_prints_before_login(cli):
    """A login with --scopes-for prints the computed scope list before the authorize URL."""
    recipe = str(ROOT / "tests" / "data" / "recipes" / "good" / "deprecated_action.yaml")
    status, output = cli.login("--name", "r", "--scopes", "", "--scopes-for", recipe)
    assert status == 0, output
    lines = output.splitlines()
    shown = next(i for i, line in enumerate(lines) if line.startswith("scopes to request:"))
    url = next(i for i, line in enumerate(lines) if line.strip().startswith("http://"))
    assert shown < url and lines[shown] == "scopes to request: contacts.readonly"


def test_cli_scopes_for_empty_folder_is_an_error(cli, tmp_path):
    result = cli.run("login", "--scopes-for", str(tmp_path), "--print-scopes")
    assert result.returncode == 1
    assert "no recipe" in result.stderr and "Traceback" not in result.stderr
