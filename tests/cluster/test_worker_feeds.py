"""Workers fed only through their dispatcher session (one manager leading, two workers, each shoald in a network
namespace of its own, through the real docker CLI): `docker service logs` on the manager shows the lines
of tasks that run only on the workers (the manager's log broker asks their agents), following shows a
replacement task's lines, a worker refuses with Swarm's message; a published port answers on a worker
through its own mesh, fed by a stream from the manager, and keeps answering while the manager is
paused. A second manager (no tasks either) shows the same logs through the leader's broker.

The tests share one cluster and run in file order."""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.api.errors import WORKER_NOT_A_MANAGER
from shoal.testing.cluster import ClusterNode, TestCluster
from shoal.testing.daemon import DOCKER_CLI
from shoal.testing.netns import netns_unavailable

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(netns_unavailable() is not None, reason=netns_unavailable() or ""),
    pytest.mark.skipif(DOCKER_CLI is None, reason="no docker CLI"),
]
WORKERS = ("n2", "n3")
FOLLOWER = "n4"
SERVICE = "feeds"
PUBLISHED = 18080


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    workdir: Path = tmp_path_factory.mktemp("feeds")
    swarm = TestCluster("test_worker_feeds", workdir)
    try:
        swarm.start(1 + len(WORKERS) + 1)
        manager = swarm.node("n1")
        swarm.init(manager)
        manager.docker("swarm", "update", "--dispatcher-heartbeat", "1s")
        for name in WORKERS:
            assert "joined a swarm as a worker" in swarm.join(swarm.node(name), "worker", manager).stdout
        # A second manager, to ask for logs where the leader's broker is not.
        assert "joined a swarm as a manager" in swarm.join(swarm.node(FOLLOWER), "manager", manager).stdout
        # One task on each worker, none on the manager; each prints its hostname (the first 12
        # characters of its container id), then serves HTTP answering with it.
        manager.docker("service", "create", "--detach", "--name", SERVICE, "--mode", "global",
                       "--constraint", "node.role==worker", "-p", f"{PUBLISHED}:80",
                       "busybox", "sh", "-c", "echo hello from $(hostname); exec python3 -m shoal.demo.web --port 80")
        yield swarm
    finally:
        swarm.destroy()


def running_tasks(manager: ClusterNode) -> dict[str, str]:
    """{task id: node hostname} of the service's running tasks."""
    out = manager.docker("service", "ps", SERVICE, "--no-trunc", "--filter", "desired-state=running",
                         "--format", "{{.ID}}|{{.Node}}|{{.CurrentState}}", check=False)
    rows = [line.split("|") for line in out.stdout.splitlines() if line.strip()]
    return {task_id: node for task_id, node, state in rows if state.startswith("Running")}


def hostnames(cluster: TestCluster) -> dict[str, str]:
    """{task id: its hostname} for the task containers on the workers, as each worker's `docker ps`
    shows them (the container API is local: workers answer it)."""
    found = {}
    for name in WORKERS:
        out = cluster.node(name).docker("ps", "--no-trunc", "--format", "{{.ID}} {{.Names}}").stdout
        for line in out.splitlines():
            container_id, container_name = line.split()
            found[container_name.split(".")[-1]] = container_id[:12]
    return found


def wait_for_running_on_every_worker(cluster: TestCluster, manager: ClusterNode) -> dict[str, str]:
    """A task running on each worker, and no rolling update of an earlier test still in its monitor
    period: its last UpdateStatus write would move the service's version under a `service update`
    sent meanwhile (out of sequence, as on Docker)."""
    cluster.wait_for(lambda: sorted(running_tasks(manager).values()) == sorted(WORKERS), 60,
                     "one running task on each worker")
    cluster.wait_for(lambda: update_state(manager) in ("", "completed"), 60, "the last rolling update completed")
    return running_tasks(manager)


def update_state(manager: ClusterNode) -> str:
    return manager.docker("service", "inspect", "--format", "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}",
                          SERVICE).stdout.strip()


def test_service_logs_on_the_manager_show_every_workers_task(cluster: TestCluster) -> None:
    manager = cluster.node("n1")
    tasks = wait_for_running_on_every_worker(cluster, manager)

    names = hostnames(cluster)
    assert set(tasks) <= set(names), (tasks, names)

    def every_task_logged() -> bool:
        out = manager.docker("service", "logs", "--no-trunc", SERVICE, check=False).stdout
        return all(f"hello from {names[t]}" in out and f"serving {names[t]}" in out for t in tasks)

    cluster.wait_for(every_task_logged, 30, "a line of every worker's task in `docker service logs`")
    out = manager.docker("service", "logs", "--no-trunc", SERVICE).stdout
    for task_id, node in tasks.items():
        line = next(line for line in out.splitlines() if f"hello from {names[task_id]}" in line)
        assert f".{task_id}@{node}" in line, line  # the CLI's prefix: service.node.task@hostname

    # --tail counts per task, as Docker's: each task printed "hello", then "serving"; -t adds the time.
    last = manager.docker("service", "logs", "--no-trunc", "--tail", "1", "-t", SERVICE).stdout.splitlines()
    assert sorted(line.split()[1].split("@")[0].split(".")[-1] for line in last) == sorted(tasks), last
    assert all(re.match(r"\d{4}-\d\d-\d\dT[\d:.]+Z ", line) and "serving" in line for line in last), last
    assert manager.docker("service", "logs", "--since", "2099-01-01T00:00:00Z", SERVICE).stdout == ""

    one = next(iter(tasks))
    by_task = manager.docker("service", "logs", "--no-trunc", one).stdout
    assert f"hello from {names[one]}" in by_task
    assert all(f"hello from {names[other]}" not in by_task for other in tasks if other != one)


