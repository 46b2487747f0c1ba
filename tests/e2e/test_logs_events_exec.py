"""What a user reads back from running tasks through the real docker CLI and docker-py: `service logs`
(prefix, streams, tail, timestamps, follow), `docker events` (service and container events, replayed
and streamed), `docker exec` (exit codes, stdin, the task's hostname), `docker ps` and `docker inspect`."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import threading
import time
from typing import IO, Any

import docker
import pytest

from shoal.testing.daemon import (
    CLI_DAEMON_ERRORS_VERBATIM,
    DOCKER_CLI,
    ShoalDaemon,
    cli_has,
    cli_requirement,
    wait_until,
)

pytestmark = pytest.mark.skipif(**cli_requirement())  # without a docker CLI these checks cannot run

IMAGE = "my-apache2:latest"
# the pause keeps the two lines in order in the log (stdout and stderr are separate pipes)
LOGGER_SCRIPT = "echo hello from $(hostname); sleep 0.2; echo to-stderr >&2; sleep 3600"
TICKER_SCRIPT = "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"
TASK_PREFIX = re.compile(r"^(?P<service>[\w-]+)\.(?P<slot>\d+)\.(?P<task>\w{12})@(?P<node>\S+)\s+\| (?P<text>.*)$")


def parse(line: str) -> re.Match[str]:
    match = TASK_PREFIX.match(line)
    assert match, f"not a service log line: {line!r}"
    return match


def tasks(daemon: ShoalDaemon, service: str) -> list[dict[str, Any]]:
    ids = daemon.docker("service", "ps", "-q", "--no-trunc", service).stdout.split()
    found: list[dict[str, Any]] = daemon.docker_json("inspect", "--type", "task", *ids) if ids else []
    return found


def running_tasks(daemon: ShoalDaemon, service: str, count: int) -> list[dict[str, Any]]:
    def ready() -> bool:
        return sum(1 for t in tasks(daemon, service) if t["Status"]["State"] == "running") == count

    wait_until(ready, 30, f"{service} never had {count} running tasks")
    return sorted((t for t in tasks(daemon, service) if t["Status"]["State"] == "running"), key=lambda t: t["Slot"])


def container_of(task: dict[str, Any]) -> str:
    return str(task["Status"]["ContainerStatus"]["ContainerID"])


def container_name(task: dict[str, Any]) -> str:
    return f"{task['ServiceAnnotations']['Name']}.{task['Slot']}.{task['ID']}"


class LineReader:
    """The lines a long-running docker command prints, read on a thread so a test can wait for them."""

    def __init__(self, daemon: ShoalDaemon, *args: str) -> None:
        env = {**os.environ, "DOCKER_HOST": daemon.docker_host}
        env.pop("DOCKER_API_VERSION", None)
        self.process = subprocess.Popen(
            [DOCKER_CLI, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self.lines: queue.Queue[str] = queue.Queue()
        assert self.process.stdout is not None
        threading.Thread(target=self._pump, args=(self.process.stdout,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))

    def next_matching(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if found := re.search(pattern, line):
                return found
        raise AssertionError(f"no line matching {pattern!r} within {timeout}s")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture(scope="module")
def hostname(swarm: ShoalDaemon) -> str:
    return swarm.docker("node", "inspect", "self", "--format", "{{.Description.Hostname}}").stdout.strip()


@pytest.fixture(scope="module")
def logger(swarm: ShoalDaemon) -> list[dict[str, Any]]:
    """Two tasks that each print one stdout and one stderr line, then sleep."""
    swarm.docker(
        "service", "create", "--detach", "--name", "logger", "--replicas", "2", IMAGE, "sh", "-c", LOGGER_SCRIPT
    )
    found = running_tasks(swarm, "logger", 2)
    wait_until(
        lambda: swarm.docker("service", "logs", "logger").stderr.count("to-stderr") == 2, 30, "the tasks never printed"
    )
    return found


# -- service logs


def test_service_logs_prefix_and_streams(swarm: ShoalDaemon, logger: list[dict[str, Any]], hostname: str) -> None:
    result = swarm.docker("service", "logs", "logger")
    out, err = result.stdout.splitlines(), result.stderr.splitlines()
    assert len(out) == 2 and len(err) == 2
    by_task = {t["ID"][:12]: t for t in logger}
    for line in out:
        match = parse(line)
        task = by_task[match["task"]]
        assert (match["service"], int(match["slot"]), match["node"]) == ("logger", task["Slot"], hostname)
        # the default hostname inside a task is its container id's first 12 characters
        assert match["text"] == f"hello from {container_of(task)[:12]}"
    assert {parse(line)["task"] for line in out} == set(by_task)
    for line in err:
        match = parse(line)
        assert match["text"] == "to-stderr" and match["task"] in by_task, line


def test_service_logs_tail_timestamps_and_no_task_ids(swarm: ShoalDaemon, logger: list[dict[str, Any]]) -> None:
    tail = swarm.docker("service", "logs", "--tail", "1", "logger")
    assert tail.stdout == ""  # each task's last line went to stderr
    assert [parse(line)["text"] for line in tail.stderr.splitlines()] == ["to-stderr"] * 2

    stamped = swarm.docker("service", "logs", "--timestamps", "--no-task-ids", "logger")
    for line in stamped.stdout.splitlines():
        assert re.fullmatch(
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z logger\.[12]@\S+\s+\| hello from [0-9a-f]{12}", line
        ), line
    assert len(stamped.stderr.splitlines()) == 2
    assert all(re.fullmatch(r"\S+Z logger\.[12]@\S+\s+\| to-stderr", line) for line in stamped.stderr.splitlines())


def test_logs_of_one_task_and_of_its_container(swarm: ShoalDaemon, logger: list[dict[str, Any]]) -> None:
    task = logger[1]
    for ref in (task["ID"], task["ID"][:12]):
        result = swarm.docker("service", "logs", ref)
        assert [parse(line)["task"] for line in result.stdout.splitlines()] == [task["ID"][:12]]
        assert [parse(line)["text"] for line in result.stderr.splitlines()] == ["to-stderr"]
    plain = swarm.docker("logs", container_name(task))
    assert (plain.stdout, plain.stderr) == (f"hello from {container_of(task)[:12]}\n", "to-stderr\n")


def test_service_logs_follow(swarm: ShoalDaemon) -> None:
    swarm.docker("service", "create", "--detach", "--name", "ticker", IMAGE, "sh", "-c", TICKER_SCRIPT)
    running_tasks(swarm, "ticker", 1)
    wait_until(lambda: "tick 2" in swarm.docker("service", "logs", "ticker").stdout, 30, "ticker never ticked")
    already = max(int(n) for n in re.findall(r"tick (\d+)", swarm.docker("service", "logs", "ticker").stdout))
    follower = LineReader(swarm, "service", "logs", "--follow", "--no-task-ids", "ticker")
    try:
        ticks = [int(follower.next_matching(r"^ticker\.1@\S+\s+\| tick (\d+)$")[1]) for _ in range(already + 3)]
    finally:
        follower.close()
    assert ticks == list(range(1, already + 4)), "lines were lost, repeated or reordered while following"
    swarm.docker("service", "rm", "ticker")


def test_service_logs_follow_shows_replacement_tasks(swarm: ShoalDaemon) -> None:
    swarm.docker(
        "service",
        "create",
        "--detach",
        "--name",
        "crashloop",
        "--restart-delay",
        "1s",
        IMAGE,
        "sh",
        "-c",
        "echo run $(hostname); sleep 1; exit 1",
    )
    (first,) = running_tasks(swarm, "crashloop", 1)
    follower = LineReader(swarm, "service", "logs", "--follow", "crashloop")
    try:
        seen = {
            follower.next_matching(r"^crashloop\.1\.(\w{12})@\S+\s+\| run [0-9a-f]{12}$", timeout=10)[1]
            for _ in range(3)
        }
    finally:
        follower.close()
        swarm.docker("service", "rm", "crashloop")
    assert first["ID"][:12] in seen and len(seen) == 3, "followed logs stayed with the tasks of the first moment"


def test_dockerpy_service_logs(swarm: ShoalDaemon, logger: list[dict[str, Any]]) -> None:
    client = docker.DockerClient(base_url=swarm.docker_host, version="auto", timeout=30)
    try:
        service = client.services.get("logger")
        out = sorted(b"".join(service.logs(stdout=True, stderr=False)).splitlines())
        assert out == sorted(f"hello from {container_of(t)[:12]}".encode() for t in logger)
        both = b"".join(service.logs(stdout=True, stderr=True, details=True)).splitlines()
        assert len(both) == 4
        for task in logger:
            prefix = (
                f"com.docker.swarm.node.id={task['NodeID']},com.docker.swarm.service.id={task['ServiceID']},"
                f"com.docker.swarm.task.id={task['ID']} "
            ).encode()
            assert sorted(line[len(prefix) :] for line in both if line.startswith(prefix)) == sorted(
                [b"to-stderr", f"hello from {container_of(task)[:12]}".encode()]
            )
    finally:
        client.close()


# -- events


def events(daemon: ShoalDaemon, since: float, until: float, *filters: str) -> list[str]:
    args = [
        "events",
        "--since",
        f"{since:.6f}",
        "--until",
        f"{until:.6f}",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}",
    ]
    for item in filters:
        args += ["--filter", item]
    return daemon.docker(*args).stdout.splitlines()


def test_events_replay_service_lifecycle(swarm: ShoalDaemon) -> None:
    since = time.time()
    service_id = swarm.docker("service", "create", "--detach", "--name", "evsvc", IMAGE, "sleep", "3600").stdout.strip()
    swarm.docker("service", "update", "--detach", "--label-add", "color=blue", "evsvc")
    swarm.docker("service", "rm", "evsvc")
    # the remove event is published as the deletion commits, which may be just after the CLI returned
    wait_until(
        lambda: " remove " in "\n".join(events(swarm, since, time.time(), "type=service")), 10, "no remove event"
    )
    until = time.time()
    seen = events(swarm, since, until, "type=service")
    assert all(line.startswith("service ") and f" {service_id} evsvc" in line for line in seen), seen
    actions = [line.split()[1] for line in seen]
    assert actions[0] == "create" and actions[-1] == "remove" and "update" in actions, actions
    assert events(swarm, until, time.time(), "type=service") == []


def test_events_filters(swarm: ShoalDaemon) -> None:
    since = time.time()
    first = swarm.docker("service", "create", "--detach", "--name", "filtered", IMAGE, "sleep", "3600").stdout.strip()
    swarm.docker("service", "create", "--detach", "--name", "other", IMAGE, "sleep", "3600")
    (task,) = running_tasks(swarm, "filtered", 1)
    for name in ("filtered", "other"):
        swarm.docker("service", "rm", name)
    wait_until(
        lambda: sum(" remove " in line for line in events(swarm, since, time.time(), "type=service")) == 2,
        10,
        "no removals",
    )
    until = time.time()
    assert [line.split()[:2] for line in events(swarm, since, until, "event=create", "type=service")] == [
        ["service", "create"],
        ["service", "create"],
    ]
    # each task's container is created before it starts, as dockerd reports it
    assert {line.split()[0] for line in events(swarm, since, until, "event=create")} == {"service", "container"}
    assert {line.split()[1] for line in events(swarm, since, until, "service=filtered")} >= {"create", "remove"}
    assert all(f" {first} filtered " in line for line in events(swarm, since, until, f"service={first[:6]}"))
    assert events(swarm, since, until, f"container={container_of(task)[:12]}", "event=start") == [
        f"container start {container_of(task)} {container_name(task)} <no value>"
    ]
    assert events(swarm, since, until, "label=com.docker.swarm.service.id=nosuch") == []


def test_container_start_and_die_events(swarm: ShoalDaemon) -> None:
    since = time.time()
    swarm.docker(
        "service",
        "create",
        "--detach",
        "--name",
        "shortlived",
        "--restart-condition",
        "none",
        IMAGE,
        "sh",
        "-c",
        "exit 5",
    )
    wait_until(
        lambda: [t["Status"]["State"] for t in tasks(swarm, "shortlived")] == ["failed"], 30, "the task never failed"
    )
    (task,) = tasks(swarm, "shortlived")
    wait_until(
        lambda: any(" die " in line for line in events(swarm, since, time.time(), "type=container")), 10, "no die event"
    )
    mine = [line for line in events(swarm, since, time.time(), "type=container") if container_of(task) in line]
    assert mine == [
        f"container create {container_of(task)} {container_name(task)} <no value>",
        f"container start {container_of(task)} {container_name(task)} <no value>",
        f"container die {container_of(task)} {container_name(task)} 5",
    ]
    swarm.docker("service", "rm", "shortlived")


def test_events_stream_picks_up_a_new_service(swarm: ShoalDaemon) -> None:
    me = swarm.docker("info", "--format", "{{.Swarm.NodeID}}").stdout.strip()
    reader = LineReader(swarm, "events", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
    try:
        # nudge the node until the stream shows it is subscribed, so nothing that follows can be missed
        def subscribed() -> bool:
            swarm.docker("node", "update", "--label-add", "nudge=1", me)
            try:
                reader.next_matching(r"^node update ", timeout=1)
            except AssertionError:
                return False
            return True

        wait_until(subscribed, 20, "docker events never streamed a node update")
        swarm.docker("service", "create", "--detach", "--name", "streamed", IMAGE, "sleep", "3600")
        reader.next_matching(r"^service create streamed$")
    finally:
        reader.close()
    swarm.docker("service", "rm", "streamed")


# -- exec


def test_exec_exit_code_and_stdin(swarm: ShoalDaemon, logger: list[dict[str, Any]]) -> None:
    name = container_name(logger[0])
    # repeated: the CLI reads the exit code as soon as the output ends, which once raced the reaping
    for _ in range(15):
        result = swarm.docker("exec", name, "sh", "-c", "echo hi; exit 4", check=False)
        assert (result.returncode, result.stdout) == (4, "hi\n")
    piped = swarm.docker("exec", "-i", name, "sh", "-c", "cat; echo done", input="line one\nline two\n")
    assert piped.stdout == "line one\nline two\ndone\n"
    by_id = swarm.docker("exec", container_of(logger[1])[:12], "hostname")
    assert by_id.stdout.strip() == container_of(logger[1])[:12]


def test_exec_refused_for_missing_or_stopped_containers(swarm: ShoalDaemon) -> None:
    missing = swarm.docker("exec", "nosuchcontainer", "true", check=False)
    assert missing.returncode == 1
    if cli_has(CLI_DAEMON_ERRORS_VERBATIM, "exec prints the daemon's no-such-container message"):
        assert missing.stderr.strip() == "Error response from daemon: No such container: nosuchcontainer"
    swarm.docker("service", "create", "--detach", "--name", "stopped", "--restart-condition", "none", IMAGE, "true")
    wait_until(lambda: [t["Status"]["State"] for t in tasks(swarm, "stopped")] == ["complete"], 30, "never completed")
    (task,) = tasks(swarm, "stopped")
    refused = swarm.docker("exec", container_name(task), "true", check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip() == f"Error response from daemon: Container {container_of(task)} is not running"
    swarm.docker("service", "rm", "stopped")


def test_hostname_template(swarm: ShoalDaemon) -> None:
    swarm.docker(
        "service",
        "create",
        "--detach",
        "--name",
        "named",
        "--replicas",
        "2",
        "--hostname",
        "{{.Service.Name}}-{{.Task.Slot}}",
        IMAGE,
        "sleep",
        "3600",
    )
    found = running_tasks(swarm, "named", 2)
    names = [swarm.docker("exec", container_name(t), "hostname").stdout.strip() for t in found]
    assert names == ["named-1", "named-2"]
    swarm.docker("service", "rm", "named")


# -- docker ps and inspect


def test_docker_ps_columns_and_names(swarm: ShoalDaemon, logger: list[dict[str, Any]]) -> None:
    lines = swarm.docker("ps", "--filter", "name=logger").stdout.splitlines()
    assert re.fullmatch(r"CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES", lines[0].strip())
    rows = sorted(lines[1:], key=lambda line: line.split()[-1])
    assert len(rows) == 2
    for row, task in zip(rows, logger, strict=True):
        assert re.fullmatch(
            # dockerd quotes an argument holding a space (`sh -c 'echo …'`), then the CLI cuts at 20
            rf'{container_of(task)[:12]}\s+{IMAGE}\s+"sh -c \'echo hello f…"\s+.+ ago\s+Up .+\s+'
            rf"{container_name(task)}",
            row.strip(),
        ), row
    swarm.docker(
        "service", "create", "--detach", "--name", "exited", "--restart-condition", "none", IMAGE, "sh", "-c", "exit 7"
    )
    wait_until(lambda: [t["Status"]["State"] for t in tasks(swarm, "exited")] == ["failed"], 30, "never failed")
    (gone,) = tasks(swarm, "exited")
    assert container_name(gone) not in swarm.docker("ps", "--format", "{{.Names}}").stdout.split()
    listed = swarm.docker("ps", "-a", "--filter", "name=exited", "--format", "{{.ID}} {{.Names}} {{.Status}}").stdout
    assert re.fullmatch(rf"{container_of(gone)[:12]} {container_name(gone)} Exited \(7\) .+ ago\n", listed), listed
    swarm.docker("service", "rm", "exited")
    quiet = swarm.docker("ps", "-q", "--filter", "label=com.docker.swarm.service.name=logger").stdout.split()
    assert sorted(quiet) == sorted(container_of(t)[:12] for t in logger)


def test_docker_inspect_container(swarm: ShoalDaemon, logger: list[dict[str, Any]]) -> None:
    task = logger[0]
    (by_name,) = swarm.docker_json("inspect", container_name(task))
    (by_id,) = swarm.docker_json("inspect", "--type", "container", container_of(task)[:12])
    assert by_name == by_id
    assert by_name["Id"] == container_of(task)
    assert by_name["Name"] == f"/{container_name(task)}"
    assert by_name["State"]["Status"] == "running" and by_name["State"]["Running"] is True
    assert by_name["Config"]["Image"] == IMAGE
    labels = by_name["Config"]["Labels"]
    assert labels["com.docker.swarm.task.id"] == task["ID"]
    assert labels["com.docker.swarm.service.name"] == "logger"
    fmt = swarm.docker("inspect", "--format", "{{.Name}} {{.State.Status}}", container_name(task)).stdout.strip()
    assert fmt == f"/{container_name(task)} running"


def test_docker_inspect_container_process_details(swarm: ShoalDaemon, logger: list[dict[str, Any]]) -> None:
    task = logger[0]
    (inspected,) = swarm.docker_json("inspect", container_name(task))
    assert inspected["State"]["Pid"] == task["Status"]["ContainerStatus"]["PID"] > 0
    assert [inspected["Path"], *inspected["Args"]] == ["sh", "-c", LOGGER_SCRIPT]
    assert inspected["Config"]["Hostname"] == container_of(task)[:12]
    assert inspected["State"]["FinishedAt"] == "0001-01-01T00:00:00Z"
    pid = swarm.docker("inspect", "--format", "{{.State.Pid}}", container_name(task)).stdout.strip()
    assert pid == str(task["Status"]["ContainerStatus"]["PID"])

    swarm.docker(
        "service", "create", "--detach", "--name", "ended", "--restart-condition", "none", IMAGE, "sh", "-c", "exit 7"
    )
    wait_until(lambda: [t["Status"]["State"] for t in tasks(swarm, "ended")] == ["failed"], 30, "never failed")
    (ended,) = tasks(swarm, "ended")
    (exited,) = swarm.docker_json("inspect", container_name(ended))
    assert (exited["State"]["Status"], exited["State"]["Running"], exited["State"]["Pid"]) == ("exited", False, 0)
    assert exited["State"]["ExitCode"] == 7
    assert exited["State"]["StartedAt"] <= exited["State"]["FinishedAt"] != "0001-01-01T00:00:00Z"
    swarm.docker("service", "rm", "ended")
