"""Record framing: how a record sits in a file, and how a file is scanned back.

A record is a 24-byte header followed by the payload::

    magic u16 | version u8 | flags u8 | payload length u32 | durable offset u64
    | payload CRC-32 u32 | header CRC-32 u32            (little endian)

``version`` is the on-disk format version of the whole raft directory (2: files open with a
plaintext file header and records are sealed under a per-file subkey, bound to their position;
see crypto.py and fileheader.py). A file whose first record has a sound header of another
version is refused with ``WALFormatError``: formats before the first release are not migrated.

The header has its own CRC so that a damaged length is caught before it is trusted (a flipped
length must not make the rest of the file look like a torn tail). The *durable offset* is how
many bytes of this file the writer had fsynced when it wrote the record: a later valid record
whose durable offset is past a bad record proves the bad one had been synced.

A bad record is told apart as etcd's WAL does. A power cut during write-back leaves only what a
disk can leave: whole sectors written or not, a sector never written reading as zeros, the file
possibly ending early. So a bad record (in the final file only) is a *torn tail* when

- the file ends inside its header, or its header is sound and the file ends before the record's
  declared end (a short tail); or
- a disk sector it touches reads as zeros from the record's start, or from the sector's start,
  up to the sector's end or the end of the file (a zeroed tail: an unwritten sector);

and no later valid record vouches for it. Everything else, above all a record that was written
whole (sound header, its full length present, nothing zero-filled) and no longer checks, is
``WALCorrupted``. A torn tail is cut with any unvouched records after it; corruption is refused
unless the caller asked for a repair.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from shoal.manager.wal.errors import WALCorrupted, WALFormatError

MAGIC = 0x5EA1
VERSION = 2
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


def _sound_header(buf: bytes, pos: int) -> tuple[int, int] | None:
    """(version, payload length) of the header at ``pos`` if its magic and checksum hold."""
    if len(buf) - pos < HEADER_SIZE:
        return None
    magic, version, _flags, length, _durable, _crc = _PREFIX.unpack_from(buf, pos)
    (header_crc,) = _HEADER_CRC.unpack_from(buf, pos + _PREFIX.size)
    if magic != MAGIC or checksum(memoryview(buf)[pos : pos + _PREFIX.size]) != header_crc:
        return None
    return version, length


def _has_unwritten_sector(buf: bytes, start: int, end: int) -> bool:
    """Whether a disk sector touched by ``buf[start:end]`` reads as zeros from ``start`` (or its
    own start) to its end or the end of the file, as a sector that was never written back does.
    Bytes of the sector before ``start`` belong to earlier records and may have been synced."""
    sector = (start // SECTOR) * SECTOR
    while sector < end:
        share = buf[max(sector, start) : min(sector + SECTOR, len(buf))]
        if share and not any(share):
            return True
        sector += SECTOR
    return False


def torn_write_evidence(buf: bytes, pos: int) -> str | None:
    """Why the bad record at ``pos`` looks like an interrupted write, or None if it does not."""
    if len(buf) - pos < HEADER_SIZE:
        return "the file ends inside its header"
    header = _sound_header(buf, pos)
    span_end = pos + HEADER_SIZE
    if header is not None:
        span_end += header[1]
        if span_end > len(buf):
            return "the file ends before its declared end"
    if _has_unwritten_sector(buf, pos, span_end):
        return "a sector of it reads as zeros: never written back"
    return None


def _check_format(buf: bytes, path: str) -> None:
    header = _sound_header(buf, 0)
    if header is not None and header[0] != VERSION:
        raise WALFormatError(path, header[0], VERSION)


def scan(buf: bytes, *, path: str, final: bool) -> ScanResult:
    """Split ``buf`` (a whole file) into records; see the module doc for the torn-tail rule."""
    _check_format(buf, path)
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
    vouching = next((f for f in later if f.durable_offset > pos), None)
    if vouching is not None:
        raise WALCorrupted(
            path,
            pos,
            f"{reason}; the record at offset {vouching.offset} says the file was synced up to "
            f"{vouching.durable_offset}",
        )
    evidence = torn_write_evidence(buf, pos)
    if evidence is None:
        raise WALCorrupted(path, pos, f"{reason}; a record that was written whole no longer checks")
    return TornTail(pos, f"{reason}: {evidence}", len(later))
