"""DiskStorage: the raft Storage port, saved and recovered through the WAL and snapshots."""

from __future__ import annotations

import os
import shutil
import stat
import threading
from pathlib import Path

import pytest
from conftest import KEY, entries, log_of, open_on

from shoal.manager.wal.crypto import DataKey, KeyRing
from shoal.manager.wal.errors import WALBroken, WALCorrupted, WALWriteError, WrongDataKey
from shoal.manager.wal.framing import scan
from shoal.manager.wal.keys import KeyFileError
from shoal.manager.wal.storage import DiskStorage
from shoal.raft.errors import Compacted, SnapOutOfDate, Unavailable
from shoal.raft.types import ConfState, Entry, HardState, Snapshot, SnapshotMetadata
from shoal.testing.memfs import MemoryFS

CONF = ConfState(voters=(1, 2, 3))


def test_a_new_storage_is_empty(fs: MemoryFS) -> None:
    storage = open_on(fs, metadata=b"member-1")
    assert storage.is_new
    assert storage.initial_state() == (HardState(), ConfState())
    assert (storage.first_index(), storage.last_index()) == (1, 0)
    assert storage.snapshot().is_empty()
    assert storage.metadata == b"member-1"


def test_saved_and_synced_state_survives_power_loss(fs: MemoryFS) -> None:
    storage = open_on(fs, metadata=b"member-1")
    storage.save(HardState(1, 1, 0), entries(1, 3))
    storage.save(HardState(1, 1, 2), entries(4, 5))
    storage.sync()
    fs.crash("power")
    again = open_on(fs)
    assert not again.is_new
    assert again.metadata == b"member-1"
    assert log_of(again) == entries(1, 5)
    assert again.initial_state()[0] == HardState(1, 1, 2)
    assert again.term(5) == 1


def test_conflicting_entries_replace_the_suffix(fs: MemoryFS) -> None:
    storage = open_on(fs)
    storage.save(HardState(1, 1, 1), entries(1, 5))
    storage.save(HardState(2, 0, 1), entries(3, 4, term=2))
    storage.sync()
    expected = entries(1, 2) + entries(3, 4, term=2)
    assert log_of(storage) == expected
    fs.crash("power")
    assert log_of(open_on(fs)) == expected


def test_a_gap_is_refused_before_anything_is_written(fs: MemoryFS) -> None:
    storage = open_on(fs)
    storage.save(None, entries(1, 2))
    with pytest.raises(Unavailable, match="gap"):
        storage.save(None, entries(4, 5))
    storage.sync()
    fs.crash("power")
    assert log_of(open_on(fs)) == entries(1, 2)


def test_snapshot_then_compaction_releases_segments(fs: MemoryFS) -> None:
    storage = open_on(fs, segment_bytes=400)
    for i in range(1, 41):
        storage.save(HardState(1, 1, i), entries(i, i))
        storage.sync()
    before = len(storage.wal_segments)
    assert before > 5
    snap = storage.create_snapshot(30, CONF, b"state@30")
    assert snap.metadata == SnapshotMetadata(30, 1, CONF)
    storage.compact(25)
    assert storage.first_index() == 26
    assert len(storage.wal_segments) < before
    with pytest.raises(Compacted):
        storage.entries(20, 26)
    fs.crash("power")
    again = open_on(fs)
    assert again.snapshot() == Snapshot(SnapshotMetadata(30, 1, CONF), b"state@30")
    assert again.first_index() == 31
    assert log_of(again) == entries(31, 40)
    assert again.initial_state() == (HardState(1, 1, 40), CONF)


def test_snapshot_rules(fs: MemoryFS) -> None:
    storage = open_on(fs)
    storage.save(HardState(1, 1, 3), entries(1, 5))
    with pytest.raises(Unavailable, match="commit"):
        storage.create_snapshot(4, CONF, b"")
    storage.create_snapshot(3, CONF, b"s3")
    with pytest.raises(SnapOutOfDate):
        storage.create_snapshot(3, CONF, b"s3")
    with pytest.raises(Unavailable, match="past the latest snapshot"):
        storage.compact(4)


