"""Crash tests: cut files, flipped bits, torn write-back, a full disk, power cuts at every step
of snapshotting and compaction. Recovery must return everything that was synced, never a
partial entry, and refuse (rather than drop) synced data that is followed by valid data."""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from typing import Any

import pytest
from conftest import entries, log_of, open_on

from shoal.manager.wal.errors import WALBroken, WALCorrupted, WALWriteError
from shoal.manager.wal.framing import Frame, scan
from shoal.raft.types import ConfState, Entry, HardState, Snapshot, SnapshotMetadata
from shoal.testing.memfs import CrashKind, MemoryFS

CONF = ConfState(voters=(1,))


def synced_batches(fs: MemoryFS, count: int, **kwargs: Any) -> list[str]:
    """``count`` batches of [entry i, hard state commit i-1], each synced; the segment paths."""
    storage = open_on(fs, **kwargs)
    for i in range(1, count + 1):
        storage.save(HardState(1, 1, i - 1), entries(i, i))
        storage.sync()
    paths = storage.wal_segments
    storage.close()
    return paths


def frames_of(fs: MemoryFS, path: str) -> list[Frame]:
    return scan(fs.read_file(path), path=path, final=True).frames


def test_cut_at_every_offset_of_the_last_records() -> None:
    fs = MemoryFS()
    [path] = synced_batches(fs, 12)
    full = fs.read_file(path)
    frames = frames_of(fs, path)  # file header, segment header, then (entry i, hard state) per batch
    for cut in range(frames[-6].offset, len(full) + 1):
        crashed = copy.deepcopy(fs)
        crashed.set_file_bytes(path, full[:cut])
        storage = open_on(crashed)
        complete = [f for f in frames if f.end <= cut]
        batches_done, entry_written = divmod(len(complete) - 2, 2)
        last_index = batches_done + entry_written
        assert log_of(storage) == entries(1, last_index), cut
        assert storage.initial_state()[0] == HardState(1, 1, batches_done - 1), cut
        storage.save(None, entries(last_index + 1, last_index + 1, tag="after"))
        storage.sync()
        crashed.crash("power")
        assert log_of(open_on(crashed))[-1] == entries(last_index + 1, last_index + 1, tag="after")[0]


def test_flipped_bits_anywhere_are_refused_never_taken_for_a_torn_write() -> None:
    """A flipped bit leaves a record whole (sound length, nothing zeroed): that is damage to
    synced data wherever it sits, the final record of the newest segment included."""
    fs = MemoryFS()
    paths = synced_batches(fs, 30, segment_bytes=900)
    assert len(paths) >= 3
    rng = random.Random(7)
    for path in paths:
        data = fs.read_file(path)
        frames = frames_of(fs, path)
        positions = list(range(frames[-3].offset, len(data))) + rng.sample(range(len(data)), 40)
        for pos in positions:
            damaged = bytearray(data)
            damaged[pos] ^= 1 << (pos % 8)
            crashed = copy.deepcopy(fs)
            crashed.set_file_bytes(path, bytes(damaged))
            with pytest.raises(WALCorrupted) as info:
                open_on(crashed)
            assert info.value.path == path, pos
            damaged_record = max(f.offset for f in frames if f.offset <= pos)
            assert info.value.offset == damaged_record, pos
            assert crashed.read_file(path) == bytes(damaged), "refusing to start changes nothing"


@pytest.mark.parametrize("seed", range(60))
def test_torn_write_back_of_unsynced_batches_recovers_a_prefix(seed: int) -> None:
    rng = random.Random(seed)
    fs = MemoryFS()
    storage = open_on(fs, segment_bytes=rng.choice([700, 4000, 1 << 20]))
    synced = rng.randint(1, 15)
    written = synced + rng.randint(1, 25)
    for i in range(1, written + 1):
        storage.save(HardState(1, 1, i - 1), [Entry(1, i, data=rng.randbytes(rng.randint(0, 300)))])
        if i <= synced:
            storage.sync()
    expected = log_of(storage)
    fs.crash("torn", rng)
    recovered = open_on(fs)
    log = log_of(recovered)
    assert expected[:synced] == log[:synced]
    assert log == expected[: len(log)]
    recovered.save(None, [Entry(1, len(log) + 1, data=b"next")])
    recovered.sync()
    fs.crash("power")
    assert log_of(open_on(fs)) == [*log, Entry(1, len(log) + 1, data=b"next")]


