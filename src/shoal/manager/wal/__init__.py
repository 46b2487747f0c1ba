"""Durable storage for the manager's raft log: an encrypted, CRC-framed write-ahead log,
snapshot files, crash recovery, and the data key they are sealed with.

Layout under the data root (on-disk format 2, see framing.py)::

    <data-root>/raft/wal/<seq>-<first index>.wal     segments (hex names), chained (segments.py)
    <data-root>/raft/wal/<seq>-<first index>.wal.tmp a segment being started (wal.py)
    <data-root>/raft/snap/<index>-<term>.snap        snapshots
    <data-root>/raft/keys/raft-dek.json              the data key(s), mode 0600

Every segment and snapshot file opens with a plaintext header (fileheader.py) and seals its
records under its own subkey of the data key, each bound to its offset (crypto.py). A torn
write at the end of the newest segment is cut at recovery; any other damage is refused
(``WALCorrupted``) unless the caller asks to repair, which cuts the log at the damage.

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
