"""The manager's raft data keys (DEKs), kept in ``<raft dir>/keys/raft-dek.json`` (mode 0600).

The file holds the active DEK and any retired ones still needed to read old records, each
passed through a ``KeyWrapper`` first. Today the wrapper is ``Unwrapped`` (the DEK is stored as
is, like swarm without autolock, so a manager restarts unattended); autolock will add a wrapper
that encrypts the DEKs under a key-encryption key (the unlock key) without changing this file's
shape or the WAL.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any, Protocol

from shoal.manager.wal.crypto import DataKey, KeyRing
from shoal.manager.wal.errors import WALError
from shoal.manager.wal.fileops import FileOps, write_all

DEK_FILE = "raft-dek.json"
_FORMAT_VERSION = 1


class KeyFileError(WALError):
    """The key file is missing pieces, damaged, or wrapped in a way we cannot undo."""


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
    try:
        doc = json.loads(ops.read_file(path))
        if doc.get("version") != _FORMAT_VERSION:
            raise KeyFileError(f"{path}: unknown key file version {doc.get('version')!r}")
        if doc.get("wrapping") != wrapper.name:
            raise KeyFileError(f"{path}: keys are wrapped with {doc.get('wrapping')!r}, not {wrapper.name!r}")
        active = _unwrap_key(path, doc["active"], wrapper)
        retired = [_unwrap_key(path, item, wrapper) for item in doc.get("retired", [])]
    except (ValueError, KeyError, TypeError) as exc:
        raise KeyFileError(f"{path}: damaged key file: {exc}") from None
    return KeyRing(active, retired)


def store_keys(ops: FileOps, keys_dir: str, keys: KeyRing, wrapper: KeyWrapper | None = None) -> None:
    """Write the key file atomically and durably (temp file, fsync, rename, directory fsync)."""
    wrapper = wrapper or Unwrapped()
    ops.makedirs(keys_dir)
    doc = {
        "version": _FORMAT_VERSION,
        "wrapping": wrapper.name,
        "active": _wrap_key(keys.active, wrapper),
        "retired": [_wrap_key(k, wrapper) for k in keys.retired],
    }
    path = os.path.join(keys_dir, DEK_FILE)
    temp = path + ".tmp"
    if ops.exists(temp):
        ops.unlink(temp)
    fd = ops.open_truncated(temp)
    try:
        write_all(ops, fd, json.dumps(doc, indent=1).encode())
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
        raise KeyFileError(f"{path}: key {item['key_id']} does not unwrap to itself (wrong unlock key?)")
    return key
