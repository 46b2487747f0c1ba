"""Errors of the durable raft storage: every one names the file, the offset and why."""

from __future__ import annotations

REPAIR_FLAG = "--repair-raft-log"


class WALError(Exception):
    """Base class of every error the wal package raises on purpose."""


class WALCorrupted(WALError):
    """Stored data is damaged in a way recovery must not paper over (it is not a torn tail).

    ``repairable`` damage sits in a WAL segment at ``offset``: opening with ``repair=True`` cuts
    the log there. Anything else (e.g. snapshots without a WAL) can only be restored from a backup.
    """

    def __init__(self, path: str, offset: int, why: str, *, repairable: bool = True) -> None:
        if repairable:
            way_out = (
                f"restart shoald with {REPAIR_FLAG} to cut the log at the damage (entries after it are lost), "
                "or restore the data root from a backup"
            )
        else:
            way_out = "restore the data root from a backup"
        super().__init__(f"raft log damaged: {path} at offset {offset} ({why}). Refusing to start on it: {way_out}")
        self.path = path
        self.offset = offset
        self.why = why
        self.repairable = repairable


class WALFormatError(WALError):
    """The files were written in an on-disk format this version does not read (no migration
    exists before the first release)."""

    def __init__(self, path: str, found: int, supported: int) -> None:
        super().__init__(
            f"{path}: raft log written in on-disk format {found}; this shoald reads only format {supported}. "
            "Formats from before the first release are not migrated: remove the node's raft state and join "
            "the swarm again, or run the shoald version that wrote it"
        )
        self.path = path
        self.found = found
        self.supported = supported


class WrongDataKey(WALError):
    """The data was sealed with a data key this manager does not hold."""

    def __init__(self, path: str, offset: int, why: str) -> None:
        super().__init__(f"{path}: offset {offset}: {why}")
        self.path = path
        self.offset = offset
        self.why = why


class WALWriteError(WALError):
    """A write or fsync failed (disk full, I/O error); nothing of the failed batch is durable."""

    def __init__(self, path: str, why: str, errno: int | None = None) -> None:
        super().__init__(f"{path}: {why}")
        self.path = path
        self.errno = errno


class WALBroken(WALError):
    """An earlier failure left the on-disk state unknown; close and recover before writing again."""
