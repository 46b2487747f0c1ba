"""Sealing records with AES-GCM under per-file subkeys of the data key."""

from __future__ import annotations

import pytest

from shoal.manager.wal.crypto import (
    SNAPSHOT_DOMAIN,
    WAL_DOMAIN,
    AuthenticationFailed,
    DataKey,
    FileSealer,
    KeyRing,
    Sealing,
    SealLimitReached,
    UnknownKey,
)


def sealing(key: DataKey, domain: bytes = WAL_DOMAIN, retired: tuple[DataKey, ...] = ()) -> Sealing:
    return Sealing(KeyRing(key, retired), domain)


def reopened(sealer: FileSealer, via: Sealing) -> FileSealer:
    return via.existing_file(sealer.keying)


def test_round_trip_and_ciphertext_hides_plaintext() -> None:
    s = sealing(DataKey.generate())
    sealer = s.new_file(1)
    sealed = sealer.seal(b"secret entry data", 100)
    assert b"secret entry data" not in sealed
    assert reopened(sealer, s).open(sealed, 100) == b"secret entry data"


def test_nonces_differ_per_record() -> None:
    sealer = sealing(DataKey.generate()).new_file(1)
    assert sealer.seal(b"same", 0) != sealer.seal(b"same", 0)


def test_each_file_gets_its_own_subkey() -> None:
    s = sealing(DataKey.generate())
    first, second = s.new_file(1), s.new_file(1)
    assert first.keying.salt != second.keying.salt
    with pytest.raises(AuthenticationFailed):
        second.open(first.seal(b"x", 0), 0)


def test_a_record_is_bound_to_its_offset_and_file() -> None:
    s = sealing(DataKey.generate())
    sealer = s.new_file(7)
    sealed = sealer.seal(b"entry", 64)
    with pytest.raises(AuthenticationFailed, match="moved from elsewhere"):
        sealer.open(sealed, 128)
    same_salt_other_file = s.existing_file(type(sealer.keying)(sealer.keying.key_id, sealer.keying.salt, 8))
    with pytest.raises(AuthenticationFailed):
        same_salt_other_file.open(sealed, 64)


def test_wrong_key_is_reported_as_such() -> None:
    sealer = sealing(DataKey.generate()).new_file(1)
    with pytest.raises(UnknownKey, match="wrong data key"):
        sealing(DataKey.generate()).existing_file(sealer.keying)


def test_retired_key_still_opens_old_records() -> None:
    old, new = DataKey.generate(), DataKey.generate()
    sealer = sealing(old).new_file(1)
    sealed = sealer.seal(b"old record", 0)
    assert sealing(new, retired=(old,)).existing_file(sealer.keying).open(sealed, 0) == b"old record"


def test_tampering_fails_authentication() -> None:
    sealer = sealing(DataKey.generate()).new_file(1)
    sealed = bytearray(sealer.seal(b"payload", 0))
    sealed[-1] ^= 1
    with pytest.raises(AuthenticationFailed):
        sealer.open(bytes(sealed), 0)


def test_a_record_cannot_move_between_file_kinds() -> None:
    key = DataKey.generate()
    sealer = sealing(key, WAL_DOMAIN).new_file(1)
    sealed = sealer.seal(b"entry", 0)
    with pytest.raises(AuthenticationFailed):
        sealing(key, SNAPSHOT_DOMAIN).existing_file(sealer.keying).open(sealed, 0)


def test_a_subkey_refuses_to_seal_past_its_limit() -> None:
    sealer = Sealing(KeyRing(DataKey.generate()), WAL_DOMAIN, max_records=3).new_file(1)
    for offset in range(3):
        sealer.seal(b"r", offset)
    assert sealer.remaining == 0
    with pytest.raises(SealLimitReached):
        sealer.seal(b"r", 3)


def test_short_input_fails_cleanly() -> None:
    with pytest.raises(AuthenticationFailed, match="too short"):
        sealing(DataKey.generate()).new_file(1).open(b"abc", 0)


def test_key_size_is_checked() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        DataKey(b"short")
