"""Durable storage for the manager's raft log: an encrypted, CRC-framed write-ahead log,
snapshot files, crash recovery, and the data key they are sealed with.

Layout under the data root::

    <data-root>/raft/wal/<seq>-<first index>.wal     segments (hex names)
    <data-root>/raft/snap/<index>-<term>.snap        snapshots
    <data-root>/raft/keys/raft-dek.json              the data key(s), mode 0600

The driver only needs ``DiskStorage`` (see storage.py); the rest is exported for tests and tools.
"""

from shoal.manager.wal.crypto import DataKey, KeyRing
from shoal.manager.wal.errors import (
    WALBroken,
    WALCorrupted,
    WALError,
    WALFormatError,
    WALWriteError,
    WrongDataKey,
)
from shoal.manager.wal.fileops import FileOps, OsFileOps
from shoal.manager.wal.keys import KeyFileError, KeyWrapper, Unwrapped
from shoal.manager.wal.storage import DiskStorage, RaftPaths

__all__ = [
    "DataKey",
    "DiskStorage",
    "FileOps",
    "KeyFileError",
    "KeyRing",
    "KeyWrapper",
    "OsFileOps",
    "RaftPaths",
    "Unwrapped",
    "WALBroken",
    "WALCorrupted",
    "WALError",
    "WALFormatError",
    "WALWriteError",
    "WrongDataKey",
]
