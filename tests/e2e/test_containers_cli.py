"""Container calls on a task's container, through the real docker CLI on a shoald with the oci
executor: top, stats, kill, stop, wait, rm, pause/unpause, cp, exec, events, and docker volume. A task
whose container is killed, stopped or removed fails and is replaced by the orchestrator, as in Swarm.
Every call also gets the bad input dockerd refuses, with dockerd's text."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.testing import registry as registry_support
from shoal.testing.daemon import DOCKER_CLI, ShoalDaemon, cli_requirement, wait_until
from shoal.testing.oci_images import Layer, Pusher, make_image
from shoal.testing.oci_swarm import oci_missing, oci_swarm
from shoal.testing.registry import Registry

pytestmark = pytest.mark.skipif(**cli_requirement())

WEB_CMD = 'CMD ["httpd","-f","-v","-p","80","-h","/var/www"]'
IMAGE = "web:containers"


@pytest.fixture(scope="module")
def shoald(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShoalDaemon]:
    why_not = oci_missing()
    if why_not:
        pytest.skip(why_not)
    with oci_swarm(tmp_path_factory.mktemp("shoald-containers"), IMAGE, WEB_CMD) as daemon:
        yield daemon


def service(shoald: ShoalDaemon, name: str, *extra: str, command: tuple[str, ...] = ()) -> str:
    """A one-replica service whose failed task is replaced at once; returns its running container."""
    shoald.docker("service", "create", "--detach", "--name", name, "--restart-delay", "0s",
                  "--stop-grace-period", "1s", *extra, IMAGE, *command)
    return running_container(shoald, name)


def running_container(shoald: ShoalDaemon, name: str, other_than: str = "") -> str:
    found: list[str] = []

    def one_running() -> bool:
        found[:] = [c for c in shoald.docker("ps", "-q", "--no-trunc", "--filter", f"name={name}.").stdout.split()
                    if c != other_than]
        return len(found) == 1

    wait_until(one_running, 60, f"no running container for {name}: {found}")
    return found[0]


def task_errors(shoald: ShoalDaemon, name: str) -> list[str]:
    """`State|error` of each of the service's tasks (the CLI prints the error quoted)."""
    lines = shoald.docker("service", "ps", name, "--format", "{{.CurrentState}}|{{.Error}}").stdout.splitlines()
    return [line.replace('"', "") for line in lines]


def replaced(shoald: ShoalDaemon, name: str, old: str, error: str) -> str:
    """The task of container `old` failed with `error` and a new container runs in its place."""
    wait_until(lambda: any(line.startswith("Failed") and line.endswith(error) for line in task_errors(shoald, name)),
               60, f"task of {old[:12]} did not fail with {error}: {task_errors(shoald, name)}")
    return running_container(shoald, name, other_than=old)



def refused(shoald: ShoalDaemon, *args: str) -> str:
    result = shoald.docker(*args, check=False)
    assert result.returncode != 0, f"docker {' '.join(args)} was accepted: {result.stdout}"
    return result.stderr


def api(shoald: ShoalDaemon, method: str, path: str) -> http.client.HTTPResponse:
    """One raw Engine API call on the socket (for what the CLI does not show: status codes, streams)."""

    class UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(30)
            self.sock.connect(str(shoald.socket_path))

    connection = UnixConnection("localhost")
    connection.request(method, path)
    return connection.getresponse()