def test_an_installed_snapshot_replaces_the_log(fs: MemoryFS) -> None:
    storage = open_on(fs)
    storage.save(HardState(1, 1, 2), entries(1, 8))
    storage.sync()
    leader_snap = Snapshot(SnapshotMetadata(6, 3, CONF), b"leader-state")
    storage.save(HardState(3, 0, 6), (), leader_snap)
    storage.sync()
    assert (storage.first_index(), storage.last_index()) == (7, 6)
    fs.crash("power")
    again = open_on(fs)
    assert again.snapshot() == leader_snap
    assert (again.first_index(), again.last_index()) == (7, 6)
    assert again.initial_state()[0] == HardState(3, 0, 6)
    again.save(None, entries(7, 9, term=3))
    again.sync()
    fs.crash("power")
    assert log_of(open_on(fs)) == entries(7, 9, term=3)


def test_an_installed_snapshot_is_ignored_until_its_mark_is_synced(fs: MemoryFS) -> None:
    storage = open_on(fs)
    storage.save(HardState(1, 1, 2), entries(1, 3))
    storage.sync()
    storage.save(HardState(3, 0, 9), (), Snapshot(SnapshotMetadata(9, 3, CONF), b"x"))
    fs.crash("power")
    again = open_on(fs)
    assert again.snapshot().is_empty()
    assert log_of(again) == entries(1, 3)


def test_old_snapshots_are_pruned_keeping_n(fs: MemoryFS) -> None:
    storage = open_on(fs, keep_old_snapshots=1)
    storage.save(HardState(1, 1, 10), entries(1, 10))
    for index in (2, 4, 6, 8):
        storage.create_snapshot(index, CONF, b"s%d" % index)
    assert [f.index for f in storage._snapshots.files()] == [6, 8]


def test_wrong_key_fails_clearly(fs: MemoryFS) -> None:
    storage = open_on(fs)
    storage.save(HardState(1, 1, 0), entries(1, 1))
    storage.sync()
    with pytest.raises(WrongDataKey, match="wrong data key"):
        open_on(fs, keys=KeyRing(DataKey.generate()))


def test_a_retired_key_still_reads_old_records(fs: MemoryFS) -> None:
    storage = open_on(fs)
    storage.save(HardState(1, 1, 0), entries(1, 2))
    storage.sync()
    storage.close()
    rotated = open_on(fs, keys=KeyRing(DataKey.generate(), [KEY.active]))
    rotated.save(None, entries(3, 3))
    rotated.sync()
    fs.crash("power")
    assert log_of(open_on(fs, keys=KeyRing(rotated_key(rotated), [KEY.active]))) == entries(1, 3)


def rotated_key(storage: DiskStorage) -> DataKey:
    return storage._wal._sealing.keys.active


def test_disk_full_fails_the_save_and_keeps_the_synced_state(fs: MemoryFS) -> None:
    storage = open_on(fs)
    storage.save(HardState(1, 1, 1), entries(1, 2))
    storage.sync()
    fs.write_budget = 30
    with pytest.raises(WALWriteError, match="No space left"):
        storage.save(HardState(1, 1, 2), entries(3, 6))
    assert storage.last_index() == 2
    fs.write_budget = None
    storage.save(HardState(1, 1, 2), entries(3, 4))
    storage.sync()
    fs.crash("power")
    assert log_of(open_on(fs)) == entries(1, 4)


def test_a_failed_fsync_breaks_the_wal_until_recovery(fs: MemoryFS) -> None:
    storage = open_on(fs)
    storage.save(HardState(1, 1, 1), entries(1, 2))
    storage.sync()
    storage.save(None, entries(3, 3))
    fs.fail_fsync = True
    with pytest.raises(WALWriteError, match="fsync failed"):
        storage.sync()
    fs.fail_fsync = False
    with pytest.raises(WALBroken):
        storage.save(None, entries(4, 4))
    fs.crash("power")
    assert log_of(open_on(fs)) == entries(1, 2)


def test_missing_key_file_with_a_wal_is_refused(fs: MemoryFS) -> None:
    storage = DiskStorage.open("/data", file_ops=fs)
    storage.save(None, entries(1, 1))
    storage.sync()
    fs.unlink("/data/raft/keys/raft-dek.json")
    with pytest.raises(KeyFileError, match="missing"):
        DiskStorage.open("/data", file_ops=fs)


def test_snapshots_without_a_wal_are_refused(fs: MemoryFS) -> None:
    storage = open_on(fs)
    storage.save(HardState(1, 1, 1), entries(1, 1))
    storage.create_snapshot(1, CONF, b"")
    for path in storage.wal_segments:
        fs.unlink(path)
    with pytest.raises(WALCorrupted, match="no WAL segments"):
        open_on(fs)


