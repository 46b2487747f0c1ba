"""Task networking on one node: a bridge per daemon, one veth per task, addresses from a subnet.

Each isolated task lives in its own network namespace with `eth0` (one end of a veth pair whose other
end sits on the node bridge), an address allocated here and persisted, and a default route through
the bridge; outbound traffic is masqueraded. Several daemons on one machine each derive their own
bridge name and subnet from their state dir (TaskNetConfig.for_scope), so they never collide.

In a swarm the managers hand each node a subnet of its own, unique across the cluster (issue 7: the
allocator's nodesubnets, 172.24.0.0/14 in /24s); the node adopts it (`adopt_node_subnet`, told by the
node object its dispatcher sends) and from then on its bridge and tasks use it instead of the derived
one. It is kept beside the address book, so a restarted daemon keeps it.

A task on swarm networks also gets one more interface per network (eth1, eth2, …) with the address the
allocator gave it there (the task's NetworksAttachments), on a bridge of that network on this node: two
tasks of one network on the same node reach each other by those addresses, tasks of different networks
do not. Between nodes (VXLAN) is a later issue; the ingress network is left to the routing mesh.

The per-task wiring runs as a shell hook (`setup_script`) that the task supervisor executes with the
task's init pid as $1, before the workload starts, so no daemon round trip sits in a task's start."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import ipaddress
import json
import os
import shlex
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_BRIDGE = "shoal0"
ALIAS_PREFIX = "shoal-state:"
DEFAULT_SUBNET = ipaddress.IPv4Network("10.254.0.0/16")
# derived subnets: 10.192.0.0/20 … 10.253.240.0/20, away from the default's 10.254/16
_DERIVED_FIRST = int(ipaddress.IPv4Address("10.192.0.0"))
_DERIVED_COUNT = (254 - 192) * 16


class TaskNetError(Exception):
    pass


NODE_SUBNET_FILE = "node_subnet"  # in the state dir: the subnet the managers gave this node


@dataclass(frozen=True)
class TaskNetConfig:
    bridge: str
    default_subnet: ipaddress.IPv4Network  # used until the node adopts the managers' subnet
    state_dir: Path  # where the address book lives

    @property
    def subnet(self) -> ipaddress.IPv4Network:
        """The subnet the bridge and the tasks use now: the managers' once adopted, else the default."""
        adopted = read_node_subnet(self.state_dir)
        return adopted if adopted is not None else self.default_subnet

    @classmethod
    def for_scope(cls, scope: str, state_dir: Path) -> TaskNetConfig:
        """A bridge name (≤ 15 chars) and a /20 subnet derived from `scope` (e.g. the data root)."""
        digest = hashlib.sha256(scope.encode()).digest()
        index = int.from_bytes(digest[:4], "big") % _DERIVED_COUNT
        subnet = ipaddress.IPv4Network((_DERIVED_FIRST + index * 4096, 20))
        return cls(f"shoal{digest[4:8].hex()}", subnet, state_dir)

    @classmethod
    def default(cls, state_dir: Path) -> TaskNetConfig:
        """shoal0 on 10.254.0.0/16: for the one daemon of a host with the default data root."""
        return cls(DEFAULT_BRIDGE, DEFAULT_SUBNET, state_dir)

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        return self.subnet.network_address + 1

    def bridge_exists(self) -> bool:
        return Path("/sys/class/net", self.bridge).exists()

    @property
    def comment(self) -> str:
        return f"shoal:{self.bridge}"


