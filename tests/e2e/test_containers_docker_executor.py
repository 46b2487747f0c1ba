"""Container calls on a task container of the docker executor go to the Docker Engine that runs it:
a private dockerd in a network namespace (shoal.testing.dockerd_hosts), a shoald driving it, and the real
docker CLI against shoald."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.executor.oci.rootfs import build_busybox_rootfs, busybox_missing_reason, write_archive
from shoal.testing.daemon import ShoalDaemon, cli_requirement, wait_until
from shoal.testing.dockerd_hosts import DockerdHosts, dockerd_unavailable
from shoal.testing.netns import netns_unavailable

pytestmark = pytest.mark.skipif(**cli_requirement())
IMAGE = "bb:containers"


@pytest.fixture(scope="module")
def shoald(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShoalDaemon]:
    why_not = dockerd_unavailable() or netns_unavailable() or busybox_missing_reason()
    if why_not:
        pytest.skip(why_not)
    work = tmp_path_factory.mktemp("docker-executor-calls")
    engines = DockerdHosts(f"dx{uuid.uuid4().hex[:4]}", work / "dockerd")
    daemon: ShoalDaemon | None = None
    try:
        engines.start(1)
        engines.import_image(write_archive(build_busybox_rootfs(work / "rootfs"), work / "busybox.tar"), IMAGE)
        daemon = ShoalDaemon(work / "shoald", executor="docker",
                             extra_args=["--docker-host", engines.nodes[0].engine.base_url])
        daemon.start()
        daemon.docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        yield daemon
    finally:
        if daemon is not None:
            daemon.leave_and_stop()
        engines.destroy()


def running(shoald: ShoalDaemon, name: str, other_than: str = "") -> str:
    found: list[str] = []

    def one() -> bool:
        found[:] = [c for c in shoald.docker("ps", "-q", "--no-trunc", "--filter", f"name={name}.").stdout.split()
                    if c != other_than]
        return len(found) == 1

    wait_until(one, 60, f"no running container for {name}")
    return found[0]


def test_calls_reach_the_engine_and_a_killed_task_is_replaced(shoald: ShoalDaemon, tmp_path: Path) -> None:
    shoald.docker("service", "create", "--detach", "--name", "engined", "--restart-delay", "0s", IMAGE,
                  "sleep", "3600")
    container = running(shoald, "engined")
    top = shoald.docker("top", container).stdout.splitlines()
    assert top[0].split()[:2] == ["UID", "PID"] and top[1].endswith("sleep 3600")
    row = json.loads(shoald.docker("stats", "--no-stream", "--format", "{{json .}}", container).stdout)
    assert row["PIDs"] == "1" and not row["MemUsage"].startswith("0B")
    shoald.docker("pause", container)
    assert shoald.docker("inspect", "-f", "{{.State.Paused}}", container).stdout.strip() == "true"
    shoald.docker("unpause", container)
    shoald.docker("cp", f"{container}:/etc/hostname", str(tmp_path / "hostname"))
    assert (tmp_path / "hostname").read_text().strip() == container[:12]
    bad = shoald.docker("kill", "-s", "FOO", container, check=False)
    assert bad.returncode == 1 and "Invalid signal: FOO" in bad.stderr
    shoald.docker("kill", container)
    successor = running(shoald, "engined", other_than=container)
    assert successor != container
    refused = shoald.docker("rm", successor, check=False)
    assert refused.returncode == 1 and "cannot remove a running container" in refused.stderr
    shoald.docker("rm", "-f", successor)
    running(shoald, "engined", other_than=successor)
    shoald.docker("service", "rm", "engined")


def test_volumes_are_the_engine_s(shoald: ShoalDaemon) -> None:
    assert shoald.docker("volume", "create", "--label", "team=a", "enginevol").stdout.strip() == "enginevol"
    shown = shoald.docker_json("volume", "inspect", "enginevol")[0]
    assert "/dockerd/" in shown["Mountpoint"] and shown["Labels"] == {"team": "a"}  # under the engine's root
    assert "enginevol" in shoald.docker("volume", "ls", "-q", "--filter", "label=team=a").stdout.split()
    missing = shoald.docker("volume", "inspect", "nope", check=False)
    assert missing.returncode == 1 and "no such volume" in missing.stderr
    shoald.docker("volume", "rm", "enginevol")
    assert "enginevol" not in shoald.docker("volume", "ls", "-q").stdout.split()
