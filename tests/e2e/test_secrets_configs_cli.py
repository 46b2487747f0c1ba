"""Secrets and configs end to end on a shoald with the oci executor, through the real docker CLI and
docker-py: create from stdin, ls, inspect (a secret's data never shown), Swarm's refusals (duplicate,
over 500 KiB, rm while a service uses it); a service's task reads its secret, config and a rendered
template with `docker exec`, on a tmpfs that goes with the task (also across a kill -9 of shoald); a
process task reads its secret inside its own namespace only; and a marker secret that is found nowhere
it should not be (data root, daemon log, API responses)."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from shoal.testing.daemon import ShoalDaemon, cli_requirement, wait_until
from shoal.testing.oci_swarm import oci_missing, oci_swarm

pytestmark = pytest.mark.skipif(**cli_requirement())

IMAGE = "bbsecrets:latest"
TMPFS_SOURCE = "shoal-task-files"  # executor.taskfiles names its mounts so


@pytest.fixture(scope="module")
def oci(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShoalDaemon]:
    why_not = oci_missing()
    if why_not:
        pytest.skip(why_not)
    with oci_swarm(tmp_path_factory.mktemp("shoald-secrets"), IMAGE) as shoald:
        yield shoald


def task_files_mounts(daemon: ShoalDaemon) -> list[str]:
    """The tasks' secret tmpfs mounts of this daemon (mount points under its data root)."""
    root = str(daemon.data_root.resolve()) + "/"
    return [line for line in Path("/proc/self/mounts").read_text().splitlines()
            if line.startswith(TMPFS_SOURCE + " ") and line.split()[1].startswith(root)]


def running_container(daemon: ShoalDaemon, service: str) -> str:
    found: list[str] = []

    def running() -> bool:
        names = daemon.docker("ps", "--format", "{{.Names}}").stdout.split()
        found[:] = [n for n in names if n.startswith(service + ".")]
        return bool(found)

    wait_until(running, 90, f"a running task of {service} (see docker service ps --no-trunc {service})")
    return found[0]


def test_create_ls_inspect_and_swarms_refusals(oci: ShoalDaemon, tmp_path: Path) -> None:
    secret_id = oci.docker("secret", "create", "pw", "-", input="t0p-s3cr3t").stdout.strip()
    assert len(secret_id) == 25
    listed = oci.docker("secret", "ls", "--format", "{{.ID}} {{.Name}}").stdout.split("\n")
    assert f"{secret_id} pw" in listed
    shown = oci.docker_json("secret", "inspect", "pw")[0]
    assert shown["ID"] == secret_id and shown["Spec"]["Name"] == "pw" and "Data" not in shown["Spec"]

    duplicate = oci.docker("secret", "create", "pw", "-", input="other", check=False)
    assert duplicate.returncode == 1
    assert duplicate.stderr.strip() == ("Error response from daemon: rpc error: code = AlreadyExists desc = "
                                        "secret pw already exists")
    big = tmp_path / "big"
    big.write_bytes(b"x" * (500 * 1024))
    too_big = oci.docker("secret", "create", "big", str(big), check=False)
    assert too_big.returncode == 1
    assert too_big.stderr.strip() == ("Error response from daemon: rpc error: code = InvalidArgument desc = "
                                      "secret data must be larger than 0 and less than 512000 bytes")
    assert oci.docker("secret", "ls", "-q").stdout.split() == [secret_id]

    config_id = oci.docker("config", "create", "--label", "team=a", "conf", "-", input="key=value\n").stdout.strip()
    config = oci.docker_json("config", "inspect", "conf")[0]
    assert config["ID"] == config_id and config["Spec"]["Labels"] == {"team": "a"}
    assert base64.b64decode(config["Spec"]["Data"]) == b"key=value\n"
    assert oci.docker("config", "ls", "--filter", "label=team=a", "-q").stdout.split() == [config_id]

    client = docker.DockerClient(base_url=oci.docker_host)
    try:
        assert "Data" not in client.secrets.get(secret_id).attrs["Spec"]
        made = client.secrets.create(name="from-py", data=b"py-secret", labels={"k": "v"})
        assert {s.name for s in client.secrets.list(filters={"label": "k=v"})} == {"from-py"}
        made.remove()
        assert [c.id for c in client.configs.list(filters={"name": "con"})] == [config_id]
    finally:
        client.close()


