"""Log streams (stdcopy framing, details and timestamps), the events stream, and exec hijacking."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import subprocess
import termios
import time
from datetime import UTC, datetime

import aiohttp
import docker
import pytest

from shoal.engineapi.backend import STDERR, STDOUT, LogMessage
from shoal.engineapi.stdcopy import details_prefix, frame, parse_frames

from .conftest import DOCKER_CLI, EngineServer, needs_cli, request

TASK1, TASK2 = "nyte7we3fmyccmur1vk5hjs5b", "e9xklite33tktdv3a6eu4l129"
MOMENT = datetime(2026, 11, 26, 14, 4, 53, 722917, tzinfo=UTC)


def _attrs(node_id: str, service_id: str, task_id: str) -> dict[str, str]:
    # Deliberately unsorted: the wire order is by key.
    return {
        "com.docker.swarm.task.id": task_id,
        "com.docker.swarm.node.id": node_id,
        "com.docker.swarm.service.id": service_id,
    }


@pytest.fixture
def logger_service(swarm_engine: EngineServer) -> str:
    backend = swarm_engine.backend
    spec = {"Name": "logger", "TaskTemplate": {"ContainerSpec": {"Image": "img"}}}
    service_id: str = swarm_engine.run(backend.service_create(spec, None))["ID"]
    for task_id, slot in ((TASK1, 1), (TASK2, 2)):
        backend.tasks[task_id] = {
            "ID": task_id,
            "ServiceID": service_id,
            "NodeID": backend.node_id,
            "Slot": slot,
            "Spec": {"ContainerSpec": {"Image": "img"}},
            "Status": {"State": "running"},
        }
    lines = [
        (STDOUT, TASK1, b"hello from 7ba6b5bc3e15\n"),
        (STDERR, TASK1, b"to-stderr\n"),
        (STDOUT, TASK2, b"hello from fd519a40d131\n"),
    ]
    for stream, task_id, data in lines:
        message = LogMessage(stream, MOMENT, data, _attrs(backend.node_id, service_id, task_id))
        swarm_engine.run(backend.add_log(service_id, message))
    return service_id


def test_frame_layout() -> None:
    assert frame(STDERR, b"hi\n") == b"\x02\x00\x00\x00\x00\x00\x00\x03hi\n"
    assert parse_frames(frame(1, b"a") + frame(2, b"")) == [(1, b"a"), (2, b"")]
    with pytest.raises(ValueError):
        parse_frames(b"\x01\x00\x00")


def test_details_are_sorted_and_escaped() -> None:
    assert details_prefix({"b": "2", "a": "x y"}) == b"a=x+y,b=2 "


def test_service_logs_are_stdcopy_frames_with_details_and_timestamps(
    swarm_engine: EngineServer, logger_service: str
) -> None:
    query = "details=1&stderr=1&stdout=1&tail=all&timestamps=1"
    response = request(swarm_engine, "GET", f"/v1.41/services/logger/logs?{query}")
    assert response.status == 200
    assert "Content-Type" not in response.headers
    assert response.headers["Transfer-Encoding"] == "chunked"
    details = (
        f"com.docker.swarm.node.id={swarm_engine.backend.node_id},com.docker.swarm.service.id={logger_service},"
        f"com.docker.swarm.task.id={TASK1} "
    )
    frames = parse_frames(response.body)
    assert frames[0] == (1, f"2026-11-26T14:04:53.722917000Z {details}hello from 7ba6b5bc3e15\n".encode())
    assert frames[1] == (2, f"2026-11-26T14:04:53.722917000Z {details}to-stderr\n".encode())
    assert len(frames) == 3


def test_log_stream_selection_and_tail(swarm_engine: EngineServer, logger_service: str) -> None:
    only_stdout = request(swarm_engine, "GET", "/v1.41/services/logger/logs?stdout=1")
    assert parse_frames(only_stdout.body) == [
        (1, b"hello from 7ba6b5bc3e15\n"),
        (1, b"hello from fd519a40d131\n"),
    ]
    last = request(swarm_engine, "GET", "/v1.41/services/logger/logs?stdout=1&stderr=1&tail=1")
    assert parse_frames(last.body) == [(1, b"hello from fd519a40d131\n")]
    task = request(swarm_engine, "GET", f"/v1.41/tasks/{TASK2}/logs?stdout=True&stderr=True")
    assert parse_frames(task.body) == [(1, b"hello from fd519a40d131\n")]


def test_logs_of_unknown_service_are_a_json_404(swarm_engine: EngineServer) -> None:
    response = request(swarm_engine, "GET", "/v1.41/services/nope/logs?stdout=1")
    assert response.status == 404
    assert json.loads(response.body) == {"message": "service nope not found"}


def test_docker_py_service_logs(swarm_engine: EngineServer, logger_service: str) -> None:
    client = docker.APIClient(base_url=swarm_engine.base_url, version="1.41")
    try:
        output = b"".join(client.service_logs("logger", stdout=True, stderr=False, details=False))
    finally:
        client.close()
    assert output == b"hello from 7ba6b5bc3e15\nhello from fd519a40d131\n"


@needs_cli
def test_cli_service_logs_demultiplexes(swarm_engine: EngineServer, logger_service: str) -> None:
    result = swarm_engine.cli("service", "logs", "--no-task-ids", "logger")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "logger.1@fakehost    | hello from 7ba6b5bc3e15",
        "logger.2@fakehost    | hello from fd519a40d131",
    ]
    assert result.stderr.splitlines() == ["logger.1@fakehost    | to-stderr"]


def test_follow_keeps_the_stream_open_for_new_lines(swarm_engine: EngineServer, logger_service: str) -> None:
    async def follow() -> list[tuple[int, bytes]]:
        connector = aiohttp.UnixConnector(path=swarm_engine.socket_path)
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.get("http://docker/v1.41/services/logger/logs?stdout=1&follow=1&tail=0") as response,
        ):
            assert response.status == 200
            late = LogMessage(
                STDOUT, MOMENT, b"late line\n", _attrs(swarm_engine.backend.node_id, logger_service, TASK1)
            )
            await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(swarm_engine.backend.add_log(logger_service, late), swarm_engine._loop)
            )
            header = await response.content.readexactly(8)
            payload = await response.content.readexactly(int.from_bytes(header[4:], "big"))
            return [(header[0], payload)]

    assert asyncio.run(follow()) == [(1, b"late line\n")]


def _event(action: str, at: int) -> dict[str, object]:
    return {
        "Type": "service",
        "Action": action,
        "Actor": {"ID": "s1", "Attributes": {"name": "web"}},
        "scope": "swarm",
        "time": at,
        "timeNano": at * 1_000_000_000,
    }


def test_events_until_ends_the_stream(swarm_engine: EngineServer) -> None:
    for action, at in (("create", 1000), ("update", 2000), ("remove", 3000)):
        swarm_engine.run(swarm_engine.backend.publish_event(_event(action, at)))
    response = request(swarm_engine, "GET", "/v1.41/events?since=1500&until=2500")
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    assert [json.loads(line)["Action"] for line in response.body.splitlines()] == ["update"]


def test_events_stream_delivers_live_events_with_filters(swarm_engine: EngineServer) -> None:
    async def watch() -> dict[str, object]:
        connector = aiohttp.UnixConnector(path=swarm_engine.socket_path)
        filters = json.dumps({"type": {"service": True}})
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.get("http://docker/v1.41/events", params={"filters": filters}) as response,
        ):
            assert response.status == 200  # headers arrive before any event
            backend = swarm_engine.backend
            for event in ({**_event("x", 10), "Type": "node"}, _event("create", 11)):
                await asyncio.wrap_future(
                    asyncio.run_coroutine_threadsafe(backend.publish_event(event), swarm_engine._loop)
                )
            line = await response.content.readline()
            decoded: dict[str, object] = json.loads(line)
            return decoded

    assert asyncio.run(watch())["Action"] == "create"


@pytest.fixture
def container(engine: EngineServer) -> str:
    return engine.backend.add_container("web.1.abc", {"com.docker.swarm.service.name": "web"})


def test_docker_py_exec_run_gets_output_and_exit_code(engine: EngineServer, container: str) -> None:
    client = docker.DockerClient(base_url=engine.base_url, version="auto")
    try:
        found = client.containers.list(filters={"name": "web"})
        assert [c.id for c in found] == [container]
        ok = found[0].exec_run(["echo", "phantasmagoria", "of", "flower", "view"])
        assert (ok.exit_code, ok.output) == (0, b"phantasmagoria of flower view\n")
        failed = found[0].exec_run(["fail", "3", "boom"], demux=True)
        assert failed.exit_code == 3
        assert failed.output == (None, b"boom\n")
    finally:
        client.close()


def test_exec_start_answers_101_upgraded(engine: EngineServer, container: str) -> None:
    exec_id = engine.run(engine.backend.exec_create(container, {"Cmd": ["echo", "hi"]}))

    async def start() -> tuple[bytes, bytes]:
        reader, writer = await asyncio.open_unix_connection(engine.socket_path)
        body = b'{"Detach":false,"Tty":false}'
        writer.write(
            f"POST /v1.41/exec/{exec_id}/start HTTP/1.1\r\nHost: docker\r\n"
            f"Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        rest = await reader.read()  # the server closes when the exec ends
        writer.close()
        return head, rest

    head, rest = asyncio.run(start())
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 101 UPGRADED"
    assert "Content-Type: application/vnd.docker.raw-stream" in lines
    assert "Connection: Upgrade" in lines
    assert "Upgrade: tcp" in lines
    assert parse_frames(rest) == [(1, b"hi\n")]


def test_exec_of_unknown_id_is_a_json_404(engine: EngineServer) -> None:
    response = request(engine, "POST", "/v1.41/exec/nope/start", data=b"{}", headers={"Upgrade": "tcp"})
    assert response.status == 404
    assert response.headers["Content-Type"] == "application/json"


@needs_cli
def test_cli_exec_passes_stdin_through_the_hijacked_connection(engine: EngineServer, container: str) -> None:
    result = engine.cli("exec", "-i", "web.1.abc", "cat", stdin="line one\nline two\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "line one\nline two\n"
    failing = engine.cli("exec", "web.1.abc", "fail", "4", "bad")
    assert failing.returncode == 4
    assert failing.stderr == "bad\n"


def _wait_for_raw_mode(terminal: int, process: subprocess.Popen[bytes]) -> None:
    """Keys typed before the CLI switches the terminal to raw mode would be echoed locally."""
    deadline = time.monotonic() + 20
    while termios.tcgetattr(terminal)[3] & termios.ECHO:
        assert process.poll() is None, "docker exec ended early"
        assert time.monotonic() < deadline, "docker exec never set the terminal to raw mode"
        time.sleep(0.01)


@needs_cli
def test_cli_exec_interactive_tty(engine: EngineServer, container: str) -> None:
    """`docker exec -it`: raw (unframed) output, keystrokes sent over the hijacked connection."""
    primary, secondary = pty.openpty()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": "/tmp", "DOCKER_HOST": engine.base_url}
    process = subprocess.Popen(
        [str(DOCKER_CLI), "exec", "-it", "web.1.abc", "cat"],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env=env,
        start_new_session=True,
    )
    os.close(secondary)
    try:
        _wait_for_raw_mode(primary, process)
        os.write(primary, b"typed keys")
        seen = b""
        while b"typed keys" not in seen:
            seen += os.read(primary, 1024)
        os.write(primary, b"\x04")
        assert process.wait(timeout=20) == 0
        exec_ids = [e for e in engine.backend.execs.values() if e.tty]
        assert len(exec_ids) == 1 and exec_ids[0].exit_code == 0
    finally:
        if process.poll() is None:
            process.kill()
        os.close(primary)


@needs_cli
def test_cli_events_reads_the_stream(swarm_engine: EngineServer) -> None:
    event = {**_event("create", 1000), "timeNano": 1000 * 1_000_000_000 + 123}
    swarm_engine.run(swarm_engine.backend.publish_event(event))
    result = swarm_engine.cli("events", "--since", "0", "--until", "2000")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "1970-01-01T00:16:40.000000123Z service create s1 (name=web)\n"


def test_detached_exec_start_is_an_empty_200(engine: EngineServer, container: str) -> None:
    client = docker.APIClient(base_url=engine.base_url, version="1.41")
    try:
        exec_id = client.exec_create(container, ["fail", "2", "x"])["Id"]
        assert client.exec_start(exec_id, detach=True) == ""
        again = request(engine, "POST", f"/v1.41/exec/{exec_id}/start", data=b'{"Detach":true}')
        assert again.status == 409
    finally:
        client.close()
