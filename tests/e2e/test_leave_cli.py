"""`docker swarm leave --force` removes the node's task containers as dockerd does: killed at once
(dockerd force-removes them), not stopped with their stop signal and grace period."""

from __future__ import annotations

from pathlib import Path

from shoal.testing.daemon import ShoalDaemon, wait_until


def test_leave_force_kills_the_tasks_without_their_stop_signal(swarm: ShoalDaemon, tmp_path: Path) -> None:
    out = tmp_path / "signals"
    out.mkdir()
    script = f"trap 'echo TERM > {out}/got; exit 0' TERM; echo up > {out}/up; while true; do sleep 0.2; done"
    swarm.docker("service", "create", "--detach", "--name", "graceful", "--stop-grace-period", "1h",
                 "--mount", f"type=bind,source={out},target={out}", "busybox", "sh", "-c", script)
    wait_until(lambda: (out / "up").exists(), 60, "the task running its trap")
    swarm.docker("swarm", "leave", "--force")
    assert not (out / "got").exists(), "the task was sent its stop signal instead of being killed"
    assert swarm.docker("ps", "-aq").stdout.split() == []
