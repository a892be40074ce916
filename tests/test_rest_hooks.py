"""REST hooks (issue 15): subscriptions in the state file, and signed, retried, durable
deliveries to real HTTP targets on 127.0.0.1, verified with the Standard Webhooks library."""

from __future__ import annotations

import json
import logging
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from hooktarget import HookTarget
from hypothesis import given, settings
from hypothesis import strategies as st
from inboxes import find

from connector.api.delivery import (
    Deliverer,
    DeliverySettings,
    deliveries,
    delivery_counts,
    fan_out,
    message_id,
    redeliver,
    sign,
)
from connector.api.subscriptions import (
    check_filter,
    get_subscription,
    list_subscriptions,
    matches,
    subscribe,
    unsubscribe,
)
from connector.catalog import Catalog
from connector.client.retry import RetryPolicy
from connector.client.urlguard import allowing
from connector.errors import DocumentError
from connector.service.inbox import Inbox, InboxEvent, NewEvent
from connector.store import Store
from tests.serveproc import wait_for

FAST = DeliverySettings(retry=RetryPolicy(attempts=4, base=0.05, cap=0.2), timeout=2.0,
                        senders=2, idle=0.05)


def stored_event(store: Store, payload: dict[str, Any]) -> InboxEvent:
    """Store one GHL-shaped event in the inbox and read it back, as a worker gets it."""
    payload = {"webhookId": str(uuid.uuid4()), **payload}
    body = json.dumps(payload).encode()
    Inbox(store).add(NewEvent.from_payload(body, payload, time.time()))
    event = find(Inbox(store), payload["webhookId"])
    assert event is not None
    return event


def contact_created(store: Store, **fields: Any) -> InboxEvent:  # noqa: ANN401
    return stored_event(store, {"type": "ContactCreate", "locationId": "loc1",
                                "id": uuid.uuid4().hex[:12], **fields})


def hooked(store: Store, catalog: Catalog, target: HookTarget,
           flt: dict[str, Any] | None = None) -> str:
    with allowing("127.0.0.1"):
        sub = subscribe(store, "ghl.contacts.created", target.url, flt, catalog=catalog)
    target.secret = sub.secret
    return sub.id


def test_rest_hooks_subscription_is_stored_sealed_and_survives_reopening(
    tmp_path: Path, catalog: Catalog
) -> None:
    """subscribe answers an id and a whsec_ secret; the state file holds the secret only
    sealed; a new Store on the same file lists the same subscription and secret."""
    db = tmp_path / "state.db"
    with Store(db) as store, allowing("127.0.0.1"):
        sub = subscribe(store, "ghl.contacts.created", "http://127.0.0.1:9/hook",
                        {"country": ["US", "CA"]}, catalog=catalog)
    assert sub.id.startswith("sub_") and sub.secret.startswith("whsec_")
    assert sub.secret not in repr(sub) and "secret" not in sub.public()
    assert sub.secret.encode() not in db.read_bytes()
    assert sub.secret.removeprefix("whsec_").encode() not in db.read_bytes()
    with Store(db) as store:
        again = list_subscriptions(store)
        assert [(s.id, s.secret, s.trigger_id, s.event_type, s.filter) for s in again] == [
            (sub.id, sub.secret, "ghl.contacts.created", "ContactCreate",
             {"country": ["US", "CA"]})]
        assert get_subscription(store, sub.id) == again[0]
        assert unsubscribe(store, sub.id) is True
        assert unsubscribe(store, sub.id) is False
        assert list_subscriptions(store) == []


@pytest.mark.parametrize("url, risk", [
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://10.0.0.7/hook", "private"),
    ("http://127.0.0.1:8080/hook", "loopback"),
    ("http://[::ffff:192.168.1.1]/hook", "private"),
])
def test_rest_hooks_ssrf_guard_refuses_private_and_metadata_targets(
    store: Store, catalog: Catalog, url: str, risk: str
) -> None:
    """Loopback, private and metadata addresses are refused as target_url (422-worthy,
    pointed at /target_url) and nothing is stored."""
    with pytest.raises(DocumentError) as caught:
        subscribe(store, "ghl.contacts.created", url, catalog=catalog)
    [problem] = caught.value.problems
    assert problem.location.pointer == "/target_url"
    assert risk in problem.message
    assert list_subscriptions(store) == []


