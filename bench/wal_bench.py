"""WAL micro benchmark: appends + fsync per second at batch sizes 1, 16 and 256.

Each WAL round saves one batch of entries plus a hard state (as a Ready does) and syncs it. The
reference, in the same run, is plain os.write + os.fsync of as many bytes per round as the WAL wrote
(measured from its segment files), with no framing, encryption or bookkeeping: the same disk work, so
wal/raw shows what the WAL itself costs on top of the disk. The two alternate in short slices so load
from the rest of the machine falls on both alike; the table gives medians over the slices.

    python bench/wal_bench.py [--dir /var/tmp] [--seconds 2] [--slices 4] [--entry-bytes 128]

Prints results; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field

from shoal.manager.wal.crypto import DataKey, KeyRing
from shoal.manager.wal.storage import DiskStorage
from shoal.raft.types import Entry, HardState


def tree_bytes(directory: str) -> int:
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(directory) for name in names)


@dataclass
class WalRun:
    """One DiskStorage kept open across slices, so later slices append to a warm log as a member does."""

    directory: str
    batch: int
    entry_bytes: int
    storage: DiskStorage = field(init=False)
    next_index: int = 1

    def __post_init__(self) -> None:
        self.storage = DiskStorage.open(self.directory, keys=KeyRing(DataKey.generate()))
        self.payload = os.urandom(self.entry_bytes)

    def slice(self, seconds: float) -> tuple[float, float, float, int]:
        """Rounds per second, mean µs in save and in sync, and bytes written per round."""
        rounds, save_s, sync_s = 0, 0.0, 0.0
        size_before = tree_bytes(self.directory)
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            first = self.next_index
            self.next_index += self.batch
            entries = [Entry(1, i, data=self.payload) for i in range(first, self.next_index)]
            t0 = time.perf_counter()
            self.storage.save(HardState(1, 1, self.next_index - 1), entries)
            t1 = time.perf_counter()
            self.storage.sync()
            save_s += t1 - t0
            sync_s += time.perf_counter() - t1
            rounds += 1
        elapsed = time.perf_counter() - start
        written = tree_bytes(self.directory) - size_before
        return rounds / elapsed, save_s / rounds * 1e6, sync_s / rounds * 1e6, max(1, written // rounds)

    def close(self) -> None:
        self.storage.close()


def raw_slice(directory: str, round_bytes: int, seconds: float) -> float:
    """Rounds per second of one os.write of `round_bytes` + os.fsync, appending to one file."""
    fd = os.open(os.path.join(directory, "raw.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    blob = os.urandom(round_bytes)
    rounds = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        os.write(fd, blob)
        os.fsync(fd)
        rounds += 1
    elapsed = time.perf_counter() - start
    os.close(fd)
    return rounds / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    parser.add_argument("--seconds", type=float, default=2.0, help="per case and side, split into slices")
    parser.add_argument("--slices", type=int, default=4)
    parser.add_argument("--entry-bytes", type=int, default=128)
    args = parser.parse_args()
    per_slice = args.seconds / args.slices
    print(f"entry size {args.entry_bytes} B, {args.seconds:.1f} s per case and side in {args.slices} alternating "
          f"slices, dir {args.dir or tempfile.gettempdir()}, load average {os.getloadavg()[0]:.1f}")
    print("| batch | WAL fsyncs/s | entries/s | save µs | sync µs | bytes/round | raw fsyncs/s | wal/raw |")
    print("|---|---|---|---|---|---|---|---|")
    for batch in (1, 16, 256):
        with tempfile.TemporaryDirectory(dir=args.dir) as wal_dir, tempfile.TemporaryDirectory(dir=args.dir) as raw_dir:
            wal = WalRun(wal_dir, batch, args.entry_bytes)
            samples: list[tuple[float, float, float, int]] = []
            raw_rates: list[float] = []
            try:
                for _ in range(args.slices):
                    samples.append(wal.slice(per_slice))
                    raw_rates.append(raw_slice(raw_dir, samples[-1][3], per_slice))
            finally:
                wal.close()
        rate = statistics.median(s[0] for s in samples)
        raw_rate = statistics.median(raw_rates)
        print(f"| {batch} | {rate:.0f} | {rate * batch:.0f} | {statistics.median(s[1] for s in samples):.0f} | "
              f"{statistics.median(s[2] for s in samples):.0f} | {statistics.median(s[3] for s in samples):.0f} | "
              f"{raw_rate:.0f} | {rate / raw_rate:.2f} |")


if __name__ == "__main__":
    main()
