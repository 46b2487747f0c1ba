"""The fallback mesh: asyncio TCP and UDP forwarders on 0.0.0.0:<port>, for nodes where the kernel
path is not available (not root, or iptables unusable). It serves only while shoald runs."""

from __future__ import annotations

import asyncio
import logging

from shoal.network.mesh.protocol import MeshError, MeshKind
from shoal.network.mesh.state import Backend, MeshState, PublishedPort, ingress_ports, normalize
from shoal.network.mesh.tcp_proxy import TcpForwarder
from shoal.network.mesh.udp_proxy import UdpForwarder

log = logging.getLogger(__name__)

Forwarder = TcpForwarder | UdpForwarder


class UserspaceMesh:
    def __init__(
        self,
        *,
        host: str = "0.0.0.0",
        drain_timeout: float | None = 30.0,
        udp_idle_timeout: float = 30.0,
    ) -> None:
        self.host = host
        self.drain_timeout = drain_timeout
        self.udp_idle_timeout = udp_idle_timeout
        self._forwarders: dict[PublishedPort, Forwarder] = {}
        self._applied: dict[PublishedPort, tuple[Backend, ...]] = {}
        self._lock = asyncio.Lock()

    @property
    def kind(self) -> MeshKind:
        return "userspace"

    @property
    def applied(self) -> dict[PublishedPort, tuple[Backend, ...]]:
        return dict(self._applied)

    async def start(self) -> None:
        """Nothing to prepare; listeners open in apply()."""

    def _new_forwarder(self, published: PublishedPort, backends: tuple[Backend, ...]) -> Forwarder:
        if published.protocol == "tcp":
            return TcpForwarder(published.port, backends, host=self.host, drain_timeout=self.drain_timeout)
        return UdpForwarder(published.port, backends, host=self.host, idle_timeout=self.udp_idle_timeout)

    async def apply(self, state: MeshState) -> None:
        recorded = normalize(state)  # raises InvalidMeshState before anything changes
        # A port without backends is closed, as on the kernel path.
        wanted = {p: b for p, b in ingress_ports(state).items() if b}
        failures: list[str] = []
        async with self._lock:
            for published in [p for p in self._forwarders if p not in wanted]:
                await self._stop(self._forwarders.pop(published), drain=True)
            for published, backends in wanted.items():
                forwarder = self._forwarders.get(published)
                if forwarder is not None:
                    forwarder.set_backends(backends)
                    continue
                forwarder = self._new_forwarder(published, backends)
                try:
                    await forwarder.start()
                except OSError as exc:
                    failures.append(f"{published}: {exc.strerror or exc}")
                    continue
                self._forwarders[published] = forwarder
            failed = {p for p in wanted if p not in self._forwarders}
            self._applied = {p: b for p, b in recorded.items() if p not in failed}
        if failures:
            raise MeshError("cannot listen on " + "; ".join(failures))

    @staticmethod
    async def _stop(forwarder: Forwarder, *, drain: bool) -> None:
        if isinstance(forwarder, TcpForwarder):
            await forwarder.stop(drain=drain)
        else:
            await forwarder.stop()

    async def close(self, keep_kernel_rules: bool = True) -> None:
        """Stop listening and cut open connections (keep_kernel_rules does not apply here)."""
        async with self._lock:
            for forwarder in self._forwarders.values():
                await self._stop(forwarder, drain=False)
            self._forwarders.clear()
            self._applied = {}
