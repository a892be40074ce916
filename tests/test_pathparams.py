"""Path parameters never change which endpoint is called (issue 12, point 1).

``taskId: ".."`` once turned ``DELETE /contacts/ID/tasks/..`` into ``DELETE /contacts/ID``:
httpx resolves dot segments. Every reading of a dot segment or a separator is refused now,
the dry run prints the URL the client sends, and the sent path always has the template's shape.
"""

from __future__ import annotations

import json
from urllib.parse import unquote

import pytest
from conftest import run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.auth.credentials import StaticBearer
from connector.catalog import build_catalog
from connector.client.retry import RetryPolicy
from connector.errors import InputError, RemoteError
from connector.runtime import Runtime, Settings

CATALOG = build_catalog()

MOVING = [
    ".", "..", "%2e", "%2E", "%2e%2E", "%2E%2e", ".%2e", "%2e.", ".%2E", "%252e%252e",
    "%25252E.", "", "..%2f", "%2F", "a/b", "../..", "..\\", "%5c", "..%00", ".. ",
    "\uff0e\uff0e", "%EF%BC%8E",
]  # fmt: skip


def sandbox_runtime(ghl):
    settings = Settings(
        base_urls={"ghl": ghl.base_url},
        location_id=ghl.location_id,
        retry=RetryPolicy(attempts=1),
    )
    bearer = StaticBearer(ghl.private_token)
    return Runtime(CATALOG, settings, auth=lambda app, action: bearer)


@pytest.mark.parametrize("task_id", MOVING)
def test_pathparams_dot_segments_are_refused_and_the_contact_survives(ghl, task_id):
    """Every form of ``..`` (and friends) is an input error naming taskId; nothing is deleted."""
    with sandbox_runtime(ghl) as runtime:
        created = runtime.call("ghl.contacts.create", {"firstName": "Dot", "email": "dot@x.io"})
        cid = created["contact"]["id"]
        data = {"contactId": cid, "taskId": task_id}
        for attempt in (runtime.call, runtime.dry_run):
            with pytest.raises(InputError) as info:
                attempt("ghl.tasks.delete", data)
            assert [p.location.pointer for p in info.value.problems] == ["/taskId"]
            assert "invalid input for ghl.tasks.delete: /taskId: " in str(info.value)
        assert runtime.call("ghl.contacts.get", {"contactId": cid})["contact"]["id"] == cid
    assert ghl.writes("DELETE /contacts/") == 0


def test_pathparams_the_issue_command_fails_cleanly_and_deletes_nothing(ghl):
    """The command from the issue: one line naming the field, exit 1, the contact still there."""
    with sandbox_runtime(ghl) as runtime:
        cid = runtime.call("ghl.contacts.create", {"firstName": "Cli"})["contact"]["id"]
    for extra in ([], ["--dry-run"]):
        result = run_cli(
            "call", "ghl.tasks.delete", "--input", json.dumps({"contactId": cid, "taskId": ".."}),
            "--base-url", ghl.base_url, "--token-env", "PIT", *extra,
            env={"PIT": ghl.private_token},
        )  # fmt: skip
        assert result.status == 1, result
        assert result.stderr.startswith("error: invalid input for ghl.tasks.delete: /taskId: '..'")
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    with sandbox_runtime(ghl) as runtime:
        assert runtime.call("ghl.contacts.get", {"contactId": cid})["contact"]["id"] == cid


def test_pathparams_ordinary_ids_still_work_and_dry_run_shows_the_sent_url(api):
    """Ids with dots inside, spaces, '%' or unicode are one segment; the preview is the URL sent."""
    settings = Settings(base_urls={"ghl": api.url}, retry=RetryPolicy(attempts=1))
    with Runtime(CATALOG, settings) as runtime:
        for task_id in ("a.b", "...", "v1..2", "50% off", "ünï", "a?b#c"):
            data = {"contactId": "c1", "taskId": task_id}
            preview = runtime.dry_run("ghl.tasks.delete", data)
            with pytest.raises(RemoteError):  # the fake API has no route: a 404
                runtime.call("ghl.tasks.delete", data)
            sent = api.requests[-1]
            assert preview["url"] == api.url + sent.path
            assert unquote(sent.path.split("/")[-1]) == task_id


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.one_of(
        st.text(max_size=12),
        st.lists(
            st.sampled_from(
                [".", "..", "%", "2e", "2E", "%2e", "%252E", "/", "%2F", "\\", "%5C", "\x00",
                 " ", "\uff0e", "a", "?", "#", ";"]
            ),
            max_size=6,
        ).map("".join),
    ),
    st.sampled_from(["c1", "..", "%2e", "x"]),
)  # fmt: skip
def test_pathparams_sent_path_keeps_the_template_shape(api, task_id, contact_id):
    """Whatever the values, the path sent is /contacts/X/tasks/Y (raw and decoded), or refused."""
    settings_ = Settings(base_urls={"ghl": api.url}, retry=RetryPolicy(attempts=1))
    before = len(api.requests)
    with Runtime(CATALOG, settings_) as runtime:
        try:
            runtime.call("ghl.tasks.delete", {"contactId": contact_id, "taskId": task_id})
        except InputError as exc:
            assert {p.location.pointer for p in exc.problems} <= {"/contactId", "/taskId"}
            assert len(api.requests) == before
            return
        except RemoteError:
            pass
    raw = api.requests[-1].path
    for path in (raw, unquote(raw)):
        segments = path.split("/")
        assert len(segments) == 5, path
        assert (segments[0], segments[1], segments[3]) == ("", "contacts", "tasks")
    _, _, contact, _, task = raw.split("/")
    assert (unquote(contact), unquote(task)) == (contact_id, task_id)