def test_top_and_stats_show_the_task_s_process_and_figures(shoald: ShoalDaemon) -> None:
    container = service(shoald, "topstats")
    top = shoald.docker("top", container).stdout.splitlines()
    assert top[0].split()[:3] == ["UID", "PID", "PPID"]
    assert len(top) == 2 and top[1].endswith("httpd -f -v -p 80 -h /var/www")
    custom = shoald.docker("top", container, "-o", "pid,comm").stdout.splitlines()
    assert custom[0].split() == ["PID", "COMMAND"] and custom[1].split()[1] == "httpd"

    row = json.loads(shoald.docker("stats", "--no-stream", "--format", "{{json .}}", container).stdout)
    assert row["PIDs"] == "1" and row["Name"].startswith("topstats.1.")
    used, _, limit = row["MemUsage"].partition(" / ")
    assert used not in ("0B", "--") and limit not in ("0B", "--")
    assert row["NetIO"] != "--" and row["CPUPerc"].endswith("%")

    one = json.loads(api(shoald, "GET", f"/v1.41/containers/{container}/stats?stream=0&one-shot=1").read())
    assert one["id"] == container and one["pids_stats"]["current"] == 1
    assert one["memory_stats"]["usage"] > 0 and one["cpu_stats"]["system_cpu_usage"] > 0
    assert "eth0" in one["networks"]
    stream = api(shoald, "GET", f"/v1.41/containers/{container}/stats")
    first, second = json.loads(stream.readline()), json.loads(stream.readline())
    stream.close()
    assert second["precpu_stats"]["cpu_usage"] == first["cpu_stats"]["cpu_usage"]
    assert second["preread"] == first["read"]

    assert "No such container: nosuch" in refused(shoald, "top", "nosuch")
    assert api(shoald, "GET", "/v1.41/containers/nosuch/stats?stream=0").status == 404
    assert "Error running ps" in refused(shoald, "top", container, "--no-such-ps-flag")
    shoald.docker("service", "rm", "topstats")


def test_inspect_shows_the_container_s_config_limits_and_mounts(shoald: ShoalDaemon) -> None:
    container = service(shoald, "inspected", "--env", "GREETING=hi", "--workdir", "/tmp", "--limit-memory", "64m",
                        "--mount", "type=volume,source=inspectvol,target=/data", "--mount",
                        "type=tmpfs,target=/scratch")
    shown = shoald.docker_json("container", "inspect", container)[0]
    assert "GREETING=hi" in shown["Config"]["Env"] and shown["Config"]["WorkingDir"] == "/tmp"
    assert shown["Config"]["Cmd"] == ["httpd", "-f", "-v", "-p", "80", "-h", "/var/www"]
    assert shown["Config"]["StopSignal"] == "SIGTERM" and shown["Config"]["StopTimeout"] == 1
    assert shown["HostConfig"]["Memory"] == 64 << 20
    volume = next(m for m in shown["Mounts"] if m["Type"] == "volume")
    assert (volume["Name"], volume["Destination"], volume["Driver"], volume["RW"]) == (
        "inspectvol", "/data", "local", True)
    assert volume["Source"].endswith("/volumes/inspectvol/_data")
    assert any(m["Type"] == "tmpfs" and m["Destination"] == "/scratch" for m in shown["Mounts"])
    assert shown["State"]["Status"] == "running" and "Health" not in shown["State"]
    limit = json.loads(shoald.docker("stats", "--no-stream", "--format", "{{json .}}", container).stdout)
    assert limit["MemUsage"].endswith("/ 64MiB")
    shoald.docker("service", "rm", "inspected")


def test_kill_fails_the_task_and_the_orchestrator_replaces_it(shoald: ShoalDaemon) -> None:
    container = service(shoald, "killed")
    assert "Invalid signal: FOO" in refused(shoald, "kill", "-s", "FOO", container)
    assert shoald.docker("inspect", "-f", "{{.State.Status}}", container).stdout.strip() == "running"
    assert shoald.docker("kill", "-s", "KILL", container).stdout.strip() == container
    successor = replaced(shoald, "killed", container, "task: non-zero exit (137)")
    assert shoald.docker("inspect", "-f", "{{.State.ExitCode}}", container).stdout.strip() == "137"
    assert f"Container {container} is not running" in refused(shoald, "kill", container)
    assert "No such container: nosuch" in refused(shoald, "kill", "nosuch")
    assert successor != container
    shoald.docker("service", "rm", "killed")