def test_a_damaged_newest_snapshot_is_refused_when_the_log_no_longer_covers_the_gap(fs: MemoryFS) -> None:
    storage = open_on(fs, segment_bytes=300, keep_old_snapshots=1)
    for i in range(1, 31):
        storage.save(HardState(1, 1, i), entries(i, i))
        storage.sync()
    storage.create_snapshot(10, CONF, b"s10")
    storage.create_snapshot(25, CONF, b"s25")
    storage.compact(25)
    newest = storage._snapshots.files()[-1].path
    fs.set_file_bytes(newest, fs.read_file(newest)[:-1] + b"\x00")
    with pytest.raises(WALCorrupted, match="does not follow"):
        open_on(fs)


def test_a_damaged_newest_snapshot_falls_back_when_the_log_still_covers_it(fs: MemoryFS) -> None:
    storage = open_on(fs, keep_old_snapshots=1)
    storage.save(HardState(1, 1, 10), entries(1, 10))
    storage.create_snapshot(5, CONF, b"s5")
    storage.create_snapshot(8, CONF, b"s8")
    newest = storage._snapshots.files()[-1].path
    fs.set_file_bytes(newest, fs.read_file(newest)[:-1] + b"\x00")
    again = open_on(fs)
    assert again.snapshot().data == b"s5"
    assert log_of(again) == entries(6, 10)


def test_real_files_and_permissions(tmp_path: Path) -> None:
    storage = DiskStorage.open(tmp_path, metadata=b"m")
    storage.save(HardState(1, 1, 1), entries(1, 3))
    storage.sync()
    storage.create_snapshot(1, CONF, b"s")
    storage.close()
    key_file = tmp_path / "raft" / "keys" / "raft-dek.json"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "raft" / "keys").st_mode) == 0o700
    [segment] = os.listdir(tmp_path / "raft" / "wal")
    assert b"e2t1" not in (tmp_path / "raft" / "wal" / segment).read_bytes()
    assert os.listdir(tmp_path / "raft" / "snap") == ["0000000000000001-0000000000000001.snap"]
    again = DiskStorage.open(tmp_path)
    assert log_of(again) == [Entry(1, 2, data=b"e2t1"), Entry(1, 3, data=b"e3t1")]
    assert again.metadata == b"m"


def test_disk_full_while_writing_a_snapshot(fs: MemoryFS) -> None:
    storage = open_on(fs)
    storage.save(HardState(1, 1, 3), entries(1, 3))
    storage.sync()
    fs.write_budget = 10
    with pytest.raises(WALWriteError, match="writing snapshot failed"):
        storage.create_snapshot(3, CONF, b"big" * 100)
    fs.write_budget = None
    assert storage.snapshot().is_empty()
    assert not [n for n in fs.listdir("/data/raft/snap") if n.endswith(".tmp")]
    storage.create_snapshot(3, CONF, b"ok")
    fs.crash("power")
    assert open_on(fs).snapshot().data == b"ok"


def test_a_wal_that_never_saved_anything_is_still_new(fs: MemoryFS) -> None:
    open_on(fs, metadata=b"m")
    fs.crash("power")
    again = open_on(fs)
    assert again.is_new
    assert again.metadata == b"m"


def test_a_missing_segment_in_the_middle_is_refused(fs: MemoryFS) -> None:
    storage = open_on(fs, segment_bytes=300)
    for i in range(1, 20):
        storage.save(HardState(1, 1, i), entries(i, i))
    storage.sync()
    paths = storage.wal_segments
    assert len(paths) >= 3
    fs.unlink(paths[1])
    with pytest.raises(WALCorrupted, match="segment 2 is missing"):
        open_on(fs)


def test_a_missing_first_segment_without_a_snapshot_is_refused(fs: MemoryFS) -> None:
    storage = open_on(fs, segment_bytes=300)
    for i in range(1, 20):
        storage.save(HardState(1, 1, i), entries(i, i))
    storage.sync()
    fs.unlink(storage.wal_segments[0])
    with pytest.raises(WALCorrupted, match="does not follow the log's last index 0"):
        open_on(fs)


