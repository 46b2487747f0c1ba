"""Named volumes with the local driver: a directory under the executor's state, made on first use,
as Swarm creates a task's volumes on its node."""

from __future__ import annotations

import re
from pathlib import Path

from shoal.executor.errors import InvalidTaskSpec

_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")


class LocalVolumes:
    def __init__(self, root: Path) -> None:
        self.root = root

    def data_dir(self, name: str) -> Path:
        """The volume's data directory, made if missing. Anonymous volumes (no name) are not kept."""
        if not _NAME.fullmatch(name):
            raise InvalidTaskSpec(
                f'create {name}: "{name}" includes invalid characters for a local volume name, '
                'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed'
            )
        data = self.root / name / "_data"
        data.mkdir(parents=True, exist_ok=True)
        return data