def test_stop_with_a_timeout_and_wait_for_the_exit_code(shoald: ShoalDaemon) -> None:
    container = service(shoald, "stopped")
    since = str(time.time() - 1)
    assert DOCKER_CLI is not None
    waiting = subprocess.Popen([DOCKER_CLI, "wait", container], env={**os.environ, "DOCKER_HOST": shoald.docker_host},
                               stdout=subprocess.PIPE, text=True)
    # busybox httpd as pid 1 ignores SIGTERM: the stop ends in a SIGKILL after the 1 s grace
    assert shoald.docker("stop", "-t", "1", container).stdout.strip() == container
    out, _ = waiting.communicate(timeout=30)
    assert out.strip() == "137"
    replaced(shoald, "stopped", container, "task: non-zero exit (137)")
    assert api(shoald, "POST", f"/v1.41/containers/{container}/stop").status == 304
    assert shoald.docker("wait", container).stdout.strip() == "137"  # at once: it is not running
    assert "No such container: nosuch" in refused(shoald, "stop", "nosuch")
    assert "No such container: nosuch" in refused(shoald, "wait", "nosuch")
    actions = shoald.docker("events", "--since", since, "--until", str(time.time()), "--filter",
                            f"container={container}", "--format", "{{.Action}} {{.Actor.Attributes.signal}}")
    lines = actions.stdout.splitlines()
    assert "kill 15" in lines and "stop <no value>" in lines and any(a.startswith("die") for a in lines)
    shoald.docker("service", "rm", "stopped")


def test_restart_runs_the_same_container_again_and_the_task_is_replaced(shoald: ShoalDaemon) -> None:
    container = service(shoald, "restarted")
    started = shoald.docker("inspect", "-f", "{{.State.StartedAt}}", container).stdout.strip()
    assert shoald.docker("restart", "-t", "1", container).stdout.strip() == container
    state = shoald.docker("inspect", "-f", "{{.State.Status}} {{.State.StartedAt}}", container).stdout.split()
    assert state[0] == "running" and state[1] != started
    assert shoald.docker("exec", container, "echo", "again").stdout == "again\n"
    # as in Swarm: the stop failed the task, the orchestrator replaced it; the restarted container lives
    # on until its task is removed
    successor = replaced(shoald, "restarted", container, "task: non-zero exit (137)")
    assert successor != container
    assert "No such container: nosuch" in refused(shoald, "restart", "nosuch")
    shoald.docker("service", "rm", "restarted")
    wait_until(lambda: shoald.docker("ps", "-aq", "--filter", "name=restarted.").stdout.strip() == "", 60,
               "the restarted container did not go with its service")


def test_rm_is_refused_while_running_and_forced_removes_the_container(shoald: ShoalDaemon) -> None:
    container = service(shoald, "removed")
    message = refused(shoald, "rm", container)
    assert (f"You cannot remove a running container {container}. Stop the container before attempting removal "
            "or force remove") in message
    assert shoald.docker("rm", "-f", container).stdout.strip() == container
    assert container not in shoald.docker("ps", "-a", "-q", "--no-trunc").stdout.split()
    assert f"No such container: {container}" in refused(shoald, "container", "inspect", container)
    replaced(shoald, "removed", container, "task: non-zero exit (137)")
    # with -f the CLI exits 0 on a missing container, but prints the daemon's 404
    assert "No such container: nosuch" in shoald.docker("rm", "-f", "nosuch", check=False).stderr
    assert "No such container: nosuch" in refused(shoald, "rm", "nosuch")
    shoald.docker("service", "rm", "removed")


def test_pause_freezes_the_container_until_unpause(shoald: ShoalDaemon) -> None:
    container = service(shoald, "paused")
    shoald.docker("pause", container)
    state = shoald.docker("inspect", "-f", "{{.State.Status}} {{.State.Paused}}", container).stdout.strip()
    assert state == "paused true"
    assert shoald.docker("ps", "--filter", f"id={container}", "--format", "{{.Status}}").stdout.strip().endswith(
        "(Paused)")
    assert f"Container {container} is paused, unpause the container before exec" in refused(
        shoald, "exec", container, "true")
    assert f"Container {container} is already paused" in refused(shoald, "pause", container)
    shoald.docker("unpause", container)
    assert shoald.docker("exec", container, "echo", "awake").stdout == "awake\n"
    assert f"Container {container} is not paused" in refused(shoald, "unpause", container)
    assert "No such container: nosuch" in refused(shoald, "pause", "nosuch")
    shoald.docker("service", "rm", "paused")


