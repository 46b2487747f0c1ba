"""Raft benchmark: a 3-member shoal kvserver cluster against a 3-member etcd cluster, on loopback.

Both clusters run on this machine with fsync on (etcd's default; shoal's DiskStorage always
fsyncs before acknowledging), the same Raft timing (100 ms heartbeat, 1 s election timeout; etcd
with --pre-vote like shoal), and TLS between members on for both (--tls off turns it off for both).
Client traffic is plain HTTP for both: shoal's kvserver JSON port, etcd's v3 JSON gateway
(POST /v3/kv/put with base64 key and value). One asyncio load generator in this process drives
both with the same keys and payloads, so absolute numbers are bounded by one Python client and the
2 cores the members share with it; the ratios are the point. Both clusters run at the same time and
the measurements alternate between them in short slices, so that a busy moment of a shared machine
hits both alike; the machine's load average is printed with the results.

Measured, for each system:
  * committed writes/s and p50/p99 latency with 1, 16 and 256 concurrent clients, writes sent to the
    leader;
  * leader failover: median of 5 trials of kill -9 the leader, then time until a write succeeds
    through a new leader (the client tries the other members in turn, 300 ms per attempt);
  * leader elections (Raft term increases) on an idle cluster over 30 s and during the write run.

  python bench/raft_bench.py [--seconds 10] [--idle 30] [--trials 5] [--tls on|off] [--only shoal|etcd]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from shoal.testing.kvserver import KVProcessCluster, free_ports
from shoal.testing.pki import TestCA
from shoal.testing.processes import ProcessGroup

LEVELS = (1, 16, 256)
_worker_ids = itertools.count(1000)
VALUE = "v" * 128
ATTEMPT_TIMEOUT = 0.3


class System(Protocol):
    name: str
    ids: list[int]

    def start_all(self) -> None: ...

    def stop_all(self) -> None: ...

    def kill(self, node_id: int) -> None: ...

    def start(self, node_id: int) -> None: ...

    async def leader(self, session: aiohttp.ClientSession) -> int | None: ...

    async def term(self, session: aiohttp.ClientSession) -> int: ...

    async def write(self, session: aiohttp.ClientSession, node_id: int, worker: int, seq: int, key: str) -> bool:
        """One write attempt through ``node_id``; True once committed."""
        ...


async def _json(session: aiohttp.ClientSession, method: str, url: str, body: Any, timeout: float) -> Any:
    async with asyncio.timeout(timeout):
        async with session.request(method, url, json=body) as resp:
            if resp.status != 200:
                return None
            return await resp.json(content_type=None)


# --- shoal ------------------------------------------------------------------------------------------


class ShoalSystem:
    name = "shoal"

    def __init__(self, root: Path, tls: bool) -> None:
        self.cluster = KVProcessCluster(root, 3, tls=tls)
        self.ids = self.cluster.ids

    def start_all(self) -> None:
        self.cluster.start_all()

    def stop_all(self) -> None:
        self.cluster.stop_all()

    def kill(self, node_id: int) -> None:
        self.cluster.kill(node_id)

    def start(self, node_id: int) -> None:
        self.cluster.start(node_id)

    async def _statuses(self, session: aiohttp.ClientSession) -> list[dict[str, Any]]:
        found = []
        for node_id in self.cluster.running():
            status = await self.cluster.status(session, node_id)
            if status is not None:
                found.append(status)
        return found

    async def leader(self, session: aiohttp.ClientSession) -> int | None:
        for status in await self._statuses(session):
            if status.get("is_leader"):
                return int(status["id"])
        return None

    async def term(self, session: aiohttp.ClientSession) -> int:
        return max((int(s["term"]) for s in await self._statuses(session)), default=0)

    async def write(self, session: aiohttp.ClientSession, node_id: int, worker: int, seq: int, key: str) -> bool:
        body = {"client": worker, "seq": seq, "key": key, "value": VALUE}
        url = f"http://{self.cluster.http_addrs[node_id]}/kv/put"
        return await _json(session, "POST", url, body, ATTEMPT_TIMEOUT * 10) is not None


# --- etcd ---------------------------------------------------------------------------------------------


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class EtcdSystem(ProcessGroup):
    name = "etcd"
    log_prefix = "etcd"
    stop_timeout = 10.0

    def __init__(self, root: Path, tls: bool) -> None:
        super().__init__(root, [1, 2, 3])
        ports = free_ports(6)
        self.peer_port = {i: ports[2 * (i - 1)] for i in self.ids}
        self.client_port = {i: ports[2 * (i - 1) + 1] for i in self.ids}
        self.tls = tls
        self.member_ids: dict[str, int] = {}
        self._certs: dict[int, Path] = {}
        if tls:
            ca = TestCA("etcdbench")
            for i in self.ids:
                self._certs[i] = ca.issue(f"etcd{i}").write(root / f"certs{i}").cert.parent

    def _peer_url(self, node_id: int) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.peer_port[node_id]}"

    def client_url(self, node_id: int) -> str:
        return f"http://127.0.0.1:{self.client_port[node_id]}"

    def command(self, node_id: int) -> list[str]:
        cluster = ",".join(f"e{i}={self._peer_url(i)}" for i in self.ids)
        data_dir = self.root / f"e{node_id}.etcd"
        cmd = [
            "etcd",
            "--name", f"e{node_id}",
            "--data-dir", str(data_dir),
            "--listen-peer-urls", self._peer_url(node_id),
            "--initial-advertise-peer-urls", self._peer_url(node_id),
            "--listen-client-urls", self.client_url(node_id),
            "--advertise-client-urls", self.client_url(node_id),
            "--initial-cluster", cluster,
            "--initial-cluster-token", "raftbench",
            "--initial-cluster-state", "existing" if data_dir.exists() else "new",
            "--heartbeat-interval", "100",
            "--election-timeout", "1000",
            "--pre-vote",
            "--logger", "zap",
            "--log-level", "warn",
        ]  # fmt: skip
        if self.tls:
            certs = self._certs[node_id]
            cmd += [
                "--peer-cert-file", str(certs / "node.crt"),
                "--peer-key-file", str(certs / "node.key"),
                "--peer-trusted-ca-file", str(certs / "ca.crt"),
                "--peer-client-cert-auth",
            ]  # fmt: skip
        return cmd

    async def _status(self, session: aiohttp.ClientSession, node_id: int) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] | None = await _json(
                session, "POST", f"{self.client_url(node_id)}/v3/maintenance/status", {}, 1.0
            )
        except (aiohttp.ClientError, TimeoutError):
            return None
        if result is not None:
            self.member_ids[str(result["header"]["member_id"])] = node_id
        return result

    async def leader(self, session: aiohttp.ClientSession) -> int | None:
        for node_id in list(self.procs):
            status = await self._status(session, node_id)
            if status is None or "leader" not in status:
                continue
            if str(status["leader"]) == str(status["header"]["member_id"]):
                return node_id
        return None

    async def term(self, session: aiohttp.ClientSession) -> int:
        terms = []
        for node_id in list(self.procs):
            status = await self._status(session, node_id)
            if status is not None:
                terms.append(int(status.get("raftTerm", 0)))
        return max(terms, default=0)

    async def write(self, session: aiohttp.ClientSession, node_id: int, worker: int, seq: int, key: str) -> bool:
        body = {"key": _b64(key), "value": _b64(VALUE)}
        url = f"{self.client_url(node_id)}/v3/kv/put"
        result = await _json(session, "POST", url, body, ATTEMPT_TIMEOUT * 10)
        return result is not None and "header" in result


# --- measurements ---------------------------------------------------------------------------------------


async def wait_leader(system: System, session: aiohttp.ClientSession, timeout: float = 60.0) -> int:
    async with asyncio.timeout(timeout):
        while True:
            leader = await system.leader(session)
            if leader is not None:
                return leader
            await asyncio.sleep(0.05)


@dataclass
class LoadSample:
    """Latencies of committed writes and the time they took, summed over slices."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed: float = 0.0

    def summary(self, clients: int) -> dict[str, float]:
        ordered = sorted(self.latencies)
        count = len(ordered)
        return {
            "clients": clients,
            "writes_per_s": count / self.elapsed if self.elapsed else float("nan"),
            "p50_ms": 1000 * ordered[count // 2] if ordered else float("nan"),
            "p99_ms": 1000 * ordered[min(count - 1, int(count * 0.99))] if ordered else float("nan"),
            "errors": self.errors,
            "writes": count,
        }


async def load(
    system: System, session: aiohttp.ClientSession, clients: int, seconds: float, sample: LoadSample
) -> None:
    """``clients`` concurrent writers against the leader for ``seconds``, added to ``sample``."""
    leader = await wait_leader(system, session)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    async def worker(worker_id: int) -> None:
        seq = 0
        while loop.time() < deadline:
            seq += 1
            started = time.perf_counter()
            try:
                ok = await system.write(session, leader, worker_id, seq, f"k{worker_id}-{seq % 1000}")
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            if ok:
                sample.latencies.append(time.perf_counter() - started)
            else:
                sample.errors += 1

    began = time.perf_counter()
    # Fresh worker ids in every slice: shoal's kvserver applies a (client, seq) at most once.
    await asyncio.gather(*(worker(next(_worker_ids)) for _ in range(clients)))
    sample.elapsed += time.perf_counter() - began


async def failover_trial(system: System, session: aiohttp.ClientSession, trial: int) -> float:
    leader = await wait_leader(system, session)
    others = [i for i in system.ids if i != leader]
    system.kill(leader)
    killed_at = time.perf_counter()
    seq = 0
    while True:
        for node_id in others:
            seq += 1
            try:
                async with asyncio.timeout(ATTEMPT_TIMEOUT):
                    ok = await system.write(session, node_id, 9000 + trial, seq, "failover")
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            if ok:
                elapsed = time.perf_counter() - killed_at
                system.start(leader)
                return elapsed
            await asyncio.sleep(0.01)


def progress(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


async def run_interleaved(
    systems: list[System], seconds: float, idle: float, trials: int, slices: int
) -> dict[str, dict[str, Any]]:
    """Run every system at once (an idle cluster costs little) and alternate the measurements in
    short slices, so that a busy moment of the shared machine hits all systems alike."""
    for system in systems:
        system.start_all()
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            for system in systems:
                await wait_leader(system, session)
            await asyncio.sleep(2.0)  # every member connected and caught up
            term0 = {s.name: await s.term(session) for s in systems}
            progress(f"idle for {idle} s")
            await asyncio.sleep(idle)
            term1 = {s.name: await s.term(session) for s in systems}
            for system in systems:
                await load(system, session, 16, 1.0, LoadSample())  # warm-up
            term2 = {s.name: await s.term(session) for s in systems}
            levels: dict[str, list[dict[str, float]]] = {s.name: [] for s in systems}
            for clients in LEVELS:
                samples = {s.name: LoadSample() for s in systems}
                progress(f"{clients} clients")
                for _ in range(slices):
                    for system in systems:
                        await load(system, session, clients, seconds / slices, samples[system.name])
                for system in systems:
                    levels[system.name].append(samples[system.name].summary(clients))
            term3 = {s.name: await s.term(session) for s in systems}
            failovers: dict[str, list[float]] = {s.name: [] for s in systems}
            for trial in range(trials):
                progress(f"failover trial {trial + 1}")
                for system in systems:
                    failovers[system.name].append(await failover_trial(system, session, trial))
                for system in systems:
                    await wait_leader(system, session)
                await asyncio.sleep(3.0)  # the restarted members catch up
            return {
                s.name: {
                    "system": s.name,
                    "levels": levels[s.name],
                    "failover_s": failovers[s.name],
                    "failover_median_s": statistics.median(failovers[s.name]) if trials else float("nan"),
                    "idle_elections": term1[s.name] - term0[s.name],
                    "idle_seconds": idle,
                    "load_elections": term3[s.name] - term2[s.name],
                }
                for s in systems
            }
    finally:
        for system in systems:
            system.stop_all()


def markdown(results: dict[str, dict[str, Any]], tls: bool) -> str:
    lines = [
        f"TLS between members: {'on' if tls else 'off'} for both; fsync on for both; client traffic plain HTTP.",
        "",
        "| measure | " + " | ".join(results) + (" | shoal/etcd |" if len(results) == 2 else " |"),
        "|---|" + "---|" * (len(results) + (1 if len(results) == 2 else 0)),
    ]

    def row(label: str, values: list[float], fmt: str) -> None:
        cells = [format(v, fmt) for v in values]
        if len(values) == 2:
            cells.append(f"{values[0] / values[1]:.2f}" if values[1] else "n/a")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    systems = list(results.values())
    for i, clients in enumerate(LEVELS):
        row(f"writes/s, {clients} clients", [s["levels"][i]["writes_per_s"] for s in systems], ".0f")
        row(f"p50 ms, {clients} clients", [s["levels"][i]["p50_ms"] for s in systems], ".2f")
        row(f"p99 ms, {clients} clients", [s["levels"][i]["p99_ms"] for s in systems], ".2f")
    row("failover median s (kill -9 leader)", [s["failover_median_s"] for s in systems], ".2f")
    row("elections, idle", [s["idle_elections"] for s in systems], ".0f")
    row("elections, during writes", [s["load_elections"] for s in systems], ".0f")
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> None:
    tls = args.tls == "on"
    names = ["shoal", "etcd"] if args.only is None else [args.only]
    if "etcd" in names and shutil.which("etcd") is None:
        sys.exit("etcd not found: apt-get install etcd-server")
    roots = {name: Path(tempfile.mkdtemp(prefix=f"raftbench-{name}-")) for name in names}
    systems: list[System] = [
        ShoalSystem(roots[name], tls) if name == "shoal" else EtcdSystem(roots[name], tls) for name in names
    ]
    print(f"data and logs in {', '.join(str(r) for r in roots.values())}", file=sys.stderr)
    load_before = os.getloadavg()
    results = await run_interleaved(systems, args.seconds, args.idle, args.trials, args.slices)
    load_after = os.getloadavg()
    if not args.keep:
        for root in roots.values():
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps({"results": results, "loadavg_before": load_before, "loadavg_after": load_after}, indent=2))
    print()
    print(markdown(results, tls))
    print(f"\nmachine load average (1/5/15 min) before: {load_before}, after: {load_after}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of load per concurrency level")
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of idle cluster to count elections")
    parser.add_argument("--trials", type=int, default=5, help="failover trials (median reported)")
    parser.add_argument("--slices", type=int, default=5, help="alternating slices per concurrency level")
    parser.add_argument("--tls", choices=("on", "off"), default="on")
    parser.add_argument("--only", choices=("shoal", "etcd"))
    parser.add_argument("--keep", action="store_true", help="keep data dirs and logs")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