def test_rest_hooks_every_bad_input_is_reported_at_once(store: Store, catalog: Catalog) -> None:
    """An unknown trigger, a non-http URL and bad filter fields are all reported, each at
    its pointer."""
    with pytest.raises(DocumentError) as caught:
        subscribe(store, "ghl.contacts.nope", "ftp://example.com/x",
                  {"a": {"nested": 1}, "b": [], "c": "x" * 2000, "ok": [1, "two", None]},
                  catalog=catalog)
    pointers = [p.location.pointer for p in caught.value.problems]
    assert pointers == ["/trigger", "/target_url", "/filter/a", "/filter/b", "/filter/c"]
    assert "did you mean" in str(caught.value).lower() or "ghl.contacts" in str(caught.value)
    with pytest.raises(DocumentError, match="must be an object"):
        subscribe(store, "ghl.contacts.created", "https://example.com/", ["x"],  # type: ignore[arg-type]
                  catalog=catalog)


def test_rest_hooks_filter_is_json_equality_on_top_level_fields() -> None:
    """A scalar must equal the field (true is not 1, a missing field only equals null); a
    list means any of its values; every field must match."""
    payload = {"country": "US", "dnd": True, "score": 3, "tags": ["a"]}
    assert matches(None, payload) and matches({}, payload)
    assert matches({"country": ["US", "CA"], "dnd": True, "score": 3.0}, payload)
    assert not matches({"dnd": 1}, payload)
    assert not matches({"score": True}, payload)
    assert matches({"missing": None}, payload)
    assert not matches({"missing": "x"}, payload)
    assert not matches({"country": "US", "score": 4}, payload)


def test_rest_hooks_delivery_is_signed_as_standard_webhooks_says(
    store: Store, catalog: Catalog
) -> None:
    """A matching event reaches the target with webhook-id/-timestamp/-signature that the
    standardwebhooks verifier accepts, in a {type, timestamp, data} body; a filtered-out
    event and another type are not queued; queuing twice queues once."""
    with HookTarget() as target:
        sub_id = hooked(store, catalog, target, {"country": "US"})
        wanted = contact_created(store, country="US", firstName="Ada")
        assert fan_out(store, wanted) == 1
        assert fan_out(store, wanted) == 0
        assert fan_out(store, contact_created(store, country="FR")) == 0
        assert fan_out(store, stored_event(store, {"type": "TaskCreate", "country": "US"})) == 0
        with allowing("127.0.0.1"):
            assert Deliverer(store, FAST).run_once() == 1
        [got] = target.received
        assert got.verified, got.error
        assert got.path == "/hooks/zap/s3cr3t-path"
        assert got.id == message_id(sub_id, wanted.webhook_id)
        body = got.json()
        assert body["type"] == "ghl.contacts.created"
        assert body["data"] == json.loads(wanted.body)
        assert body["timestamp"].endswith("Z")
        assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 60
        [done] = deliveries(store)
        assert (done.status, done.attempts, done.last_status) == ("delivered", 1, 200)


