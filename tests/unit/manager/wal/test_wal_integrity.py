"""Damage that is not a torn write is refused with a way out (repair); segments chain so that none
goes missing unseen; sealed records are bound to their place; subkeys seal a bounded number of
records; an older on-disk format is refused.

New names (repair, WALFormatError, fileheader) are looked up inside the tests, so each test
fails on its own against code without the feature."""

from __future__ import annotations

import copy
import logging
import struct
import zlib
from pathlib import Path

import pytest
from conftest import KEY, entries, log_of, open_on

from shoal.manager.wal import errors
from shoal.manager.wal.errors import WALCorrupted
from shoal.manager.wal.framing import Frame, scan
from shoal.manager.wal.segments import segment_name
from shoal.manager.wal.storage import DiskStorage
from shoal.raft.types import ConfState, HardState, Snapshot, SnapshotMetadata
from shoal.testing.memfs import MemoryFS

WAL_DIR = "/data/raft/wal"


def frames_of(fs: MemoryFS, path: str) -> list[Frame]:
    return scan(fs.read_file(path), path=path, final=False).frames


def flip(fs: MemoryFS, path: str, pos: int) -> bytes:
    data = bytearray(fs.read_file(path))
    data[pos] ^= 0x04
    fs.set_file_bytes(path, bytes(data))
    return bytes(data)


def write_batches(fs: MemoryFS, count: int, **kwargs: object) -> list[str]:
    storage = open_on(fs, **kwargs)
    for i in range(1, count + 1):
        storage.save(HardState(1, 1, i - 1), entries(i, i))
        storage.sync()
    paths = storage.wal_segments
    storage.close()
    return paths


# --- 1. a damaged last record is corruption, not a torn write -------------------------------


def test_a_synced_hard_state_with_one_flipped_bit_is_refused_then_repaired(
    fs: MemoryFS, caplog: pytest.LogCaptureFixture
) -> None:
    storage = open_on(fs)
    storage.save(HardState(4, 1, 0), entries(1, 2, term=4))
    storage.sync()
    storage.save(HardState(5, 2, 2))
    storage.sync()
    [path] = storage.wal_segments
    storage.close()
    vote = frames_of(fs, path)[-1]
    damaged = flip(fs, path, vote.end - 3)

    with pytest.raises(WALCorrupted) as info:
        open_on(fs)
    assert (info.value.path, info.value.offset) == (path, vote.offset)
    message = str(info.value)
    assert f"raft log damaged: {path} at offset {vote.offset}" in message
    assert "a record that was written whole no longer checks" in message
    assert "--repair-raft-log" in message
    assert fs.read_file(path) == damaged, "refusing changes nothing"

    with caplog.at_level(logging.WARNING, logger="shoal.manager.wal"):
        repaired = open_on(fs, repair=True)
    assert repaired.initial_state()[0] == HardState(4, 1, 0)
    assert log_of(repaired) == entries(1, 2, term=4)
    assert f"{path} cut at offset {vote.offset}" in caplog.text
    repaired.close()
    fs.crash("power")
    assert open_on(fs).initial_state()[0] == HardState(4, 1, 0), "the repair is durable"


def test_garbage_after_the_last_record_is_refused(fs: MemoryFS) -> None:
    [path] = write_batches(fs, 3)
    fs.set_file_bytes(path, fs.read_file(path) + b"\x01" * 40)
    with pytest.raises(WALCorrupted, match="bad magic"):
        open_on(fs)


def test_a_zeroed_tail_after_the_last_record_is_a_torn_write(fs: MemoryFS) -> None:
    [path] = write_batches(fs, 3)
    data = fs.read_file(path)
    fs.set_file_bytes(path, data + bytes(700))
    assert log_of(open_on(fs)) == entries(1, 3)


def test_repair_cuts_at_damage_in_an_older_segment_and_drops_all_later_segments(fs: MemoryFS) -> None:
    paths = write_batches(fs, 20, segment_bytes=300)
    assert len(paths) >= 4
    target = frames_of(fs, paths[1])[3]
    flip(fs, paths[1], target.offset + 30)
    with pytest.raises(WALCorrupted, match="not the last one"):
        open_on(fs)
    repaired = open_on(fs, repair=True, segment_bytes=300)
    log = log_of(repaired)
    assert 0 < len(log) < 20
    assert log == entries(1, len(log))
    assert not any(fs.exists(p) for p in paths[2:]), "every later segment is dropped"


