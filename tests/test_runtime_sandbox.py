"""The runtime against the GHL sandbox: behaviour as GHL shows it, under load and faults."""

from __future__ import annotations

import threading

import pytest

from connector.auth.credentials import StaticBearer
from connector.catalog import build_catalog
from connector.client.retry import RetryPolicy
from connector.errors import RateLimitError, RemoteError
from connector.hookspecs import RateLimit
from connector.runtime import Runtime, Settings

CATALOG = build_catalog()


def runtime_for(ghl, *, limit=None, timeout=None, attempts=3):
    settings = Settings(
        strict=True,
        base_urls={"ghl": ghl.base_url},
        location_id=ghl.location_id,
        timeout=timeout,
        retry=RetryPolicy(attempts=attempts, base=0.01, cap=0.05, seed=3),
        rate_limits={"ghl": limit} if limit else {},
    )
    bearer = StaticBearer(ghl.private_token)
    return Runtime(CATALOG, settings, auth=lambda app, action: bearer)


def first_contact_id(runtime):
    return runtime.call("ghl.contacts.search", {"pageLimit": 1})["contacts"][0]["id"]


def test_runtime_sandbox_crud_round_trip(ghl):
    """Create, read, update, tag and delete a contact; outputs pass their schemas (strict)."""
    with runtime_for(ghl) as runtime:
        created = runtime.call("ghl.contacts.create", {"firstName": "Ann", "email": "ann@x.io"})
        cid = created["contact"]["id"]
        runtime.call("ghl.contacts.update", {"contactId": cid, "lastName": "Lee"})
        runtime.call("ghl.tags.add", {"contactId": cid, "tags": ["vip"]})
        got = runtime.call("ghl.contacts.get", {"contactId": cid})["contact"]
        assert (got["firstName"], got["lastName"], got["tags"]) == ("Ann", "Lee", ["vip"])
        assert runtime.call("ghl.contacts.delete", {"contactId": cid}) == {"succeded": True}
    assert ghl.writes("POST /contacts/") == 1


def test_runtime_sandbox_ghl_error_is_clear(ghl):
    """A GHL 400 surfaces as one line with method, path, status and GHL's message."""
    with runtime_for(ghl) as runtime, pytest.raises(RemoteError) as info:
        runtime.call("ghl.contacts.get", {"contactId": "doesNotExist00000000"})
    assert str(info.value) == "GET /contacts/doesNotExist00000000 -> 400 Bad Request: Contact not found"


def test_runtime_sandbox_eight_threads_never_exceed_the_window(ghl):
    """8 threads calling at once never put more than the limit in any window at the sandbox."""
    ghl.set_limits(requests=20, seconds=1.0)
    with runtime_for(ghl, limit=RateLimit(20, 1.0)) as runtime:
        cid = first_contact_id(runtime)
        errors = []

        def worker():
            try:
                for _ in range(8):
                    runtime.call("ghl.contacts.get", {"contactId": cid})
            except Exception as exc:  # noqa: BLE001 - the test reports any failure
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    seen = ghl.location_stats()
    assert seen["requests"] == 65
    assert seen["throttled"] == 0
    assert seen["max_window"] <= 20


def test_runtime_sandbox_429_burst_then_success(ghl):
    """Forced 429s are retried with backoff and the call then succeeds."""
    with runtime_for(ghl) as runtime:
        cid = first_contact_id(runtime)
        ghl.set_faults({"route": "GET /contacts/{contactId}", "burst_429": 2})
        assert runtime.call("ghl.contacts.get", {"contactId": cid})["contact"]["id"] == cid
    assert ghl.location_stats()["routes"]["GET /contacts/{contactId}"]["requests"] == 3


def test_runtime_sandbox_429_storm_gives_up_clearly(ghl):
    """When 429s outlast the retries the error says so."""
    with runtime_for(ghl, attempts=2) as runtime:
        cid = first_contact_id(runtime)
        ghl.set_faults({"route": "GET /contacts/{contactId}", "burst_429": 5})
        with pytest.raises(RateLimitError, match=r"GET /contacts/\w+ -> 429"):
            runtime.call("ghl.contacts.get", {"contactId": cid})


def test_runtime_sandbox_get_retried_after_500_post_not(ghl):
    """A GET is retried after a 500; a POST that may have reached GHL is not."""
    with runtime_for(ghl) as runtime:
        cid = first_contact_id(runtime)
        ghl.set_faults({"route": "GET /contacts/{contactId}", "error_rate": 1.0, "count": 1})
        assert runtime.call("ghl.contacts.get", {"contactId": cid})["contact"]["id"] == cid
        ghl.set_faults({"route": "POST /contacts/{contactId}/notes", "ambiguous_rate": 1.0, "count": 1})
        with pytest.raises(RemoteError, match=r"POST /contacts/\w+/notes -> 500"):
            runtime.call("ghl.notes.create", {"contactId": cid, "body": "once"})
    # The ambiguous write was applied once and never repeated.
    assert ghl.writes("POST /contacts/{contactId}/notes") == 1


def test_runtime_sandbox_timeout_is_clear(ghl):
    """A hung request ends with a clear timeout error after the retries."""
    with runtime_for(ghl, timeout=0.3, attempts=2) as runtime:
        cid = first_contact_id(runtime)
        ghl.set_faults({"route": "GET /contacts/{contactId}", "hang_seconds": 2.0})
        with pytest.raises(RemoteError, match=r"GET /contacts/\w+ -> timed out after 0.3s"):
            runtime.call("ghl.contacts.get", {"contactId": cid})


def test_runtime_sandbox_search_all_pages(ghl):
    """Search walks every page (page/pageLimit) and yields each contact once."""
    with runtime_for(ghl) as runtime:
        everyone = list(runtime.iterate("ghl.contacts.search", {"pageLimit": 5}))
        ids = [c["id"] for c in everyone]
        assert len(ids) == len(set(ids)) == 12
        assert len(list(runtime.iterate("ghl.contacts.search", {"pageLimit": 5}, max_items=7))) == 7
        legacy = [c["id"] for c in runtime.iterate("ghl.contacts.list", {"limit": 5})]
        assert sorted(legacy) == sorted(ids)


def test_runtime_sandbox_scope_refusal_is_clear(ghl):
    """A token without the scope gets GHL's refusal, surfaced as an auth error."""
    from connector.errors import AuthError

    token = ghl.call(lambda: ghl.app.provider.add_private_token(
        location_id=ghl.location_id, scopes=["contacts.readonly"]))
    settings = Settings(strict=True, base_urls={"ghl": ghl.base_url}, location_id=ghl.location_id,
                        retry=RetryPolicy(attempts=1))
    bearer = StaticBearer(token)
    with Runtime(CATALOG, settings, auth=lambda app, action: bearer) as runtime:
        with pytest.raises(AuthError, match="not authorized for this scope"):
            runtime.call("ghl.contacts.create", {"firstName": "X"})