def test_torn_tail_on_real_files_is_cut_and_appending_goes_on(tmp_path: Path) -> None:
    base = tmp_path / "base"
    storage = DiskStorage.open(base, keys=KEY)
    for i in range(1, 6):
        storage.save(HardState(1, 1, i - 1), entries(i, i))
        storage.sync()
    [segment] = storage.wal_segments
    storage.close()
    name = os.path.relpath(segment, base)
    full = Path(segment).read_bytes()
    frames = scan(full, path=segment, final=True).frames  # file header, segment header, (entry i, hard state)...
    hs5, entry5 = frames[-1], frames[-2]
    for cut, last in ((hs5.end - 1, 5), (hs5.offset + 3, 5), (entry5.end - 1, 4), (entry5.offset + 30, 4)):
        root = tmp_path / f"cut-{cut}"
        shutil.copytree(base, root)
        (root / name).write_bytes(full[:cut])
        again = DiskStorage.open(root, keys=KEY)
        assert log_of(again) == entries(1, last)
        assert len(again.wal_segments) == 2, "recovery starts a new segment"
        again.save(None, entries(last + 1, last + 1, tag="new"))
        again.sync()
        again.close()
        after = (root / name).read_bytes()  # cut at the torn record, then closed with a NextSegment
        assert after.startswith(full[: entry5.end if last == 5 else entry5.offset])
        assert scan(after, path=segment, final=False).torn is None
        assert log_of(DiskStorage.open(root, keys=KEY)) == entries(1, last) + entries(last + 1, last + 1, tag="new")


class CountingFS(MemoryFS):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, fd: int, data: bytes) -> int:
        self.writes += 1
        return super().write(fd, data)


def test_one_write_and_one_fsync_per_ready_batch() -> None:
    fs = CountingFS()
    storage = open_on(fs, segment_bytes=4000)
    storage.save(HardState(1, 1, 0), entries(1, 1))
    storage.sync()
    for i in range(2, 60):
        writes, fsyncs, dir_fsyncs = fs.writes, fs.fsyncs, fs.dir_fsyncs
        segments = len(storage.wal_segments)
        storage.save(HardState(1, 1, i - 1), entries(i, i))
        storage.sync()
        if len(storage.wal_segments) == segments:
            assert (fs.writes - writes, fs.fsyncs - fsyncs, fs.dir_fsyncs - dir_fsyncs) == (1, 1, 0)
        else:  # a new segment (the old one was synced already): its preamble, written and synced under
            # its pending name with the directory, the old one's NextSegment (synced), then the batch,
            # synced with the directory that holds the new segment's real name
            assert (fs.writes - writes, fs.fsyncs - fsyncs, fs.dir_fsyncs - dir_fsyncs) == (3, 3, 2)
    assert len(storage.wal_segments) > 1
    fsyncs = fs.fsyncs
    storage.sync()
    assert fs.fsyncs == fsyncs, "nothing new to sync costs no fsync"


def test_exists_tells_restart_from_first_start(fs: MemoryFS) -> None:
    assert not DiskStorage.exists("/data", file_ops=fs)
    open_on(fs)
    assert DiskStorage.exists("/data", file_ops=fs)


class StallingFS(MemoryFS):
    """fsync blocks until released, as a slow disk would."""

    def __init__(self) -> None:
        super().__init__()
        self.stall = False
        self.in_fsync = threading.Event()
        self.release = threading.Event()

    def fsync(self, fd: int) -> None:
        if self.stall:
            self.in_fsync.set()
            self.release.wait(30)
        super().fsync(fd)


def test_reads_do_not_wait_for_an_fsync_in_another_thread() -> None:
    fs = StallingFS()
    storage = open_on(fs)
    storage.save(HardState(1, 1, 0), entries(1, 3))
    fs.stall = True
    syncer = threading.Thread(target=storage.sync)
    syncer.start()
    assert fs.in_fsync.wait(30)
    assert (storage.last_index(), storage.term(3), storage.entries(1, 4)) == (3, 1, entries(1, 3))
    assert syncer.is_alive(), "the reads above returned while the fsync was still stuck"
    fs.release.set()
    syncer.join()


def test_a_commit_past_the_log_is_refused_before_it_is_written(fs: MemoryFS) -> None:
    storage = open_on(fs)
    storage.save(HardState(1, 1, 0), entries(1, 2))
    with pytest.raises(Unavailable, match="past the last index 2"):
        storage.save(HardState(1, 1, 3))
    storage.save(HardState(1, 1, 3), entries(3, 3))
    storage.sync()
    fs.crash("power")
    assert open_on(fs).initial_state()[0] == HardState(1, 1, 3)