def read_node_subnet(state_dir: Path) -> ipaddress.IPv4Network | None:
    try:
        return ipaddress.IPv4Network((state_dir / NODE_SUBNET_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def _bridge_holds_tasks(config: TaskNetConfig) -> bool:
    try:
        return any(Path("/sys/class/net", config.bridge, "brif").iterdir())
    except OSError:
        return False


async def adopt_node_subnet(config: TaskNetConfig, subnet: str) -> bool:
    """Use the subnet the managers gave this node (the node object's task subnet) from now on.
    Returns whether it changed. "" (no subnet given) changes nothing."""
    if not subnet:
        return False
    try:
        wanted = ipaddress.IPv4Network(subnet)
    except ValueError:
        raise TaskNetError(f"invalid node subnet {subnet!r}") from None
    return await _switch_subnet(config, wanted)


async def forget_node_subnet(config: TaskNetConfig) -> bool:
    """Back to the derived subnet (the node left its swarm), and its swarm networks' bridges gone.
    Returns whether the subnet changed."""
    changed = await _switch_subnet(config, None)
    await remove_network_bridges(config)
    return changed


async def _switch_subnet(config: TaskNetConfig, wanted: ipaddress.IPv4Network | None) -> bool:
    """A bridge already up on the old subnet is taken down so the executor makes it again on the new
    one (it does whenever the bridge is missing) — but only while it holds no task: a node with
    running tasks keeps its subnet until they are gone (the managers send the node object again with
    every change, and each time it is tried again)."""
    if (wanted or config.default_subnet) == config.subnet:
        return False
    if config.bridge_exists():
        if _bridge_holds_tasks(config):
            return False
        await remove_bridge(config)  # its rules name the old subnet: remove them while config still does
    path = config.state_dir / NODE_SUBNET_FILE
    if wanted is None:
        path.unlink(missing_ok=True)
        return True
    config.state_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{wanted}\n")
    os.replace(tmp, path)
    return True


def veth_name(container_id: str) -> str:
    return f"vsh{container_id[:11]}"


# ---------------------------------------------------------------------------------------------- addresses


def next_free_address(subnet: ipaddress.IPv4Network, used: Iterable[ipaddress.IPv4Address]) -> ipaddress.IPv4Address:
    """The lowest host address after the gateway that nobody holds."""
    taken = set(used)
    gateway = subnet.network_address + 1
    for candidate in subnet.hosts():
        if candidate != gateway and candidate not in taken:
            return candidate
    raise TaskNetError(f"no free address left in {subnet}")


class AddressBook:
    """Addresses held by tasks, in <state>/addresses.json; flock'd so concurrent calls never race."""

    def __init__(self, config: TaskNetConfig) -> None:
        self._config = config
        self._path = config.state_dir / "addresses.json"

    def allocate(self, holder: str) -> ipaddress.IPv4Address:
        with self._locked() as book:
            if holder in book:
                return ipaddress.IPv4Address(book[holder])
            address = next_free_address(self._config.subnet, map(ipaddress.IPv4Address, book.values()))
            book[holder] = str(address)
            return address

    def release(self, holder: str) -> None:
        with self._locked() as book:
            book.pop(holder, None)

    def holders(self) -> dict[str, str]:
        with self._locked() as book:
            return dict(book)

    @contextmanager
    def _locked(self) -> Iterator[dict[str, str]]:
        self._config.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self._config.state_dir / "addresses.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                book: dict[str, str] = json.loads(self._path.read_text())
            except FileNotFoundError:
                book = {}
            before = dict(book)
            yield book
            if book != before:
                tmp = self._path.with_suffix(".tmp")
                tmp.write_text(json.dumps(book, indent=1, sort_keys=True))
                os.replace(tmp, self._path)


# ---------------------------------------------------------------------------------------------- the bridge


def bridge_commands(config: TaskNetConfig) -> list[list[str]]:
    """Commands that make the bridge ready, each safe to repeat (checked by `ensure_bridge`)."""
    prefix = f"{config.gateway}/{config.subnet.prefixlen}"
    return [
        ["ip", "link", "add", "name", config.bridge, "type", "bridge"],
        ["ip", "addr", "add", prefix, "dev", config.bridge],
        ["ip", "link", "set", config.bridge, "up"],
    ]


def firewall_rules(config: TaskNetConfig) -> list[tuple[str, str, list[str]]]:
    """(table, chain, rule) triples: masquerade outbound, and let bridge traffic through FORWARD
    (dockerd sets that chain's policy to DROP)."""
    mark = ["-m", "comment", "--comment", config.comment]
    subnet = str(config.subnet)
    return [
        ("nat", "POSTROUTING", ["-s", subnet, "!", "-o", config.bridge, "-j", "MASQUERADE", *mark]),
        ("filter", "FORWARD", ["-i", config.bridge, "-j", "ACCEPT", *mark]),
        ("filter", "FORWARD", ["-o", config.bridge, "-j", "ACCEPT", *mark]),
    ]


async def _run(*argv: str, check: bool = True) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await proc.communicate()
    text = output.decode(errors="replace").strip()
    code = proc.returncode if proc.returncode is not None else -1
    if check and code != 0:
        raise TaskNetError(f"{shlex.join(argv)}: {text}")
    return code, text


async def ensure_bridge(config: TaskNetConfig) -> None:
    """Create the bridge, its gateway address, forwarding and the firewall rules, if missing.
    Serialized by a lock file beside the address book: executors sharing a config may race."""
    config.state_dir.mkdir(parents=True, exist_ok=True)
    with open(config.state_dir / "bridge.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        code, _ = await _run("ip", "link", "show", "dev", config.bridge, check=False)
        if code != 0:
            await _run(*bridge_commands(config)[0])
            # the owner's state dir, so remove_orphan_bridges() can tell when nobody owns it any more
            await _run("ip", "link", "set", "dev", config.bridge, "alias", f"{ALIAS_PREFIX}{config.state_dir}")
        _, addresses = await _run("ip", "-o", "-4", "addr", "show", "dev", config.bridge)
        if f" {config.gateway}/" not in addresses:
            await _run(*bridge_commands(config)[1])
        await _run(*bridge_commands(config)[2])
        Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")
        for table, chain, rule in firewall_rules(config):
            code, _ = await _run("iptables", "-w", "-t", table, "-C", chain, *rule, check=False)
            if code != 0:
                action = "-I" if chain == "FORWARD" else "-A"
                await _run("iptables", "-w", "-t", table, action, chain, *rule)


async def remove_orphan_bridges() -> list[str]:
    """Remove task bridges whose owner's state dir is gone and that hold no task (left by daemons
    whose data root was deleted, e.g. test runs). Returns the names removed."""
    removed = []
    for link in sorted(Path("/sys/class/net").glob("shoal*")):
        try:
            alias = (link / "ifalias").read_text().strip()
        except OSError:
            continue
        if not alias.startswith(ALIAS_PREFIX) or Path(alias[len(ALIAS_PREFIX) :]).exists():
            continue
        if any((link / "brif").iterdir()):
            continue
        _, text = await _run("ip", "-o", "-4", "addr", "show", "dev", link.name, check=False)
        words = text.split()
        if "inet" not in words:  # a swarm network's bridge: no address, one FORWARD rule
            await remove_network_bridge(link.name)
            removed.append(link.name)
            continue
        subnet = ipaddress.IPv4Interface(words[words.index("inet") + 1]).network
        await remove_bridge(TaskNetConfig(link.name, subnet, Path(alias[len(ALIAS_PREFIX) :])))
        removed.append(link.name)
    return removed


async def remove_bridge(config: TaskNetConfig) -> None:
    """Undo ensure_bridge (tests and `shoal` cleanup); tasks' veths vanish with their namespaces."""
    for table, chain, rule in firewall_rules(config):
        while (await _run("iptables", "-w", "-t", table, "-D", chain, *rule, check=False))[0] == 0:
            pass
    await _run("ip", "link", "del", "dev", config.bridge, check=False)


@dataclass(frozen=True)
class NetworkAttachment:
    """A swarm network the task joins, with the address the allocator gave it there."""

    network_id: str
    address: ipaddress.IPv4Interface


def network_attachments(raw_task: Mapping[str, Any]) -> tuple[NetworkAttachment, ...]:
    """The task's swarm networks (its NetworksAttachments), without the ingress network: published
    ports reach tasks through the routing mesh, on the node bridge."""
    found: list[NetworkAttachment] = []
    for attachment in raw_task.get("NetworksAttachments") or []:
        network = attachment.get("Network") or {}
        addresses = attachment.get("Addresses") or []
        if (network.get("Spec") or {}).get("Ingress") or not addresses or not network.get("ID"):
            continue
        try:
            address = ipaddress.IPv4Interface(str(addresses[0]))
        except ValueError:
            continue
        found.append(NetworkAttachment(str(network["ID"]), address))
    return tuple(found)


def network_bridge(config: TaskNetConfig, network_id: str) -> str:
    """This node's bridge for one swarm network (≤ 15 characters; `shoal` for orphan cleanup)."""
    return "shoal" + hashlib.sha256(f"{config.bridge}/{network_id}".encode()).hexdigest()[:10]


def network_bridge_rule(bridge: str) -> list[str]:
    """Traffic between a network's tasks passes FORWARD when bridged traffic is filtered (dockerd's
    br_netfilter and DROP policy); nothing else enters or leaves that bridge."""
    return ["-i", bridge, "-o", bridge, "-j", "ACCEPT", "-m", "comment", "--comment", f"shoal:{bridge}"]


async def remove_network_bridges(config: TaskNetConfig) -> list[str]:
    """Remove this node's swarm network bridges (it left its swarm: its tasks are gone, or going —
    a task's veth may outlive its namespace for a moment, and goes with it regardless)."""
    mine = ALIAS_PREFIX + str(config.state_dir)
    removed = []
    for link in sorted(Path("/sys/class/net").glob("shoal*")):
        try:
            alias = (link / "ifalias").read_text().strip()
        except OSError:
            continue
        if alias == mine and link.name != config.bridge:
            await remove_network_bridge(link.name)
            removed.append(link.name)
    return removed


async def remove_network_bridge(bridge: str) -> None:
    rule = network_bridge_rule(bridge)
    while (await _run("iptables", "-w", "-D", "FORWARD", *rule, check=False))[0] == 0:
        pass
    await _run("ip", "link", "del", "dev", bridge, check=False)


def _attachment_script(config: TaskNetConfig, container_id: str, attachments: Iterable[NetworkAttachment]) -> str:
    lines: list[str] = []
    for number, attachment in enumerate(attachments, start=1):
        bridge = network_bridge(config, attachment.network_id)
        host_end = f"vs{number}{container_id[:11]}"
        inside = f"eth{number}"
        rule = shlex.join(network_bridge_rule(bridge))
        lines += [
            # made by the first task of the network on this node; concurrent starts may race to it
            f"ip link add name {bridge} type bridge 2>/dev/null || true",
            f"ip link set dev {bridge} alias {shlex.quote(ALIAS_PREFIX + str(config.state_dir))}",
            f"ip link set {bridge} up",
            f"iptables -w -C FORWARD {rule} 2>/dev/null || iptables -w -I FORWARD {rule}",
            f'ip link add {host_end} type veth peer name {inside} netns "$1"',
            f"ip link set {host_end} master {bridge} up",
            f"printf '%s\\n' {shlex.quote(f'addr add {attachment.address} dev {inside}')} "
            f"{shlex.quote(f'link set {inside} up')} | nsenter --net=/proc/$1/ns/net ip -batch -",
        ]
    return "".join(line + "\n" for line in lines)


def setup_script(config: TaskNetConfig, container_id: str, address: ipaddress.IPv4Address,
                 attachments: Iterable[NetworkAttachment] = ()) -> str:
    """Shell run by the supervisor with the task's init pid as $1: veth pair, eth0 inside with the
    task's address and a default route through the bridge, loopback up; then one interface per swarm
    network in `attachments` (see network_attachments)."""
    host_end = veth_name(container_id)
    inside = "\n".join(
        [
            "link set lo up",
            f"addr add {address}/{config.subnet.prefixlen} dev eth0",
            "link set eth0 up",
            f"route add default via {config.gateway}",
        ]
    )
    return (
        "set -e\n"
        # the supervisor runs this with the task's environment, whose PATH may not reach ip/nsenter
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH\n"
        f'ip link add {host_end} type veth peer name eth0 netns "$1"\n'
        f"ip link set {host_end} master {config.bridge} up\n"
        f"printf '%s\\n' {shlex.quote(inside)} | nsenter --net=/proc/$1/ns/net ip -batch -\n"
        + _attachment_script(config, container_id, attachments)
    )