def test_repair_on_real_files_through_disklog(tmp_path: Path) -> None:
    from shoal.manager.raftnode_storage import DiskLog

    log = DiskLog.open(tmp_path)
    log.save(HardState(3, 1, 0), entries(1, 2, term=3), None)
    log.sync()
    log.save(HardState(3, 1, 2), [], None)
    log.sync()
    [segment] = log.storage.wal_segments
    log.close()
    data = bytearray(Path(segment).read_bytes())
    data[-2] ^= 0x80
    Path(segment).write_bytes(bytes(data))
    with pytest.raises(WALCorrupted, match="--repair-raft-log"):
        DiskLog.open(tmp_path)
    repaired = DiskLog.open(tmp_path, repair=True)
    assert repaired.initial_state()[0] == HardState(3, 1, 0)


# --- 2. segments chain: a missing newest segment, or a cut older one, is seen -----------------


def test_a_deleted_newest_segment_is_refused_and_repair_cuts_the_pointer_to_it(fs: MemoryFS) -> None:
    paths = write_batches(fs, 20, segment_bytes=300)
    fs.unlink(paths[-1])
    fs.fsync_dir(WAL_DIR)
    with pytest.raises(WALCorrupted, match=f"segment {len(paths)} is missing"):
        open_on(fs, segment_bytes=300)
    repaired = open_on(fs, repair=True, segment_bytes=300)
    log = log_of(repaired)
    assert 0 < len(log) < 20
    assert log == entries(1, len(log))


def test_a_deleted_only_segment_is_refused_not_taken_for_a_new_node(fs: MemoryFS) -> None:
    [path] = write_batches(fs, 3)  # a first run: one segment, no snapshot, votes cast
    fs.unlink(path)
    fs.fsync_dir(WAL_DIR)
    with pytest.raises(WALCorrupted, match="every WAL segment is missing") as info:
        open_on(fs)
    assert "--repair-raft-log" not in str(info.value), "cutting cannot bring a lost log back"
    assert fs.listdir(WAL_DIR) == [], "refusing creates nothing"


def test_an_older_segment_cut_at_a_record_boundary_is_refused(fs: MemoryFS) -> None:
    paths = write_batches(fs, 20, segment_bytes=300)
    last_frame = frames_of(fs, paths[1])[-1]
    fs.set_file_bytes(paths[1], fs.read_file(paths[1])[: last_frame.offset])
    with pytest.raises(WALCorrupted):
        open_on(fs, segment_bytes=300)


def test_a_deleted_middle_segment_is_refused_and_repaired_at_the_gap(fs: MemoryFS) -> None:
    paths = write_batches(fs, 20, segment_bytes=300)
    fs.unlink(paths[2])
    with pytest.raises(WALCorrupted, match="segment 3 is missing"):
        open_on(fs, segment_bytes=300)
    repaired = open_on(fs, repair=True, segment_bytes=300)
    log = log_of(repaired)
    assert log == entries(1, len(log))
    assert not any(fs.exists(p) for p in paths[3:])


def test_a_wal_with_a_gap_still_exists_so_that_open_can_refuse_or_repair_it(fs: MemoryFS) -> None:
    paths = write_batches(fs, 20, segment_bytes=300)
    fs.unlink(paths[2])
    assert DiskStorage.exists("/data", file_ops=fs)


def test_a_segment_switch_cut_short_after_its_pointer_is_finished_at_recovery(fs: MemoryFS) -> None:
    """The crash came after the old segment named its successor but before the successor's
    rename was durable: recovery renames it."""
    paths = write_batches(fs, 10, segment_bytes=300)
    newest = paths[-1]
    fs.rename(newest, newest + ".tmp")
    assert log_of(open_on(fs, segment_bytes=300)) == entries(1, 10)
    assert fs.exists(newest)


def test_a_pending_segment_without_a_pointer_to_it_is_removed(fs: MemoryFS) -> None:
    paths = write_batches(fs, 10, segment_bytes=300)
    stale = f"{WAL_DIR}/{segment_name(len(paths) + 1, 11)}.tmp"
    fs.set_file_bytes(paths[-1], fs.read_file(paths[-1]))
    fd = fs.open_truncated(stale)
    fs.write(fd, b"never named")
    fs.close(fd)
    assert log_of(open_on(fs, segment_bytes=300)) == entries(1, 10)
    assert not fs.exists(stale)


# --- 3. sealed records are bound to their place ----------------------------------------------


def test_two_swapped_records_are_refused(fs: MemoryFS) -> None:
    [path] = write_batches(fs, 6)
    data = fs.read_file(path)
    frames = frames_of(fs, path)
    same_size = [f for f in frames if f.end - f.offset == frames[-1].end - frames[-1].offset]
    first, second = same_size[-3], same_size[-2]  # two hard states: commit 3 and commit 4
    swapped = (
        data[: first.offset]
        + data[second.offset : second.end]
        + data[first.end : second.offset]
        + data[first.offset : first.end]
        + data[second.end :]
    )
    fs.set_file_bytes(path, swapped)
    with pytest.raises(WALCorrupted, match="cannot decrypt"):
        open_on(fs)


