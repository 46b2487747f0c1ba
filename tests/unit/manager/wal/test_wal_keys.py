"""The data key file: created once, read back, wrapped through a pluggable KeyWrapper."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from shoal.manager.wal.crypto import DataKey, KeyRing
from shoal.manager.wal.fileops import OsFileOps
from shoal.manager.wal.keys import (
    DEK_FILE,
    KekWrapper,
    KeyFileError,
    WrongUnlockKey,
    decode_keys,
    encode_keys,
    load_keys,
    load_or_create_keys,
    store_keys,
)
from shoal.testing.memfs import MemoryFS

KEYS = "/data/raft/keys"


class XorWrapper:
    """A stand-in for a KEK wrapper: reversible, keyed, and wrong with the wrong pad."""

    name = "xor-test"

    def __init__(self, pad: int) -> None:
        self.pad = pad

    def wrap(self, secret: bytes) -> bytes:
        return bytes(b ^ self.pad for b in secret)

    def unwrap(self, blob: bytes) -> bytes:
        return bytes(b ^ self.pad for b in blob)


def test_created_once_then_read_back_durably() -> None:
    fs = MemoryFS()
    created = load_or_create_keys(fs, KEYS)
    fs.crash("power")
    loaded = load_or_create_keys(fs, KEYS)
    assert loaded.active == created.active
    assert loaded.retired == ()


def test_retired_keys_round_trip() -> None:
    fs = MemoryFS()
    ring = KeyRing(DataKey.generate(), [DataKey.generate(), DataKey.generate()])
    store_keys(fs, KEYS, ring)
    loaded = load_keys(fs, KEYS)
    assert loaded is not None
    assert (loaded.active, loaded.retired) == (ring.active, ring.retired)


def test_a_wrapper_is_applied_and_checked() -> None:
    fs = MemoryFS()
    ring = load_or_create_keys(fs, KEYS, XorWrapper(0x5A))
    assert ring.active.secret.hex() not in fs.read_file(f"{KEYS}/{DEK_FILE}").decode()
    assert load_keys(fs, KEYS, XorWrapper(0x5A)) is not None
    with pytest.raises(KeyFileError, match="wrong unlock key"):
        load_keys(fs, KEYS, XorWrapper(0x33))
    with pytest.raises(KeyFileError, match="wrapped with 'xor-test', not 'none'"):
        load_keys(fs, KEYS)


def test_a_damaged_file_is_refused() -> None:
    fs = MemoryFS()
    load_or_create_keys(fs, KEYS)
    fs.set_file_bytes(f"{KEYS}/{DEK_FILE}", b'{"version": 1, "wrapping": "none", "active": {}}')
    with pytest.raises(KeyFileError, match="damaged key file"):
        load_keys(fs, KEYS)
    fs.set_file_bytes(f"{KEYS}/{DEK_FILE}", b"not json")
    with pytest.raises(KeyFileError, match="damaged key file"):
        load_keys(fs, KEYS)


def test_the_key_file_is_private_on_disk(tmp_path: Path) -> None:
    keys_dir = str(tmp_path / "keys")
    load_or_create_keys(OsFileOps(), keys_dir)
    assert stat.S_IMODE(os.stat(os.path.join(keys_dir, DEK_FILE)).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(keys_dir).st_mode) == 0o700
    assert os.listdir(keys_dir) == [DEK_FILE]


def test_the_kek_wrapper_seals_every_key_and_refuses_a_wrong_kek() -> None:
    fs = MemoryFS()
    kek = bytes(range(32))
    ring = KeyRing(DataKey.generate(), [DataKey.generate()])
    store_keys(fs, KEYS, ring, KekWrapper(kek))
    stored = fs.read_file(f"{KEYS}/{DEK_FILE}")
    for key in (ring.active, *ring.retired):
        for form in (key.secret, key.secret.hex().encode(), base64.b64encode(key.secret)):
            assert form not in stored
    loaded = load_keys(fs, KEYS, KekWrapper(kek))
    assert loaded is not None and (loaded.active, loaded.retired) == (ring.active, ring.retired)
    with pytest.raises(WrongUnlockKey, match="does not unwrap with this unlock key"):
        load_keys(fs, KEYS, KekWrapper(bytes(32)))
    with pytest.raises(WrongUnlockKey, match="wrapped with 'kek-aes256gcm-v1', not 'none'"):
        load_keys(fs, KEYS)


def test_rewrapping_under_a_new_kek_keeps_the_keys_and_drops_the_old_kek() -> None:
    old, new = KekWrapper(b"\x01" * 32), KekWrapper(b"\x02" * 32)
    ring = KeyRing(DataKey.generate())
    rewrapped = encode_keys(decode_keys(encode_keys(ring, old), old), new)
    assert decode_keys(rewrapped, new).active == ring.active
    with pytest.raises(WrongUnlockKey):
        decode_keys(rewrapped, old)


def test_a_wrong_key_is_not_reported_as_damage_nor_damage_as_a_wrong_key() -> None:
    ring = KeyRing(DataKey.generate())
    wrapped = encode_keys(ring, KekWrapper(b"\x01" * 32))
    with pytest.raises(WrongUnlockKey):
        decode_keys(wrapped, KekWrapper(b"\x03" * 32))
    with pytest.raises(KeyFileError, match="damaged key file") as damaged:
        decode_keys(wrapped[: len(wrapped) // 2], KekWrapper(b"\x01" * 32))
    assert not isinstance(damaged.value, WrongUnlockKey)
