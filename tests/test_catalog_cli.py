"""``catalog --app/--tag`` and ``catalog search``: finding an action among 600 (real processes)."""

from __future__ import annotations

import json

from conftest import run_cli


def test_catalog_cli_tag_lists_the_tagged_actions_only():
    """--tag keeps the actions carrying the tag of GHL's docs (any case), with --app too."""
    result = run_cli("catalog", "--app", "ghl", "--tag", "contacts", "--json")
    assert result.status == 0, result.stderr
    rows = json.loads(result.stdout)
    ids = {r["id"] for r in rows}
    assert {"ghl.contacts.get", "ghl.contacts.create"} <= ids
    assert all("Contacts" in r["tags"] and r["kind"] == "action" for r in rows)
    assert "ghl.calendars.get" not in ids and "ghl.contacts.created" not in ids  # a trigger


def test_catalog_cli_unknown_tag_is_one_line_with_a_hint():
    """A misspelled tag is one error line naming the close tag, no traceback."""
    result = run_cli("catalog", "--tag", "Contcts")
    assert result.status != 0
    assert "no action is tagged 'Contcts' (did you mean 'Contacts'?)" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_catalog_cli_search_needs_every_word_and_ranks_names_first():
    """search keeps entries holding every word; those with the words in id or title lead."""
    result = run_cli("catalog", "search", "Contact", "TAG", "--app", "ghl", "--json")
    assert result.status == 0, result.stderr
    rows = json.loads(result.stdout)
    ids = [r["id"] for r in rows]
    assert "ghl.tags.add" in ids and "ghl.contacts.tag_updated" in ids
    assert all(r["app"] == "ghl" for r in rows)
    for r in rows:
        text = " ".join(
            [
                r["id"],
                r["title"],
                r["description"] or "",
                r.get("path") or "",
                r.get("operation") or "",
                r.get("event") or "",
                *r["tags"],
            ]
        ).lower()
        assert "contact" in text and "tag" in text, r["id"]
    named = [
        ("contact" in f"{r['id']} {r['title']}".lower())
        + ("tag" in f"{r['id']} {r['title']}".lower())
        for r in rows
    ]
    assert named == sorted(named, reverse=True)


def test_catalog_cli_search_without_match_says_so():
    """A search that finds nothing exits 1 with one plain line."""
    result = run_cli("catalog", "search", "zzzqqq")
    assert result.status == 1
    assert result.stderr.strip() == "no action or trigger holds every word of 'zzzqqq'"
