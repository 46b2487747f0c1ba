"""The docker executor against a real dockerd: names, labels, restart policy, limits, lifecycle,
logs, exec, adoption across daemon restarts and between two daemons on one engine."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

import docker
import pytest

from shoal.executor.base import STDERR, STDOUT, ContainerState, Resources, TaskRuntime
from shoal.executor.docker import DockerExecutor, ImageNotFound
from shoal.executor.docker import labels as label_names
from shoal.executor.docker.address import DEFAULT_SOCKET
from shoal.executor.docker.health import UnhealthyContainer
from shoal.executor.errors import ContainerNotFound, ContainerNotRunning, ExecNotFound

pytestmark = pytest.mark.docker

MakeRuntime = Callable[..., TaskRuntime]


async def test_container_is_named_labelled_and_configured_as_swarm_does(
    executor: DockerExecutor, make_runtime: MakeRuntime, docker_api: docker.APIClient
) -> None:
    runtime = make_runtime(
        command=("sh", "-c"),
        args=("sleep 60",),
        env=("GREETING=hi",),
        workdir="/tmp",
        user="nobody",
        stop_signal="SIGUSR1",
        stop_grace_period=4.0,
        labels={"team": "blue"},
        resources=Resources(nano_cpus=250_000_000, memory_bytes=32 << 20, pids_limit=40),
    )
    await executor.controller(runtime).prepare()

    found = docker_api.inspect_container(runtime.container_name)
    assert found["Name"] == f"/{runtime.service_name}.1.{runtime.task_id}"
    config, host = found["Config"], found["HostConfig"]
    assert config["Labels"]["team"] == "blue"
    assert config["Labels"]["com.docker.swarm.task.id"] == runtime.task_id
    assert config["Labels"]["com.docker.swarm.task.name"] == runtime.container_name
    assert config["Labels"]["com.docker.swarm.service.name"] == runtime.service_name
    assert config["Labels"]["com.docker.swarm.service.id"] == runtime.service_id
    assert config["Labels"]["com.docker.swarm.node.id"] == runtime.node_id
    assert config["Labels"][label_names.EXECUTOR_INSTANCE] == executor.instance_id
    assert host["RestartPolicy"]["Name"] == "no"
    assert (host["NanoCpus"], host["Memory"], host["PidsLimit"]) == (250_000_000, 32 << 20, 40)
    assert config["Entrypoint"] == ["sh", "-c"]
    assert config["Cmd"] == ["sleep 60"]
    assert "GREETING=hi" in config["Env"]
    assert (config["WorkingDir"], config["User"]) == ("/tmp", "nobody")
    assert (config["StopSignal"], config["StopTimeout"]) == ("SIGUSR1", 4)
    assert found["State"]["Status"] == "created"


async def test_missing_image_rejects_the_task_without_creating_anything(
    executor: DockerExecutor, make_runtime: MakeRuntime, docker_api: docker.APIClient
) -> None:
    runtime = make_runtime(image="shoal-no-such-image:never")
    with pytest.raises(ImageNotFound, match="No such image: shoal-no-such-image:never") as caught:
        await executor.controller(runtime).prepare()
    assert not caught.value.temporary
    assert docker_api.containers(all=True, filters={"name": runtime.container_name}) == []


async def test_lifecycle_reports_exit_code_pid_address_and_hostname(
    executor: DockerExecutor, make_runtime: MakeRuntime
) -> None:
    runtime = make_runtime(command=("sh", "-c", "hostname; sleep 0.3; exit 7"))
    controller = executor.controller(runtime)
    await controller.prepare()
    await controller.prepare()  # a retried prepare re-uses the container
    await controller.start()
    running = await controller.inspect()
    assert running.container_id and len(running.container_id) == 64
    assert running.hostname == running.container_id[:12]

    final = await controller.wait()
    assert final.state is ContainerState.EXITED
    assert final.exit_code == 7
    assert final.finished_at is not None
    assert final.address is None
    assert [line.data async for line in controller.logs()] == [f"{running.container_id[:12]}\n".encode()]

    await controller.start()  # an exited task is never run again
    assert (await controller.inspect()).finished_at == final.finished_at


async def test_running_task_has_an_address_and_the_given_hostname(
    executor: DockerExecutor, make_runtime: MakeRuntime
) -> None:
    controller = executor.controller(make_runtime(hostname="web-1"))
    await controller.prepare()
    await controller.start()
    status = await controller.inspect()
    assert status.state is ContainerState.RUNNING
    assert status.pid
    assert status.address and status.address.count(".") == 3
    assert status.hostname == "web-1"
    await controller.terminate()
    assert (await controller.wait()).exit_code == 128 + signal.SIGKILL


async def test_shutdown_sends_the_stop_signal_first(executor: DockerExecutor, make_runtime: MakeRuntime) -> None:
    script = 'trap "echo got usr1; exit 5" USR1; echo ready; while true; do sleep 0.1; done'
    controller = executor.controller(make_runtime(command=("sh", "-c", script), stop_signal="USR1"))
    await controller.prepare()
    await controller.start()
    async for line in controller.logs(follow=True):
        if line.data == b"ready\n":
            break
    await controller.shutdown(grace=30)
    assert (await controller.wait()).exit_code == 5
    assert [line.data async for line in controller.logs()] == [b"ready\n", b"got usr1\n"]


async def test_logs_keep_streams_apart_and_honour_tail_and_follow(
    executor: DockerExecutor, make_runtime: MakeRuntime
) -> None:
    script = "echo one; echo two >&2; echo three; sleep 0.5; echo four"
    controller = executor.controller(make_runtime(command=("sh", "-c", script)))
    await controller.prepare()
    await controller.start()
    followed = [line async for line in controller.logs(follow=True)]
    by_stream = {(line.stream, line.data) for line in followed}
    assert by_stream == {(STDOUT, b"one\n"), (STDERR, b"two\n"), (STDOUT, b"three\n"), (STDOUT, b"four\n")}
    assert [line.data async for line in controller.logs(tail=1)] == [b"four\n"]
    timestamps = [line.timestamp for line in followed]
    assert timestamps[-1] > timestamps[0]
    since = [line.data async for line in controller.logs(since=followed[-1].timestamp)]
    assert since == [b"four\n"]


async def test_remove_is_idempotent_and_inspect_then_reports_not_found(
    executor: DockerExecutor, make_runtime: MakeRuntime
) -> None:
    controller = executor.controller(make_runtime())
    await controller.prepare()
    await controller.start()
    await controller.remove()
    await controller.remove()
    await controller.shutdown()  # nothing left to stop
    with pytest.raises(ContainerNotFound):
        await controller.inspect()


async def test_exec_feeds_stdin_splits_output_and_reports_exit_code(
    executor: DockerExecutor, make_runtime: MakeRuntime
) -> None:
    controller = executor.controller(make_runtime())
    await controller.prepare()
    await controller.start()
    container_id = (await controller.inspect()).container_id
    exec_id = await executor.exec_create(
        container_id, ["sh", "-c", "cat; echo $X-$(pwd) >&2; exit 3"], env=["X=x"], workdir="/www", stdin=True
    )
    session = await executor.exec_start(exec_id)
    await session.write(b"via stdin\n")
    await session.close_stdin()
    output: list[tuple[int, bytes]] = []
    while (chunk := await session.read()) is not None:
        output.append(chunk)
    assert b"".join(data for stream, data in output if stream == STDOUT) == b"via stdin\n"
    assert b"".join(data for stream, data in output if stream == STDERR) == b"x-/www\n"
    assert await session.wait() == 3
    info = await executor.exec_inspect(exec_id)
    assert (info.container_id, info.exit_code, info.running) == (container_id, 3, False)


async def test_exec_errors(executor: DockerExecutor, make_runtime: MakeRuntime) -> None:
    with pytest.raises(ExecNotFound):
        await executor.exec_inspect("0" * 64)
    with pytest.raises(ContainerNotFound):
        await executor.exec_create("shoal-no-such-container", ["true"])
    controller = executor.controller(make_runtime(command=("true",)))
    await controller.prepare()
    await controller.start()
    await controller.wait()
    with pytest.raises(ContainerNotRunning):
        await executor.exec_create(controller.runtime.container_name, ["true"])


async def test_containers_lists_running_tasks_and_exited_ones_with_all(
    executor: DockerExecutor, make_runtime: MakeRuntime
) -> None:
    running = executor.controller(make_runtime())
    exited = executor.controller(make_runtime(command=("true",)))
    for controller in (running, exited):
        await controller.prepare()
        await controller.start()
    await exited.wait()

    listed = await executor.containers()
    assert [info.names for info in listed] == [(f"/{running.runtime.container_name}",)]
    assert listed[0].labels[label_names.TASK_ID] == running.runtime.task_id
    assert label_names.RUNTIME not in listed[0].labels
    everything = await executor.containers(all=True)
    assert {info.state for info in everything} == {ContainerState.RUNNING, ContainerState.EXITED}


async def test_adopt_after_restart_finds_own_tasks_only_and_reattaches(
    executor: DockerExecutor, make_runtime: MakeRuntime, other_executor: DockerExecutor, tmp_path: Path
) -> None:
    mine, theirs = make_runtime(), make_runtime()
    finished = make_runtime(command=("sh", "-c", "exit 4"))
    for owner, runtime in ((executor, mine), (other_executor, theirs), (executor, finished)):
        controller = owner.controller(runtime)
        await controller.prepare()
        await controller.start()
    await executor.controller(finished).wait()
    pid_before = (await executor.controller(mine).inspect()).pid

    # A new daemon on the same state directory: same instance id, no memory of the tasks.
    restarted = DockerExecutor(state_dir=tmp_path / "state")
    try:
        assert restarted.instance_id == executor.instance_id
        adopted = {task.runtime.task_id: task for task in await restarted.adopt()}
        assert set(adopted) == {mine.task_id, finished.task_id}
        assert adopted[mine.task_id].runtime == mine
        assert adopted[mine.task_id].status.state is ContainerState.RUNNING
        assert adopted[finished.task_id].status.exit_code == 4

        controller = restarted.controller(adopted[mine.task_id].runtime)
        await controller.prepare()
        await controller.start()
        assert (await controller.inspect()).pid == pid_before
        await controller.terminate()
        assert (await controller.wait()).exit_code == 128 + signal.SIGKILL
    finally:
        await restarted.close()
    assert [task.runtime.task_id for task in await other_executor.adopt()] == [theirs.task_id]


async def test_describe_reports_the_engine(executor: DockerExecutor) -> None:
    description = await executor.describe()
    assert description.engine_version
    assert description.nano_cpus > 0 and description.memory_bytes > 0
    assert description.os == "linux"
    assert "exec" in executor.capabilities


def health_task(test: str, retries: int = 1) -> dict[str, object]:
    """A check every 0.1 s; `retries` failures in a row make the container unhealthy."""
    check = {"Test": ["CMD-SHELL", test], "Interval": 100_000_000, "Timeout": 1_000_000_000, "Retries": retries}
    return {"Spec": {"ContainerSpec": {"Healthcheck": check}}}


async def run_in(executor: DockerExecutor, container: str, script: str) -> None:
    session = await executor.exec_start(await executor.exec_create(container, ["sh", "-c", script]))
    while await session.read() is not None:
        pass
    assert await session.wait() == 0


async def test_start_returns_once_the_health_check_passes(
    executor: DockerExecutor, make_runtime: MakeRuntime, docker_api: docker.APIClient
) -> None:
    # Unhealthy only after 1000 failed checks: the test decides when it turns healthy.
    runtime = make_runtime(raw_task=health_task("test -f /tmp/ok", retries=1000))
    controller = executor.controller(runtime)
    await controller.prepare()
    starting = asyncio.ensure_future(controller.start())
    await asyncio.sleep(0)
    while docker_api.inspect_container(runtime.container_name)["State"]["Status"] != "running":
        await asyncio.sleep(0.05)
    await run_in(executor, runtime.container_name, "touch /tmp/ok")
    await starting
    assert docker_api.inspect_container(runtime.container_name)["State"]["Health"]["Status"] == "healthy"


async def test_unhealthy_at_start_fails_the_task_and_stops_the_container(
    executor: DockerExecutor, make_runtime: MakeRuntime
) -> None:
    controller = executor.controller(make_runtime(raw_task=health_task("false")))
    await controller.prepare()
    with pytest.raises(UnhealthyContainer, match="unhealthy container"):
        await controller.start()
    assert (await controller.inspect()).state is ContainerState.EXITED


async def test_turning_unhealthy_while_running_ends_the_wait_with_an_error(
    executor: DockerExecutor, make_runtime: MakeRuntime
) -> None:
    controller = executor.controller(make_runtime(raw_task=health_task("! test -f /tmp/bad")))
    await controller.prepare()
    await controller.start()
    waiting = asyncio.ensure_future(controller.wait())
    await run_in(executor, controller.runtime.container_name, "touch /tmp/bad")
    final = await waiting
    assert final.state is ContainerState.EXITED
    assert final.error == "dockerexec: unhealthy container"  # swarmkit's ErrContainerUnhealthy
    assert final.exit_code == 128 + signal.SIGKILL  # busybox sleep as PID 1 ignores SIGTERM


async def test_container_spec_extras_from_the_raw_task_apply(
    executor: DockerExecutor, make_runtime: MakeRuntime
) -> None:
    raw = {
        "Spec": {
            "ContainerSpec": {
                "Hosts": ["10.1.2.3 db"],
                "Mounts": [{"Type": "tmpfs", "Target": "/scratch"}],
                "ReadOnly": True,
            }
        }
    }
    script = "grep -w db /etc/hosts; touch /scratch/ok && echo scratch-ok; touch /ro 2>/dev/null || echo ro-ok"
    controller = executor.controller(make_runtime(command=("sh", "-c", script), raw_task=raw))
    await controller.prepare()
    await controller.start()
    assert (await controller.wait()).exit_code == 0
    output = [line.data.decode().split() async for line in controller.logs()]
    assert output == [["10.1.2.3", "db"], ["scratch-ok"], ["ro-ok"]]


def test_one_executor_serves_several_event_loops(docker_api: docker.APIClient, tmp_path: Path) -> None:
    """Test harnesses (and shoald restarts of its loop) may use one executor from more than one loop."""
    executor = DockerExecutor(state_dir=tmp_path / "state")
    assert asyncio.run(executor.containers()) == []
    assert asyncio.run(executor.containers(all=True)) == []
    asyncio.run(executor.close())


async def test_tty_task_output_is_one_stdout_stream(executor: DockerExecutor, make_runtime: MakeRuntime) -> None:
    controller = executor.controller(make_runtime(command=("sh", "-c", "echo out; echo err >&2"), tty=True))
    await controller.prepare()
    await controller.start()
    await controller.wait()
    lines = [(line.stream, line.data) async for line in controller.logs()]
    assert lines == [(STDOUT, b"out\r\n"), (STDOUT, b"err\r\n")]

    running = executor.controller(make_runtime())
    await running.prepare()
    await running.start()
    exec_id = await executor.exec_create(running.runtime.container_name, ["sh", "-c", "echo a; echo b >&2"], tty=True)
    session = await executor.exec_start(exec_id)
    chunks: list[tuple[int, bytes]] = []
    while (chunk := await session.read()) is not None:
        chunks.append(chunk)
    assert {stream for stream, _ in chunks} == {STDOUT}
    assert b"".join(data for _, data in chunks) == b"a\r\nb\r\n"
    assert await session.wait() == 0


async def test_host_mode_port_is_published_on_the_node(
    executor: DockerExecutor, make_runtime: MakeRuntime, docker_api: docker.APIClient
) -> None:
    raw = {"Endpoint": {"Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishMode": "host"}]}}
    runtime = make_runtime(command=("httpd", "-f", "-p", "80", "-h", "/www"), raw_task=raw)
    controller = executor.controller(runtime)
    await controller.prepare()
    await controller.start()
    bound = docker_api.inspect_container(runtime.container_name)["NetworkSettings"]["Ports"]["80/tcp"]
    host_port = int(bound[0]["HostPort"])
    reader, writer = await asyncio.open_connection("127.0.0.1", host_port)
    writer.write(b"GET / HTTP/1.0\r\n\r\n")
    answer = await reader.read()
    writer.close()
    assert b"shoal-busybox" in answer


async def test_an_exec_stream_can_be_dropped_early(executor: DockerExecutor, make_runtime: MakeRuntime) -> None:
    controller = executor.controller(make_runtime())
    await controller.prepare()
    await controller.start()
    exec_id = await executor.exec_create(controller.runtime.container_name, ["sh", "-c", "echo first; exec sleep 60"])
    session = await executor.exec_start(exec_id)
    assert await session.read() == (STDOUT, b"first\n")
    await session.close()
    assert await session.read() is None
    assert (await executor.exec_inspect(exec_id)).running


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1 << 16):
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()  # pass a half-close on (exec stdin EOF)


async def test_engine_reached_over_tcp(docker_api: docker.APIClient, tmp_path: Path, make_runtime: MakeRuntime) -> None:
    """dockerd -H tcp://…: here a forwarder from a loopback port to the engine's socket stands in."""

    async def forward(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        engine_reader, engine_writer = await asyncio.open_unix_connection(DEFAULT_SOCKET)
        await asyncio.gather(pipe(client_reader, engine_writer), pipe(engine_reader, client_writer))
        client_writer.close()
        engine_writer.close()

    server = await asyncio.start_server(forward, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    executor = DockerExecutor(state_dir=tmp_path / "tcp-state", socket_path=f"tcp://127.0.0.1:{port}")
    controller = executor.controller(make_runtime())
    try:
        assert "exec" in executor.capabilities
        await controller.prepare()
        await controller.start()
        exec_id = await executor.exec_create(controller.runtime.container_name, ["cat"], stdin=True)
        session = await executor.exec_start(exec_id)
        await session.write(b"over tcp\n")
        await session.close_stdin()
        assert await session.read() == (STDOUT, b"over tcp\n")
        assert await session.read() is None
        assert await session.wait() == 0
    finally:
        await controller.remove()
        await executor.close()
        server.close()


async def test_untagged_image_runs_as_its_latest_tag(
    executor: DockerExecutor, make_runtime: MakeRuntime, docker_api: docker.APIClient
) -> None:
    runtime = make_runtime(image="shoal-busybox")
    await executor.controller(runtime).prepare()
    assert docker_api.inspect_container(runtime.container_name)["Config"]["Image"] == "shoal-busybox:latest"
