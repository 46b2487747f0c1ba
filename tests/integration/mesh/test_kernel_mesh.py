"""The kernel path on the real kernel: iptables rules, network namespaces, TCP and UDP."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import name_server
import pytest
from mesh_client import ask_many
from mesh_netns import BACKEND_PORT, HERE, Case, NetnsNetwork

from shoal.network.mesh.chains import ChainNames
from shoal.network.mesh.commands import IptablesCommands
from shoal.network.mesh.kernel import KernelMesh, remove_kernel_rules
from shoal.network.mesh.ruleset import parse_save, render_apply
from shoal.network.mesh.state import Backend, MeshState, PublishedPort, ingress_ports

pytestmark = pytest.mark.root


class CountingIptables(IptablesCommands):
    def __init__(self) -> None:
        super().__init__()
        self.restores = 0

    async def restore(self, ruleset: str) -> None:
        self.restores += 1
        await super().restore(ruleset)


@pytest.fixture
async def mesh(test_network: NetnsNetwork, case: Case) -> AsyncIterator[KernelMesh]:
    instance = f"t{case.tag}"
    mesh = KernelMesh(instance, iptables=CountingIptables())
    await mesh.start()
    try:
        yield mesh
    finally:
        await remove_kernel_rules(instance)


def backends(network: NetnsNetwork, *labels: str) -> list[Backend]:
    """The backends serving in the namespaces with these labels (default: every name server)."""
    chosen = [ns for ns in network.namespaces if ns.name.endswith(labels or ("a", "b", "c"))]
    return [Backend(ns.ip, BACKEND_PORT) for ns in chosen]


def names(network: NetnsNetwork, *labels: str) -> set[str]:
    return {ns.name for ns in network.namespaces if ns.name.endswith(labels)}


def host_address() -> str | None:
    """An address of this host outside the test bridge (the one its default route uses)."""
    words = subprocess.run(["ip", "-4", "route", "get", "192.0.2.123"], capture_output=True, text=True).stdout.split()
    return words[words.index("src") + 1] if "src" in words else None


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
async def test_every_local_address_spreads_new_connections_over_all_backends(
    test_network: NetnsNetwork, case: Case, mesh: KernelMesh, protocol: str
) -> None:
    port = case.port
    await mesh.apply({PublishedPort(port, protocol): backends(test_network)})  # type: ignore[arg-type]
    addresses = ["127.0.0.1", "127.0.0.2", test_network.host_ip, host_address() or "127.0.0.1"]
    for address in addresses:
        answers = await ask_many(protocol, address, port, 6)
        # Round-robin: six new connections over three backends reach each one exactly twice.
        assert sorted(answers) == sorted(list(names(test_network, "a", "b", "c")) * 2), address


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
async def test_traffic_from_another_host_is_balanced_and_forwarded_past_a_drop_policy(
    test_network: NetnsNetwork, case: Case, mesh: KernelMesh, protocol: str
) -> None:
    port = case.port
    client = test_network.namespace("client")
    # As docker's FORWARD policy would: drop what the mesh does not accept itself.
    subprocess.run(["iptables", "-w", "5", "-A", "FORWARD", "-i", test_network.bridge, "-j", "DROP"], check=True)
    try:
        await mesh.apply({PublishedPort(port, protocol): backends(test_network)})  # type: ignore[arg-type]
        out = test_network.run_in(
            client, "python3", str(HERE / "mesh_client.py"), protocol, test_network.host_ip, str(port), "6"
        )
    finally:
        subprocess.run(["iptables", "-w", "5", "-D", "FORWARD", "-i", test_network.bridge, "-j", "DROP"], check=True)
    assert sorted(out.split()) == sorted(list(names(test_network, "a", "b", "c")) * 2), out


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
async def test_removed_backends_stop_answering_and_an_empty_state_closes_the_port(
    test_network: NetnsNetwork, case: Case, mesh: KernelMesh, protocol: str
) -> None:
    port = case.port
    published = PublishedPort(port, protocol)  # type: ignore[arg-type]
    await mesh.apply({published: backends(test_network)})
    assert set(await ask_many(protocol, "127.0.0.1", port, 3)) == names(test_network, "a", "b", "c")

    await mesh.apply({published: backends(test_network, "b")})
    assert set(await ask_many(protocol, "127.0.0.1", port, 4)) == names(test_network, "b")

    await mesh.apply({})
    answers = await ask_many(protocol, "127.0.0.1", port, 2, timeout=0.5)
    assert all(answer.startswith("!") for answer in answers), answers


async def test_applying_the_same_state_again_changes_nothing(
    test_network: NetnsNetwork, case: Case, mesh: KernelMesh
) -> None:
    port = case.port
    state: MeshState = {
        PublishedPort(port): backends(test_network),
        PublishedPort(port, "udp"): backends(test_network, "a"),
        PublishedPort(port + 1, mode="host"): [],
    }
    iptables = mesh._iptables
    assert isinstance(iptables, CountingIptables)
    await mesh.apply(state)
    restores = iptables.restores
    await mesh.apply(dict(reversed(list(state.items()))))
    assert iptables.restores == restores
    assert mesh.applied[PublishedPort(port + 1, mode="host")] == ()
    snapshot = {}
    for table in ("nat", "filter"):
        snapshot.update(parse_save(await iptables.save(table)))
    assert render_apply(ingress_ports(state), mesh.names, snapshot) == ""


async def test_a_restarted_daemon_keeps_serving_until_its_first_apply_replaces_stale_rules(
    test_network: NetnsNetwork, case: Case, mesh: KernelMesh
) -> None:
    old_port = case.port
    new_port = old_port + 1
    await mesh.apply({PublishedPort(old_port): backends(test_network)})

    restarted = KernelMesh(f"t{case.tag}")
    await restarted.start()
    assert len(set(await ask_many("tcp", "127.0.0.1", old_port, 3))) == 3

    await restarted.apply({PublishedPort(new_port): backends(test_network, "c")})
    assert set(await ask_many("tcp", "127.0.0.1", new_port, 2)) == names(test_network, "c")
    assert all(a.startswith("!") for a in await ask_many("tcp", "127.0.0.1", old_port, 1, timeout=0.5))
    saved = await IptablesCommands().save("nat")
    assert ChainNames.for_instance(f"t{case.tag}").port_chain(PublishedPort(old_port)) not in saved


async def test_daemons_with_different_instance_names_leave_each_other_alone(
    test_network: NetnsNetwork, case: Case, mesh: KernelMesh
) -> None:
    port = case.port
    other = KernelMesh(f"u{case.tag}")
    await other.start()
    try:
        await mesh.apply({PublishedPort(port): backends(test_network, "a")})
        await other.apply({PublishedPort(port + 1): backends(test_network, "b")})
        await other.close(keep_kernel_rules=False)
        assert set(await ask_many("tcp", "127.0.0.1", port, 2)) == names(test_network, "a")
        assert all(a.startswith("!") for a in await ask_many("tcp", "127.0.0.1", port + 1, 1, timeout=0.5))
    finally:
        await remove_kernel_rules(f"u{case.tag}")


SURVIVOR = """
import asyncio, sys
from shoal.network.mesh.kernel import KernelMesh
from shoal.network.mesh.state import Backend, PublishedPort
async def main():
    mesh = KernelMesh(sys.argv[1])
    await mesh.start()
    port = int(sys.argv[2])
    targets = [Backend(ip, int(sys.argv[3])) for ip in sys.argv[4:]]
    await mesh.apply({PublishedPort(port): targets, PublishedPort(port, "udp"): targets})
    await mesh.close(keep_kernel_rules=True)
