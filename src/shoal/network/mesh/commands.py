"""The kernel path's only I/O: iptables-save/-restore, conntrack and sysctls, behind small protocols
so the KernelMesh logic can be exercised with fakes."""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

# Seconds to wait for the xtables lock that other iptables users (docker, kube-proxy) may hold.
XTABLES_WAIT = "5"


class CommandFailed(RuntimeError):
    def __init__(self, argv: list[str], returncode: int, stderr: str) -> None:
        super().__init__(f"{' '.join(argv)} exited {returncode}: {stderr.strip()}")
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr


async def run(argv: list[str], stdin: str | None = None) -> str:
    """Run a command to completion; its stdout, or CommandFailed."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    if proc.returncode != 0:
        raise CommandFailed(argv, proc.returncode or -1, err.decode(errors="replace"))
    return out.decode(errors="replace")


class Iptables(Protocol):
    async def save(self, table: str) -> str: ...

    async def restore(self, ruleset: str) -> None: ...


class IptablesCommands:
    """The iptables binaries on PATH (whichever backend, nft or legacy, the system chose)."""

    def __init__(self, save: str = "iptables-save", restore: str = "iptables-restore") -> None:
        self.save_binary = save
        self.restore_binary = restore

    @staticmethod
    def available() -> bool:
        return shutil.which("iptables-save") is not None and shutil.which("iptables-restore") is not None

    async def save(self, table: str) -> str:
        return await run([self.save_binary, "-t", table])

    async def restore(self, ruleset: str) -> None:
        await run([self.restore_binary, "-w", XTABLES_WAIT, "--noflush"], stdin=ruleset)


class Conntrack(Protocol):
    async def forget_udp(self, port: int, backend_ip: str | None) -> None:
        """Drop UDP flows to a published port (only those answered by backend_ip when given), so the
        next datagram is balanced afresh instead of following a stale entry."""
        ...


class ConntrackCommand:
    """conntrack(8) from the conntrack package; without it stale UDP flows age out (30-180 s)."""

    def __init__(self, binary: str = "conntrack") -> None:
        self.binary = shutil.which(binary)
        if self.binary is None:
            log.warning("conntrack(8) not found: UDP flows to removed backends linger until they expire")

    async def forget_udp(self, port: int, backend_ip: str | None) -> None:
        if self.binary is None:
            return
        argv = [self.binary, "-D", "-p", "udp", "--orig-port-dst", str(port)]
        if backend_ip is not None:
            argv += ["--reply-src", backend_ip]
        try:
            await run(argv)
        except CommandFailed as exc:
            if exc.returncode != 1:  # 1: no matching flow, the usual case
                log.warning("%s", exc)


class Sysctls:
    """Writes the sysctls the kernel path depends on."""

    # 127.0.0.1 may be DNATed to a backend and routed off the loopback device (kube-proxy does the same);
    # forwarding carries traffic from other hosts and namespaces to the backends.
    REQUIRED = {
        "net/ipv4/conf/all/route_localnet": "1",
        "net/ipv4/ip_forward": "1",
    }

    def __init__(self, root: Path = Path("/proc/sys")) -> None:
        self.root = root

    def ensure(self) -> None:
        for key, value in self.REQUIRED.items():
            path = self.root / key
            if path.read_text().strip() != value:
                path.write_text(value + "\n")
                log.info("set %s = %s", key.replace("/", "."), value)
