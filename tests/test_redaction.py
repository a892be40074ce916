"""One redaction rule for headers, query strings, JSON bodies and raw text (issue 12, point 4).

A recipe run against the GHL sandbox sends a secret header and a secret query value, and reads
a real OAuth token answer (whose raw ``text`` holds the tokens as well as its parsed ``json``).
Neither ``runs show`` nor the raw SQLite files may hold any of them; a dry run masks query and
body secrets.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from conftest import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.auth.redaction import MASK, is_secret_name, redact, redact_json
from connector.sandbox.server import SandboxServer

HEADER_CANARY = "canary-partner-secret-41a7"
QUERY_CANARY = "canary-query-key-93be"

RECIPE = """\
name: Redaction probe
trigger:
  use: ghl.contacts.created
on_error: {{retry: 0, backoff: 0}}
env: [RECIPE_PIT]
steps:
  - id: partner
    use: http.request
    with:
      url: "{base}/contacts/{{{{ trigger.id }}}}"
      headers:
        Authorization: "Bearer {{{{ env.RECIPE_PIT }}}}"
        Version: "2021-07-28"
        X-Partner-Secret: "{header}"
      query: {{api_key: "{query}"}}
  - id: token
    use: http.request
    with:
      method: POST
      url: "{base}/oauth/token"
      headers: {{Content-Type: application/x-www-form-urlencoded}}
      json: "{form}"
"""


def _code(ghl: SandboxServer) -> str:
    """A real authorization code from the sandbox's (auto-approving) chooselocation step."""
    answer = httpx.get(
        f"{ghl.base_url}/oauth/chooselocation",
        params={"client_id": ghl.client_id, "redirect_uri": ghl.redirect_uris[0],
                "response_type": "code", "scope": "contacts.readonly",
                "locationId": ghl.location_id},
    )  # fmt: skip
    assert answer.status_code == 302, answer.text
    return parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]


def test_redaction_run_history_keeps_no_secret(tmp_path: Path, ghl: SandboxServer) -> None:
    """Header, query value, client secret, code and the tokens in raw text: none is stored."""
    code = _code(ghl)
    # The body is sent as a JSON string; the sandbox reads its form fields (the padding pairs
    # take the quotes), so the token endpoint answers for real.
    form = (f"pad=1&client_id={ghl.client_id}&client_secret={ghl.client_secret}"
            f"&grant_type=authorization_code&code={code}&redirect_uri={ghl.redirect_uris[0]}&end=1")  # fmt: skip
    recipe = tmp_path / "probe.yaml"
    recipe.write_text(RECIPE.format(base=ghl.base_url, header=HEADER_CANARY, query=QUERY_CANARY,
                                    form=form))  # fmt: skip
    contact = ghl.call(lambda: list(ghl.app.store.contacts))[0]
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"type": "ContactCreate", "locationId": ghl.location_id,
                                 "id": contact}))  # fmt: skip
    home = tmp_path / "home"
    env = {
        "CONNECTOR_HOME": str(home),
        "CONNECTOR_TOKEN": ghl.private_token,
        "CONNECTOR_LOCATION_ID": ghl.location_id,
        "CONNECTOR_HTTP_ALLOW": "127.0.0.1",
        "RECIPE_PIT": ghl.private_token,
    }
    done = run_cli("run", str(recipe), "--event", str(event), "--base-url", ghl.base_url,
                   "--run-id", "probe-1", env=env)  # fmt: skip
    assert done.status == 0, done

    shown = run_cli("runs", "show", "probe-1", "--json", env=env)
    text = run_cli("runs", "show", "probe-1", env=env)
    assert shown.status == 0 and text.status == 0, (shown, text)
    steps = {step["step"]: step for step in json.loads(shown.stdout)["steps"]}
    answer = steps["token"]["output"]
    assert answer["status"] == 200, answer
    assert answer["json"]["access_token"] == MASK
    raw_answer = json.loads(answer["text"])  # the raw text, masked by the same rule
    assert raw_answer["access_token"] == raw_answer["refresh_token"] == MASK
    assert steps["partner"]["input"]["headers"]["X-Partner-Secret"] == MASK
    assert steps["partner"]["input"]["query"]["api_key"] == MASK

    canaries = [HEADER_CANARY, QUERY_CANARY, ghl.client_secret, code, ghl.private_token]
    stored = b"".join(p.read_bytes() for p in home.glob("state.db*"))
    assert stored and b"probe-1" in stored
    for output in (shown.stdout, text.stdout, shown.stderr, text.stderr, done.stdout):
        for canary in canaries:
            assert canary not in output
    for canary in canaries:
        assert canary.encode() not in stored, canary
    assert b'access_token\\": \\"***' in stored or b'"access_token": "***"' in stored


