"""A one-node swarm on the oci executor with a tiny busybox image imported, as the end-to-end tests of
image-running features use it (secrets, networks, container calls, health checks)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from shoal.executor.oci.rootfs import busybox_missing_reason
from shoal.executor.selection import default_executor
from shoal.testing.daemon import ShoalDaemon

SLEEP_CMD = 'CMD ["sleep","3600"]'


def oci_missing() -> str | None:
    """Why the oci executor cannot run an imported busybox image here (a test's skip reason), or None."""
    executor, why = default_executor()
    if executor != "oci":
        return f"the oci executor cannot run here: {why}"
    return busybox_missing_reason()


def import_busybox(daemon: ShoalDaemon, workdir: Path, image: str, change: str = SLEEP_CMD) -> None:
    """Build the busybox rootfs tarball (kept as workdir/web.tar) and `docker import` it as `image` (no
    registry needed)."""
    tarball = workdir / "web.tar"
    subprocess.run([sys.executable, "-m", "shoal.executor.oci.rootfs", "web", str(tarball)], check=True, timeout=60)
    daemon.docker("import", "--change", change, str(tarball), image)


@contextlib.contextmanager
def oci_swarm(workdir: Path, image: str, change: str = SLEEP_CMD) -> Iterator[ShoalDaemon]:
    """A started shoald (oci executor) that has initialised a swarm and holds `image`; it leaves the
    swarm and stops on exit."""
    daemon = ShoalDaemon(workdir, executor="oci")
    daemon.start()
    try:
        daemon.docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        import_busybox(daemon, workdir, image, change)
        yield daemon
    finally:
        daemon.leave_and_stop()
