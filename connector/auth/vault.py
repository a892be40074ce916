"""The encryption key for secrets at rest, and AES-GCM sealing of each stored secret.

The key is 32 random bytes, taken from ``CONNECTOR_KEY`` (base64) when set, else from a key file
next to the state file (``state.key``), created with mode 0600 the first time a secret is sealed.
Each sealed value is ``version byte || 12-byte nonce || ciphertext+tag``; the associated data
names the row and field it belongs to, so a ciphertext copied to another row does not open.

A wrong key is reported as a :class:`~connector.errors.StoreError` that says so; it never
yields garbage.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from connector.errors import StoreError

__all__ = ["KEY_ENV", "Vault"]

KEY_ENV = "CONNECTOR_KEY"
KEY_FILE = "state.key"
_FORMAT = b"\x01"
_NONCE_BYTES = 12
_KEY_BYTES = 32
_WRONG_KEY_HINT = (
    f"[hint: set {KEY_ENV} to the key used when the tokens were stored,"
    " or run `ghl-connector auth login` again]"
)


def _decode_env_key(text: str) -> bytes:
    """The key from ``CONNECTOR_KEY``; it must be base64 of exactly 32 bytes."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise StoreError(
            f"{KEY_ENV}: not valid base64 [hint: generate one with"
            " `python -c \"import os,base64;print(base64.b64encode(os.urandom(32)).decode())\"`]"
        ) from exc
    if len(key) != _KEY_BYTES:
        raise StoreError(f"{KEY_ENV}: the key must be {_KEY_BYTES} bytes, got {len(key)}")
    return key


class Vault:
    """Seals and opens secrets with the connector's key.

    :param key_file: where the key lives when ``CONNECTOR_KEY`` is not set.
    :param key: an explicit key (tests); overrides both the environment and the file.
    """

    def __init__(self, key_file: Path | str, *, key: bytes | None = None) -> None:
        self.key_file = Path(key_file)
        self._key = key

    @classmethod
    def beside(cls, state_path: Path | str) -> Vault:
        """The vault whose key file sits next to the given state file."""
        return cls(Path(state_path).with_name(KEY_FILE))

    def __repr__(self) -> str:
        return f"Vault(key_file={str(self.key_file)!r})"

    def seal(self, plaintext: str, *, context: str) -> bytes:
        """Encrypt ``plaintext``, bound to ``context`` (e.g. ``"connections/acme/refresh"``)."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(self._get_key(create=True)).encrypt(
            nonce, plaintext.encode("utf-8"), context.encode("utf-8")
        )
        return _FORMAT + nonce + sealed

    def open(self, blob: bytes, *, context: str) -> str:
        """Decrypt a value made by :meth:`seal` with the same ``context``.

        :raises StoreError: if the key does not match, or the value is damaged.
        """
        key = self._get_key(create=False)
        if blob[:1] != _FORMAT or len(blob) < 1 + _NONCE_BYTES + 16:
            raise StoreError(f"{context}: stored secret is damaged (unknown format)")
        nonce, sealed = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
        try:
            plain = AESGCM(key).decrypt(nonce, sealed, context.encode("utf-8"))
        except InvalidTag as exc:
            raise StoreError(
                f"{context}: cannot decrypt tokens: the key does not match the one they were"
                f" stored with ({self._source()}) {_WRONG_KEY_HINT}"
            ) from exc
        return plain.decode("utf-8")

    def _source(self) -> str:
        """Where the key came from, for messages."""
        if self._key is not None:
            return "explicit key"
        if os.environ.get(KEY_ENV):
            return KEY_ENV
        return f"key file {str(self.key_file)!r}"

    def _get_key(self, *, create: bool) -> bytes:
        """The key: explicit, else ``CONNECTOR_KEY``, else the key file (made when ``create``)."""
        if self._key is not None:
            return self._key
        env = os.environ.get(KEY_ENV)
        if env:
            self._key = _decode_env_key(env)
            return self._key
        self._key = self._read_or_create(create=create)
        return self._key

    def _read_or_create(self, *, create: bool) -> bytes:
        """Read the key file; create it (0600, exclusively) if missing and ``create``."""
        path = self.key_file
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            if not create:
                raise StoreError(
                    f"{path}: cannot decrypt tokens: the key file is missing and {KEY_ENV}"
                    f" is not set {_WRONG_KEY_HINT}"
                ) from None
            return self._create(path)
        except OSError as exc:
            raise StoreError(f"{path}: cannot read the key file: {exc.strerror}") from exc
        return self._parse_file(path, data)

    @staticmethod
    def _parse_file(path: Path, data: bytes) -> bytes:
        """The key stored in a key file (base64 text, one line)."""
        try:
            key = base64.b64decode(data.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise StoreError(f"{path}: the key file is damaged (not base64)") from exc
        if len(key) != _KEY_BYTES:
            raise StoreError(f"{path}: the key file is damaged ({len(key)} bytes, not 32)")
        return key

    @staticmethod
    def _create(path: Path) -> bytes:
        """Write a fresh random key with mode 0600; if another process won the race, use its.

        The key is written to a private temporary file and then hard-linked into place, so no
        reader ever sees a half-written key file.
        """
        key = os.urandom(_KEY_BYTES)
        temp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(base64.b64encode(key) + b"\n")
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temp, path)
            except FileExistsError:
                return Vault._parse_file(path, path.read_bytes())
        except OSError as exc:
            raise StoreError(f"{path}: cannot create the key file: {exc.strerror}") from exc
        finally:
            temp.unlink(missing_ok=True)
        return key
