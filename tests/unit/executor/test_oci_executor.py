"""The oci executor with a real runtime (crun or runc) on a busybox image: what only an image
executor does (the image's config, a fresh writable layer per task, Docker's defaults, a clean start
after a host reboot) and what a running task costs beyond its workload."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from shoal.base.ids import new_id
from shoal.executor.base import STDOUT, ContainerState, Controller, TaskRuntime
from shoal.executor.oci import LocalImageSource, OciExecutor
from shoal.executor.oci.bundle import DEFAULT_CAPABILITIES
from shoal.executor.oci.rootfs import build_busybox_rootfs, busybox_missing_reason, directory_image
from shoal.executor.oci.rootmount import is_mounted
from shoal.executor.oci.runtime import choose_runtime, unavailable_reason
from shoal.executor.process.procfs import is_same_process
from shoal.executor.process.taskdir import TaskDir
from shoal.network.tasknet import TaskNetConfig, remove_bridge

REASON = unavailable_reason(choose_runtime()) or busybox_missing_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"oci executor unavailable: {REASON}")
TIMEOUT = 30.0
CAP_BITS = {"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_FOWNER": 3, "CAP_FSETID": 4, "CAP_KILL": 5,
            "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_RAW": 13,
            "CAP_SYS_CHROOT": 18, "CAP_MKNOD": 27, "CAP_AUDIT_WRITE": 29, "CAP_SETFCAP": 31}


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = build_busybox_rootfs(tmp_path_factory.mktemp("image") / "rootfs")
    (root / "srv").mkdir(exist_ok=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\napp:x:1500:1600:app:/srv:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\napp:x:1600:\nextra:x:1700:app\n")
    return root


@pytest.fixture
async def executor(tmp_path: Path, rootfs: Path) -> AsyncIterator[OciExecutor]:
    images = LocalImageSource({
        "plain": directory_image(rootfs),
        "configured": directory_image(
            rootfs,
            entrypoint=("sh", "-c", 'echo "$0 $*|$GREETING|$(pwd)|$(id -u):$(id -g)|$(id -G)"'),
            cmd=("from-image-cmd",),
            env=("PATH=/bin", "GREETING=hello"),
            extra={"WorkingDir": "/srv", "User": "app", "StopSignal": "SIGUSR1", "ExposedPorts": {"8080/tcp": {}}},
        ),
    })
    network = TaskNetConfig.for_scope(f"oci-unit-{os.getpid()}-{new_id()[:6]}", tmp_path / "net")
    ex = OciExecutor(tmp_path / "state", images, network=network, run_dir=tmp_path / "run")
    try:
        yield ex
    finally:
        await ex.purge()
        if network.bridge_exists():
            await remove_bridge(network)


def runtime(
    image: str, *args: str, command: tuple[str, ...] = (), hostname: str | None = None, **spec: Any
) -> TaskRuntime:
    return TaskRuntime(new_id(), "svc", "oci-unit", "node", 1, image, command=command, args=args,
                       hostname=hostname, stop_grace_period=5.0, raw_task={"Spec": {"ContainerSpec": spec}})


async def run(executor: OciExecutor, rt: TaskRuntime) -> tuple[Controller, list[str]]:
    controller = executor.controller(rt)
    await controller.prepare()
    await controller.start()
    status = await asyncio.wait_for(controller.wait(), TIMEOUT)
    lines = [line.data.decode().rstrip("\n") async for line in controller.logs() if line.stream == STDOUT]
    assert status.exit_code == 0, (status, lines)
    return controller, lines


async def test_image_config_fills_what_the_task_leaves_unset(executor: OciExecutor) -> None:
    _, lines = await run(executor, runtime("configured"))
    assert lines == ["from-image-cmd |hello|/srv|1500:1600|1600 1700"]


async def test_exec_runs_as_the_container_user_unless_told(executor: OciExecutor) -> None:
    controller = executor.controller(runtime("configured", command=("sleep", "1000")))
    await controller.prepare()
    await controller.start()
    container_id = (await controller.inspect()).container_id
    outputs = []
    for user in (None, "root"):
        exec_id = await executor.exec_create(container_id, ["sh", "-c", "id -u; id -G; pwd"], user=user)
        session = await executor.exec_start(exec_id)
        out = b""
        while (chunk := await asyncio.wait_for(session.read(), TIMEOUT)) is not None:
            out += chunk[1]
        assert await session.wait() == 0
        outputs.append(out.decode().split())
    assert outputs == [["1500", "1600", "1700", "/srv"], ["0", "0", "/srv"]]


async def test_ps_shows_the_ports_the_image_exposes(executor: OciExecutor, rootfs: Path) -> None:
    from shoal.executor.base import PortSpec

    controller, _ = await run(executor, runtime("configured"))
    rows, status = await executor.containers(all=True), await controller.inspect()
    row = next(r for r in rows if r.id == status.container_id)
    assert row.ports == (PortSpec(8080, "tcp"),)


async def test_task_args_replace_the_image_cmd_and_its_env_wins(executor: OciExecutor) -> None:
    rt = runtime("configured", "mine")
    rt = TaskRuntime(**{**rt.__dict__, "env": ("GREETING=bye",), "workdir": "/tmp", "user": "0:0"})
    _, lines = await run(executor, rt)
    assert lines == ["mine |bye|/tmp|0:0|0"]


async def test_image_stop_signal_is_used(executor: OciExecutor) -> None:
    rt = runtime("configured", command=("sh", "-c", "trap 'exit 0' USR1; echo ready; while :; do sleep 0.1; done"))
    controller = executor.controller(rt)
    await controller.prepare()
    await controller.start()
    while "ready" not in [line.data.decode().strip() async for line in controller.logs()]:
        await asyncio.sleep(0.05)
    await asyncio.wait_for(controller.shutdown(grace=20), TIMEOUT)
    assert (await controller.inspect()).exit_code == 0


async def test_a_new_task_starts_from_the_image_without_earlier_writes(executor: OciExecutor) -> None:
    first, _ = await run(executor, runtime("plain", command=("sh", "-c", "echo x > /bin/written-by-task")))
    await first.remove()
    _, lines = await run(executor, runtime("plain", command=("sh", "-c", "ls /bin/written-by-task || echo absent")))
    assert lines == ["absent"]


async def test_dockers_defaults_capabilities_seccomp_masked_paths(executor: OciExecutor) -> None:
    script = (
        "grep -E '^(CapEff|Seccomp):' /proc/self/status;"
        " awk '$2==\"/proc/sys\" {print \"procsys:\\t\" substr($4,1,2)}"
        " $2==\"/proc/keys\" || $2==\"/proc/timer_list\" {print \"masked:\\t\" $1}' /proc/mounts"
    )
    _, lines = await run(executor, runtime("plain", command=("sh", "-c", script)))
    fields = [tuple(line.split(":\t")) for line in lines]
    expected = sum(1 << CAP_BITS[c] for c in DEFAULT_CAPABILITIES)
    assert int(dict(fields)["CapEff"], 16) == expected
    assert ("Seccomp", "2") in fields  # filtering with the default profile
    assert ("procsys", "ro") in fields  # read-only paths
    assert [v for k, v in fields if k == "masked"], lines  # masked paths covered


async def test_after_a_host_reboot_tasks_are_gone_and_nothing_stale_is_left(
    executor: OciExecutor, tmp_path: Path
) -> None:
    rt = runtime("plain", command=("sleep", "1000"))
    controller = executor.controller(rt)
    await controller.prepare()
    await controller.start()
    task_dir = TaskDir(tmp_path / "state" / "tasks" / rt.task_id)
    rootfs = task_dir.path / "bundle" / "rootfs"
    assert is_mounted(rootfs)
    # a reboot: every supervisor and task process, the mounts and /run's runtime state are gone
    supervisor, process = task_dir.supervisor(), task_dir.process()
    assert supervisor is not None and process is not None
    os.kill(supervisor.pid, signal.SIGKILL)
    os.kill(process.pid, signal.SIGKILL)
    while is_same_process(process.pid, process.start_time) or is_same_process(supervisor.pid, supervisor.start_time):
        await asyncio.sleep(0.05)
    os.system(f"umount -l {rootfs}")
    os.system(f"rm -rf {tmp_path / 'run'}")

    restarted = OciExecutor(tmp_path / "state", LocalImageSource(), network=executor.network,
                            run_dir=tmp_path / "run")
    adopted = await restarted.adopt()
    assert [a.status.state for a in adopted] == [ContainerState.EXITED]
    await restarted.controller(adopted[0].runtime).remove()
    assert not task_dir.path.exists()
    assert not is_mounted(rootfs)


async def test_removing_the_last_task_leaves_no_cgroup_behind(executor: OciExecutor) -> None:
    controller, _ = await run(executor, runtime("plain", command=("true",)))
    parent = executor._oci.cgroup_parent
    assert list(Path("/sys/fs/cgroup").glob("*" + parent))  # made by the runtime in each controller
    await controller.remove()
    assert list(Path("/sys/fs/cgroup").glob("*" + parent)) == []


async def test_holder_memory_per_task(executor: OciExecutor, capsys: pytest.CaptureFixture[str]) -> None:
    """What stays resident per running task beyond the workload: the shim's supervisor only (the
    runtime exits once the container runs). Goal: at most 2 MB."""
    rt = runtime("plain", command=("sleep", "1000"))
    controller = executor.controller(rt)
    await controller.prepare()
    await controller.start()
    task_dir = next(d for d in (executor._ctx.task_dirs()) if d.path.name == rt.task_id)
    supervisor = task_dir.supervisor()
    assert supervisor is not None
    children = Path(f"/proc/{supervisor.pid}/task/{supervisor.pid}/children").read_text().split()
    process = task_dir.process()
    assert process is not None and children == [str(process.pid)]  # nothing of the runtime left
    rss = pss = 0
    for line in Path(f"/proc/{supervisor.pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Rss:"):
            rss = int(line.split()[1])
        if line.startswith("Pss:"):
            pss = int(line.split()[1])
    with capsys.disabled():
        print(f"\n[oci] per-task holder RSS {rss} KiB, PSS {pss} KiB")
    assert 0 < pss <= 2048


async def test_the_seed_web_image_serves_its_hostname_from_the_image(tmp_path: Path) -> None:
    """The seed's web image: busybox httpd answering from a CGI page that exists only in the image."""
    from shoal.executor.oci.rootfs import build_web_rootfs, web_image

    image = web_image(build_web_rootfs(tmp_path / "web"))
    network = TaskNetConfig.for_scope(f"oci-web-{os.getpid()}-{new_id()[:6]}", tmp_path / "net")
    executor = OciExecutor(tmp_path / "state", LocalImageSource({"web": image}), network=network,
                           run_dir=tmp_path / "run")
    try:
        controller = executor.controller(runtime("web", hostname="web-7"))
        await controller.prepare()
        await controller.start()
        address = (await controller.inspect()).address
        assert address is not None
        body = await asyncio.wait_for(_fetch(address), TIMEOUT)
        assert body.strip() == "hello from web-7"
    finally:
        await executor.purge()
        if network.bridge_exists():
            await remove_bridge(network)


async def _fetch(address: str) -> str:
    """GET / until the server answers (it may still be starting)."""
    while True:
        try:
            reader, writer = await asyncio.open_connection(address, 80)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.write(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        data = await reader.read()
        writer.close()
        return data.split(b"\r\n\r\n", 1)[-1].decode()
