"""The receiver's answers to odd but signed input: a clear 400 or 401 where a 429 (which GHL
retries forever) or a traceback used to be; UTF-8 only; and inbox keys namespaced by source,
so a GHL ``webhookId`` that looks like a partner's key drops nothing. Real HTTP on 127.0.0.1,
real SQLite."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.sandbox.keys import WebhookKeys
from connector.service.inbox import Inbox, NewEvent
from connector.service.partnerhooks import PartnerHook
from connector.service.receiver import ReceiverServer, Settings, open_store
from connector.service.signatures import parse_keys

SECRET = "sp-webhook-secret"
SP_HEADER = "X-SuperPhone-Signature"


class Running:
    def __init__(self, server: ReceiverServer, inbox: Inbox, keys: WebhookKeys) -> None:
        self.url, self.inbox, self.keys = server.url, inbox, keys
        self.partner_url = server.url.replace("/webhooks/ghl", "/webhooks/superphone")
        self.client = httpx.Client(timeout=10, trust_env=False)

    def ghl(self, body: bytes) -> httpx.Response:
        return self.client.post(self.url, content=body, headers=self.keys.sign(body))

    def partner(self, body: bytes, signature: bytes | None = None) -> httpx.Response:
        if signature is None:
            signature = b"sha256=" + hmac.new(SECRET.encode(), body,
                                               hashlib.sha256).hexdigest().encode()
        return self.client.post(self.partner_url, content=body, headers={SP_HEADER: signature})


@pytest.fixture(scope="module")
def keys() -> WebhookKeys:
    return WebhookKeys()


@pytest.fixture
def receiver(tmp_path: Path, keys: WebhookKeys) -> Iterator[Running]:
    trusted = parse_keys((k, pem.encode()) for k, pem in keys.public_pem().items())
    hooks = {"superphone": PartnerHook("superphone", SECRET)}
    with open_store(tmp_path / "state.db") as store, \
            ReceiverServer(store, Settings(trusted), partners=hooks) as server:
        running = Running(server, Inbox(store), keys)
        with running.client:
            yield running


def ghl_body(**fields: object) -> bytes:
    return json.dumps({"type": "ContactCreate", "locationId": "L1",
                       "webhookId": str(uuid.uuid4()), **fields}).encode()


def test_receiver_partner_signature_with_non_ascii_byte_is_401(
    receiver: Running, caplog: pytest.LogCaptureFixture
) -> None:
    """A partner signature header holding a non-ASCII byte is a wrong signature (401), with
    no error logged."""
    body = json.dumps({"id": "evt_1", "type": "contact.updated", "data": {}}).encode()
    with caplog.at_level(logging.INFO):
        answer = receiver.partner(body, signature=b"sha256=\xe9" + b"0" * 63)
    assert answer.status_code == 401, answer.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert receiver.inbox.webhook_ids() == set()


@pytest.mark.parametrize("timestamp", ["9" * 400, "1" * 5000, "-" + "9" * 101],
                         ids=["400-digits", "5000-digits", "negative"])
def test_receiver_huge_integer_timestamp_is_400(receiver: Running, timestamp: str) -> None:
    """A signed body whose timestamp is a huge integer is a 400 (never a 429 GHL retries)."""
    answer = receiver.ghl(ghl_body().replace(b"{", b'{"timestamp": %s, ' % timestamp.encode(), 1))
    assert answer.status_code == 400, answer.text
    assert "digits; the limit is 100" in answer.json()["error"]


@pytest.mark.parametrize("body", [
    b"[" * 5000 + b"]" * 5000,
    b'{"a": ' + b"[" * 70 + b"]" * 70 + b"}",
    b'{"a": 1e999}',
    b'{"a": NaN}',
    b'{"webhookId": "\\ud800"}',
], ids=["deep", "over-64", "float-overflow", "nan", "lone-surrogate"])
def test_receiver_unstorable_json_is_400(receiver: Running, body: bytes) -> None:
    """Deep nesting, non-finite numbers and lone surrogates: 400, nothing stored."""
    answer = receiver.ghl(body)
    assert answer.status_code == 400, answer.text
    assert receiver.inbox.webhook_ids() == set()


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32", "latin-1"])
def test_receiver_refuses_bodies_not_in_utf8(receiver: Running, encoding: str) -> None:
    """A correctly signed body in another encoding than UTF-8 is refused with 400."""
    body = json.dumps({"type": "ContactCreate", "webhookId": str(uuid.uuid4()),
                       "firstName": "Zoë"}, ensure_ascii=False).encode(encoding)
    answer = receiver.ghl(body)
    assert answer.status_code == 400, answer.text
    assert "not UTF-8" in answer.json()["error"]
    assert receiver.inbox.webhook_ids() == set()


@pytest.mark.parametrize("partner_first", [True, False], ids=["partner-first", "ghl-first"])
def test_receiver_keys_ghl_and_partner_events_apart(receiver: Running,
                                                    partner_first: bool) -> None:
    """A GHL event whose webhookId is ``superphone:evt_1`` and SuperPhone's own ``evt_1`` are
    both stored, in either order; each one's redelivery is still a duplicate."""
    ghl = ghl_body(webhookId="superphone:evt_1")
    partner = json.dumps({"id": "evt_1", "type": "contact.updated", "data": {}}).encode()
    sends = [lambda: receiver.partner(partner), lambda: receiver.ghl(ghl)]
    for send in sends if partner_first else sends[::-1]:
        assert send().json()["stored"] is True
    for send in sends:
        assert send().json()["stored"] is False
    assert receiver.inbox.webhook_ids() == {"superphone:evt_1", "ghl:superphone:evt_1"}