asyncio.run(main())
"""


async def test_rules_keep_serving_after_the_process_that_installed_them_exits(
    test_network: NetnsNetwork,
    case: Case,
) -> None:
    instance, port = f"s{case.tag}", case.port
    ips = [backend.ip for backend in backends(test_network)]
    try:
        proc = await asyncio.create_subprocess_exec(
            "python3", "-c", SURVIVOR, instance, str(port), str(BACKEND_PORT), *ips
        )
        assert await proc.wait() == 0
        for protocol in ("tcp", "udp"):
            answers = await ask_many(protocol, "127.0.0.1", port, 6)
            assert sorted(answers) == sorted(list(names(test_network, "a", "b", "c")) * 2)
    finally:
        await remove_kernel_rules(instance)
    assert all(a.startswith("!") for a in await ask_many("tcp", "127.0.0.1", port, 1, timeout=0.5))


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
async def test_backends_on_the_hosts_loopback_are_reached_from_local_and_remote_clients(
    test_network: NetnsNetwork, case: Case, mesh: KernelMesh, protocol: str
) -> None:
    # Process tasks without a namespace of their own listen on the host (route_localnet at work).
    port = case.port
    servers = []
    targets = []
    for offset, name in enumerate(("lo1", "lo2")):
        servers.append(await name_server.start(name, port + 1 + offset, "127.0.0.1"))
        targets.append(Backend("127.0.0.1", port + 1 + offset))
    client = test_network.namespace("client")
    try:
        await mesh.apply({PublishedPort(port, protocol): targets})  # type: ignore[arg-type]
        assert sorted(await ask_many(protocol, "127.0.0.1", port, 4)) == ["lo1", "lo1", "lo2", "lo2"]
        out = await asyncio.to_thread(
            test_network.run_in,
            client,
            "python3",
            str(HERE / "mesh_client.py"),
            protocol,
            test_network.host_ip,
            str(port),
            "4",
        )
        assert sorted(out.split()) == ["lo1", "lo1", "lo2", "lo2"]
    finally:
        for server, datagrams in servers:
            server.close()
            datagrams.close()


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
async def test_a_task_reaches_its_own_service_through_the_mesh_including_itself(
    test_network: NetnsNetwork, case: Case, mesh: KernelMesh, protocol: str
) -> None:
    # br_netfilter bridges DNATed frames; reaching itself needs hairpin mode, which apply() sets.
    for flag in Path(f"/sys/class/net/{test_network.bridge}/brif").glob("*/hairpin_mode"):
        flag.write_text("0\n")
    await mesh.apply({PublishedPort(case.port, protocol): backends(test_network)})  # type: ignore[arg-type]
    out = await asyncio.to_thread(
        test_network.run_in,
        test_network.namespace("a"),
        "python3",
        str(HERE / "mesh_client.py"),
        protocol,
        test_network.host_ip,
        str(case.port),
        "6",
    )
    assert sorted(out.split()) == sorted(list(names(test_network, "a", "b", "c")) * 2)
