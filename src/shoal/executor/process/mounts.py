"""--mount for isolated process tasks: bind, volume and tmpfs mounts made in the task's own mount
namespace over the host's filesystem, which the task otherwise sees. A target must therefore exist on
the host; the task is rejected saying so when it does not."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from shoal.executor.base import TaskFile
from shoal.executor.errors import InvalidTaskSpec
from shoal.executor.taskoptions import MountSpec

_SEPARATOR = ","  # the shim's -x field separator


def check_targets(mounts: tuple[MountSpec, ...]) -> None:
    for mount in mounts:
        if not os.path.isdir(mount.target):
            raise InvalidTaskSpec(
                f"process executor cannot apply --mount: target {mount.target} is not a directory on this host "
                "(tasks see the host's filesystem; use the oci executor)"
            )
        for text in (mount.source, mount.target):
            if _SEPARATOR in text or any(ch.isspace() for ch in text):
                raise InvalidTaskSpec(f"process executor cannot mount a path with ',' or spaces: {text}")


def shim_specs(mounts: tuple[MountSpec, ...], volume_dir: Path, task_dir: Path) -> list[str]:
    """The shim's -x entries ("KIND,MODE,SRC,DST"); named volumes made on first use under
    `volume_dir`, anonymous ones in the task's directory (removed with it)."""
    specs = []
    for index, mount in enumerate(mounts):
        mode = "ro" if mount.read_only else "rw"
        if mount.type == "tmpfs":
            options = [f"mode={oct(mount.tmpfs_mode or 0o1777)[2:]}"]
            if mount.tmpfs_size:
                options.append(f"size={mount.tmpfs_size}")
            specs.append(f"tmpfs,{mode},{';'.join(options)},{mount.target}")
            continue
        if mount.type == "volume":
            source = volume_dir / mount.source / "_data" if mount.source else task_dir / "volumes" / str(index)
            source.mkdir(parents=True, exist_ok=True)
        else:
            source = Path(mount.source)
        specs.append(f"bind,{mode},{source},{mount.target}")
    return specs


def refuse_task_files(files: Sequence[TaskFile]) -> None:
    """Secrets and configs: a process task sees the host's filesystem, where /run/secrets/<name> and a
    config's target would have to exist before anything could be mounted over them, and writing them
    there would put a secret on the host. Such a task is rejected instead, saying why."""
    if files:
        kinds = sorted({"secrets" if f.secret else "configs" for f in files})
        raise InvalidTaskSpec(
            f"process executor cannot deliver {' and '.join(kinds)} to a task (they would land on the host's "
            "filesystem): use the oci executor"
        )
