"""Partner apps through the CLI: API keys come from the environment, never the command line."""

from __future__ import annotations

import json

from conftest import run_cli


def test_cli_call_superphone_with_api_key_env(sp):
    """`call superphone.*` reads CONNECTOR_SUPERPHONE_API_KEY and sends it in the app's header."""
    env = {"CONNECTOR_SUPERPHONE_API_KEY": sp.api_key}
    created = run_cli("call", "superphone.contacts.create", "--base-url", sp.base_url, "--strict",
                      "--input", '{"firstName": "Ann", "email": "ann@example.com"}', env=env)
    assert created.status == 0, created
    assert json.loads(created.stdout)
    assert sp.api_key not in created.stdout + created.stderr


def test_cli_call_superphone_without_key_is_clear(sp):
    """Without a key the error names the variable to set."""
    result = run_cli("call", "superphone.contacts.list", "--base-url", sp.base_url)
    assert result.status == 1
    assert result.stderr == (
        "error: no API key for app 'superphone' [set CONNECTOR_SUPERPHONE_API_KEY to the app's API key]\n"
    )


def test_cli_dry_run_masks_api_key(sp):
    """A GraphQL dry run shows the document and variables, with the key masked."""
    result = run_cli("call", "superphone.contacts.create", "--base-url", sp.base_url, "--dry-run",
                     "--input", '{"firstName": "Ann", "email": "ann@example.com"}')
    assert result.status == 0, result
    preview = json.loads(result.stdout)
    assert "mutation" in json.dumps(preview)
    assert "****" in json.dumps(preview)


def test_cli_alternative_required_fields_are_named(sp):
    """An input missing both of two alternative fields says which ones it needs."""
    result = run_cli("call", "superphone.contacts.create", "--dry-run", "--input", '{"firstName": "A"}')
    assert result.status == 1
    assert result.stderr == (
        "error: invalid input for superphone.contacts.create: (input): needs email or phone\n"
    )


def test_cli_call_base_url_takes_the_apps_name_as_serve_does(sp):
    """`--base-url superphone=URL` (serve's form) works for call too; another app's name or a
    URL without its scheme is one clear line."""
    env = {"CONNECTOR_SUPERPHONE_API_KEY": sp.api_key}
    named = run_cli("call", "superphone.contacts.list", "--base-url",
                    f"superphone={sp.base_url}", "--input", '{"first": 1}', env=env)
    assert named.status == 0, named
    other = run_cli("call", "superphone.contacts.list", "--base-url", f"ghl={sp.base_url}",
                    env=env)
    assert other.status == 1
    assert "names app 'ghl', but the action is 'superphone''s" in other.stderr
    bare = run_cli("call", "superphone.contacts.list", "--base-url", "127.0.0.1:9", env=env)
    assert bare.status == 1 and "not an http:// or https:// URL" in bare.stderr
    assert "Traceback" not in other.stderr + bare.stderr
