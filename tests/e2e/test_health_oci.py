"""Health checks on the oci executor through the real docker CLI: the probe runs inside the task's
image (a file only the image has), a healthy task runs and is served by the mesh, a failing probe
fails the task with Swarm's error and it is replaced, never counted running."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shoal.executor.oci.rootfs import build_web_rootfs, busybox_missing_reason, write_archive
from shoal.executor.selection import default_executor
from shoal.testing.daemon import ShoalDaemon, cli_requirement, wait_until
from shoal.testing.registry import free_port

pytestmark = pytest.mark.skipif(**cli_requirement())

WEB_CMD = 'CMD ["httpd","-f","-p","80","-h","/var/www"]'


@pytest.fixture(scope="module")
def oci_swarm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShoalDaemon]:
    executor, why = default_executor()
    if executor != "oci":
        pytest.skip(f"the oci executor cannot run here: {why}")
    if (missing := busybox_missing_reason()) is not None:
        pytest.skip(missing)
    workdir = Path(tmp_path_factory.mktemp("shoald-oci-health"))
    shoald = ShoalDaemon(workdir, executor="oci")
    shoald.start()
    try:
        shoald.docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        web_tar = workdir / "web.tar"
        subprocess.run([sys.executable, "-m", "shoal.executor.oci.rootfs", "web", str(web_tar)], check=True,
                       timeout=60)
        shoald.docker("import", "--change", WEB_CMD, str(web_tar), "web:health")
        yield shoald
    finally:
        shoald.leave_and_stop()


def tasks(daemon: ShoalDaemon, service: str) -> list[dict[str, Any]]:
    ids = daemon.docker("service", "ps", "-q", "--no-trunc", service).stdout.split()
    found: list[dict[str, Any]] = daemon.docker_json("inspect", "--type", "task", *ids) if ids else []
    return found


def running_count(daemon: ShoalDaemon, service: str) -> str:
    return daemon.docker("service", "ls", "--filter", f"name={service}", "--format", "{{.Replicas}}").stdout.strip()


def answered(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def test_probe_runs_inside_the_image_healthy_then_served(oci_swarm: ShoalDaemon) -> None:
    port = free_port()
    # /var/www/cgi-bin exists in the image only, not on the host: the probe must run in the task
    oci_swarm.docker("service", "create", "--detach", "--name", "fine", "-p", f"{port}:80",
                     "--health-cmd", "test -d /var/www/cgi-bin", "--health-interval", "300ms", "web:health")
    wait_until(lambda: running_count(oci_swarm, "fine") == "1/1", 90, "the healthy oci task never ran")
    wait_until(lambda: answered(port), 30, "the healthy oci task is not served")
    (task,) = tasks(oci_swarm, "fine")
    assert task["Status"]["State"] == "running"
    oci_swarm.docker("service", "rm", "fine")


def test_failing_probe_fails_and_replaces_the_task(oci_swarm: ShoalDaemon) -> None:
    port = free_port()
    oci_swarm.docker("service", "create", "--detach", "--name", "ill", "-p", f"{port}:80",
                     "--health-cmd", "test -e /nonexistent", "--health-interval", "300ms", "--health-retries", "2",
                     "--restart-delay", "200ms", "web:health")
    counted = served = False

    def replaced() -> bool:
        nonlocal counted, served
        counted |= not running_count(oci_swarm, "ill").startswith("0/")
        served |= answered(port)
        return len([t for t in tasks(oci_swarm, "ill") if t["Status"]["State"] == "failed"]) >= 2

    wait_until(replaced, 90, "the unhealthy oci task was never failed and replaced")
    assert not counted and not served
    failed = [t for t in tasks(oci_swarm, "ill") if t["Status"]["State"] == "failed"]
    assert all(t["Status"]["Err"].endswith("dockerexec: unhealthy container") for t in failed)
    oci_swarm.docker("service", "rm", "ill")


def image_with_healthcheck(workdir: Path, tag: str, check: dict[str, Any]) -> Path:
    """A `docker save` archive of the web image whose config carries a HEALTHCHECK."""
    layer = write_archive(build_web_rootfs(workdir / "rootfs"), workdir / "layer.tar").read_bytes()
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["httpd", "-f", "-p", "80", "-h", "/var/www"], "Healthcheck": check,
                   "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
    }).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": ["layer/layer.tar"]}]).encode()
    archive = workdir / "saved.tar"
    with tarfile.open(archive, "w") as out:
        for name, data in (("layer/layer.tar", layer), (config_name, config), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    return archive


def test_the_images_own_healthcheck_is_run(oci_swarm: ShoalDaemon, tmp_path: Path) -> None:
    # the image says a file that does not exist makes it healthy: only the image's check can fail it
    archive = image_with_healthcheck(tmp_path, "web:checked", {"Test": ["CMD-SHELL", "test -e /nonexistent"],
                                                               "Interval": 300_000_000, "Retries": 2})
    oci_swarm.docker("load", "-i", str(archive))
    oci_swarm.docker("service", "create", "--detach", "--name", "imagecheck", "--restart-delay", "200ms",
                     "web:checked")
    wait_until(lambda: any(t["Status"]["State"] == "failed" for t in tasks(oci_swarm, "imagecheck")), 90,
               "the image's own health check never failed the task")
    assert running_count(oci_swarm, "imagecheck").startswith("0/")
    # --no-healthcheck switches the image's check off: the task runs
    oci_swarm.docker("service", "create", "--detach", "--name", "nocheck", "--no-healthcheck", "web:checked")
    wait_until(lambda: running_count(oci_swarm, "nocheck") == "1/1", 90, "the task without checks never ran")
    oci_swarm.docker("service", "rm", "imagecheck", "nocheck")
