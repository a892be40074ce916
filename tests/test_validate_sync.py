"""`validate` checks standalone sync documents too (the sync recipe kind)."""

from __future__ import annotations

import textwrap

from conftest import ROOT, run_cli

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


SHIPPED = ROOT / "recipes"


def _copy(tmp_path, name, *edits):
    text = (SHIPPED / name).read_text(encoding="utf-8")
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path, text.splitlines()


def _place(lines, needle):
    """The 1-based line and column of the only line holding ``needle``."""
    [(row, col)] = [(i + 1, line.index(needle) + 1) for i, line in enumerate(lines) if needle in line]
    return row, col


def test_validate_sync_wrong_field_names_on_both_sides(tmp_path):
    """Misspelt field names in a copy of the shipped SuperPhone sync (GHL names as keys, a
    partner name as a value) are each reported at file:line:col with a did-you-mean, exit 1:
    the same names the engine would audit as "not writable there"."""
    path, lines = _copy(
        tmp_path,
        "sync_superphone.yaml",
        ("        firstName: firstName", "        frstName: firstName"),
        ("        title: title", "        titel: title"),
        ("{partner: dueAt,", "{partner: dueAtt,"),
    )
    result = run_cli("validate", str(path))
    assert result.status == 1, result
    out = result.stdout.splitlines()
    expected = [
        (_place(lines, "frstName"), "'frstName' cannot be written on ghl contacts",
         "[did you mean 'firstName'?]"),
        (_place(lines, "titel"), "'titel' cannot be written on ghl tasks",
         "[did you mean 'title'?]"),
        (_place(lines, "dueAtt"), "'dueAtt' cannot be written on superphone tasks",
         "[did you mean 'dueAt'?]"),
    ]
    problems = [line for line in out if line.startswith(f"{path}:")]
    assert len(problems) == 3, result.stdout
    for line, ((row, col), message, hint) in zip(problems, expected, strict=True):
        assert line.startswith(f"{path}:{row}:{col}: "), (line, row, col)
        assert message in line and line.endswith(hint), line
    assert "fix the problems above" not in result.stdout
    assert "Traceback" not in result.stderr


def test_validate_sync_wrong_partner_field_and_owner(tmp_path):
    """LinkedPhone side: a misspelt partner field (the value) and a source_of_truth key that
    names no mapped field (the engine ignores it) are problems too."""
    path, lines = _copy(
        tmp_path,
        "sync_linkedphone.yaml",
        ("        firstName: first_name", "        firstName: frst_name"),
        ("        lastName: ghl", "        lastNme: ghl"),
    )
    result = run_cli("validate", str(path))
    assert result.status == 1, result
    row, col = _place(lines, "frst_name")
    assert f"{path}:{row}:{col}: " in result.stdout, result.stdout
    assert "'frst_name' cannot be written on linkedphone contacts" in result.stdout
    assert "[did you mean 'first_name'?]" in result.stdout
    row, col = _place(lines, "lastNme")
    assert f"{path}:{row}:{col}: " in result.stdout
    assert "source_of_truth names 'lastNme', which is not a mapped field" in result.stdout
    assert "[did you mean 'lastName'?]" in result.stdout


def test_validate_sync_read_only_field_on_a_loose_schema_is_a_warning(tmp_path):
    """A field only read from a side whose record schemas are open (GHL's, SuperPhone's
    webhook data) may exist beyond what they list: a near miss is a warning (exit 0), a name
    like nothing listed is not reported."""
    path = tmp_path / "sync.yaml"
    path.write_text(textwrap.dedent("""\
        name: loose
        sync:
          partner: superphone
          objects:
            contacts:
              fields:
                frstName: {partner: firstName, direction: ghl_to_partner}
                lastName: {partner: lastNam, direction: partner_to_ghl}
                zzCustomThing: {partner: source, direction: ghl_to_partner}
                email: email
        """))
    result = run_cli("validate", str(path))
    assert result.status == 0, result
    assert f"{path}:7:9: sync.objects.contacts.fields.frstName: warning: " in result.stdout
    assert "[did you mean 'firstName'?]" in result.stdout
    assert f"{path}:8:29: sync.objects.contacts.fields.lastName.partner: warning: " in result.stdout
    assert "[did you mean 'lastName'?]" in result.stdout
    assert "zzCustomThing" not in result.stdout


def test_validate_shipped_recipes_folder_is_clean():
    """Every shipped recipe and sync document validates: exit 0, no field warning."""
    result = run_cli("validate", str(SHIPPED))
    assert result.status == 0, result
    assert "sync_superphone.yaml: sync document" in result.stdout
    assert "sync_linkedphone.yaml: sync document" in result.stdout
    assert "not a field of" not in result.stdout
    assert "cannot be written" not in result.stdout
