"""The built wheel carries manifest.yaml and schemas/ and works outside the source tree."""

from __future__ import annotations

import json
import subprocess
import sys
import venv

import pytest
from conftest import ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The project built into a wheel, the normal way (PEP 517, isolated build)."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
    )
    (built,) = out.glob("ghl_connector-*.whl")
    return built


def test_packaging_wheel_installs_and_runs_catalog(wheel, tmp_path):
    """Installed from the wheel into a fresh venv, `ghl-connector catalog` finds the manifest."""
    env_dir = tmp_path / "venv"
    # Dependencies come from this interpreter's site-packages; the package itself only from the wheel.
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--quiet",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run(
        [python, "-c", "import connector; print(connector.__file__)"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(env_dir)), where.stdout
    result = subprocess.run(
        [env_dir / "bin" / "ghl-connector", "catalog", "--json"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    ids = {
        row["id"]
        for row in json.loads(result.stdout)
        if row["app"] == "ghl" and row["kind"] == "action"
    }
    assert len(ids) == 32
    assert "ghl.contacts.search" in ids
