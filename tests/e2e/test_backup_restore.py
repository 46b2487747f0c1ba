"""Backup and restore as Docker documents them for Swarm: stop a manager, copy its data root; on
another host start the daemon on the copy and run `docker swarm init --force-new-cluster`. The
restored swarm has the backed-up services (and not what came after the backup), and runs their tasks."""

from __future__ import annotations

import shutil
from pathlib import Path

from shoal.testing.daemon import ShoalDaemon, wait_until


def running(daemon: ShoalDaemon, service: str) -> int:
    out = daemon.docker("service", "ps", service, "--filter", "desired-state=running",
                        "--format", "{{.CurrentState}}", check=False).stdout
    return sum(1 for line in out.splitlines() if line.startswith("Running"))


def test_a_copied_data_root_restores_the_swarm_with_force_new_cluster(tmp_path: Path) -> None:
    original = ShoalDaemon(tmp_path / "original")
    restored = ShoalDaemon(tmp_path / "restored")
    original.start()
    try:
        original.docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        original.docker("service", "create", "--detach", "--name", "kept", "--replicas", "2",
                        "--label", "backup=yes", "busybox", "sleep", "100000")
        wait_until(lambda: running(original, "kept") == 2, 60, "kept: 2 running before the backup")
        worker_token = original.docker("swarm", "join-token", "-q", "worker").stdout.strip()

        original.stop()  # the backup is taken with the manager stopped, as Docker's docs say
        shutil.copytree(original.data_root, restored.data_root, symlinks=True)
        original.start()
        original.docker("service", "create", "--detach", "--name", "after-backup", "busybox", "sleep", "1")
        original.leave_and_stop()  # the original host is lost: its tasks go with it

        restored.start()
        out = restored.docker("swarm", "init", "--force-new-cluster", "--advertise-addr", "127.0.0.1").stdout
        assert "Swarm initialized" in out
        services = restored.docker("service", "ls", "--format", "{{.Name}}").stdout.split()
        assert services == ["kept"]
        assert restored.docker_json("service", "inspect", "kept")[0]["Spec"]["Labels"] == {"backup": "yes"}
        wait_until(lambda: running(restored, "kept") == 2, 90, "kept: 2 running on the restored swarm")
        # the cluster's identity came back with it: the tokens of before still name this swarm
        assert restored.docker("swarm", "join-token", "-q", "worker").stdout.strip() == worker_token
        restored.docker("service", "create", "--detach", "--name", "after-restore", "busybox", "sleep", "100000")
        wait_until(lambda: running(restored, "after-restore") == 1, 60, "a new service runs after the restore")
    finally:
        original.leave_and_stop()
        restored.leave_and_stop()
