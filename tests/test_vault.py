"""The encryption key and AES-GCM sealing of stored secrets."""

from __future__ import annotations

import base64
import os
import stat

import pytest

from connector.auth.vault import KEY_ENV, Vault
from connector.errors import StoreError


@pytest.fixture(autouse=True)
def _no_key_env(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)


def test_vault_roundtrip_creates_private_key_file(tmp_path):
    """The first seal creates state.key with mode 0600; open returns the plaintext."""
    vault = Vault.beside(tmp_path / "state.db")
    blob = vault.seal("canary-token-value", context="connections/a/access_token")
    key_file = tmp_path / "state.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert b"canary-token-value" not in blob
    assert Vault.beside(tmp_path / "state.db").open(blob, context="connections/a/access_token") == (
        "canary-token-value"
    )


def test_vault_seals_with_fresh_nonces(tmp_path):
    """Sealing the same value twice gives different ciphertexts."""
    vault = Vault(tmp_path / "k")
    assert vault.seal("x" * 10, context="c") != vault.seal("x" * 10, context="c")


def test_vault_context_binds_ciphertext(tmp_path):
    """A ciphertext moved to another row or field does not open."""
    vault = Vault(tmp_path / "k")
    blob = vault.seal("secret", context="connections/a/access_token")
    with pytest.raises(StoreError, match="cannot decrypt tokens"):
        vault.open(blob, context="connections/b/access_token")


def test_vault_wrong_key_is_a_clear_error(tmp_path, monkeypatch):
    """Opening with another key says the key does not match and how to fix it."""
    blob = Vault(tmp_path / "k").seal("secret", context="c")
    monkeypatch.setenv(KEY_ENV, base64.b64encode(os.urandom(32)).decode())
    with pytest.raises(StoreError) as info:
        Vault(tmp_path / "k").open(blob, context="c")
    message = str(info.value)
    assert "cannot decrypt tokens: the key does not match" in message
    assert "CONNECTOR_KEY" in message and "ghl-connector auth login" in message
    assert "secret" not in message.replace("secrets", "")


def test_vault_key_from_environment(tmp_path, monkeypatch):
    """CONNECTOR_KEY is used instead of a key file, and no key file is written."""
    monkeypatch.setenv(KEY_ENV, base64.b64encode(b"k" * 32).decode())
    blob = Vault(tmp_path / "state.key").seal("v" * 8, context="c")
    assert not (tmp_path / "state.key").exists()
    assert Vault(tmp_path / "other.key").open(blob, context="c") == "v" * 8


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("not base64!!", "not valid base64"),
        (base64.b64encode(b"short").decode(), "32 bytes, got 5"),
    ],
)
def test_vault_bad_environment_key(tmp_path, monkeypatch, value, match):
    """A malformed CONNECTOR_KEY is reported, not used."""
    monkeypatch.setenv(KEY_ENV, value)
    with pytest.raises(StoreError, match=match):
        Vault(tmp_path / "k").seal("v", context="c")


def test_vault_missing_key_file_on_open(tmp_path):
    """Opening without any key says the key file is missing (and does not create one)."""
    blob = Vault(tmp_path / "k").seal("v", context="c")
    (tmp_path / "k").unlink()
    with pytest.raises(StoreError, match="key file is missing"):
        Vault(tmp_path / "k").open(blob, context="c")
    assert not (tmp_path / "k").exists()


def test_vault_damaged_key_file_and_blob(tmp_path):
    """A corrupt key file or ciphertext is a StoreError, never garbage."""
    (tmp_path / "k").write_text("@@@")
    with pytest.raises(StoreError, match="key file is damaged"):
        Vault(tmp_path / "k").seal("v", context="c")
    with pytest.raises(StoreError, match="damaged"):
        Vault(tmp_path / "k2").open(b"\x02garbage", context="c")


def test_vault_repr_has_no_key(tmp_path):
    """The repr names the key file only."""
    vault = Vault(tmp_path / "k", key=b"K" * 32)
    assert "KKKK" not in repr(vault) and "k'" in repr(vault)
