"""The manager's raft data keys (DEKs), kept in ``<raft dir>/keys/raft-dek.json`` (mode 0600).

The file holds the active DEK and any retired ones still needed to read old records, each
passed through a ``KeyWrapper`` first: ``Unwrapped`` stores the DEK as is (swarm without autolock,
so a manager restarts unattended); ``KekWrapper`` seals it with AES-256-GCM under a key-encryption
key derived from the swarm's unlock key (autolock: the manager stays locked until it is given).
The file's shape and the WAL are the same either way.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shoal.manager.wal.crypto import DataKey, KeyRing
from shoal.manager.wal.errors import WALError
from shoal.manager.wal.fileops import FileOps, write_all

DEK_FILE = "raft-dek.json"
_FORMAT_VERSION = 1


class KeyFileError(WALError):
    """The key file is missing pieces, damaged, or wrapped in a way we cannot undo."""


class WrongUnlockKey(KeyFileError):
    """The keys are wrapped under another key than the one given (or under one, and none was given)."""


class KeyWrapper(Protocol):
    @property
    def name(self) -> str:
        """Stored beside the wrapped keys, so a file is never unwrapped the wrong way."""
        ...

    def wrap(self, secret: bytes) -> bytes: ...

    def unwrap(self, blob: bytes) -> bytes:
        """Raises ``KeyFileError`` when the blob cannot be unwrapped (e.g. wrong unlock key)."""
        ...


class Unwrapped:
    name = "none"

    def wrap(self, secret: bytes) -> bytes:
        return secret

    def unwrap(self, blob: bytes) -> bytes:
        return blob


class KekWrapper:
    """AES-256-GCM under a key-encryption key (32 bytes, derived from the unlock key by the caller).
    A blob is ``nonce (12 bytes) | ciphertext + tag``; a wrong KEK fails the tag, so it is told
    from damage by the caller's key id check and reported as ``WrongUnlockKey``."""

    name = "kek-aes256gcm-v1"
    _AAD = b"shoal-raft-dek-wrap-v1"
    _NONCE = 12

    def __init__(self, kek: bytes) -> None:
        if len(kek) != 32:
            raise ValueError(f"a key-encryption key is 32 bytes, got {len(kek)}")
        self._cipher = AESGCM(kek)

    def wrap(self, secret: bytes) -> bytes:
        nonce = os.urandom(self._NONCE)
        return nonce + self._cipher.encrypt(nonce, secret, self._AAD)

    def unwrap(self, blob: bytes) -> bytes:
        try:
            return self._cipher.decrypt(blob[: self._NONCE], blob[self._NONCE :], self._AAD)
        except (InvalidTag, ValueError):
            raise WrongUnlockKey("a data key does not unwrap with this unlock key") from None


def load_or_create_keys(ops: FileOps, keys_dir: str, wrapper: KeyWrapper | None = None) -> KeyRing:
    """The stored key ring, or a new one with a fresh DEK (stored durably before returning)."""
    wrapper = wrapper or Unwrapped()
    keys = load_keys(ops, keys_dir, wrapper)
    if keys is None:
        keys = KeyRing(DataKey.generate())
        store_keys(ops, keys_dir, keys, wrapper)
    return keys


def load_keys(ops: FileOps, keys_dir: str, wrapper: KeyWrapper | None = None) -> KeyRing | None:
    wrapper = wrapper or Unwrapped()
    path = os.path.join(keys_dir, DEK_FILE)
    if not ops.exists(path):
        return None
    return decode_keys(ops.read_file(path), wrapper, path)


def decode_keys(data: bytes, wrapper: KeyWrapper, path: str = DEK_FILE) -> KeyRing:
    """The key ring a key file's bytes hold. Raises ``WrongUnlockKey`` when they are wrapped another
    way or under another key, ``KeyFileError`` when they are damaged."""
    try:
        doc = json.loads(data)
        if doc.get("version") != _FORMAT_VERSION:
            raise KeyFileError(f"{path}: unknown key file version {doc.get('version')!r}")
        if doc.get("wrapping") != wrapper.name:
            raise WrongUnlockKey(f"{path}: keys are wrapped with {doc.get('wrapping')!r}, not {wrapper.name!r}")
        active = _unwrap_key(path, doc["active"], wrapper)
        retired = [_unwrap_key(path, item, wrapper) for item in doc.get("retired", [])]
    except KeyFileError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KeyFileError(f"{path}: damaged key file: {exc}") from None
    return KeyRing(active, retired)


def encode_keys(keys: KeyRing, wrapper: KeyWrapper) -> bytes:
    """A key file's bytes (what ``store_keys`` writes), for callers that replace it together with
    other files."""
    doc = {
        "version": _FORMAT_VERSION,
        "wrapping": wrapper.name,
        "active": _wrap_key(keys.active, wrapper),
        "retired": [_wrap_key(k, wrapper) for k in keys.retired],
    }
    return json.dumps(doc, indent=1).encode()


def store_keys(ops: FileOps, keys_dir: str, keys: KeyRing, wrapper: KeyWrapper | None = None) -> None:
    """Write the key file atomically and durably (temp file, fsync, rename, directory fsync)."""
    wrapper = wrapper or Unwrapped()
    ops.makedirs(keys_dir)
    path = os.path.join(keys_dir, DEK_FILE)
    temp = path + ".tmp"
    if ops.exists(temp):
        ops.unlink(temp)
    fd = ops.open_truncated(temp)
    try:
        write_all(ops, fd, encode_keys(keys, wrapper))
        ops.fsync(fd)
    finally:
        ops.close(fd)
    ops.rename(temp, path)
    ops.fsync_dir(keys_dir)


def _wrap_key(key: DataKey, wrapper: KeyWrapper) -> dict[str, Any]:
    return {"key_id": f"{key.key_id:08x}", "dek": base64.b64encode(wrapper.wrap(key.secret)).decode()}


def _unwrap_key(path: str, item: dict[str, Any], wrapper: KeyWrapper) -> DataKey:
    key = DataKey(wrapper.unwrap(base64.b64decode(item["dek"], validate=True)))
    if f"{key.key_id:08x}" != item["key_id"]:
        raise WrongUnlockKey(f"{path}: key {item['key_id']} does not unwrap to itself (wrong unlock key?)")
    return key
