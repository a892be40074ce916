"""The sandbox's webhook signing keys: an Ed25519 and an RSA key pair, and the signatures they make.

HighLevel signs each webhook body twice (GHL-FACTS.md section 4): Ed25519 over the raw bytes,
base64 in ``x-ghl-signature``, and the legacy RSA-SHA256 (PKCS#1 v1.5), base64 in
``x-wh-signature``. The sandbox does the same with keys of its own, generated at start, and
exports the public halves as PEM so a receiver under test can verify what it gets.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from connector.errors import StoreError

__all__ = ["ED25519_HEADER", "RSA_HEADER", "WebhookKeys"]

ED25519_HEADER = "x-ghl-signature"
RSA_HEADER = "x-wh-signature"

_ED25519_FILE = "ed25519.pem"
_RSA_FILE = "rsa.pem"
_ED25519_PUBLIC_FILE = "ed25519.pub.pem"
_RSA_PUBLIC_FILE = "rsa.pub.pem"


class WebhookKeys:
    """The two private keys that sign webhook bodies; fresh ones unless given.

    :param ed25519: an Ed25519 private key; a new one when omitted.
    :param rsa_key: an RSA private key; a new 2048-bit one when omitted.
    """

    __slots__ = ("_ed25519", "_rsa")

    def __init__(
        self,
        *,
        ed25519: Ed25519PrivateKey | None = None,
        rsa_key: rsa.RSAPrivateKey | None = None,
    ) -> None:
        self._ed25519 = ed25519 or Ed25519PrivateKey.generate()
        self._rsa = rsa_key or rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def __repr__(self) -> str:
        return f"WebhookKeys(rsa_bits={self._rsa.key_size})"

    def sign(self, body: bytes) -> dict[str, str]:
        """Sign the exact bytes of a webhook body with both keys.

        :param body: the raw body, byte for byte as it goes on the wire.
        :returns: the two signature headers, ``x-ghl-signature`` and ``x-wh-signature``.
        """
        ed_sig = self._ed25519.sign(body)
        rsa_sig = self._rsa.sign(body, padding.PKCS1v15(), hashes.SHA256())
        return {
            ED25519_HEADER: base64.b64encode(ed_sig).decode("ascii"),
            RSA_HEADER: base64.b64encode(rsa_sig).decode("ascii"),
        }

    def public_pem(self) -> dict[str, str]:
        """The public keys as SubjectPublicKeyInfo PEM text.

        :returns: ``{"ed25519": pem, "rsa": pem}``.
        """
        return {
            "ed25519": _public_pem(self._ed25519.public_key()),
            "rsa": _public_pem(self._rsa.public_key()),
        }

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write both key pairs to a directory (private keys readable by the owner only).

        :param directory: created if missing; holds ``ed25519.pem``, ``rsa.pem`` and the
            ``*.pub.pem`` public keys.
        :raises StoreError: the files cannot be written.
        """
        folder = Path(directory)
        pems = self.public_pem()
        files = {
            _ED25519_FILE: (_private_pem(self._ed25519), 0o600),
            _RSA_FILE: (_private_pem(self._rsa), 0o600),
            _ED25519_PUBLIC_FILE: (pems["ed25519"], 0o644),
            _RSA_PUBLIC_FILE: (pems["rsa"], 0o644),
        }
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for name, (text, mode) in files.items():
                path = folder / name
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
                with os.fdopen(fd, "w", encoding="ascii") as handle:
                    handle.write(text)
        except OSError as exc:
            raise StoreError(f"{folder}: cannot write webhook keys: {exc.strerror}") from exc

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> WebhookKeys:
        """Read the key pairs :meth:`save` wrote.

        :param directory: the folder given to :meth:`save`.
        :returns: keys that sign exactly as the saved ones did.
        :raises StoreError: a file is missing, unreadable, or not the expected kind of key.
        """
        folder = Path(directory)
        ed_key = _load_private(folder / _ED25519_FILE)
        rsa_key = _load_private(folder / _RSA_FILE)
        if not isinstance(ed_key, Ed25519PrivateKey):
            raise StoreError(f"{folder / _ED25519_FILE}: not an Ed25519 private key")
        if not isinstance(rsa_key, rsa.RSAPrivateKey):
            raise StoreError(f"{folder / _RSA_FILE}: not an RSA private key")
        return cls(ed25519=ed_key, rsa_key=rsa_key)


def _public_pem(key: rsa.RSAPublicKey | Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def _private_pem(key: rsa.RSAPrivateKey | Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def _load_private(path: Path) -> object:
    try:
        data = path.read_bytes()
        return serialization.load_pem_private_key(data, password=None)
    except OSError as exc:
        raise StoreError(f"{path}: cannot read webhook key: {exc.strerror}") from exc
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise StoreError(f"{path}: not a PEM private key without a password") from exc