def test_cp_to_and_from_a_task_container(shoald: ShoalDaemon, tmp_path: Path) -> None:
    container = service(shoald, "copied")
    source = tmp_path / "in"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "note.txt").write_text("hello\n")
    shoald.docker("cp", str(source), f"{container}:/tmp/")
    assert shoald.docker("exec", container, "cat", "/tmp/in/sub/note.txt").stdout == "hello\n"
    out = tmp_path / "out"
    out.mkdir()
    shoald.docker("cp", f"{container}:/etc/hostname", str(out / "hostname"))
    assert (out / "hostname").read_text().strip() == container[:12]
    shoald.docker("cp", f"{container}:/var/www", str(out))
    assert (out / "www" / "cgi-bin" / "index.cgi").exists()
    shoald.docker("cp", f"{container}:/bin/sh", str(out / "sh"))
    assert (out / "sh").is_symlink()  # the link itself, as docker cp copies it
    archive = api(shoald, "GET", f"/v1.41/containers/{container}/archive?path=/tmp/in/sub")
    assert archive.status == 200 and "X-Docker-Container-Path-Stat" in archive.headers
    (tmp_path / "got.tar").write_bytes(archive.read())
    with tarfile.open(tmp_path / "got.tar") as tar:
        assert sorted(tar.getnames()) == ["sub", "sub/note.txt"]

    assert f"Could not find the file /nope in container {container}" in refused(
        shoald, "cp", f"{container}:/nope", str(out))
    assert "Could not find the file /nodir in container" in refused(
        shoald, "cp", str(source / "sub" / "note.txt"), f"{container}:/nodir/x")
    assert api(shoald, "HEAD", f"/v1.41/containers/{container}/archive?path=/nope").status == 404
    assert api(shoald, "HEAD", "/v1.41/containers/nosuch/archive?path=/").status == 404
    shoald.docker("service", "rm", "copied")


def test_exec_of_a_missing_command_exits_126_and_execs_show_on_events(shoald: ShoalDaemon) -> None:
    container = service(shoald, "execs")
    since = str(time.time() - 1)
    missing = shoald.docker("exec", container, "no-such-command", check=False)
    assert missing.returncode == 126
    assert shoald.docker("exec", container, "sh", "-c", "exit 3", check=False).returncode == 3
    actions = shoald.docker("events", "--since", since, "--until", str(time.time()), "--filter",
                            f"container={container}", "--format", "{{.Action}}").stdout.splitlines()
    assert "exec_create: sh -c exit 3" in actions and "exec_start: sh -c exit 3" in actions
    assert actions.count("exec_die") == 2
    shoald.docker("service", "rm", "execs")