def test_inbox_rows_stored_before_namespacing_still_dedupe(tmp_path: Path) -> None:
    """A GHL event stored under its raw ``a:b`` id (before namespacing) is still a duplicate of
    its redelivery; a partner's row with a GHL-looking key does not swallow a GHL event."""
    with open_store(tmp_path / "state.db") as store:
        inbox = Inbox(store)
        old = ghl_body(webhookId="a:b")
        assert inbox.add(NewEvent("a:b", "ContactCreate", "L1", old, time.time()))
        again = NewEvent.from_payload(old, json.loads(old), time.time())
        assert again.webhook_id == "ghl:a:b"
        assert inbox.add(again) is False
        partner = json.dumps({"id": "evt_1"}).encode()
        assert inbox.add(NewEvent("superphone:evt_1", "x", None, partner, time.time()))
        ghl = ghl_body(webhookId="superphone:evt_1")
        assert inbox.add(NewEvent.from_payload(ghl, json.loads(ghl), time.time()))
        assert inbox.webhook_ids() == {"a:b", "superphone:evt_1", "ghl:superphone:evt_1"}


def test_inbox_plain_ghl_ids_keep_their_key() -> None:
    """GHL's usual ids (UUIDs, no colon) are stored as they always were."""
    given = str(uuid.uuid4())
    body = ghl_body(webhookId=given)
    assert NewEvent.from_payload(body, json.loads(body), 0.0).webhook_id == given


header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF,
                                    blacklist_characters="\x7f"), max_size=80)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(signature=header_text, ghl_signature=header_text)
def test_receiver_fuzzed_signature_headers_get_401(receiver: Running, signature: str,
                                                   ghl_signature: str) -> None:
    """Any signature header text (Latin-1, as HTTP carries it) is a 401, never another answer."""
    body = ghl_body()
    sent = {SP_HEADER: signature.strip().encode("latin-1")}
    assert receiver.client.post(receiver.partner_url, content=body,
                                headers=sent).status_code == 401
    answer = receiver.client.post(receiver.url, content=body, headers={
        "x-ghl-signature": ghl_signature.strip().encode("latin-1")})
    assert answer.status_code == 401


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**450), max_value=10**450)
    | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=4),
    max_leaves=12)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(timestamp=json_values, extra=st.dictionaries(st.sampled_from(
    ["webhookId", "type", "locationId", "id"]), json_values, max_size=3))
def test_receiver_fuzzed_signed_payloads_get_a_deliberate_answer(
    receiver: Running, timestamp: object, extra: dict[str, object]
) -> None:
    """Signed bodies with any JSON in the fields it reads (huge integers, NaN, nesting) get 200,
    400 or 401: never 429 (retried forever by GHL) or 500."""
    body = json.dumps({"type": "ContactCreate", "webhookId": str(uuid.uuid4()),
                       "timestamp": timestamp, **extra}).encode()
    assert receiver.ghl(body).status_code in (200, 400, 401)
