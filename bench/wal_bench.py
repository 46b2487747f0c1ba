"""WAL micro benchmark: appends + fsync per second at batch sizes 1, 16 and 256.

Each round saves one batch of entries (plus a hard state, as a Ready does) and syncs it.
The reference is the same bytes written with one os.write + os.fsync per batch and no framing or
encryption, so the ratio shows what the WAL itself costs on top of the disk.

    python bench/wal_bench.py [--dir /var/tmp] [--seconds 2] [--entry-bytes 128]

Prints results; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from shoal.manager.wal.crypto import DataKey, KeyRing
from shoal.manager.wal.storage import DiskStorage
from shoal.raft.types import Entry, HardState


def bench_wal(directory: str, batch: int, seconds: float, entry_bytes: int) -> tuple[int, float, float, float]:
    """Rounds done, elapsed seconds, and seconds spent in save and in sync."""
    storage = DiskStorage.open(directory, keys=KeyRing(DataKey.generate()))
    payload = os.urandom(entry_bytes)
    index, rounds = 1, 0
    save_time = sync_time = 0.0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        entries = [Entry(1, i, data=payload) for i in range(index, index + batch)]
        index += batch
        t0 = time.perf_counter()
        storage.save(HardState(1, 1, index - 1), entries)
        t1 = time.perf_counter()
        storage.sync()
        t2 = time.perf_counter()
        save_time += t1 - t0
        sync_time += t2 - t1
        rounds += 1
    elapsed = time.perf_counter() - start
    storage.close()
    return rounds, elapsed, save_time, sync_time


def bench_raw(directory: str, batch: int, seconds: float, entry_bytes: int) -> tuple[int, float]:
    fd = os.open(os.path.join(directory, "raw.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    blob = os.urandom(entry_bytes + 24) * batch
    rounds = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        os.write(fd, blob)
        os.fsync(fd)
        rounds += 1
    elapsed = time.perf_counter() - start
    os.close(fd)
    return rounds, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--entry-bytes", type=int, default=128)
    args = parser.parse_args()
    print(f"entry size {args.entry_bytes} B, {args.seconds:.1f} s per case, dir {args.dir or tempfile.gettempdir()}")
    columns = ("batch", "fsyncs/s", "entries/s", "save µs", "sync µs", "raw fsyncs/s", "wal/raw")
    widths = (5, 9, 10, 8, 8, 13, 8)
    print(" ".join(f"{name:>{width}}" for name, width in zip(columns, widths, strict=True)))
    for batch in (1, 16, 256):
        with tempfile.TemporaryDirectory(dir=args.dir) as wal_dir, tempfile.TemporaryDirectory(dir=args.dir) as raw_dir:
            rounds, elapsed, save_s, sync_s = bench_wal(wal_dir, batch, args.seconds, args.entry_bytes)
            raw_rounds, raw_elapsed = bench_raw(raw_dir, batch, args.seconds, args.entry_bytes)
        rate = rounds / elapsed
        raw_rate = raw_rounds / raw_elapsed
        print(
            f"{batch:>5} {rate:>9.0f} {rate * batch:>10.0f} {save_s / rounds * 1e6:>8.0f} "
            f"{sync_s / rounds * 1e6:>8.0f} {raw_rate:>13.0f} {rate / raw_rate:>8.2f}"
        )


if __name__ == "__main__":
    main()
