"""Record framing: round trips, torn tails and corruption in a single file."""

from __future__ import annotations

import pytest

from shoal.manager.wal import errors
from shoal.manager.wal.errors import WALCorrupted
from shoal.manager.wal.framing import HEADER_SIZE, SECTOR, VERSION, checksum, decode_frame, encode_record, scan


def build(payloads: list[bytes], durable: list[int] | None = None) -> tuple[bytes, list[int]]:
    """A file of records; ``durable[i]`` is the durable offset stored in record i."""
    out = b""
    starts = []
    for i, payload in enumerate(payloads):
        starts.append(len(out))
        out += encode_record(payload, durable[i] if durable else 0)
    return out, starts


def test_round_trip() -> None:
    payloads = [b"a", b"", b"x" * 1000]
    buf, starts = build(payloads, [0, 7, 9])
    result = scan(buf, path="f", final=False)
    assert [f.payload for f in result.frames] == payloads
    assert [f.offset for f in result.frames] == starts
    assert [f.durable_offset for f in result.frames] == [0, 7, 9]
    assert result.valid_end == len(buf)
    assert result.torn is None


@pytest.mark.parametrize("cut", range(1, HEADER_SIZE + 10))
def test_a_cut_last_record_is_a_torn_tail(cut: int) -> None:
    buf, starts = build([b"first", b"second-record"])
    truncated = buf[: starts[1] + cut] if starts[1] + cut < len(buf) else buf[:-1]
    result = scan(truncated, path="f", final=True)
    assert [f.payload for f in result.frames] == [b"first"]
    assert result.torn is not None and result.torn.offset == starts[1]


def test_trailing_zeros_are_a_torn_tail() -> None:
    buf, _ = build([b"one"])
    result = scan(buf + bytes(4096), path="f", final=True)
    assert result.valid_end == len(buf)
    assert result.torn is not None and "zeroed header" in result.torn.reason


def test_a_torn_tail_outside_the_final_segment_is_corruption() -> None:
    buf, _ = build([b"one", b"two"])
    with pytest.raises(WALCorrupted, match="not the last one"):
        scan(buf[:-3], path="seg-1", final=False)


def test_a_bad_record_followed_by_a_valid_one_is_corruption() -> None:
    buf, starts = build([b"one" * 20, b"two" * 20, b"three"])
    damaged = bytearray(buf)
    damaged[starts[1] + HEADER_SIZE + 3] ^= 0x10
    with pytest.raises(WALCorrupted) as info:
        scan(bytes(damaged), path="seg", final=True)
    assert info.value.offset == starts[1]
    assert "payload checksum mismatch" in str(info.value)
    assert "a record that was written whole no longer checks" in str(info.value)


def test_a_damaged_length_is_caught_by_the_header_checksum() -> None:
    buf, starts = build([b"one", b"two", b"three"])
    damaged = bytearray(buf)
    damaged[starts[1] + 6] ^= 0x01  # high byte of the length: would run past the end
    with pytest.raises(WALCorrupted, match="header checksum mismatch"):
        scan(bytes(damaged), path="seg", final=True)


def test_a_later_record_vouching_for_the_bad_one_makes_it_corruption_even_with_zeros() -> None:
    big = b"p" * (3 * SECTOR)
    buf, starts = build([b"one", big, b"three"], durable=[0, 0, 0])
    buf, starts = build([b"one", big, b"three"], durable=[0, 0, starts[2]])
    damaged = bytearray(buf)
    damaged[starts[1] : starts[2]] = bytes(starts[2] - starts[1])
    with pytest.raises(WALCorrupted, match="synced up to"):
        scan(bytes(damaged), path="seg", final=True)


def test_an_unvouched_zeroed_sector_before_valid_records_is_a_torn_tail() -> None:
    big = b"p" * (3 * SECTOR)
    buf, starts = build([b"one", big, b"three", b"four"])
    damaged = bytearray(buf)
    sector = (starts[1] // SECTOR + 1) * SECTOR
    damaged[sector : sector + SECTOR] = bytes(SECTOR)
    result = scan(bytes(damaged), path="seg", final=True)
    assert [f.payload for f in result.frames] == [b"one"]
    assert result.torn is not None
    assert result.torn.offset == starts[1]
    assert result.torn.dropped_records == 2


def test_an_unwritten_first_sector_share_counts_as_a_torn_tail() -> None:
    """The sector holding the synced end and the start of the next record was not written back:
    from the record's start to the sector's end it reads zeros; later sectors made it."""
    buf, starts = build([b"one", b"two" * 400, b"three"])
    damaged = bytearray(buf)
    sector_end = (starts[1] // SECTOR + 1) * SECTOR
    damaged[starts[1] : sector_end] = bytes(sector_end - starts[1])
    result = scan(bytes(damaged), path="seg", final=True)
    assert result.torn is not None and result.torn.offset == starts[1]


def test_decode_frame_reasons() -> None:
    buf, _ = build([b"abc"])
    assert decode_frame(buf[:10], 0) == "short header (10 bytes before end of file)"
    assert decode_frame(bytes(64), 0) == "zeroed header"
    assert decode_frame(b"\x01" * 64, 0) == "bad magic"


def test_a_flipped_bit_in_the_last_record_is_corruption_not_a_torn_tail() -> None:
    buf, starts = build([b"one", b"two" * 30])
    for pos in range(starts[1], len(buf)):
        damaged = bytearray(buf)
        damaged[pos] ^= 1 << (pos % 8)
        with pytest.raises(WALCorrupted, match="written whole no longer checks") as info:
            scan(bytes(damaged), path="seg", final=True)
        assert info.value.offset == starts[1]


def test_a_sound_header_whose_record_runs_past_the_end_is_a_torn_tail() -> None:
    buf, starts = build([b"one", b"x" * 900])
    result = scan(buf[: starts[1] + HEADER_SIZE + 10], path="seg", final=True)
    assert result.torn is not None and "ends before its declared end" in result.torn.reason


def test_a_last_record_whose_last_sector_was_never_written_is_a_torn_tail() -> None:
    buf, _ = build([b"one", b"x" * (2 * SECTOR)])
    last_sector = (len(buf) - 1) // SECTOR * SECTOR
    damaged = buf[:last_sector] + bytes(len(buf) - last_sector)
    result = scan(damaged, path="seg", final=True)
    assert result.torn is not None and "reads as zeros" in result.torn.reason


def test_nonzero_garbage_after_the_last_record_is_corruption() -> None:
    buf, _ = build([b"one"])
    with pytest.raises(WALCorrupted, match="bad magic"):
        scan(buf + b"\xff" * 100, path="seg", final=True)


def test_a_file_of_another_format_version_is_refused_as_such() -> None:
    buf, _ = build([b"one"])
    old = bytearray(buf)
    old[2] = VERSION - 1
    old[20:24] = checksum(bytes(old[:20])).to_bytes(4, "little")
    with pytest.raises(errors.WALFormatError, match=f"format {VERSION - 1}; this shoald reads only format {VERSION}"):
        scan(bytes(old), path="seg", final=True)
