"""The code base passes ruff and mypy --strict (part of the test command, so CI enforces it)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow  # `pytest -m 'not slow'` leaves it out of the quick loop


def test_lint_ruff_is_clean():
    """ruff (E, F, W, I, B, UP, ANN) finds nothing."""
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.fail("ruff is not installed: pip install -e '.[test]'")
    result = subprocess.run([ruff, "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:]


def test_lint_mypy_strict_is_clean():
    """mypy --strict on connector/, actions/ and triggers/ finds nothing."""
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:]