def test_a_record_copied_into_another_segment_at_the_same_offset_is_refused(fs: MemoryFS) -> None:
    paths = write_batches(fs, 20, segment_bytes=300)
    source, target = paths[1], paths[2]
    target_frames = {(f.offset, f.end): f for f in frames_of(fs, target)}
    copied = next(f for f in frames_of(fs, source)[1:] if (f.offset, f.end) in target_frames and f.offset > 0)
    data = bytearray(fs.read_file(target))
    data[copied.offset : copied.end] = fs.read_file(source)[copied.offset : copied.end]
    fs.set_file_bytes(target, bytes(data))
    with pytest.raises(WALCorrupted, match="cannot decrypt"):
        open_on(fs, segment_bytes=300)


def test_a_record_replayed_later_in_its_own_segment_is_refused(fs: MemoryFS) -> None:
    [path] = write_batches(fs, 4)
    frames = frames_of(fs, path)
    data = fs.read_file(path)
    old_hard_state = data[frames[-5].offset : frames[-5].end]
    fs.set_file_bytes(path, data + old_hard_state)
    with pytest.raises(WALCorrupted):
        open_on(fs)


def test_a_snapshot_sealed_for_another_file_is_not_used(fs: MemoryFS) -> None:
    storage = open_on(fs, keep_old_snapshots=1)
    storage.save(HardState(1, 1, 6), entries(1, 6))
    storage.create_snapshot(3, ConfState(voters=(1,)), b"at-3")
    storage.create_snapshot(6, ConfState(voters=(1,)), b"at-6")
    files = storage._snapshots.files()
    old, new = fs.read_file(files[0].path), fs.read_file(files[1].path)
    header_end = frames_of(fs, files[1].path)[0].end  # the new file's header, the old file's sealed record
    fs.set_file_bytes(files[1].path, new[:header_end] + old[header_end:])
    with pytest.raises(WALCorrupted, match="cannot decrypt"):
        storage._snapshots.load(files[1])


# --- 4. a subkey seals a bounded number of records -------------------------------------------


def test_segments_are_cut_before_their_subkey_seals_more_than_the_limit(fs: MemoryFS) -> None:
    from shoal.manager.wal.fileheader import WAL_FILE, decode_file_header

    limit = 9
    storage = open_on(fs, records_per_segment=limit)
    for i in range(1, 31):
        storage.save(HardState(1, 1, i - 1), entries(i, i))
        storage.sync()
    storage.save(HardState(1, 1, 30), entries(31, 34))  # with its preamble and closing record: the limit
    storage.sync()
    paths = storage.wal_segments
    assert len(paths) >= 30 * 2 // limit
    salts = set()
    for path in paths:
        head, *sealed = frames_of(fs, path)
        assert len(sealed) <= limit, path
        salts.add(decode_file_header(head.payload, WAL_FILE).salt)
    assert len(salts) == len(paths), "every segment has its own subkey"
    with pytest.raises(ValueError, match="subkey budget"):
        storage.save(None, entries(35, 35 + limit))
    storage.close()
    assert log_of(open_on(fs, records_per_segment=limit)) == entries(1, 34)


# --- 5. an older on-disk format is refused ----------------------------------------------------


def v1_record(payload: bytes) -> bytes:
    prefix = struct.pack("<HBBIQI", 0x5EA1, 1, 0, len(payload), 0, zlib.crc32(payload))
    return prefix + struct.pack("<I", zlib.crc32(prefix)) + payload


def test_a_log_in_the_previous_format_is_refused_clearly(fs: MemoryFS) -> None:
    fs.makedirs(WAL_DIR)
    path = f"{WAL_DIR}/{segment_name(1, 1)}"
    fd = fs.open_truncated(path)
    fs.write(fd, v1_record(b"\x01" * 60) + v1_record(b"\x02" * 60))
    fs.fsync(fd)
    fs.close(fd)
    before = copy.deepcopy(fs.read_file(path))
    with pytest.raises(errors.WALFormatError) as info:  # type: ignore[attr-defined,unused-ignore]
        open_on(fs)
    assert "on-disk format 1; this shoald reads only format 2" in str(info.value)
    assert fs.read_file(path) == before
    with pytest.raises(errors.WALFormatError):  # type: ignore[attr-defined,unused-ignore]
        open_on(fs, repair=True)


def test_an_installed_snapshot_survives_the_new_format(fs: MemoryFS) -> None:
    storage = open_on(fs)
    snap = Snapshot(SnapshotMetadata(5, 2, ConfState(voters=(1,))), b"leader")
    storage.save(HardState(2, 0, 5), (), snap)
    storage.sync()
    fs.crash("power")
    assert DiskStorage.open("/data", file_ops=fs, keys=KEY).snapshot() == snap