def test_a_task_reads_its_secret_config_and_template_on_a_tmpfs(oci: ShoalDaemon) -> None:
    oci.docker("secret", "create", "db_pass", "-", input="hunter2")
    oci.docker("config", "create", "app_conf", "-", input="port=8080\n")
    oci.docker("config", "create", "--template-driver", "golang", "tpl", "-",
               input='service={{.Service.Name}} slot={{.Task.Slot}} pw={{secret "renamed"}}\n')
    oci.docker("service", "create", "--detach", "--name", "reader",
               "--secret", "db_pass", "--secret", "source=db_pass,target=renamed,uid=1000,gid=1001,mode=0400",
               "--config", "source=app_conf,target=/etc/app.conf", "--config", "source=tpl,target=/etc/tpl.conf",
               IMAGE)
    container = running_container(oci, "reader")

    def read(path: str) -> str:
        return oci.docker("exec", container, "cat", path).stdout

    assert read("/run/secrets/db_pass") == "hunter2"
    assert read("/etc/app.conf") == "port=8080\n"
    assert read("/etc/tpl.conf") == "service=reader slot=1 pw=hunter2\n"
    assert oci.docker("exec", container, "stat", "-c", "%u %g %a", "/run/secrets/renamed").stdout.split() == [
        "1000", "1001", "400"]
    in_task = oci.docker("exec", container, "cat", "/proc/mounts").stdout
    assert any(line.split()[1] == "/run/secrets/db_pass" and line.split()[2] == "tmpfs"
               for line in in_task.splitlines()), in_task
    write = oci.docker("exec", container, "sh", "-c", "echo x > /run/secrets/db_pass", check=False)
    assert write.returncode != 0  # read-only
    assert task_files_mounts(oci), "the task's tmpfs is mounted while it runs"

    refused = oci.docker("secret", "rm", "db_pass", check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip() == ("Error response from daemon: rpc error: code = InvalidArgument desc = "
                                      "secret 'db_pass' is in use by the following service: reader")
    oci.docker("service", "rm", "reader")
    wait_until(lambda: not task_files_mounts(oci), 60, f"the task's tmpfs unmounted: {task_files_mounts(oci)}")
    oci.docker("secret", "rm", "db_pass")
    oci.docker("config", "rm", "app_conf", "tpl")


def test_service_update_adds_and_removes_secrets(oci: ShoalDaemon) -> None:
    oci.docker("secret", "create", "first", "-", input="one")
    oci.docker("secret", "create", "second", "-", input="two")
    oci.docker("service", "create", "--detach", "--name", "changing", "--secret", "first", IMAGE)
    before = running_container(oci, "changing")
    oci.docker("service", "update", "--detach", "--secret-add", "source=second,target=extra", "--secret-rm",
               "first", "changing")
    after: list[str] = []

    def replaced() -> bool:
        after[:] = [running_container(oci, "changing")]
        return after[0] != before

    wait_until(replaced, 90, "the task replaced after the update")
    assert oci.docker("exec", after[0], "cat", "/run/secrets/extra").stdout == "two"
    assert oci.docker("exec", after[0], "ls", "/run/secrets").stdout.split() == ["extra"]
    oci.docker("secret", "rm", "first")  # no longer used by the service
    oci.docker("service", "rm", "changing")
    wait_until(lambda: not task_files_mounts(oci), 60, "the tasks' tmpfs unmounted")
    oci.docker("secret", "rm", "second")


def test_a_task_keeps_its_secret_across_a_daemon_restart(oci: ShoalDaemon) -> None:
    oci.docker("secret", "create", "kept", "-", input="still-here")
    oci.docker("service", "create", "--detach", "--name", "survivor", "--secret", "kept", IMAGE)
    container = running_container(oci, "survivor")
    oci.kill9()
    oci.start()
    assert running_container(oci, "survivor") == container  # re-adopted, not restarted
    assert oci.docker_json("secret", "inspect", "kept")[0]["Spec"]["Name"] == "kept"  # from the encrypted log
    assert oci.docker("exec", container, "cat", "/run/secrets/kept").stdout == "still-here"
    oci.docker("service", "rm", "survivor")
    wait_until(lambda: not task_files_mounts(oci), 60, "the re-adopted task's tmpfs unmounted")
    oci.docker("secret", "rm", "kept")


@pytest.fixture(scope="module")
def process_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShoalDaemon]:
    shoald = ShoalDaemon(tmp_path_factory.mktemp("shoald-process"), executor="process")
    shoald.start()
    try:
        shoald.docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        yield shoald
    finally:
        shoald.leave_and_stop()


def test_process_tasks_see_secrets_only_in_their_namespace(process_daemon: ShoalDaemon) -> None:
    name = "unseen"
    process_daemon.docker("secret", "create", name, "-", input="never-on-the-host")
    process_daemon.docker("service", "create", "--detach", "--name", "plain", "--secret", name, "busybox",
                          "sleep", "600")
    container = running_container(process_daemon, "plain")
    assert process_daemon.docker("exec", container, "cat", f"/run/secrets/{name}").stdout == "never-on-the-host"
    assert not Path(f"/run/secrets/{name}").exists()  # the host's own /run/secrets holds nothing

    process_daemon.docker("config", "create", "misplaced", "-", input="x")
    process_daemon.docker("service", "create", "--detach", "--name", "nowhere", "--config",
                          "source=misplaced,target=/etc/shoal-e2e-no-such.conf", "busybox", "sleep", "600")
    errors: list[str] = []

    def rejected() -> bool:
        shown = process_daemon.docker("service", "ps", "--no-trunc", "--format", "{{.Error}}", "nowhere")
        errors[:] = shown.stdout.split("\n")
        return any("cannot place a config at /etc/shoal-e2e-no-such.conf" in e for e in errors)

    wait_until(rejected, 60, f"the task rejected saying why: {errors}")
    process_daemon.docker("service", "rm", "plain", "nowhere")