def test_redaction_dry_run_masks_query_header_and_body_secrets() -> None:
    """`call --dry-run` prints the request with secret query values, headers and body masked."""
    data = {
        "url": "https://api.example.com/v1/x?api_key=canary-a1&token=canary-b2&page=2",
        "query": {"password": "canary-c3", "q": "plain"},
        "headers": {"X-Partner-Secret": "canary-d4", "Accept": "application/json"},
        "json": {"password": "canary-e5", "nested": {"client_secret": "canary-f6"}, "n": 1},
    }
    result = run_cli("call", "http.request", "--dry-run", "--input", json.dumps(data))
    assert result.status == 0, result
    assert "canary" not in result.stdout + result.stderr
    preview = json.loads(result.stdout)
    assert preview["url"] == (
        "https://api.example.com/v1/x?api_key=***&token=***&page=2&password=***&q=plain"
    )
    assert preview["headers"]["Accept"] == "application/json"
    assert preview["json"] == {"password": MASK, "nested": {"client_secret": MASK}, "n": 1}


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("X-Partner-Secret", True), ("access_token", True), ("refreshToken", True),
        ("X-Auth-Token", True), ("api_key", True), ("X-API-Key", True), ("apikey", True),
        ("password", True), ("Set-Cookie", True), ("client_secret", True), ("code", True),
        ("Authorization", True), ("x-wh-signature", True),
        ("token_type", False), ("postalCode", False), ("statusCode", False), ("key", False),
        ("keyword", False), ("author", False), ("firstName", False), ("token_url", False),
        ("nextPageToken", False), ("continuation_token", False),
    ],
)  # fmt: skip
def test_redaction_one_rule_for_names(name: str, secret: bool) -> None:
    """The name rule, and redact applying it in every syntax alike."""
    assert is_secret_name(name) is secret
    value = "v-0123456789"
    for text in (
        json.dumps({name: value}),
        json.dumps({"text": json.dumps({name: value})}),
        f"https://h/p?{name}={value}&x=1",
        f"HTTP/1.1 200 OK\r\n{name}: {value}\r\n",
        repr({name: value}),
    ):
        assert (value not in redact(text)) is secret, text


def test_redaction_json_masks_secret_names_of_any_value_and_stays_json():
    """A number, a string or an object under a secret name: masked or walked, and the result is
    still JSON (it was dumped, redacted as text and parsed back: ``"token": ***`` broke a dry
    run of the API with a 500)."""
    value = {"token": 123456, "apiKey": "abc-def", "password": True, "secret": None,
             "auth": {"access_token": 7.5, "name": "ok"}, "list": [{"client_secret": "x"}],
             "note": "Authorization: Bearer abcdef123"}
    out = redact_json(value)
    assert json.loads(json.dumps(out)) == out
    assert out["token"] == MASK and out["apiKey"] == MASK and out["auth"]["access_token"] == MASK
    assert out["list"][0]["client_secret"] == MASK
    assert out["auth"]["name"] == "ok" and out["password"] is True and out["secret"] is None
    assert "abcdef123" not in json.dumps(out)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(["token", "name", "apiKey", "q", "password", "Bearer"])
                      | st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(_json)
def test_redaction_json_always_answers_json(value):
    """Whatever the value, redact_json answers a JSON value (never raises)."""
    out = redact_json(value)
    assert json.loads(json.dumps(out)) == out