def test_unsynced_writes_are_lost_on_power_loss_and_kept_on_process_crash() -> None:
    for kind, expected_last in (("power", 3), ("process", 5)):
        fs = MemoryFS()
        storage = open_on(fs)
        storage.save(HardState(1, 1, 2), entries(1, 3))
        storage.sync()
        storage.save(HardState(1, 1, 4), entries(4, 5))
        fs.crash(kind)  # type: ignore[arg-type]
        assert log_of(open_on(fs)) == entries(1, expected_last)


@pytest.mark.parametrize("segment_bytes", [500, 1 << 20])
def test_disk_full_at_every_byte_of_a_batch(segment_bytes: int) -> None:
    base = MemoryFS()
    synced_batches(base, 6, segment_bytes=segment_bytes)
    for budget in range(0, 700, 3):
        fs = copy.deepcopy(base)
        storage = open_on(fs, segment_bytes=segment_bytes)
        fs.write_budget = budget
        try:
            storage.save(HardState(1, 1, 6), entries(7, 9, tag="x" * 40))
            storage.sync()
            durable = True
        except WALWriteError as exc:
            assert "No space left on device" in str(exc)
            durable = False
            with pytest.raises((WALWriteError, WALBroken)):
                storage.save(HardState(1, 1, 6), entries(7, 7))
                storage.sync()
        fs.crash("power")
        recovered = log_of(open_on(fs))
        assert recovered == entries(1, 6) + (entries(7, 9, tag="x" * 40) if durable else []), budget


class PowerCut(Exception):
    pass


class CutAfter:
    """FileOps over a MemoryFS that stops the world at the n-th mutating call."""

    MUTATING = frozenset(
        {"open_append", "open_truncated", "write", "fsync", "truncate", "rename", "unlink", "fsync_dir", "makedirs"}
    )

    def __init__(self, fs: MemoryFS, cut_at: int) -> None:
        self.fs = fs
        self.calls = 0
        self.cut_at = cut_at

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.fs, name)
        if name not in self.MUTATING:
            return method  # type: ignore[no-any-return]

        def counted(*args: Any) -> Any:
            self.calls += 1
            if self.calls == self.cut_at:
                raise PowerCut(name)
            return method(*args)

        return counted


def run_with_cut(base: MemoryFS, cut_at: int, work: Callable[[Any], None]) -> tuple[MemoryFS, bool]:
    fs = copy.deepcopy(base)
    ops = CutAfter(fs, cut_at)
    try:
        work(ops)
    except PowerCut:
        return fs, False
    return fs, True


def snapshot_and_compact(ops: Any) -> None:
    storage = open_on(ops, segment_bytes=400)
    storage.create_snapshot(30, CONF, b"state@30")
    storage.compact(28)
    storage.save(HardState(1, 1, 40), entries(41, 42))
    storage.sync()


def install_leader_snapshot(ops: Any) -> None:
    storage = open_on(ops, segment_bytes=400)
    storage.save(HardState(2, 0, 60), (), Snapshot(SnapshotMetadata(60, 2, CONF), b"leader@60"))
    storage.sync()
    storage.compact(60)
    storage.save(HardState(2, 0, 60), entries(61, 62, term=2))
    storage.sync()


