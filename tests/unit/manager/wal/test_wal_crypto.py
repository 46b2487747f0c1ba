"""Sealing records with AES-GCM under the data key."""

from __future__ import annotations

import pytest

from shoal.manager.wal.crypto import (
    SNAPSHOT_DOMAIN,
    WAL_DOMAIN,
    AuthenticationFailed,
    DataKey,
    KeyRing,
    RecordSealer,
    UnknownKey,
)


def sealer(key: DataKey, domain: bytes = WAL_DOMAIN, retired: tuple[DataKey, ...] = ()) -> RecordSealer:
    return RecordSealer(KeyRing(key, retired), domain)


def test_round_trip_and_ciphertext_hides_plaintext() -> None:
    s = sealer(DataKey.generate())
    sealed = s.seal(b"secret entry data")
    assert b"secret entry data" not in sealed
    assert s.open(sealed) == b"secret entry data"


def test_nonces_differ_per_record() -> None:
    s = sealer(DataKey.generate())
    assert s.seal(b"same") != s.seal(b"same")


def test_wrong_key_is_reported_as_such() -> None:
    sealed = sealer(DataKey.generate()).seal(b"x")
    with pytest.raises(UnknownKey, match="wrong data key"):
        sealer(DataKey.generate()).open(sealed)


def test_retired_key_still_opens_old_records() -> None:
    old, new = DataKey.generate(), DataKey.generate()
    sealed = sealer(old).seal(b"old record")
    assert sealer(new, retired=(old,)).open(sealed) == b"old record"


def test_tampering_fails_authentication() -> None:
    s = sealer(DataKey.generate())
    sealed = bytearray(s.seal(b"payload"))
    sealed[-1] ^= 1
    with pytest.raises(AuthenticationFailed):
        s.open(bytes(sealed))


def test_a_record_cannot_move_between_file_kinds() -> None:
    key = DataKey.generate()
    sealed = sealer(key, WAL_DOMAIN).seal(b"entry")
    with pytest.raises(AuthenticationFailed):
        sealer(key, SNAPSHOT_DOMAIN).open(sealed)


def test_short_input_fails_cleanly() -> None:
    with pytest.raises(AuthenticationFailed, match="too short"):
        sealer(DataKey.generate()).open(b"abc")


def test_key_size_is_checked() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        DataKey(b"short")
