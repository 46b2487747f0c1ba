"""Sealing records at rest with AES-256-GCM, under a subkey of the manager's data key (DEK).

The DEK never encrypts anything itself. Each file (WAL segment or snapshot) gets its own subkey::

    subkey = HKDF-SHA256(DEK, salt = the file's random 32-byte salt, info = file kind | file id)

The salt, the DEK's key id (a hash of the key, not the key) and the file id (segment sequence
number or snapshot index) sit in the file's plaintext header (fileheader.py), so a wrong DEK is
reported as such rather than as damage, and a KeyRing can open files of every key it holds.

A sealed record is ``nonce (12 random bytes) | ciphertext + tag``. Its associated data binds it
to its place: ``file kind | file id | offset of the record in the file``. A record that is
swapped with another, replayed at another offset, or copied into another segment or snapshot no
longer authenticates (a copy also meets another subkey).

Random 96-bit nonces are safe for 2**32 encryptions per key. A subkey seals at most
``max_records`` records (by default 2**24, far below): the WAL starts a new segment, with a new
salt and so a new subkey, before a segment's sealer runs out (one record stays in reserve for the
segment's closing record). Every recovery closes the newest segment with that one record and
starts a new one, so a subkey whose count was lost with the process seals nothing more, and a
rotated DEK (keys.py) is used from the next open on.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
SALT_SIZE = 32
SEAL_OVERHEAD = NONCE_SIZE + TAG_SIZE
MAX_RECORDS_PER_SUBKEY = 1 << 24

WAL_DOMAIN = b"shoal-raft-wal-v2"
SNAPSHOT_DOMAIN = b"shoal-raft-snap-v2"

_POSITION = struct.Struct("<QQ")


class SealError(Exception):
    """A sealed record could not be opened."""


class UnknownKey(SealError):
    def __init__(self, key_id: int, held: Iterable[int]) -> None:
        held_text = ", ".join(f"{k:08x}" for k in held)
        super().__init__(f"sealed with data key {key_id:08x}, but this manager holds key {held_text}: wrong data key")
        self.key_id = key_id


class AuthenticationFailed(SealError):
    pass


class SealLimitReached(Exception):
    """A file's subkey sealed as many records as it may; the writer should have started a new file."""


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
        self._keys = {key.key_id: key for key in (*retired, active)}

    def key_for(self, key_id: int) -> DataKey:
        key = self._keys.get(key_id)
        if key is None:
            raise UnknownKey(key_id, self._keys)
        return key


@dataclass(frozen=True, slots=True)
class FileKeying:
    """What a file's header must carry to derive its subkey again."""

    key_id: int
    salt: bytes
    file_id: int


class FileSealer:
    """Seals and opens the records of one file, each bound to its offset in that file."""

    def __init__(self, dek: DataKey, domain: bytes, keying: FileKeying, max_records: int) -> None:
        info = domain + struct.pack("<Q", keying.file_id)
        subkey = HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=keying.salt, info=info).derive(dek.secret)
        self.keying = keying
        self.max_records = max_records
        self.sealed = 0
        self._cipher = AESGCM(subkey)
        self._aad_prefix = domain + b"\x00"

    @property
    def remaining(self) -> int:
        return self.max_records - self.sealed

    def _aad(self, offset: int) -> bytes:
        return self._aad_prefix + _POSITION.pack(self.keying.file_id, offset)

    def seal(self, plaintext: bytes, offset: int) -> bytes:
        if self.sealed >= self.max_records:
            raise SealLimitReached(f"file {self.keying.file_id} sealed {self.sealed} records, its limit")
        self.sealed += 1  # counted before use: a nonce drawn is spent even if the write fails
        nonce = os.urandom(NONCE_SIZE)
        return nonce + self._cipher.encrypt(nonce, plaintext, self._aad(offset))

    def open(self, sealed: bytes, offset: int) -> bytes:
        if len(sealed) < SEAL_OVERHEAD:
            raise AuthenticationFailed(f"sealed record too short ({len(sealed)} bytes)")
        try:
            return self._cipher.decrypt(sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], self._aad(offset))
        except InvalidTag:
            raise AuthenticationFailed(
                "authentication failed: record altered, moved from elsewhere, or sealed for another file kind"
            ) from None


class Sealing:
    """Hands out the sealer of each file of one kind (``domain``) under a KeyRing."""

    def __init__(self, keys: KeyRing, domain: bytes, *, max_records: int = MAX_RECORDS_PER_SUBKEY) -> None:
        self.keys = keys
        self.domain = domain
        self.max_records = max_records

    def new_file(self, file_id: int) -> FileSealer:
        """A fresh subkey (new random salt) under the active key."""
        keying = FileKeying(self.keys.active.key_id, os.urandom(SALT_SIZE), file_id)
        return FileSealer(self.keys.active, self.domain, keying, self.max_records)

    def existing_file(self, keying: FileKeying) -> FileSealer:
        """The sealer of a file written earlier; raises ``UnknownKey`` for a DEK not held."""
        return FileSealer(self.keys.key_for(keying.key_id), self.domain, keying, self.max_records)