def test_attach_follows_the_output_until_the_container_exits(shoald: ShoalDaemon) -> None:
    container = service(shoald, "attached", command=("sh", "-c", "while true; do echo tick; sleep 0.2; done"))
    assert DOCKER_CLI is not None
    attached = subprocess.Popen([DOCKER_CLI, "attach", "--no-stdin", container],
                                env={**os.environ, "DOCKER_HOST": shoald.docker_host}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    assert attached.stdout is not None
    assert attached.stdout.readline() == "tick\n"
    shoald.docker("kill", container)
    attached.communicate(timeout=30)
    assert attached.returncode == 137  # the CLI exits with the container's code
    assert "No such container: nosuch" in refused(shoald, "attach", "nosuch")
    shoald.docker("service", "rm", "attached")


def test_system_df_counts_images_containers_and_volumes(shoald: ShoalDaemon) -> None:
    service(shoald, "df", "--mount", "type=volume,source=dfvol,target=/data")
    rows = {row["Type"]: row for row in map(json.loads, shoald.docker(
        "system", "df", "--format", "{{json .}}").stdout.splitlines())}
    assert set(rows) == {"Images", "Containers", "Local Volumes", "Build Cache"}
    assert int(rows["Containers"]["Active"]) >= 1 and int(rows["Images"]["Active"]) >= 1
    assert int(rows["Local Volumes"]["TotalCount"]) >= 1 and int(rows["Local Volumes"]["Active"]) >= 1
    verbose = shoald.docker("system", "df", "-v").stdout
    assert "dfvol" in verbose and IMAGE.split(":")[0] in verbose
    shoald.docker("service", "rm", "df")


def test_volumes_made_on_first_use_listed_and_refused_while_in_use(shoald: ShoalDaemon) -> None:
    assert shoald.docker("volume", "create", "--label", "team=a", "made").stdout.strip() == "made"
    assert shoald.docker("volume", "create", "made").stdout.strip() == "made"  # an existing one is kept
    inspected = shoald.docker_json("volume", "inspect", "made")[0]
    assert (inspected["Driver"], inspected["Scope"], inspected["Labels"]) == ("local", "local", {"team": "a"})
    assert inspected["Mountpoint"].endswith("/volumes/made/_data")
    container = service(shoald, "withvol", "--mount", "type=volume,source=firstuse,target=/data")
    shoald.docker("exec", container, "sh", "-c", "echo kept > /data/file")
    names = shoald.docker("volume", "ls", "--format", "{{.Driver}} {{.Name}}").stdout.splitlines()
    assert "local firstuse" in names and "local made" in names
    assert shoald.docker("volume", "ls", "-q", "--filter", "label=team=a").stdout.split() == ["made"]
    assert f"remove firstuse: volume is in use - [{container}]" in refused(shoald, "volume", "rm", "firstuse")
    pruned = shoald.docker("volume", "prune", "--force").stdout
    assert "made" in pruned and "firstuse" not in pruned
    assert "get nope: no such volume" in refused(shoald, "volume", "inspect", "nope")
    assert "get nope: no such volume" in refused(shoald, "volume", "rm", "nope")
    assert 'includes invalid characters for a local volume name' in refused(shoald, "volume", "create", "a b")
    assert 'plugin "nodriver" not found' in refused(shoald, "volume", "create", "-d", "nodriver", "x")
    shoald.docker("service", "rm", "withvol")
    wait_until(lambda: shoald.docker("volume", "rm", "firstuse", check=False).returncode == 0, 60,
               "volume still in use after its service went")
    assert shoald.docker("volume", "ls", "-q").stdout.split() == []


USER, PASSWORD = "alice", "s3cret-pw"


@pytest.fixture(scope="module")
def private_image(shoald: ShoalDaemon, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The web image in a registry that wants basic auth (pushed through an open one on the same storage)."""
    why_not = registry_support.available()
    if why_not:
        pytest.skip(why_not)
    work = tmp_path_factory.mktemp("private-registry")
    (work / "basic").mkdir()
    open_registry = Registry(work, work / "storage")
    basic = Registry(work / "basic", work / "storage", htpasswd={USER: PASSWORD})
    open_registry.start()
    try:
        basic.start()
        rootfs = (shoald.workdir / "web.tar").read_bytes()
        image = make_image([Layer(rootfs, gzip.compress(rootfs, compresslevel=1, mtime=0))],
                           config={"Cmd": ["httpd", "-f", "-p", "80", "-h", "/var/www"]})
        Pusher(open_registry.base_url).image("team/web", "1", image)
        yield f"{basic.host}/team/web:1"
    finally:
        basic.stop()
        open_registry.stop()


def test_with_registry_auth_lets_the_node_pull_and_is_never_shown(shoald: ShoalDaemon, private_image: str,
                                                                  tmp_path: Path) -> None:
    config = ["--config", str(tmp_path / "docker-config")]
    repository = private_image.rsplit(":", 1)[0]
    # a refused pull fails before its stream, with dockerd's 404 (a 401 would make the CLI prompt)
    assert shoald.request("POST", f"/v1.41/images/create?fromImage={repository}&tag=1") == 404
    denied = shoald.docker(*config, "pull", private_image, check=False, timeout=30)
    assert denied.returncode == 1 and "pull access denied" in denied.stderr
    shoald.docker(*config, "login", "-u", USER, "-p", PASSWORD, private_image.split("/")[0])
    shoald.docker(*config, "service", "create", "--detach", "--name", "anonymous", private_image)
    wait_until(lambda: any(line.startswith("Rejected") and "pull access denied" in line
                           for line in task_errors(shoald, "anonymous")),
               60, f"a task pulled without credentials: {task_errors(shoald, 'anonymous')}")
    shoald.docker(*config, "service", "create", "--detach", "--name", "private", "--with-registry-auth",
                  private_image)
    running_container(shoald, "private")
    shown = shoald.docker("service", "inspect", "private").stdout + shoald.docker(
        "inspect", shoald.docker("service", "ps", "-q", "private").stdout.split()[0]).stdout
    assert "RegistryAuth" not in shown and "PullOptions" not in shown
    # an update without new credentials keeps the stored ones (the task pulls again on a fresh node)
    shoald.docker(*config, "service", "update", "--detach", "--env-add", "X=1", "private")
    shoald.docker("service", "rm", "anonymous", "private")