@pytest.mark.parametrize("kind", ["power", "torn"])
def test_power_cut_at_every_step_of_snapshot_and_compaction(kind: CrashKind) -> None:
    base = MemoryFS()
    synced_batches(base, 40, segment_bytes=400)
    full = entries(1, 42)
    for cut_at in range(1, 200):
        fs, finished = run_with_cut(base, cut_at, snapshot_and_compact)
        fs.crash(kind, random.Random(cut_at))
        storage = open_on(fs)
        snap = storage.snapshot()
        assert snap.metadata.index in (0, 30)
        if snap.metadata.index:
            assert snap.data == b"state@30"
        log = log_of(storage)
        assert storage.first_index() == snap.metadata.index + 1
        assert log == full[snap.metadata.index : snap.metadata.index + len(log)]
        assert storage.last_index() >= 40
        if finished:
            assert storage.last_index() == 42
            break
    else:
        pytest.fail("the work never finished")


@pytest.mark.parametrize("kind", ["power", "torn"])
def test_power_cut_at_every_step_of_installing_a_leader_snapshot(kind: CrashKind) -> None:
    base = MemoryFS()
    synced_batches(base, 40, segment_bytes=400)
    for cut_at in range(1, 200):
        fs, finished = run_with_cut(base, cut_at, install_leader_snapshot)
        fs.crash(kind, random.Random(cut_at))
        storage = open_on(fs)
        if storage.snapshot().is_empty():
            assert log_of(storage) == entries(1, 40)
            continue
        assert storage.snapshot().data == b"leader@60"
        assert storage.initial_state()[0].commit == 60
        log = log_of(storage)
        assert log == entries(61, 62, term=2)[: len(log)]
        if finished:
            assert len(log) == 2
            break
    else:
        pytest.fail("the work never finished")


def recover_and_switch_segments(ops: Any) -> None:
    storage = open_on(ops, segment_bytes=300)  # recovery itself starts a segment
    for i in range(11, 19):
        storage.save(HardState(1, 1, i - 1), entries(i, i))
        storage.sync()


@pytest.mark.parametrize("kind", ["power", "torn"])
def test_power_cut_at_every_step_of_segment_switches(kind: CrashKind) -> None:
    """Whatever step of a switch the crash hits (pending file, its fsync, the pointer in the old
    segment, the rename), recovery sees an intact chain with every synced entry, twice over."""
    base = MemoryFS()
    synced_batches(base, 10, segment_bytes=300)
    for cut_at in range(1, 400):
        fs, finished = run_with_cut(base, cut_at, recover_and_switch_segments)
        fs.crash(kind, random.Random(cut_at))
        storage = open_on(fs, segment_bytes=300)
        log = log_of(storage)
        assert len(log) >= 10, cut_at
        assert log == entries(1, len(log)), cut_at
        storage.close()
        assert log_of(open_on(fs, segment_bytes=300)) == log, cut_at
        if finished:
            assert len(log) == 18
            break
    else:
        pytest.fail("the work never finished")


@pytest.mark.parametrize("kind", ["power", "torn"])
def test_power_cut_at_every_step_of_a_repair(kind: CrashKind) -> None:
    """A repair cut short by a crash is finished by the next one, with the same result."""
    base = MemoryFS()
    paths = synced_batches(base, 20, segment_bytes=300)
    damaged = bytearray(base.read_file(paths[1]))
    damaged[frames_of(base, paths[1])[3].offset + 30] ^= 0x10
    base.set_file_bytes(paths[1], bytes(damaged))
    expected = log_of(open_on(copy.deepcopy(base), segment_bytes=300, repair=True))
    assert 0 < len(expected) < 20
    for cut_at in range(1, 100):
        fs, finished = run_with_cut(base, cut_at, lambda ops: open_on(ops, segment_bytes=300, repair=True).close())
        fs.crash(kind, random.Random(cut_at))
        assert log_of(open_on(fs, segment_bytes=300, repair=True)) == expected, cut_at
        if finished:
            break
    else:
        pytest.fail("the repair never finished")
