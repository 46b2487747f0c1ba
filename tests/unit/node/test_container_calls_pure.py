"""The pure parts of the container calls: paths resolved inside a container's root (`docker cp`),
Go's file mode bits, `docker top`'s row filter, the stats JSON the CLI computes its figures from, and
the cgroup files read for it."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shoal.api import errors
from shoal.executor.base import BlockIo, ResourceSample
from shoal.executor.process import cgroups as cg
from shoal.node.container_archive import go_file_mode, path_stat, resolve_in_root
from shoal.node.container_stats import stats_json, top_json


def test_symlinks_and_dotdot_stay_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "etc" / "passwd").write_text("root\n")
    os.symlink("/etc", root / "abs")  # absolute: the container's /etc, not the host's
    os.symlink("../../../../etc", root / "data" / "up")
    os.symlink("passwd", root / "etc" / "link")
    assert resolve_in_root(str(root), "/abs/passwd", follow_last=False) == "/etc/passwd"
    assert resolve_in_root(str(root), "/data/up/passwd", follow_last=False) == "/etc/passwd"
    assert resolve_in_root(str(root), "/../../etc/link", follow_last=False) == "/etc/link"
    assert resolve_in_root(str(root), "/etc/link", follow_last=True) == "/etc/passwd"
    os.symlink("loop", root / "loop")
    with pytest.raises(errors.InvalidArgument, match="too many links"):
        resolve_in_root(str(root), "/loop/x", follow_last=True)


def test_path_stat_reads_go_mode_bits_and_names_a_missing_path(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    info = path_stat(str(tmp_path), "/dir", "web.1")
    assert info["name"] == "dir" and info["mode"] & (1 << 31)
    assert go_file_mode(stat.S_IFREG | 0o4755) == (1 << 23) | 0o755
    assert go_file_mode(stat.S_IFLNK | 0o777) == (1 << 27) | 0o777
    with pytest.raises(errors.NotFound, match=r"Could not find the file /nope in container web\.1"):
        path_stat(str(tmp_path), "/nope", "web.1")


PS = """UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 08:00 ?        00:00:01 /sbin/init
root        4242       1  0 08:01 ?        00:00:00 httpd -f -p 80
root        4243    4242  0 08:01 ?        00:00:00 sh -c sleep 5
"""


def test_top_keeps_the_container_s_rows_with_their_commands_whole() -> None:
    body = top_json(PS, [4242, 4243], "-ef")
    assert body["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert [row[1] for row in body["Processes"]] == ["4242", "4243"]
    assert body["Processes"][1][-1] == "sh -c sleep 5"
    with pytest.raises(errors.Unknown, match="Couldn't find PID field in ps output"):
        top_json("USER COMMAND\nroot init\n", [1], "-o user,comm")


def test_stats_json_carries_what_the_cli_computes_from() -> None:
    first = ResourceSample(read_at=datetime(2026, 1, 1, tzinfo=UTC), cpu_total_ns=100, system_cpu_ns=1000,
                           online_cpus=2)
    second = ResourceSample(read_at=datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC), cpu_total_ns=600,
                            system_cpu_ns=3000, online_cpus=2, memory_usage=5 << 20, memory_limit=0,
                            memory_stats={"total_inactive_file": 1 << 20}, pids_current=3,
                            block_io=(BlockIo(8, 0, "Read", 4096),), networks={"eth0": {"rx_bytes": 10}})
    body = stats_json("/web.1.x", "c" * 64, second, first, host_memory=8 << 30)
    assert body["cpu_stats"]["cpu_usage"]["total_usage"] - body["precpu_stats"]["cpu_usage"]["total_usage"] == 500
    assert body["cpu_stats"]["system_cpu_usage"] - body["precpu_stats"]["system_cpu_usage"] == 2000
    assert body["memory_stats"]["limit"] == 8 << 30  # no limit: the host's memory, as dockerd shows
    assert body["memory_stats"]["stats"]["total_inactive_file"] == 1 << 20
    assert body["pids_stats"] == {"current": 3}
    assert body["blkio_stats"]["io_service_bytes_recursive"] == [{"major": 8, "minor": 0, "op": "Read",
                                                                  "value": 4096}]
    assert body["networks"] == {"eth0": {"rx_bytes": 10}}
    assert body["preread"] == "2026-01-01T00:00:00Z" and body["name"] == "/web.1.x"


def test_cgroup_v1_files_give_the_figures(tmp_path: Path) -> None:
    for controller in ("cpuacct", "memory", "pids", "blkio", "freezer"):
        (tmp_path / controller / "shoal" / "c1").mkdir(parents=True)
    group = {c: tmp_path / c / "shoal" / "c1" for c in ("cpuacct", "memory", "pids", "blkio", "freezer")}
    (group["cpuacct"] / "cpuacct.usage").write_text("123456\n")
    (group["cpuacct"] / "cpuacct.usage_percpu").write_text("100000 23456\n")
    (group["cpuacct"] / "cpuacct.stat").write_text("user 2\nsystem 1\n")
    (group["memory"] / "memory.usage_in_bytes").write_text("4096\n")
    (group["memory"] / "memory.max_usage_in_bytes").write_text("8192\n")
    (group["memory"] / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (group["memory"] / "memory.stat").write_text("cache 0\ntotal_inactive_file 1024\n")
    (group["pids"] / "pids.current").write_text("2\n")
    (group["pids"] / "pids.max").write_text("max\n")
    (group["blkio"] / "blkio.throttle.io_service_bytes").write_text("8:0 Read 512\n8:0 Write 0\nTotal 512\n")
    (group["freezer"] / "freezer.state").write_text("THAWED\n")
    found = cg.groups_of("/shoal/c1", tmp_path)
    assert found == group
    usage = cg.read_usage(found)
    assert usage["cpu_total_ns"] == 123456 and usage["cpu_percpu_ns"] == (100000, 23456)
    assert usage["cpu_user_ns"] == 2 * cg.TICK_NS and usage["cpu_kernel_ns"] == cg.TICK_NS
    assert (usage["memory_usage"], usage["memory_max_usage"]) == (4096, 8192)
    assert usage["memory_stats"] == {"cache": 0, "total_inactive_file": 1024}
    assert (usage["pids_current"], usage["pids_limit"]) == (2, 0)
    assert usage["block_io"] == (BlockIo(8, 0, "Read", 512), BlockIo(8, 0, "Write", 0))
    assert not cg.is_frozen(found)
    assert cg.freeze(found, True) and (group["freezer"] / "freezer.state").read_text() == "FROZEN"


def test_system_cpu_is_the_first_line_of_proc_stat_in_nanoseconds() -> None:
    text = "cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 1 1 1 1 1 1 1 1 1\n"
    assert cg.system_cpu_ns(text) == (1 + 2 + 3 + 4 + 5 + 6 + 7) * cg.TICK_NS


def test_a_container_is_destroyed_once_on_docker_events() -> None:
    from shoal.node.events import EventHub, container_action_message, task_container_destroyed

    hub = EventHub()
    hub.publish(container_action_message("destroy", "c" * 64, "web.1.x", "busybox", {}))
    task = {"ID": "t1", "ServiceID": "s1", "NodeID": "n1", "Slot": 1,
            "Spec": {"ContainerSpec": {"Image": "busybox"}}, "Status": {"ContainerStatus": {"ContainerID": "c" * 64}}}
    later = task_container_destroyed(task)  # its task is deleted afterwards
    assert later is not None
    hub.publish(later)
    assert [m["Action"] for m in hub._history] == ["destroy"]
