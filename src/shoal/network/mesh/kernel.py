"""The kernel path: iptables nat rules in chains of our own, so the mesh keeps serving while shoald
is down or restarting. See ruleset.py for the rules themselves."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from shoal.base.clock import Clock, SystemClock
from shoal.network.mesh.chains import ChainNames
from shoal.network.mesh.commands import (
    CommandFailed,
    Conntrack,
    ConntrackCommand,
    Iptables,
    IptablesCommands,
    Sysctls,
)
from shoal.network.mesh.hairpin import Hairpin
from shoal.network.mesh.protocol import MeshError, MeshKind
from shoal.network.mesh.ruleset import TableSnapshot, parse_save, render_apply, render_teardown
from shoal.network.mesh.state import Backend, MeshState, PublishedPort, ingress_ports, normalize

log = logging.getLogger(__name__)

Ports = dict[PublishedPort, tuple[Backend, ...]]

UDP_REMOVAL_GRACE = 2.0  # seconds before a removed backend's UDP flows are dropped


class KernelMesh:
    def __init__(
        self,
        instance: str,
        *,
        iptables: Iptables | None = None,
        conntrack: Conntrack | None = None,
        sysctls: Sysctls | None = None,
        hairpin: Hairpin | None = None,
        clock: Clock | None = None,
        udp_removal_grace: float = UDP_REMOVAL_GRACE,
    ) -> None:
        self.names = ChainNames.for_instance(instance)
        self._iptables = iptables or IptablesCommands()
        self._conntrack = conntrack or ConntrackCommand()
        self._sysctls = sysctls or Sysctls()
        self._hairpin = hairpin or Hairpin()
        self._clock = clock or SystemClock()
        self._udp_removal_grace = udp_removal_grace
        self._deferred: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self._applied: Ports = {}
        self._routed: Ports | None = None  # None: not known yet (rules of a previous run may serve)

    @property
    def kind(self) -> MeshKind:
        return "kernel"

    @property
    def applied(self) -> Ports:
        return dict(self._applied)

    async def start(self) -> None:
        """Check that this kernel and iptables take our rules, and set the sysctls. Rules left by a
        previous run keep serving until the first apply() replaces them. Raises MeshError."""
        try:
            self._sysctls.ensure()
            await self._probe()
        except (OSError, CommandFailed) as exc:
            raise MeshError(f"kernel mesh unavailable: {exc}") from exc

    async def _probe(self) -> None:
        # Every match and target the real rules use, in a chain of ours that the next apply() or
        # this teardown removes.
        chain = f"{self.names.prefix}-PROBE"
        rules = [
            "-p tcp -m tcp --dport 1 -m addrtype --dst-type LOCAL -j RETURN",
            "-p udp -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination 127.0.0.1:1",
            "-p tcp -m conntrack --ctstate DNAT --ctorigdstport 1 -j MASQUERADE",
        ]
        body = "\n".join(f"-A {chain} {rule}" for rule in rules)
        await self._iptables.restore(f"*nat\n:{chain} - [0:0]\n{body}\nCOMMIT\n")
        await self._iptables.restore(f"*nat\n:{chain} - [0:0]\n-X {chain}\nCOMMIT\n")

    async def _snapshot(self) -> dict[str, TableSnapshot]:
        tables: dict[str, TableSnapshot] = {}
        for table in ("nat", "filter"):
            tables.update(parse_save(await self._iptables.save(table)))
        return tables

    async def apply(self, state: MeshState) -> None:
        recorded = normalize(state)  # raises InvalidMeshState before anything changes
        wanted = ingress_ports(state)
        async with self._lock:
            try:
                self._sysctls.ensure()  # cheap, and heals a sysctl someone reset since start()
                ruleset = render_apply(wanted, self.names, await self._snapshot())
                if ruleset:
                    await self._iptables.restore(ruleset)
            except (OSError, CommandFailed) as exc:
                raise MeshError(f"could not apply mesh rules: {exc}") from exc
            await self._forget_stale_udp(self._routed, wanted)
            # Ports of new tasks join their bridge after they start, so this runs on every apply.
            self._hairpin.ensure({b.ip for backends in wanted.values() for b in backends})
            self._routed = wanted
            self._applied = recorded

    async def _forget_stale_udp(self, before: Mapping[PublishedPort, tuple[Backend, ...]] | None, after: Ports) -> None:
        udp_before = {p: b for p, b in (before or {}).items() if p.protocol == "udp"}
        udp_after = {p: b for p, b in after.items() if p.protocol == "udp"}
        for published in udp_before.keys() | udp_after.keys():
            if before is None or published not in udp_before or published not in udp_after:
                await self._conntrack.forget_udp(published.port, None)
                continue
            kept = {b.ip for b in udp_after[published]}
            for ip in sorted({b.ip for b in udp_before[published]} - kept):
                self._defer_forget(published.port, ip)

    def _defer_forget(self, port: int, ip: str) -> None:
        """Drop a removed backend's UDP flows after a grace period: answers already on their way
        still find their conntrack entry, later datagrams move on to the remaining backends."""

        async def forget_later() -> None:
            await self._clock.sleep(self._udp_removal_grace)
            if not self._routes_udp_to(port, ip):  # not re-added meanwhile: its flows are live
                await self._conntrack.forget_udp(port, ip)

        task = asyncio.get_running_loop().create_task(forget_later())
        self._deferred.add(task)
        task.add_done_callback(self._deferred.discard)

    def _routes_udp_to(self, port: int, ip: str) -> bool:
        routed = self._routed or {}
        return any(
            p.port == port and p.protocol == "udp" and any(b.ip == ip for b in backends)
            for p, backends in routed.items()
        )

    async def close(self, keep_kernel_rules: bool = True) -> None:
        for task in list(self._deferred):
            task.cancel()  # removed backends' UDP flows then simply age out
        async with self._lock:
            if keep_kernel_rules:
                return
            try:
                ruleset = render_teardown(self.names, await self._snapshot())
                if ruleset:
                    await self._iptables.restore(ruleset)
            except CommandFailed as exc:
                raise MeshError(f"could not remove mesh rules: {exc}") from exc
            await self._forget_stale_udp(self._routed or {}, {})
            self._routed = {}
            self._applied = {}


async def remove_kernel_rules(instance: str, iptables: Iptables | None = None) -> None:
    """Remove an instance's rules without a running mesh (e.g. `swarm leave`, test clean-up)."""
    runner = iptables or IptablesCommands()
    tables: dict[str, TableSnapshot] = {}
    for table in ("nat", "filter"):
        tables.update(parse_save(await runner.save(table)))
    ruleset = render_teardown(ChainNames.for_instance(instance), tables)
    if ruleset:
        await runner.restore(ruleset)
