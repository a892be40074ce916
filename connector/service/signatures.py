"""Webhook signature verification: which public keys are trusted, and whether a body is signed.

HighLevel signs each webhook body (the exact bytes on the wire) twice (GHL-FACTS.md section 4):

- ``x-ghl-signature``: Ed25519, base64. The current scheme; checked first.
- ``x-wh-signature``: RSA-SHA256 with PKCS#1 v1.5 padding, base64. The legacy scheme (deprecated
  by GHL from 2026-07-01); checked only when the request carries no ``x-ghl-signature``.

A request that carries an Ed25519 signature is judged by it alone: a bad Ed25519 signature is
not rescued by a good RSA one (otherwise an attacker would only ever need to defeat the weaker
check). RSA is used only when the request has no ``x-ghl-signature``, or when no Ed25519 key is
trusted at all (a receiver configured with the legacy key only). Verification fails closed: no
header, undecodable base64 or no key of that kind all mean "not signed".

:func:`default_keys` loads GHL's published keys from :mod:`connector.keys`;
:func:`load_keys` reads PEM files (the sandbox's keys in the demo and in tests). Several keys
of one kind may be trusted at once, so a rotation can overlap.
"""

from __future__ import annotations

import base64
import binascii
import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TypeVar

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from connector.errors import StoreError

__all__ = [
    "DEFAULT_KEY_FILES",
    "ED25519_HEADER",
    "RSA_HEADER",
    "PublicKeys",
    "Verdict",
    "default_keys",
    "load_keys",
    "parse_keys",
    "verify",
]

ED25519_HEADER = "x-ghl-signature"
RSA_HEADER = "x-wh-signature"
DEFAULT_KEY_FILES = ("ghl-webhook-ed25519.pem", "ghl-webhook-rsa.pem")
# An Ed25519 signature is 64 bytes and a 4096-bit RSA one 512: anything far longer is junk.
_MAX_SIGNATURE_CHARS = 2048
_K = TypeVar("_K", Ed25519PublicKey, rsa.RSAPublicKey)


class Verdict(enum.Enum):
    """The outcome of :func:`verify`; only ``ED25519`` and ``RSA`` mean "authentic"."""

    ED25519 = "ed25519"
    RSA = "rsa"
    MISSING = "missing signature"
    MALFORMED = "signature is not base64"
    NO_KEY = "no trusted key for this signature scheme"
    INVALID = "signature does not match the body"

    @property
    def ok(self) -> bool:
        """Whether the body was verified."""
        return self in (Verdict.ED25519, Verdict.RSA)


@dataclass(frozen=True, slots=True)
class PublicKeys:
    """The trusted webhook public keys, by kind.

    :param ed25519: keys that may have made ``x-ghl-signature``.
    :param rsa: keys that may have made ``x-wh-signature``.
    """

    ed25519: tuple[Ed25519PublicKey, ...] = ()
    rsa: tuple[rsa.RSAPublicKey, ...] = ()

    def __repr__(self) -> str:
        return f"PublicKeys(ed25519={len(self.ed25519)}, rsa={len(self.rsa)})"

    def __bool__(self) -> bool:
        return bool(self.ed25519 or self.rsa)


def parse_keys(pems: Iterable[tuple[str, bytes]]) -> PublicKeys:
    """Parse PEM public keys (SubjectPublicKeyInfo), sorting them by kind.

    :param pems: ``(name, pem_bytes)`` pairs; the name only appears in errors.
    :returns: the keys; Ed25519 and RSA keys in the order given.
    :raises StoreError: a PEM is unreadable or holds another kind of key.
    """
    ed_keys: list[Ed25519PublicKey] = []
    rsa_keys: list[rsa.RSAPublicKey] = []
    for name, pem in pems:
        try:
            key = serialization.load_pem_public_key(pem)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise StoreError(f"{name}: not a PEM public key") from exc
        if isinstance(key, Ed25519PublicKey):
            ed_keys.append(key)
        elif isinstance(key, rsa.RSAPublicKey):
            rsa_keys.append(key)
        else:
            raise StoreError(
                f"{name}: {type(key).__name__} cannot verify GHL webhooks"
                " [hint: give an Ed25519 or RSA public key]"
            )
    return PublicKeys(tuple(ed_keys), tuple(rsa_keys))


def load_keys(paths: Iterable[str | Path]) -> PublicKeys:
    """Read PEM public key files; each one's kind (Ed25519 or RSA) comes from its content.

    :raises StoreError: a file cannot be read or does not hold a usable public key.
    """
    pems: list[tuple[str, bytes]] = []
    for path in paths:
        try:
            pems.append((str(path), Path(path).read_bytes()))
        except OSError as exc:
            raise StoreError(f"{path}: cannot read public key: {exc.strerror or exc}") from exc
    return parse_keys(pems)


def default_keys() -> PublicKeys:
    """GHL's published webhook keys, shipped in :mod:`connector.keys`."""
    folder = resources.files("connector.keys")
    return parse_keys((name, (folder / name).read_bytes()) for name in DEFAULT_KEY_FILES)


def verify(body: bytes, headers: Mapping[str, str], keys: PublicKeys) -> Verdict:
    """Check a webhook body's signature: Ed25519 when present (and trusted), else RSA.

    :param body: the raw request body, byte for byte (never a re-serialised payload).
    :param headers: the request headers, names in lower case.
    :param keys: the trusted keys.
    :returns: :attr:`Verdict.ED25519` or :attr:`Verdict.RSA` if a trusted key signed exactly
        these bytes, otherwise the reason it did not verify.
    """
    ed_text = headers.get(ED25519_HEADER)
    if ed_text is not None and (keys.ed25519 or not keys.rsa):
        return _check(ed_text, keys.ed25519, _ed25519_check(body), Verdict.ED25519)
    rsa_text = headers.get(RSA_HEADER)
    if rsa_text is not None:
        return _check(rsa_text, keys.rsa, _rsa_check(body), Verdict.RSA)
    return Verdict.NO_KEY if ed_text is not None else Verdict.MISSING


def _ed25519_check(body: bytes) -> Callable[[Ed25519PublicKey, bytes], None]:
    return lambda key, signature: key.verify(signature, body)


def _rsa_check(body: bytes) -> Callable[[rsa.RSAPublicKey, bytes], None]:
    return lambda key, signature: key.verify(signature, body, padding.PKCS1v15(), hashes.SHA256())


def _check(
    text: str, candidates: Sequence[_K], check: Callable[[_K, bytes], None], good: Verdict
) -> Verdict:
    """Decode a base64 signature and try each candidate key; raises nothing."""
    signature = _decode(text)
    if signature is None:
        return Verdict.MALFORMED
    if not candidates:
        return Verdict.NO_KEY
    for key in candidates:
        try:
            check(key, signature)
        except InvalidSignature:
            continue
        return good
    return Verdict.INVALID


def _decode(text: str) -> bytes | None:
    text = text.strip()
    if not text or len(text) > _MAX_SIGNATURE_CHARS:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