def test_rest_hooks_signature_is_the_documented_hmac() -> None:
    """sign() is v1,base64(HMAC-SHA256(key, id.timestamp.body)); the verifier rejects a
    changed body."""
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    stamp = int(time.time())
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(stamp),
               "webhook-signature": sign(secret, "msg_1", stamp, b'{"a":1}')}
    assert Webhook(secret).verify(b'{"a":1}', headers) == {"a": 1}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"a":2}', headers)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_rest_hooks_retry_after_a_target_outage(store: Store, catalog: Catalog) -> None:
    """With the target down (connection refused) and then answering 503, the deliverer's
    threads retry with backoff until it answers 200: the same webhook-id on every try."""
    port = _free_port()
    with allowing("127.0.0.1"):
        sub = subscribe(store, "ghl.contacts.created", f"http://127.0.0.1:{port}/hook",
                        catalog=catalog)
    event = contact_created(store)
    fan_out(store, event)
    deliverer = Deliverer(store, FAST)
    with allowing("127.0.0.1"):
        deliverer.start()
        try:
            assert wait_for(lambda: deliveries(store)[0].attempts >= 2, timeout=10)
            [pending] = deliveries(store)
            assert pending.status in ("pending", "sending")
            assert "cannot connect" in (pending.last_error or "")
            with HookTarget(statuses=[503], port=port) as target:
                target.secret = sub.secret
                assert wait_for(lambda: deliveries(store)[0].status == "delivered", timeout=10)
                assert len(target.received) == 2
                assert {r.id for r in target.received} == {message_id(sub.id, event.webhook_id)}
                assert all(r.verified for r in target.received)
        finally:
            deliverer.stop()


def test_rest_hooks_give_up_dead_after_n_attempts(store: Store, catalog: Catalog) -> None:
    """A target that always answers 500 gets `attempts` tries; the delivery is then dead,
    listed with its last status and error."""
    with HookTarget(default=500) as target:
        hooked(store, catalog, target)
        fan_out(store, contact_created(store))
        with allowing("127.0.0.1"):
            deliverer = Deliverer(store, FAST)
            deliverer.start()
            try:
                assert wait_for(lambda: delivery_counts(store) == {"dead": 1}, timeout=10)
            finally:
                deliverer.stop()
        assert len(target.received) == 4
        [dead] = deliveries(store, status="dead")
        assert (dead.attempts, dead.last_status) == (4, 500)
        assert dead.last_error == f"POST http://127.0.0.1:{target.port} -> 500"


def test_rest_hooks_410_unsubscribes(store: Store, catalog: Catalog) -> None:
    """A 410 answer deletes the subscription; its other pending delivery is cancelled, not
    sent, and later events queue nothing."""
    with HookTarget(statuses=[410]) as target:
        hooked(store, catalog, target)
        fan_out(store, contact_created(store))
        fan_out(store, contact_created(store))
        with allowing("127.0.0.1"):
            assert Deliverer(store, FAST).run_once() == 1
        assert len(target.received) == 1
        assert list_subscriptions(store) == []
        assert delivery_counts(store) == {"cancelled": 2}
        assert fan_out(store, contact_created(store)) == 0


def test_rest_hooks_guard_runs_again_at_delivery(store: Store, catalog: Catalog,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    """A target allowed when subscribing but refused when delivering (the allowance is gone,
    as when a name re-resolves to a private address) gets nothing: the delivery is dead at
    once. No log line or stored error holds the secret or the hook URL's path."""
    caplog.set_level(logging.DEBUG)
    with HookTarget() as target:
        sub_id = hooked(store, catalog, target)
        fan_out(store, contact_created(store))
        assert Deliverer(store, FAST).run_once() == 1
        assert target.received == []
    [dead] = deliveries(store)
    assert (dead.status, dead.attempts) == ("dead", 1)
    assert "loopback" in (dead.last_error or "")
    secret = get_subscription(store, sub_id)
    assert secret is not None
    for text in [dead.last_error or "", *(r.getMessage() for r in caplog.records)]:
        assert secret.secret not in text
        assert "s3cr3t-path" not in text


def test_rest_hooks_unsubscribe_cancels_pending_deliveries(store: Store,
                                                          catalog: Catalog) -> None:
    """Deliveries queued before an unsubscribe are cancelled, not sent."""
    with HookTarget() as target:
        sub_id = hooked(store, catalog, target)
        fan_out(store, contact_created(store))
        assert unsubscribe(store, sub_id)
        with allowing("127.0.0.1"):
            assert Deliverer(store, FAST).run_once() == 0
        assert target.received == []
        assert delivery_counts(store) == {"cancelled": 1}


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                max_size=3),
    max_leaves=8,
)


