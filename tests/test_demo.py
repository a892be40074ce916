"""The demo runs end to end as a real process: both partner syncs converge, with no 429."""

from __future__ import annotations

import re

from conftest import run_cli


def test_demo_syncs_both_partners_and_converges():
    """`demo` exits 0 with writes both ways, latencies, conflicts, echoes, no 429, converged."""
    result = run_cli("demo", "--seed-contacts", "6", timeout=120)
    assert result.status == 0, result
    out = result.stdout
    assert "[8/8] a contact deleted in GHL" in out
    for app in ("superphone", "linkedphone"):
        for way in (f"ghl -> {app}", f"{app} -> ghl"):
            synced = re.search(rf"synced {way} +(\d+) \(", out)
            assert synced and int(synced.group(1)) > 0, way
        echoes = re.search(rf"echo writes suppressed \({app}\) *(\d+)", out)
        assert echoes and int(echoes.group(1)) > 0
        assert re.search(rf"conflicts resolved \({app}\) +\d+ \(.*by source of truth", out)
        assert re.search(rf"converged ghl-{app} +yes, \d+ contact pairs checked", out)
    assert "deleted on ghl; tagged 'deleted-in-ghl'" in out
    assert re.search(r"ghl -> superphone +delete +contacts", out)
    assert re.search(r"latency change -> sync write +p50 \d+ ms, p99 \d+ ms", out)
    assert re.search(r"429 answers +ghl 0, superphone 0, linkedphone 0", out)
    assert re.search(r"webhooks rejected / failed +0 / 0", out)
    assert re.search(r"webhooks dropped / unsettled waits +0 / 0", out)
    assert out.count("conflicting edits ended as          'Helena' (the later edit") == 2
    assert re.search(r"result +OK", out)
    assert "FAILED" not in out and "problem:" not in out


def test_demo_one_partner_keeps_its_audit_trail(tmp_path):
    """`demo --partner superphone --state FILE` leaves an audit trail `audit` can read."""
    state = tmp_path / "state.db"
    result = run_cli("demo", "--partner", "superphone", "--seed-contacts", "6", "--state",
                     str(state), timeout=120)  # fmt: skip
    assert result.status == 0, result
    assert "linkedphone" not in result.stdout
    audit = run_cli("audit", "--format", "jsonl", env={"CONNECTOR_HOME": str(tmp_path)})
    assert audit.status == 0, audit
    assert '"sync": "ghl-superphone"' in audit.stdout
    assert '"action": "delete"' in audit.stdout and "ghl-linkedphone" not in audit.stdout
    again = run_cli("demo", "--state", str(state))
    assert again.status == 2 and "already exists" in again.stderr


def test_demo_refuses_too_few_seed_contacts():
    """Fewer GHL seed contacts than the story needs is a usage error (exit 2)."""
    result = run_cli("demo", "--seed-contacts", "2")
    assert result.status == 2
    assert "too few" in result.stderr
