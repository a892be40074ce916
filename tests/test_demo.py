"""The demo runs end to end as a real process and stays within the sandbox's limits."""

from __future__ import annotations

from conftest import run_cli


def test_demo_runs_and_reports_no_429():
    """`ghl-connector demo` exits 0, shows each step and a summary with no 429 answers."""
    result = run_cli("demo", "--seed-contacts", "5", "--lookups", "30", timeout=120)
    assert result.status == 0, result
    out = result.stdout
    assert "[6/6]" in out
    assert "ok, matched the existing contact" in out
    assert "ok, 8 contacts over 1 pages" in out
    assert "429 answers                   0" in out
    assert "result                        OK" in out
    assert "MISMATCH" not in out
