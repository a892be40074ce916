"""Webhook signature verification over raw bytes: Ed25519 first, RSA only as the fallback."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.errors import StoreError
from connector.sandbox.keys import WebhookKeys
from connector.service.signatures import (
    ED25519_HEADER,
    RSA_HEADER,
    PublicKeys,
    Verdict,
    default_keys,
    load_keys,
    parse_keys,
    verify,
)

ROOT = Path(__file__).resolve().parents[1]
BODY = json.dumps({"type": "ContactCreate", "locationId": "L1", "webhookId": "w-1"},
                  separators=(",", ":")).encode()


@pytest.fixture(scope="module")
def signer() -> WebhookKeys:
    return WebhookKeys()


@pytest.fixture(scope="module")
def trusted(signer: WebhookKeys) -> PublicKeys:
    return parse_keys((kind, pem.encode()) for kind, pem in signer.public_pem().items())


def test_default_keys_are_ghls_published_keys() -> None:
    """The packaged keys are GHL's Ed25519 key and its 4096-bit RSA key, byte for byte."""
    keys = default_keys()
    assert len(keys.ed25519) == 1 and len(keys.rsa) == 1
    assert keys.rsa[0].key_size == 4096
    shared = ROOT.parent / "shared" / "ghl-openapi" / "webhook-keys"
    for name in ("ghl-webhook-ed25519.pem", "ghl-webhook-rsa.pem"):
        assert (ROOT / "connector" / "keys" / name).read_bytes() == (shared / name).read_bytes()


def test_verify_accepts_ed25519(signer: WebhookKeys, trusted: PublicKeys) -> None:
    """A body signed with a trusted Ed25519 key verifies as ED25519."""
    assert verify(BODY, signer.sign(BODY), trusted) is Verdict.ED25519


def test_verify_falls_back_to_rsa_without_ed25519_header(
    signer: WebhookKeys, trusted: PublicKeys
) -> None:
    """With only x-wh-signature present, the RSA key decides."""
    headers = {RSA_HEADER: signer.sign(BODY)[RSA_HEADER]}
    assert verify(BODY, headers, trusted) is Verdict.RSA


def test_verify_bad_ed25519_is_not_rescued_by_good_rsa(
    signer: WebhookKeys, trusted: PublicKeys
) -> None:
    """A wrong Ed25519 signature fails even when the RSA one beside it is right."""
    headers = signer.sign(BODY)
    headers[ED25519_HEADER] = signer.sign(BODY + b" ")[ED25519_HEADER]
    assert verify(BODY, headers, trusted) is Verdict.INVALID


def test_verify_uses_rsa_when_no_ed25519_key_is_trusted(signer: WebhookKeys) -> None:
    """A receiver trusting only the legacy RSA key still verifies deliveries with both headers."""
    rsa_only = parse_keys([("rsa", signer.public_pem()["rsa"].encode())])
    assert verify(BODY, signer.sign(BODY), rsa_only) is Verdict.RSA
    assert verify(BODY, {ED25519_HEADER: signer.sign(BODY)[ED25519_HEADER]}, rsa_only) \
        is Verdict.NO_KEY


def test_verify_rejects_reserialised_body(signer: WebhookKeys, trusted: PublicKeys) -> None:
    """The same JSON with other whitespace is not the signed body."""
    headers = signer.sign(BODY)
    pretty = json.dumps(json.loads(BODY), indent=2).encode()
    assert verify(pretty, headers, trusted) is Verdict.INVALID
    assert verify(pretty, {RSA_HEADER: headers[RSA_HEADER]}, trusted) is Verdict.INVALID


@pytest.mark.parametrize(
    ("headers", "verdict"),
    [
        ({}, Verdict.MISSING),
        ({"x-other": "abc"}, Verdict.MISSING),
        ({ED25519_HEADER: "not base64!"}, Verdict.MALFORMED),
        ({ED25519_HEADER: ""}, Verdict.MALFORMED),
        ({ED25519_HEADER: "A" * 5000}, Verdict.MALFORMED),
        ({ED25519_HEADER: base64.b64encode(b"\0" * 64).decode()}, Verdict.INVALID),
        ({ED25519_HEADER: base64.b64encode(b"short").decode()}, Verdict.INVALID),
        ({RSA_HEADER: base64.b64encode(b"\0" * 256).decode()}, Verdict.INVALID),
    ],
)
def test_verify_fails_closed(trusted: PublicKeys, headers: dict[str, str],
                             verdict: Verdict) -> None:
    """Missing, undecodable and wrong signatures are each refused, with their reason."""
    result = verify(BODY, headers, trusted)
    assert result is verdict and not result.ok


def test_verify_refuses_other_signers(signer: WebhookKeys) -> None:
    """A signature from a key that is not trusted fails, for both schemes."""
    stranger = WebhookKeys()
    keys = parse_keys((k, p.encode()) for k, p in signer.public_pem().items())
    headers = stranger.sign(BODY)
    assert verify(BODY, headers, keys) is Verdict.INVALID
    assert verify(BODY, {RSA_HEADER: headers[RSA_HEADER]}, keys) is Verdict.INVALID
    assert verify(BODY, headers, PublicKeys()) is Verdict.NO_KEY


def test_verify_accepts_any_of_several_keys(signer: WebhookKeys) -> None:
    """During a key rotation both the old and the new key are trusted."""
    old = WebhookKeys()
    pems = [("old", old.public_pem()["ed25519"].encode()),
            ("new", signer.public_pem()["ed25519"].encode())]
    keys = parse_keys(pems)
    assert verify(BODY, old.sign(BODY), keys) is Verdict.ED25519
    assert verify(BODY, signer.sign(BODY), keys) is Verdict.ED25519


@settings(max_examples=50, deadline=None)
@given(position=st.integers(min_value=0, max_value=len(BODY) - 1),
       flip=st.integers(min_value=1, max_value=255))
def test_verify_rejects_any_changed_byte(signer: WebhookKeys, trusted: PublicKeys,
                                         position: int, flip: int) -> None:
    """Changing any single byte of the body breaks the signature."""
    changed = bytearray(BODY)
    changed[position] ^= flip
    assert verify(bytes(changed), signer.sign(BODY), trusted) is Verdict.INVALID


def test_parse_keys_rejects_junk_and_other_key_types() -> None:
    """A non-PEM file and an EC key are refused with the file's name in the message."""
    with pytest.raises(StoreError, match=r"^junk\.pem: not a PEM public key$"):
        parse_keys([("junk.pem", b"hello")])
    ec_pem = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(StoreError, match=r"^ec\.pem: \w+ cannot verify GHL webhooks \[hint"):
        parse_keys([("ec.pem", ec_pem)])


def test_load_keys_reads_files_and_reports_missing_ones(tmp_path: Path,
                                                        signer: WebhookKeys) -> None:
    """Key files are sorted by their content; a missing file is a one-line StoreError."""
    signer.save(tmp_path)
    keys = load_keys([tmp_path / "rsa.pub.pem", tmp_path / "ed25519.pub.pem"])
    assert (len(keys.ed25519), len(keys.rsa)) == (1, 1)
    assert verify(BODY, signer.sign(BODY), keys) is Verdict.ED25519
    with pytest.raises(StoreError, match=r"nope\.pem: cannot read public key: No such file"):
        load_keys([tmp_path / "nope.pem"])
