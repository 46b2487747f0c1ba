"""Pure parts of the process executor: status text, environment, cgroup arithmetic, shim command lines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shoal.executor.base import ContainerState, Resources
from shoal.executor.errors import ExecutorError, InvalidTaskSpec, TemporaryExecutorError
from shoal.executor.process import execs
from shoal.executor.process.cgroups import Cgroups, Mount, find_mounts, limit_files, oom_kills
from shoal.executor.process.etcfiles import hosts_file, resolv_conf
from shoal.executor.process.launch import exec_argv, parse_report, run_argv
from shoal.executor.process.status import human_duration, status_text, task_environment
from shoal.executor.process.users import Identity, resolve_user

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.4, "Less than a second"),
        (1, "1 second"),
        (18, "18 seconds"),
        (61, "About a minute"),
        (150, "2 minutes"),
        (3600, "About an hour"),
        (3 * 3600, "3 hours"),
        (3 * 86400, "3 days"),
        (20 * 86400, "2 weeks"),
        (90 * 86400, "3 months"),
        (800 * 86400, "2 years"),
    ],
)
def test_human_duration_matches_docker(seconds: float, text: str) -> None:
    assert human_duration(timedelta(seconds=seconds)) == text


def test_status_text() -> None:
    up = status_text(
        ContainerState.RUNNING, exit_code=None, started_at=NOW - timedelta(seconds=18), finished_at=None, now=NOW
    )
    assert up == "Up 18 seconds"
    exited = status_text(
        ContainerState.EXITED,
        exit_code=0,
        started_at=NOW - timedelta(seconds=10),
        finished_at=NOW - timedelta(seconds=3),
        now=NOW,
    )
    assert exited == "Exited (0) 3 seconds ago"
    assert status_text(ContainerState.CREATED, exit_code=None, started_at=None, finished_at=None, now=NOW) == "Created"


def test_task_environment_defaults_then_task_values_win() -> None:
    env = task_environment(("FOO=1", "PATH=/custom", "EMPTY"), hostname="abc", home="/root", path="/usr/bin")
    assert env == ["PATH=/custom", "HOSTNAME=abc", "FOO=1", "EMPTY=", "HOME=/root"]
    assert "TERM=xterm" in task_environment((), hostname="h", home="/", path=None, tty=True)
    assert task_environment((), hostname="h", home="/", path=None)[0].startswith("PATH=/usr/local/sbin")


V1_HYBRID = """\
30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
33 30 0:29 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
35 30 0:31 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids
"""


def test_find_mounts_v1() -> None:
    mounts = find_mounts(V1_HYBRID)
    assert mounts["memory"].path == Path("/sys/fs/cgroup/memory") and mounts["memory"].version == 1
    assert mounts["cpu"].path == Path("/sys/fs/cgroup/cpu,cpuacct")
    assert mounts["pids"].version == 1


def test_find_mounts_ignores_non_cgroup_lines() -> None:
    assert find_mounts("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n") == {}


def test_limit_files_v1_and_v2() -> None:
    res = Resources(nano_cpus=1_500_000_000, memory_bytes=64 << 20, pids_limit=100)
    assert limit_files(res, 2) == {
        "memory": {"memory.max": str(64 << 20)},
        "pids": {"pids.max": "100"},
        "cpu": {"cpu.max": "150000 100000"},
    }
    v1 = limit_files(res, 1)
    assert v1["memory"] == {"memory.limit_in_bytes": str(64 << 20)}
    assert v1["cpu"] == {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "150000"}
    assert limit_files(Resources(), 2) == {}
    assert limit_files(Resources(nano_cpus=1), 2)["cpu"] == {"cpu.max": "1000 100000"}  # kernel minimum


def test_run_argv_isolated() -> None:
    cmd = run_argv(
        ["/bin/shim"],
        state=Path("/s"),
        argv=["sh", "-c", "echo hi"],
        isolated=True,
        hostname="h",
        identity=Identity(1, 2, (2, 3), "/home/u"),
        workdir="/w",
        cgroup_procs=[Path("/cg/cgroup.procs")],
        hook="setup",
        binds=[(Path("/s/hosts"), Path("/etc/hosts"))],
        max_log_bytes=100,
    )
    assert cmd == [
        "/bin/shim", "run", "-s", "/s", "-m", "100", "-n", "-h", "h", "-k", "setup",
        "-b", "/s/hosts:/etc/hosts", "-u", "1", "-g", "2", "-G", "2,3", "-w", "/w",
        "-c", "/cg/cgroup.procs", "--", "sh", "-c", "echo hi",
    ]  # fmt: skip


def test_run_argv_plain_drops_namespace_options() -> None:
    cmd = run_argv(
        ["/bin/shim"], state=Path("/s"), argv=["true"], isolated=False, hostname="h", identity=None,
        workdir=None, cgroup_procs=[], hook="x", binds=[(Path("/a"), Path("/b"))], max_log_bytes=1,
    )  # fmt: skip
    assert cmd == ["/bin/shim", "run", "-s", "/s", "-m", "1", "--", "true"]


def test_exec_argv() -> None:
    cmd = exec_argv(
        ["/bin/shim"], target_pid=42, argv=["ls"], isolated=True, identity=None, workdir="/tmp", cgroup_procs=[]
    )
    assert cmd == ["/bin/shim", "exec", "-t", "42", "-n", "-w", "/tmp", "--", "ls"]


def test_parse_report() -> None:
    assert parse_report("ok 1234\n") == 1234
    with pytest.raises(ExecutorError, match="executable file not found"):
        parse_report('error exec: "nope": executable file not found in $PATH\n')
    with pytest.raises(TemporaryExecutorError):
        parse_report("")


def test_resolve_user() -> None:
    assert resolve_user(None) is None and resolve_user("") is None
    root = resolve_user("root")
    assert root is not None and (root.uid, root.gid) == (0, 0)
    numeric = resolve_user("4242:4343")
    assert numeric is not None and (numeric.uid, numeric.gid, numeric.groups) == (4242, 4343, (4343,))
    with pytest.raises(InvalidTaskSpec, match="unable to find user"):
        resolve_user("no-such-user-xyz")
    with pytest.raises(InvalidTaskSpec, match="unable to find group"):
        resolve_user("root:no-such-group-xyz")


def test_hosts_file_maps_the_task_hostname_to_its_address() -> None:
    text = hosts_file("abc123", "10.1.0.2")
    assert "127.0.0.1\tlocalhost\n" in text and text.endswith("10.1.0.2\tabc123\n")
    assert "abc123" not in hosts_file("abc123", None)


def test_resolv_conf_drops_loopback_servers_and_keeps_options() -> None:
    host = "# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch example.org\noptions ndots:2\n"
    assert resolv_conf(host) == "nameserver 10.0.0.2\nsearch example.org\noptions ndots:2\n"
    assert resolv_conf("nameserver 127.0.0.53\n").startswith("nameserver 8.8.8.8\n")
    assert resolv_conf(host, ["10.254.0.1"]).startswith("nameserver 10.254.0.1\nsearch")


def test_exec_registry_forgets_oldest_finished_execs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(execs, "MAX_KEPT", 3)
    registry = execs.ExecRegistry()
    ids = [registry.create("c", ["true"], ["shim"], {}, False) for _ in range(3)]
    registry.get(ids[0]).exit_code = 0
    registry.get(ids[2]).exit_code = 0
    newest = registry.create("c", ["true"], ["shim"], {}, False)
    assert list(registry.entries) == [ids[1], ids[2], newest]  # the oldest finished one went
    registry.create("c", ["true"], ["shim"], {}, False)
    assert ids[1] in registry.entries  # still running: never forgotten


def test_cgroup_v2_group_on_a_fake_tree(tmp_path: Path) -> None:
    mount = Mount(tmp_path, 2)
    groups = Cgroups("scope1", {"memory": mount, "pids": mount, "cpu": mount})
    made = groups.create("c" * 64, Resources(memory_bytes=1 << 20, pids_limit=9, nano_cpus=250_000_000))
    group = tmp_path / "shoal" / "scope1" / ("c" * 64)
    assert made == [group]
    assert (group / "memory.max").read_text() == str(1 << 20)
    assert (group / "pids.max").read_text() == "9"
    assert (group / "cpu.max").read_text() == "25000 100000"
    # every ancestor hands the controller down (the last write on a fake file is what remains)
    assert (tmp_path / "shoal" / "cgroup.subtree_control").read_text().startswith("+")


def test_cgroup_v1_groups_per_controller_on_a_fake_tree(tmp_path: Path) -> None:
    mounts = {c: Mount(tmp_path / c, 1) for c in ("memory", "pids", "cpu")}
    for m in mounts.values():
        m.path.mkdir()
    made = Cgroups("s", mounts).create("d" * 64, Resources(memory_bytes=1 << 20))
    assert made == [tmp_path / "memory" / "shoal" / "s" / ("d" * 64)]  # only the limited controller
    assert (made[0] / "memory.limit_in_bytes").read_text() == str(1 << 20)


def test_oom_kills_reads_v1_and_v2_counters(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert oom_kills([tmp_path / "a", tmp_path / "b", tmp_path / "missing"]) == 3