@settings(max_examples=100, deadline=None)
@given(flt=JSON, payload=st.dictionaries(st.text(max_size=3), JSON, max_size=4))
def test_rest_hooks_filter_fuzz_never_crashes(flt: Any, payload: dict[str, Any]) -> None:  # noqa: ANN401
    """Any JSON as a filter is either refused with problems under /filter, or accepted and
    then matches any payload without raising; an accepted filter survives its JSON storage."""
    problems = check_filter(flt)
    assert all(p.location.pointer.startswith("/filter") for p in problems)
    if not problems and flt is not None:
        assert isinstance(matches(flt, payload), bool)
        assert json.loads(json.dumps(flt)) == flt


@pytest.mark.slow
def test_rest_hooks_cli_lists_adds_removes_and_redelivers_dead(tmp_path: Path,
                                                               catalog: Catalog) -> None:
    """`hooks add` prints the id and secret; `hooks` lists without the secret; a dead
    delivery shows in `hooks deliveries --status dead` and `hooks redeliver --dead` makes it
    pending again with its attempts reset; a bad filter is one line, no traceback."""
    env = {"CONNECTOR_HOME": str(tmp_path), "CONNECTOR_HTTP_ALLOW": "127.0.0.1"}
    added = run_cli("hooks", "add", "ghl.contacts.created", "http://127.0.0.1:9/h",
                    "--filter", '{"country": "US"}', "--json", env=env)
    assert added.status == 0, added.stderr
    made = json.loads(added.stdout)
    assert made["secret"].startswith("whsec_")
    listed = run_cli("hooks", "--json", env=env)
    assert json.loads(listed.stdout) == [{**{k: v for k, v in made.items() if k != "secret"},
                                          "owner": None}]
    assert made["secret"] not in listed.stdout
    with Store(tmp_path / "state.db") as store:
        fan_out(store, contact_created(store, country="US"))
        assert Deliverer(store, FAST).run_once() == 1  # no allowance here: refused, dead
    dead = run_cli("hooks", "deliveries", "--status", "dead", env=env)
    assert dead.status == 0 and "dead" in dead.stdout and "loopback" in dead.stdout
    again = run_cli("hooks", "redeliver", "--dead", env=env)
    assert again.stdout.startswith("redelivering 1 ")
    with Store(tmp_path / "state.db") as store:
        [revived] = deliveries(store)
        assert (revived.status, revived.attempts) == ("pending", 0)
        assert redeliver(store, [revived.id]) == 0
    bad = run_cli("hooks", "add", "ghl.contacts.created", "http://127.0.0.1:9/h",
                  "--filter", '{"country": {"in": 1}}', env=env)
    assert bad.status == 1 and "Traceback" not in bad.stderr
    assert "/filter/country" in bad.stderr
    gone = run_cli("hooks", "remove", made["id"], env=env)
    assert (gone.status, gone.stdout) == (0, f"removed: {made['id']}\n")


def test_rest_hooks_a_wrong_key_is_a_failed_attempt_not_a_stuck_claim(
    store: Store, catalog: Catalog
) -> None:
    """A deliverer whose key does not open the secret records the attempt as failed, with
    the key's error, and retries it (then gives up dead) instead of holding the claim."""
    from connector.auth.vault import Vault

    with HookTarget() as target, allowing("127.0.0.1"):
        subscribe(store, "ghl.contacts.created", target.url, catalog=catalog,
                  vault=Vault(store.path.with_name("a.key"), key=b"a" * 32))
        fan_out(store, contact_created(store))
        wrong = Deliverer(store, FAST, vault=Vault(store.path.with_name("b.key"), key=b"b" * 32))
        assert wrong.run_once() == 1
        [failed] = deliveries(store)
        assert (failed.status, failed.attempts) == ("pending", 1)
        assert "cannot decrypt" in (failed.last_error or "")
        assert target.received == []
