"""KernelMesh's own logic (not the kernel): start-up probe, errors, UDP flow clean-up, teardown."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fake_iptables import FakeConntrack, FakeIptables

from shoal.network.mesh.commands import CommandFailed, Sysctls
from shoal.network.mesh.hairpin import Hairpin
from shoal.network.mesh.kernel import UDP_REMOVAL_GRACE, KernelMesh
from shoal.network.mesh.protocol import MeshError
from shoal.network.mesh.state import Backend, InvalidMeshState, PublishedPort
from shoal.testing.clock import FakeClock

A, B = Backend("10.0.0.2", 53), Backend("10.0.0.3", 53)
DNS = PublishedPort(53, "udp")


async def settle() -> None:
    """Let ready tasks run (a task starting its sleep, or one just woken); no timer is waited for."""
    for _ in range(3):
        await asyncio.sleep(0)


@pytest.fixture
def sysctls(tmp_path: Path) -> Sysctls:
    for key in Sysctls.REQUIRED:
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).write_text("0\n")
    return Sysctls(tmp_path)


def make(sysctls: Sysctls, clock: FakeClock | None = None) -> tuple[KernelMesh, FakeIptables, FakeConntrack]:
    iptables, conntrack = FakeIptables(), FakeConntrack()
    no_bridges = Hairpin(sysctls.root / "no-routes", sysctls.root / "no-sys-class-net")
    mesh = KernelMesh(
        "n1", iptables=iptables, conntrack=conntrack, sysctls=sysctls, hairpin=no_bridges, clock=clock or FakeClock()
    )
    return mesh, iptables, conntrack


async def test_start_sets_sysctls_and_leaves_no_probe_behind(sysctls: Sysctls, tmp_path: Path) -> None:
    mesh, iptables, _ = make(sysctls)
    await mesh.start()
    assert (tmp_path / "net/ipv4/conf/all/route_localnet").read_text().strip() == "1"
    assert (tmp_path / "net/ipv4/ip_forward").read_text().strip() == "1"
    assert iptables.tables == FakeIptables().tables


async def test_start_reports_an_unusable_iptables(sysctls: Sysctls) -> None:
    class Broken(FakeIptables):
        async def restore(self, ruleset: str) -> None:
            raise CommandFailed(["iptables-restore"], 2, "Couldn't load match `statistic'")

    mesh = KernelMesh("n1", iptables=Broken(), conntrack=FakeConntrack(), sysctls=sysctls, hairpin=Hairpin())
    with pytest.raises(MeshError, match="statistic"):
        await mesh.start()


async def test_invalid_state_changes_nothing(sysctls: Sysctls) -> None:
    mesh, iptables, _ = make(sysctls)
    await mesh.apply({DNS: [A]})
    with pytest.raises(InvalidMeshState):
        await mesh.apply({DNS: [A], PublishedPort(53, "udp", "host"): []})
    assert mesh.applied == {DNS: (A,)}
    assert len(iptables.restores) == 1


async def test_udp_flows_are_forgotten_for_new_ports_and_removed_backends_only(sysctls: Sysctls) -> None:
    clock = FakeClock()
    mesh, _, conntrack = make(sysctls, clock)
    web = PublishedPort(80)
    await mesh.apply({DNS: [A, B], web: [A]})
    assert conntrack.forgotten == [(53, None)]  # unknown earlier flows (a previous run's) go

    conntrack.forgotten.clear()
    await mesh.apply({DNS: [B], web: []})
    await settle()
    assert conntrack.forgotten == []  # answers already on their way still get through
    clock.advance(UDP_REMOVAL_GRACE)
    await settle()
    assert conntrack.forgotten == [(53, "10.0.0.2")]

    conntrack.forgotten.clear()
    await mesh.apply({})
    assert conntrack.forgotten == [(53, None)]


async def test_a_backend_re_added_within_the_grace_keeps_its_udp_flows(sysctls: Sysctls) -> None:
    clock = FakeClock()
    mesh, _, conntrack = make(sysctls, clock)
    await mesh.apply({DNS: [A, B]})
    conntrack.forgotten.clear()
    await mesh.apply({DNS: [B]})
    await mesh.apply({DNS: [A, B]})
    await settle()
    clock.advance(UDP_REMOVAL_GRACE)
    await settle()
    assert conntrack.forgotten == []


async def test_close_keeps_rules_unless_told_otherwise(sysctls: Sysctls) -> None:
    mesh, iptables, _ = make(sysctls)
    await mesh.apply({DNS: [A]})
    await mesh.close(keep_kernel_rules=True)
    assert "SHOAL-N1-U53" in iptables.tables["nat"]
    await mesh.close(keep_kernel_rules=False)
    assert iptables.tables == FakeIptables().tables
    assert mesh.applied == {}


async def test_apply_restores_a_sysctl_reset_since_start(sysctls: Sysctls, tmp_path: Path) -> None:
    mesh, _, _ = make(sysctls)
    await mesh.start()
    (tmp_path / "net/ipv4/conf/all/route_localnet").write_text("0\n")
    await mesh.apply({DNS: [A]})
    assert (tmp_path / "net/ipv4/conf/all/route_localnet").read_text().strip() == "1"
