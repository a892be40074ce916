"""`validate` checks standalone sync documents too (the sync recipe kind)."""

from __future__ import annotations

import textwrap

from conftest import run_cli

GOOD = textwrap.dedent("""\
    name: GHL <-> LinkedPhone
    sync:
      partner: linkedphone
      objects:
        contacts:
          direction: two_way
          match: [email, phone]
          fields: {firstName: first_name, email: email}
    """)


def test_validate_sync_document_ok_with_scopes(tmp_path):
    """A good sync document is OK and lists the scopes its actions need."""
    path = tmp_path / "sync.yaml"
    path.write_text(GOOD)
    result = run_cli("validate", str(path))
    assert result.status == 0, result
    assert result.stdout.strip() == f"OK {path}: sync document; scopes: contacts.readonly contacts.write"


def test_validate_sync_document_problems_are_located(tmp_path):
    """A sync document with an unknown key is reported at its line, exit 1."""
    path = tmp_path / "sync.yaml"
    path.write_text(GOOD.replace("  partner: linkedphone\n", "  partner: linkedphone\n  partnr: x\n"))
    result = run_cli("validate", str(path))
    assert result.status == 1
    assert result.stdout.startswith(f"{path}:4:")
    assert "partnr" in result.stdout
    assert "Traceback" not in result.stderr
