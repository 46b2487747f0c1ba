"""Record framing: how a record sits in a file, and how a file is scanned back.

A record is a 24-byte header followed by the payload::

    magic u16 | version u8 | flags u8 | payload length u32 | durable offset u64
    | payload CRC-32 u32 | header CRC-32 u32            (little endian)

The header has its own CRC so that a damaged length is caught before it is trusted (a flipped
length must not make the rest of the file look like a torn tail). The *durable offset* is how
many bytes of this file the writer had fsynced when it wrote the record: if recovery meets a bad
record that a later valid record vouches for (durable offset past it), the bad record had been
synced, so it is corruption, never a torn write.

Scanning a file ends in one of three ways:

- every byte belongs to a valid record;
- a *torn tail*: the file ends with a record that was being written when the machine stopped.
  Recognised (only in the final file) when no valid record follows the bad bytes, or when the
  only ones that follow are unvouched for and a disk sector's share of the bad span is zeroed
  (what out-of-order write-back of unsynced pages leaves behind);
- ``WALCorrupted`` otherwise.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from shoal.manager.wal.errors import WALCorrupted

MAGIC = 0x5EA1
VERSION = 1
_PREFIX = struct.Struct("<HBBIQI")
_HEADER_CRC = struct.Struct("<I")
HEADER_SIZE = _PREFIX.size + _HEADER_CRC.size
MAX_PAYLOAD = 1 << 31
SECTOR = 512
_MAGIC_BYTES = MAGIC.to_bytes(2, "little")


def checksum(data: bytes | memoryview) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def encode_record(payload: bytes, durable_offset: int) -> bytes:
    if len(payload) >= MAX_PAYLOAD:
        raise ValueError(f"record payload of {len(payload)} bytes exceeds the {MAX_PAYLOAD} byte limit")
    prefix = _PREFIX.pack(MAGIC, VERSION, 0, len(payload), durable_offset, checksum(payload))
    return prefix + _HEADER_CRC.pack(checksum(prefix)) + payload


@dataclass(frozen=True, slots=True)
class Frame:
    offset: int
    end: int
    durable_offset: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class TornTail:
    """Bytes from ``offset`` on are an interrupted write; ``dropped_records`` valid but unsynced
    records after it are discarded with it."""

    offset: int
    reason: str
    dropped_records: int = 0


@dataclass(frozen=True, slots=True)
class ScanResult:
    frames: list[Frame]
    valid_end: int
    torn: TornTail | None


def decode_frame(buf: bytes, pos: int) -> Frame | str:
    """The record starting at ``pos``, or why there is none."""
    if len(buf) - pos < HEADER_SIZE:
        return f"short header ({len(buf) - pos} bytes before end of file)"
    magic, version, _flags, length, durable, payload_crc = _PREFIX.unpack_from(buf, pos)
    if magic != MAGIC:
        return "zeroed header" if buf[pos : pos + HEADER_SIZE] == bytes(HEADER_SIZE) else "bad magic"
    (header_crc,) = _HEADER_CRC.unpack_from(buf, pos + _PREFIX.size)
    if checksum(memoryview(buf)[pos : pos + _PREFIX.size]) != header_crc:
        return "header checksum mismatch"
    if version != VERSION:
        return f"unknown record version {version}"
    start = pos + HEADER_SIZE
    end = start + length
    if end > len(buf):
        return f"record of {length} bytes runs past end of file"
    if checksum(memoryview(buf)[start:end]) != payload_crc:
        return "payload checksum mismatch"
    return Frame(pos, end, durable, buf[start:end])


def _resync(buf: bytes, pos: int) -> list[Frame]:
    """Every valid record found by searching forward from ``pos`` (used only after a bad one)."""
    found: list[Frame] = []
    candidate = buf.find(_MAGIC_BYTES, pos)
    while candidate != -1:
        frame = decode_frame(buf, candidate)
        if isinstance(frame, Frame):
            found.append(frame)
            candidate = buf.find(_MAGIC_BYTES, frame.end)
        else:
            candidate = buf.find(_MAGIC_BYTES, candidate + 1)
    return found


def _has_unwritten_sector(buf: bytes, start: int, end: int) -> bool:
    """Whether some disk sector's share of ``buf[start:end]`` is all zeros, as a sector that was
    never written back reads. A share counts if it starts at ``start`` (a record's first bytes
    are its non-zero magic) or is at least 16 bytes long (random ciphertext is never that)."""
    sector = (start // SECTOR) * SECTOR
    while sector < end:
        lo, hi = max(sector, start), min(sector + SECTOR, end)
        if (lo == start or hi - lo >= 16) and not any(buf[lo:hi]):
            return True
        sector += SECTOR
    return False


def scan(buf: bytes, *, path: str, final: bool) -> ScanResult:
    """Split ``buf`` (a whole file) into records; see the module doc for the torn-tail rule."""
    frames: list[Frame] = []
    pos = 0
    while pos < len(buf):
        frame = decode_frame(buf, pos)
        if isinstance(frame, Frame):
            frames.append(frame)
            pos = frame.end
            continue
        return ScanResult(frames, pos, _classify_bad_record(buf, pos, frame, path=path, final=final))
    return ScanResult(frames, pos, None)


def _classify_bad_record(buf: bytes, pos: int, reason: str, *, path: str, final: bool) -> TornTail:
    if not final:
        raise WALCorrupted(path, pos, f"{reason} in a segment that is not the last one")
    later = _resync(buf, pos + 1)
    if not later:
        return TornTail(pos, reason)
    vouching = next((f for f in later if f.durable_offset > pos), None)
    if vouching is not None:
        raise WALCorrupted(
            path,
            pos,
            f"{reason}; the record at offset {vouching.offset} says the file was synced up to "
            f"{vouching.durable_offset}",
        )
    if _has_unwritten_sector(buf, pos, later[0].offset):
        return TornTail(pos, f"{reason} (zeroed sector of an unsynced write)", len(later))
    raise WALCorrupted(path, pos, f"{reason}, followed by a valid record at offset {later[0].offset}")
