"""The built wheel carries manifest.yaml and schemas/ and works outside the source tree."""

from __future__ import annotations

import json
import site
import subprocess
import sys
import venv
from pathlib import Path

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


def borrow_dependencies(python) -> None:
    """Let the fresh venv import the dependencies installed for this test run (the running
    interpreter's site-packages, after its own), not whatever the base interpreter has.

    A ``.pth`` line only adds a folder to ``sys.path``: the ``.pth`` files inside it (such as
    this checkout's editable install) are not run, so ``connector`` comes from the wheel alone.
    """
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    ours = [path for path in site.getsitepackages() if path != purelib]
    (Path(purelib) / "borrowed-dependencies.pth").write_text("\n".join(ours) + "\n")


def test_packaging_wheel_installs_and_runs_catalog(wheel, tmp_path):
    """Installed from the wheel into a fresh venv, `ghl-connector catalog` finds the manifest."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    borrow_dependencies(python)
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
    check = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "check"],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
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
    assert len(ids) == 576
    assert "ghl.contacts.search" in ids


def test_packaging_wheel_ships_the_console_assets(wheel):
    """The console's stylesheet and script are in the wheel: its pages need nothing outside."""
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    for asset in ("console.css", "console.js"):
        assert f"connector/console/static/{asset}" in names
    script = zipfile.ZipFile(wheel).read("connector/console/static/console.js").decode()
    assert "http://" not in script and "https://" not in script
