"""Shared fixtures. Fixture modules live beside this file and are loaded as plugins."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest_plugins = [
    name
    for name in ("fixtures_fakeapi", "fixtures_sandbox", "fixtures_superphone",
                 "fixtures_linkedphone", "fixtures_runtime", "fixtures_store")
    if (Path(__file__).parent / f"{name}.py").exists()
]
SHARED = ROOT.parent / "shared"


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No CONNECTOR_* variables from the caller; state goes to a fresh folder."""
    for name in list(os.environ):
        if name.startswith("CONNECTOR_"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("CONNECTOR_HOME", str(home))
    yield home


def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    input: str | None = None,
    timeout: float = 60,
) -> CliResult:
    """Run ``python -m connector ARGS`` as a real process."""
    import subprocess

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    # Never touch the user's real state: each process gets its own unless the test says so.
    full_env["CONNECTOR_HOME"] = tempfile.mkdtemp(prefix="connector-home-")
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "connector", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd or ROOT,
        input=input,
        timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


class CliResult:
    """Exit status and output of one CLI run."""

    def __init__(self, status: int, stdout: str, stderr: str) -> None:
        self.status = status
        self.stdout = stdout
        self.stderr = stderr

    def __repr__(self) -> str:
        return f"CliResult(status={self.status}, stdout={self.stdout[:300]!r}, stderr={self.stderr[:300]!r})"