def test_events_for_secrets_and_configs(oci: ShoalDaemon) -> None:
    since = time.time()
    secret_id = oci.docker("secret", "create", "evsecret", "-", input="quiet").stdout.strip()
    config_id = oci.docker("config", "create", "evconfig", "-", input="loud").stdout.strip()
    oci.docker("secret", "rm", "evsecret")
    oci.docker("config", "rm", "evconfig")

    def seen() -> list[str]:
        return oci.docker("events", "--since", f"{since:.6f}", "--until", f"{time.time():.6f}", "--filter",
                          "type=secret", "--filter", "type=config", "--format",
                          "{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}").stdout.splitlines()

    wait_until(lambda: len(seen()) >= 4, 10, "secret and config events")
    assert seen() == [f"secret create {secret_id} evsecret", f"config create {config_id} evconfig",
                      f"secret remove {secret_id} evsecret", f"config remove {config_id} evconfig"]


def _scan(root: Path, needles: list[bytes]) -> list[str]:
    """Files under root holding any needle. Mount points are not entered: a task's tmpfs is memory,
    and its root overlay only shows the image's layers and its own upper dir, both walked anyway."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not os.path.ismount(os.path.join(dirpath, d))]
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue
            try:
                data = path.read_bytes()
            except OSError:
                continue
            found += [f"{path}: {needle[:12]!r}" for needle in needles if needle in data]
    return found


def _supervisors_of(daemon: ShoalDaemon) -> list[int]:
    """The pids of this daemon's task supervisors (shims keep their task's directory on the command line)."""
    root = str(daemon.data_root.resolve())
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and b"shoal-shim" in argv[0] and any(root.encode() in arg for arg in argv):
            found.append(int(proc.name))
    return found


def _process_memory(pid: int) -> bytes:
    """Every readable mapping of a process, as a core dump would hold it."""
    chunks = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            span, perms = line.split()[:2]
            if not perms.startswith("r"):
                continue
            start, end = (int(part, 16) for part in span.split("-"))
            try:
                mem.seek(start)
                chunks.append(mem.read(end - start))
            except (OSError, ValueError, OverflowError):
                continue  # [vvar] and the like cannot be read
    return b"".join(chunks)


def test_a_secret_is_found_nowhere_in_clear(oci: ShoalDaemon) -> None:
    marker = b"MARKER-" + os.urandom(12).hex().encode()
    needles = [marker, marker.hex().encode(), base64.b64encode(marker)]
    oci.docker("secret", "create", "marker", "-", input=marker.decode())
    oci.docker("service", "create", "--detach", "--name", "holder", "--secret", "marker", IMAGE)
    container = running_container(oci, "holder")
    assert oci.docker("exec", container, "cat", "/run/secrets/marker").stdout.encode() == marker

    client = docker.APIClient(base_url=oci.docker_host)
    try:
        responses = [client.secrets(), client.inspect_secret("marker"), client.services(), client.tasks(),
                     client.containers(all=True), client.inspect_container(container),
                     client.inspect_service("holder")]
    finally:
        client.close()
    text = json.dumps(responses).encode()
    assert not [n for n in needles if n in text], "the API returned the secret"
    assert _scan(oci.data_root, needles) == []
    log = oci.log_path.read_bytes()
    assert not [n for n in needles if n in log], "the daemon log holds the secret"
    # what a core dump of each task supervisor would hold: its whole readable memory
    supervisors = _supervisors_of(oci)
    assert supervisors, "no task supervisor found"
    for pid in supervisors:
        memory = _process_memory(pid)
        assert not [n for n in needles if n in memory], f"task supervisor {pid} holds the secret"

    oci.docker("service", "rm", "holder")
    wait_until(lambda: not task_files_mounts(oci), 60, "the task's tmpfs unmounted")
    assert task_files_mounts(oci) == []
    assert _scan(oci.data_root, needles) == []
    oci.docker("secret", "rm", "marker")


def test_leaving_the_swarm_takes_every_tasks_files_away(oci: ShoalDaemon) -> None:
    """Last in this module: it leaves the swarm."""
    oci.docker("secret", "create", "parting", "-", input="bye")
    oci.docker("service", "create", "--detach", "--name", "leaver", "--replicas", "2", "--secret", "parting", IMAGE)
    wait_until(lambda: len(task_files_mounts(oci)) == 2, 90, "both tasks' tmpfs mounted")
    oci.docker("swarm", "leave", "--force")
    wait_until(lambda: not task_files_mounts(oci), 60, f"tmpfs mounts left after leaving: {task_files_mounts(oci)}")
