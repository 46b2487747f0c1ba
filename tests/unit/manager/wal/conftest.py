"""Helpers shared by the WAL tests: a fixed data key, storages on the in-memory FS, logs."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.manager.wal.crypto import DataKey, KeyRing
from shoal.manager.wal.storage import DiskStorage
from shoal.raft.types import Entry
from shoal.testing.memfs import MemoryFS

ROOT = "/data"
KEY = KeyRing(DataKey(bytes(range(32))))


def entries(first: int, last: int, term: int = 1, tag: str = "") -> list[Entry]:
    return [Entry(term, i, data=f"{tag}e{i}t{term}".encode()) for i in range(first, last + 1)]


def open_on(fs: MemoryFS, **kwargs: Any) -> DiskStorage:
    kwargs.setdefault("keys", KEY)
    return DiskStorage.open(ROOT, file_ops=fs, **kwargs)


def log_of(storage: DiskStorage) -> list[Entry]:
    return storage.entries(storage.first_index(), storage.last_index() + 1)


@pytest.fixture
def fs() -> MemoryFS:
    return MemoryFS()
