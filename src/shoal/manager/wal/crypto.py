"""Sealing records at rest with AES-256-GCM under the manager's data key (DEK).

A sealed record is ``version u8 | key id u32 | nonce (12 bytes) | ciphertext + tag``. The key id
(a hash of the key, not the key) says which DEK sealed it, so a wrong key is reported as such
rather than as damage, and so the DEK can rotate later: a ``KeyRing`` opens records of every key
it holds and seals with its active one. Nonces are random per record (96 bits); a DEK should seal
fewer than 2**32 records, far beyond a manager's log between snapshots, and rotation resets it.
The domain (WAL or snapshot) and the header are bound in as associated data, so a record cannot
be moved from one kind of file to the other unnoticed.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_SIZE = 32
NONCE_SIZE = 12
SEAL_VERSION = 1
_HEADER = struct.Struct("<BI")
SEAL_OVERHEAD = _HEADER.size + NONCE_SIZE + 16

WAL_DOMAIN = b"shoal-raft-wal-v1"
SNAPSHOT_DOMAIN = b"shoal-raft-snap-v1"


class SealError(Exception):
    """A sealed record could not be opened."""


class UnknownKey(SealError):
    def __init__(self, key_id: int, held: Iterable[int]) -> None:
        held_text = ", ".join(f"{k:08x}" for k in held)
        super().__init__(f"sealed with data key {key_id:08x}, but this manager holds key {held_text}: wrong data key")
        self.key_id = key_id


class AuthenticationFailed(SealError):
    pass


def key_id_of(secret: bytes) -> int:
    digest = hashlib.sha256(b"shoal-dek-id\x00" + secret).digest()
    return int.from_bytes(digest[:4], "little")


@dataclass(frozen=True)
class DataKey:
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) != KEY_SIZE:
            raise ValueError(f"a data key is {KEY_SIZE} bytes, got {len(self.secret)}")

    @property
    def key_id(self) -> int:
        return key_id_of(self.secret)

    @classmethod
    def generate(cls) -> DataKey:
        return cls(AESGCM.generate_key(bit_length=KEY_SIZE * 8))


class KeyRing:
    """The active key (seals) and any retired keys still needed to open old records."""

    def __init__(self, active: DataKey, retired: Iterable[DataKey] = ()) -> None:
        self.active = active
        self.retired = tuple(k for k in retired if k.key_id != active.key_id)
        self._ciphers = {key.key_id: AESGCM(key.secret) for key in (*retired, active)}

    def cipher_for(self, key_id: int) -> AESGCM:
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownKey(key_id, self._ciphers)
        return cipher


class RecordSealer:
    def __init__(self, keys: KeyRing, domain: bytes) -> None:
        self._keys = keys
        self._domain = domain
        self._active_id = keys.active.key_id
        self._active = keys.cipher_for(self._active_id)

    def seal(self, plaintext: bytes) -> bytes:
        header = _HEADER.pack(SEAL_VERSION, self._active_id)
        nonce = os.urandom(NONCE_SIZE)
        return header + nonce + self._active.encrypt(nonce, plaintext, self._domain + header)

    def open(self, sealed: bytes) -> bytes:
        if len(sealed) < SEAL_OVERHEAD:
            raise AuthenticationFailed(f"sealed record too short ({len(sealed)} bytes)")
        version, key_id = _HEADER.unpack_from(sealed)
        if version != SEAL_VERSION:
            raise AuthenticationFailed(f"unknown seal version {version}")
        cipher = self._keys.cipher_for(key_id)
        header = sealed[: _HEADER.size]
        nonce = sealed[_HEADER.size : _HEADER.size + NONCE_SIZE]
        try:
            return cipher.decrypt(nonce, sealed[_HEADER.size + NONCE_SIZE :], self._domain + header)
        except InvalidTag:
            raise AuthenticationFailed(
                "authentication failed: record altered or sealed for another file kind"
            ) from None