def test_service_logs_on_a_manager_that_does_not_lead(cluster: TestCluster) -> None:
    follower = cluster.node(FOLLOWER)
    assert cluster.leader(follower) == "n1"
    tasks = wait_for_running_on_every_worker(cluster, cluster.node("n1"))
    names = hostnames(cluster)
    out = follower.docker("service", "logs", "--no-trunc", SERVICE).stdout
    assert all(f"hello from {names[task_id]}" in out for task_id in tasks), out


def test_service_logs_on_a_worker_is_refused_with_swarms_message(cluster: TestCluster) -> None:
    out = cluster.node("n2").docker("service", "logs", SERVICE, check=False)
    assert out.returncode != 0
    assert WORKER_NOT_A_MANAGER.split(".")[0] in out.stderr, out.stderr


def test_following_logs_show_the_replacement_tasks(cluster: TestCluster) -> None:
    manager = cluster.node("n1")
    before = wait_for_running_on_every_worker(cluster, manager)
    assert DOCKER_CLI is not None
    follow = subprocess.Popen([DOCKER_CLI, "service", "logs", "--no-trunc", "-f", SERVICE], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True,
                              env={"DOCKER_HOST": manager.daemon.docker_host, "PATH": "/usr/bin:/bin"})
    logs = {name: cluster.node(name).daemon.log_path for name in WORKERS}
    logged_before = {name: len(path.read_bytes()) for name, path in logs.items()}
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(iter(follow.stdout.readline, "")) if follow.stdout else None,
                              daemon=True)
    reader.start()
    try:
        cluster.wait_for(lambda: all(any(f".{t}@" in line for line in seen) for t in before), 30,
                         "the current tasks' lines in the followed stream")
        manager.docker("service", "update", "--detach", "--force", SERVICE)
        cluster.wait_for(lambda: not set(running_tasks(manager)) & set(before)
                         and len(running_tasks(manager)) == len(WORKERS), 90, "both tasks replaced")
        replacements = running_tasks(manager)
        names = hostnames(cluster)
        cluster.wait_for(lambda: all(any(f".{t}@" in line and f"hello from {names[t]}" in line for line in seen)
                                     for t in replacements), 30,
                         "the replacement tasks' lines in the same followed stream")
    finally:
        follow.kill()
        follow.wait(10)
        reader.join(10)
    # The client went away: the subscription ends on the workers too (nothing keeps reading for no one).
    for name, path in logs.items():
        cluster.wait_for(lambda name=name, path=path: b"no longer followed" in path.read_bytes()[logged_before[name]:],
                         30, f"{name}'s publisher to stop following")


def curl(node: ClusterNode) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-s", "--max-time", "3", f"http://{node.ip}:{PUBLISHED}/"],
                          capture_output=True, text=True, check=False)


def test_a_published_port_answers_on_a_worker_and_keeps_answering_while_the_manager_is_paused(
        cluster: TestCluster) -> None:
    manager = cluster.node("n1")
    tasks = wait_for_running_on_every_worker(cluster, manager)
    worker = cluster.node("n2")
    cluster.wait_for(lambda: curl(worker).returncode == 0, 30, "the worker's mesh to answer on its address")
    answer = curl(worker).stdout.strip()
    names = hostnames(cluster)
    assert answer in {names[t] for t, node in tasks.items() if node == "n2"}, (answer, names)  # its own task

    manager.pause()
    try:
        # Until the worker has given the silent manager up, and after: its last mesh keeps serving.
        log = worker.daemon.log_path
        cluster.wait_for(lambda: "routing mesh: stream from" in log.read_text(errors="replace"), 30,
                         "the worker to notice its manager is silent")
        for _ in range(3):
            out = curl(worker)
            assert out.returncode == 0 and out.stdout.strip() == answer, out
    finally:
        manager.resume()

    # The worker's feed comes back: a replacement task on it is served once it runs.
    manager.docker("service", "update", "--detach", "--force", SERVICE)
    cluster.wait_for(lambda: not set(running_tasks(manager)) & set(tasks) and len(running_tasks(manager)) == 2, 90,
                     "both tasks replaced")
    replaced = hostnames(cluster)
    new_answer = {replaced[t] for t, node in running_tasks(manager).items() if node == "n2"}
    cluster.wait_for(lambda: curl(worker).stdout.strip() in new_answer, 30, "the replacement served by the mesh")


def test_logs_skip_a_paused_worker_with_swarmkits_warning_instead_of_hanging(cluster: TestCluster) -> None:
    """Last: the paused worker may be marked down meanwhile."""
    manager = cluster.node("n1")
    tasks = wait_for_running_on_every_worker(cluster, manager)
    names = hostnames(cluster)
    paused = cluster.node("n3")
    paused_id = manager.docker("node", "inspect", "--format", "{{.ID}}", "n3").stdout.strip()
    paused.pause()
    try:
        out = manager.docker("service", "logs", "--no-trunc", SERVICE, check=False, timeout=60)
    finally:
        paused.resume()
    assert all(f"hello from {names[t]}" in out.stdout for t, node in tasks.items() if node == "n2"), out
    assert all(f"hello from {names[t]}" not in out.stdout for t, node in tasks.items() if node == "n3"), out
    assert ("Error grabbing logs: rpc error: code = Unknown desc = warning: incomplete log stream. some logs could "
            f"not be retrieved for the following reasons: node {paused_id} is not available") in out.stderr, out
