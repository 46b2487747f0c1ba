"""Every ContainerSpec field is applied, or the task is rejected at prepare() naming it: none is
silently ignored. Bad mounts are refused everywhere with Docker's messages."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from shoal.base.ids import new_id
from shoal.executor.base import CAP_ISOLATION, Controller

from .conftest import Harness, Outcome, within


def applied(outcome: Outcome, flag: str) -> bool:
    """True if the task ran (the caller then checks the effect); a rejection must name the flag."""
    if outcome.rejected is not None:
        assert flag in outcome.rejected, outcome.rejected
        return False
    return True


@pytest.mark.parametrize(
    ("mount", "message"),
    [
        # Swarm's API refuses it when converting the spec; a task reaching dockerd gets the engine's text
        ({"Type": "bogus", "Target": "/x"}, ('invalid MountType: "bogus"', 'type "bogus": mount type unknown')),
        ({"Type": "tmpfs", "Source": "/tmp", "Target": "/x"}, "invalid tmpfs source, source must be empty"),
        (
            {"Type": "bind", "Source": "/nonexistent/shoal-source", "Target": "/x"},
            "bind source path does not exist: /nonexistent/shoal-source",
        ),
        ({"Type": "bind", "Source": "/tmp", "Target": "relative"}, "invalid mount target, must be an absolute path"),
    ],
    ids=["bogus-type", "tmpfs-source", "bind-missing", "relative-target"],
)
async def test_bad_mounts_are_refused_with_dockers_message(
    harness: Harness, mount: dict[str, Any], message: str | tuple[str, ...]
) -> None:
    outcome = await harness.outcome("true", {"Mounts": [mount]})
    texts = message if isinstance(message, tuple) else (message,)
    assert outcome.rejected is not None and any(text in outcome.rejected for text in texts), outcome.rejected


async def test_read_only_root(harness: Harness) -> None:
    probe = Path(f"/shoal-ro-probe-{new_id()[:12]}")
    try:
        outcome = await harness.outcome(f"touch {probe} && echo wrote || echo refused", {"ReadOnly": True})
        if applied(outcome, "--read-only"):
            assert "refused" in outcome.output
        assert not probe.exists(), "a read-only task wrote onto the host's root"
    finally:
        probe.unlink(missing_ok=True)


async def test_tmpfs_mount(harness: Harness) -> None:
    spec = {"Mounts": [{"Type": "tmpfs", "Target": "/scratch", "TmpfsOptions": {"SizeBytes": 1 << 20}}]}
    outcome = await harness.outcome("grep ' /scratch ' /proc/mounts | cut -d' ' -f3", spec)
    if applied(outcome, "--mount"):
        assert outcome.output == ["tmpfs"]


async def test_bind_mount_read_only(harness: Harness, tmp_path: Path) -> None:
    (tmp_path / "hello").write_text("from the host\n")
    spec = {"Mounts": [{"Type": "bind", "Source": str(tmp_path), "Target": "/data", "ReadOnly": True}]}
    outcome = await harness.outcome("cat /data/hello; touch /data/new 2>/dev/null && echo wrote || echo refused", spec)
    if applied(outcome, "--mount"):
        assert outcome.output == ["from the host", "refused"]
        assert not (tmp_path / "new").exists()


async def test_named_volume_outlives_its_task(harness: Harness) -> None:
    spec = {"Mounts": [{"Type": "volume", "Source": f"vol{new_id()[:8]}", "Target": "/vol"}]}
    first = await harness.outcome("echo kept > /vol/file", spec)
    if applied(first, "--mount"):
        assert first.exit_code == 0
        second = await harness.outcome("cat /vol/file", spec)
        assert second.output == ["kept"]


def _cap_bits(output: list[str]) -> int:
    line = next(line for line in output if line.startswith("CapEff:"))
    return int(line.split()[1], 16)


async def test_capabilities_dropped_and_added(harness: Harness) -> None:
    spec = {"CapabilityDrop": ["CAP_CHOWN"], "CapabilityAdd": ["CAP_SYS_ADMIN"]}
    outcome = await harness.outcome("grep CapEff /proc/self/status", spec)
    if applied(outcome, "--cap-"):
        bits = _cap_bits(outcome.output)
        assert not bits & (1 << 0), "CAP_CHOWN still held"
        assert bits & (1 << 21), "CAP_SYS_ADMIN not added"


async def test_ulimits(harness: Harness) -> None:
    spec = {"Ulimits": [{"Name": "nofile", "Soft": 100, "Hard": 200}]}
    outcome = await harness.outcome("ulimit -n; ulimit -Hn", spec)
    if applied(outcome, "--ulimit"):
        assert outcome.output == ["100", "200"]


async def test_dns_config(harness: Harness) -> None:
    spec = {"DNSConfig": {"Nameservers": ["10.9.8.7"], "Search": ["example.internal"], "Options": ["ndots:3"]}}
    outcome = await harness.outcome("cat /etc/resolv.conf", spec)
    if applied(outcome, "--dns"):
        assert "nameserver 10.9.8.7" in outcome.output
        assert "search example.internal" in outcome.output
        assert "options ndots:3" in outcome.output


async def test_extra_hosts(harness: Harness) -> None:
    outcome = await harness.outcome("grep db.local /etc/hosts", {"Hosts": ["10.1.2.3 db.local"]})
    if applied(outcome, "--host"):
        assert [line.split() for line in outcome.output] == [["10.1.2.3", "db.local"]]


async def test_supplementary_groups(harness: Harness) -> None:
    outcome = await harness.outcome("id -G", {"Groups": ["4321"]})
    if applied(outcome, "--group"):
        assert "4321" in outcome.output[0].split()


async def test_namespaced_sysctl(harness: Harness) -> None:
    host_msgmax = Path("/proc/sys/kernel/msgmax").read_text()
    outcome = await harness.outcome(
        "cat /proc/sys/net/ipv4/tcp_keepalive_time /proc/sys/kernel/msgmax",
        {"Sysctls": {"net.ipv4.tcp_keepalive_time": "321", "kernel.msgmax": "8191"}},
    )
    if applied(outcome, "--sysctl"):
        assert outcome.output == ["321", "8191"]
    assert Path("/proc/sys/kernel/msgmax").read_text() == host_msgmax  # the task's IPC namespace only


async def test_host_wide_sysctl_refused(harness: Harness) -> None:
    outcome = await harness.outcome("true", {"Sysctls": {"vm.swappiness": "10"}})
    assert outcome.rejected is not None and "vm.swappiness" in outcome.rejected


async def test_workload_is_pid_1_and_waits_out_the_grace_period(harness: Harness) -> None:
    """As Docker without --init: `sleep` at pid 1 has no SIGTERM handler, so the kernel drops the
    stop signal and the task is killed when the grace period ends (137)."""
    harness.require(CAP_ISOLATION)
    controller = await harness.started("", command=("sleep", "1000"), args=())
    await within(controller.shutdown(grace=0.5))
    assert (await controller.inspect()).exit_code == 137


async def test_init_forwards_the_stop_signal(harness: Harness) -> None:
    """With --init a signal-forwarding init is pid 1, so `sleep` gets SIGTERM and dies of it (143)."""
    controller = harness.controller(
        harness.runtime("", command=("sh", "-c", "echo ready; exec sleep 1000"), args=(), container_spec={"Init": True})
    )
    try:
        await controller.prepare()
    except Exception as exc:
        assert "--init" in str(exc)
        return
    await controller.start()
    await within(_printed(controller, "ready"))  # the init forked the workload: its signal set-up is done
    await within(controller.shutdown(grace=20))
    assert (await controller.inspect()).exit_code == 143


async def _printed(controller: Controller, text: str) -> None:
    while text not in [line.data.decode().strip() async for line in controller.logs()]:
        await asyncio.sleep(0.05)


async def test_pid_1_without_init(harness: Harness) -> None:
    harness.require(CAP_ISOLATION)
    outcome = await harness.outcome("echo $$", {})
    assert outcome.output == ["1"]


async def test_seccomp_unconfined_and_no_new_privileges(harness: Harness) -> None:
    spec = {"Privileges": {"Seccomp": {"Mode": "unconfined"}, "NoNewPrivileges": True}}
    outcome = await harness.outcome("grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status", spec)
    if applied(outcome, "seccomp") and applied(outcome, "no-new-privileges"):
        fields = dict(line.split(":\t") for line in outcome.output)
        assert fields == {"NoNewPrivs": "1", "Seccomp": "0"}


async def test_credential_spec_is_refused(harness: Harness) -> None:
    """gMSA credential specs mean something to Windows containers only: refused, never ignored."""
    outcome = await harness.outcome("true", {"Privileges": {"CredentialSpec": {"File": "spec.json"}}})
    assert outcome.rejected is not None and "--credential-spec" in outcome.rejected
