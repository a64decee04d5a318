"""Private keys encrypted at rest (AES-256-GCM).

The master key is 32 random bytes in ``<data dir>/master.key`` (mode 0600), created on first start.
Each ciphertext is ``nonce(12) ‖ AES-GCM(key, plaintext, aad=label)``; the label (a party id or a
platform key name) is bound as associated data, so a ciphertext moved to another row does not
decrypt. Keys never leave this module except as an ``eth_account`` signer.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger.errors import VerificationError

_NONCE = 12


def load_or_create_master_key(path: Path) -> bytes:
    if path.exists():
        data = path.read_bytes()
        if len(data) != 32:
            raise VerificationError(
                f"master key {path} is corrupt (expected 32 bytes)", code="bad_master_key"
            )
        return data
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    return key


class KeyVault:
    def __init__(self, master_key: bytes) -> None:
        self._aead = AESGCM(master_key)

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> KeyVault:
        return cls(load_or_create_master_key(data_dir / "master.key"))

    def seal(self, private_key: bytes, label: str) -> bytes:
        nonce = secrets.token_bytes(_NONCE)
        return nonce + self._aead.encrypt(nonce, private_key, label.encode())

    def open(self, ciphertext: bytes, label: str) -> bytes:
        try:
            return self._aead.decrypt(ciphertext[:_NONCE], ciphertext[_NONCE:], label.encode())
        except InvalidTag as exc:
            raise VerificationError(f"key for {label!r} does not decrypt", code="key_decrypt_failed") from exc

    def new_account(self, label: str) -> tuple[LocalAccount, bytes]:
        account: LocalAccount = Account.create()
        return account, self.seal(bytes(account.key), label)

    def account(self, ciphertext: bytes, label: str) -> LocalAccount:
        acct: LocalAccount = Account.from_key(self.open(ciphertext, label))
        return acct
