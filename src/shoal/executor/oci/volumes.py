"""Named volumes with the local driver: a directory under the executor's state, made on first use,
as Swarm creates a task's volumes on its node, or by `docker volume create`. Each volume keeps its
labels and creation time beside its data (volumes/<name>/volume.json); the process executor uses the
same layout."""

from __future__ import annotations

import builtins
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shoal.api import errors
from shoal.executor.errors import InvalidTaskSpec

_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
LOCAL_DRIVER = "local"
_META = "volume.json"


@dataclass(frozen=True)
class Volume:
    name: str
    mountpoint: Path
    created_at: str
    labels: dict[str, str] = field(default_factory=dict)

    def to_docker(self) -> dict[str, Any]:
        return {"CreatedAt": self.created_at, "Driver": LOCAL_DRIVER, "Labels": self.labels or None,
                "Mountpoint": str(self.mountpoint), "Name": self.name, "Options": None, "Scope": "local"}


def check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise InvalidTaskSpec(
            f'create {name}: "{name}" includes invalid characters for a local volume name, '
            'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path'
        )


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class LocalVolumes:
    def __init__(self, root: Path) -> None:
        self.root = root

    def data_dir(self, name: str) -> Path:
        """The volume's data directory, made if missing. Anonymous volumes (no name) are not kept."""
        return self.create(name).mountpoint

    def create(self, name: str, labels: dict[str, str] | None = None) -> Volume:
        """The volume, made if missing (creating one that exists gives it back, as dockerd does)."""
        check_name(name)
        data = self.root / name / "_data"
        data.mkdir(parents=True, exist_ok=True)
        meta = self.root / name / _META
        if not meta.exists():
            tmp = meta.with_suffix(".tmp")
            tmp.write_text(json.dumps({"CreatedAt": _now(), "Labels": dict(labels or {})}))
            os.replace(tmp, meta)
        return self.get(name)

    def get(self, name: str) -> Volume:
        data = self.root / name / "_data"
        if not _NAME.fullmatch(name) or not data.is_dir():
            raise errors.NotFound(f"get {name}: no such volume")
        try:
            meta = json.loads((self.root / name / _META).read_text())
        except (OSError, ValueError):  # made on first use by an older shoal: no record of its own
            meta = {"CreatedAt": datetime.fromtimestamp(data.stat().st_mtime, UTC).replace(microsecond=0)
                    .isoformat().replace("+00:00", "Z"), "Labels": {}}
        return Volume(name, data, str(meta.get("CreatedAt", "")), dict(meta.get("Labels") or {}))

    def list(self) -> list[Volume]:
        if not self.root.is_dir():
            return []
        found = []
        for entry in sorted(self.root.iterdir()):
            if (entry / "_data").is_dir() and _NAME.fullmatch(entry.name):
                found.append(self.get(entry.name))
        return found

    def remove(self, name: str, users: builtins.list[str], force: bool = False) -> None:
        """Refused while containers use it (dockerd's text); a missing one is NotFound unless forced."""
        try:
            self.get(name)
        except errors.NotFound:
            if force:
                return
            raise
        if users:
            raise errors.Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
        shutil.rmtree(self.root / name)

    def size(self, name: str) -> int:
        total = 0
        for directory, _, files in os.walk(self.root / name / "_data"):
            for file in files:
                try:
                    total += os.lstat(os.path.join(directory, file)).st_size
                except OSError:
                    continue
        return total

    def prune(self, users_of: Callable[[str], builtins.list[str]], keep: Callable[[Volume], bool]
              ) -> tuple[builtins.list[str], int]:
        """Remove every volume no container uses (and `keep` does not hold back): names and bytes freed."""
        removed: builtins.list[str] = []
        freed = 0
        for volume in self.list():
            if users_of(volume.name) or keep(volume):
                continue
            freed += self.size(volume.name)
            shutil.rmtree(self.root / volume.name)
            removed.append(volume.name)
        return removed, freed
