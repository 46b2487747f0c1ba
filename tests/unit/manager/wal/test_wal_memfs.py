"""The fault-injecting file system obeys the durability rules the WAL depends on."""

from __future__ import annotations

import errno
import random

import pytest

from shoal.manager.wal.fileops import write_all
from shoal.testing.memfs import MemoryFS


def fs_with_dir() -> MemoryFS:
    fs = MemoryFS()
    fs.makedirs("/d")
    return fs


def test_power_loss_keeps_only_fsynced_bytes_of_dir_synced_files() -> None:
    fs = fs_with_dir()
    fd = fs.open_append("/d/a")
    fs.write(fd, b"synced")
    fs.fsync(fd)
    fs.fsync_dir("/d")
    fs.write(fd, b"-lost")
    other = fs.open_append("/d/b")
    fs.write(other, b"never in dir")
    fs.fsync(other)
    fs.crash("power")
    assert fs.listdir("/d") == ["a"]
    assert fs.read_file("/d/a") == b"synced"


def test_process_crash_loses_nothing() -> None:
    fs = fs_with_dir()
    fd = fs.open_append("/d/a")
    fs.write(fd, b"buffered")
    fs.crash("process")
    assert fs.read_file("/d/a") == b"buffered"
    with pytest.raises(OSError):
        fs.write(fd, b"x")


def test_rename_and_unlink_are_durable_only_after_dir_fsync() -> None:
    fs = fs_with_dir()
    fd = fs.open_truncated("/d/tmp")
    fs.write(fd, b"data")
    fs.fsync(fd)
    fs.fsync_dir("/d")
    fs.rename("/d/tmp", "/d/final")
    fs.crash("power")
    assert fs.listdir("/d") == ["tmp"]
    fs.rename("/d/tmp", "/d/final")
    fs.fsync_dir("/d")
    fs.unlink("/d/final")
    fs.crash("power")
    assert fs.listdir("/d") == ["final"]
    assert fs.read_file("/d/final") == b"data"


def test_write_budget_gives_a_short_write_then_enospc() -> None:
    fs = fs_with_dir()
    fs.write_budget = 5
    fd = fs.open_append("/d/a")
    assert fs.write(fd, b"0123456789") == 5
    with pytest.raises(OSError) as info:
        write_all(fs, fd, b"more")
    assert info.value.errno == errno.ENOSPC


def test_torn_crash_keeps_a_prefix_or_zeroed_sectors_of_unsynced_data() -> None:
    for seed in range(100):
        fs = fs_with_dir()
        fd = fs.open_append("/d/a")
        fs.write(fd, b"S" * 100)
        fs.fsync(fd)
        fs.fsync_dir("/d")
        fs.write(fd, b"U" * 3000)
        fs.crash("torn", random.Random(seed))
        data = fs.read_file("/d/a")
        assert data[:100] == b"S" * 100
        assert len(data) <= 3100
        for sector in range(0, len(data), 512):  # each sector was written back whole, or not at all
            share = data[max(sector, 100) : sector + 512]
            assert share in (b"U" * len(share), bytes(len(share))), (seed, sector)
