"""Routing mesh throughput: the kernel path and the userspace proxy against direct connections to the
same backends, measured in the same run; ratios are against "direct (client turns)".

  connections/s  N clients in a loop: open a connection, ask for 100 bytes, read them, close
                 (each new connection is balanced afresh, so this stresses the per-connection path)
  MB/s           N long-lived connections, each streaming 64 KiB chunks from its backend

With root and iptables, the backends are three network namespaces on a throw-away bridge and the
targets are: direct to backend a, direct with the client itself taking the three backends in turn (the
fair reference: same servers, no mesh), kernel via 127.0.0.1 and via the bridge address, and the
userspace proxy (run in its own process, as in shoald) via 127.0.0.1. Without root, backends
listen on loopback and only the proxy is measured. The load generator is Python (asyncio) in this
process, so ratios are relative to what one Python client can push. Prints a table and the ratios.

  python bench/mesh_bench.py [--connections 8] [--seconds 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from shoal.network.mesh.factory import kernel_path_unavailable
from shoal.network.mesh.kernel import KernelMesh, remove_kernel_rules
from shoal.network.mesh.state import Backend, PublishedPort
from shoal.network.mesh.userspace import UserspaceMesh

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent.parent / "tests" / "integration" / "mesh"))
from mesh_netns import NetnsNetwork  # type: ignore[import-not-found]  # noqa: E402  (the mesh tests' network)

SMALL = 100
CHUNK = b"x" * 65536
BACKEND_PORT = 8000
INSTANCE = f"bench{os.getpid() % 10000}"


# ---- backend server (run as: mesh_bench.py --serve HOST PORT) ---------------------------------


async def serve(host: str, port: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = (await reader.readline()).strip()
            if request == b"stream":
                while True:
                    writer.write(CHUNK)
                    await writer.drain()
            else:
                writer.write(b"y" * int(request or b"0"))
                await writer.drain()
        except (ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host, port, reuse_address=True, backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


# ---- userspace proxy process (run as: mesh_bench.py --proxy PORT IP:PORT...) ------------------


async def run_proxy(port: int, targets: list[str]) -> None:
    mesh = UserspaceMesh()
    backends = [Backend(t.rsplit(":", 1)[0], int(t.rsplit(":", 1)[1])) for t in targets]
    await mesh.apply({PublishedPort(port): backends})
    print("ready", flush=True)
    await asyncio.Event().wait()


# ---- load generator ---------------------------------------------------------------------------


Endpoint = tuple[str, int]


async def connections_per_second(endpoints: list[Endpoint], workers: int, seconds: float) -> float:
    """New connections are spread over `endpoints` in turn (one endpoint: all go there)."""
    deadline = time.monotonic() + seconds
    turn = itertools.cycle(endpoints)
    done = 0

    async def worker() -> None:
        nonlocal done
        while time.monotonic() < deadline:
            reader, writer = await asyncio.open_connection(*next(turn))
            writer.write(b"%d\n" % SMALL)
            await reader.readexactly(SMALL)
            writer.close()
            done += 1

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return done / (time.monotonic() - started)


class _Sink(asyncio.Protocol):
    def __init__(self, counter: list[int]) -> None:
        self.counter = counter

    def data_received(self, data: bytes) -> None:
        self.counter[0] += len(data)


async def megabytes_per_second(endpoints: list[Endpoint], workers: int, seconds: float) -> float:
    loop = asyncio.get_running_loop()
    received = [0]
    transports = []
    turn = itertools.cycle(endpoints)
    for _ in range(workers):
        transport, _ = await loop.create_connection(lambda: _Sink(received), *next(turn))
        transport.write(b"stream\n")
        transports.append(transport)
    await asyncio.sleep(0.3)  # warm up
    start_bytes, started = received[0], time.monotonic()
    await asyncio.sleep(seconds)
    rate = (received[0] - start_bytes) / (time.monotonic() - started) / 1e6
    for transport in transports:
        transport.abort()
    return rate


# ---- set-up -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))
        return int(probe.getsockname()[1])


def spawn(argv: list[str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError(f"{argv} did not start")
    return proc


async def main(workers: int, seconds: float, rounds: int) -> None:
    me = [sys.executable, str(HERE)]
    processes: list[subprocess.Popen[str]] = []
    network: NetnsNetwork | None = None
    use_kernel = kernel_path_unavailable() is None
    try:
        if use_kernel:
            network = NetnsNetwork("mesh-bench")
            network.create()
            backends = []
            for label in ("a", "b", "c"):
                ns = network.add_namespace(label)
                processes.append(spawn(["ip", "netns", "exec", ns.name, *me, "--serve", ns.ip, str(BACKEND_PORT)]))
                backends.append(Backend(ns.ip, BACKEND_PORT))
        else:
            backends = [Backend("127.0.0.1", free_port()) for _ in range(3)]
            for backend in backends:
                processes.append(spawn([*me, "--serve", backend.ip, str(backend.port)]))

        proxy_port = free_port()
        processes.append(spawn([*me, "--proxy", str(proxy_port), *(str(b) for b in backends)]))
        everyone = [(b.ip, b.port) for b in backends]
        targets: list[tuple[str, list[Endpoint]]] = [
            ("direct (one backend)", everyone[:1]),
            ("direct (client turns)", everyone),
        ]
        if use_kernel and network is not None:
            kernel_port = free_port()
            mesh = KernelMesh(INSTANCE)
            await mesh.start()
            await mesh.apply({PublishedPort(kernel_port): backends})
            targets += [
                ("kernel 127.0.0.1", [("127.0.0.1", kernel_port)]),
                ("kernel bridge addr", [(network.host_ip, kernel_port)]),
            ]
        targets.append(("userspace proxy", [("127.0.0.1", proxy_port)]))

        # Rounds interleave the targets and the median is kept, so a burst of load elsewhere on the
        # machine does not favour one target.
        samples: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in targets}
        for _ in range(rounds):
            for label, endpoints in targets:
                cps = await connections_per_second(endpoints, workers, seconds)
                mbs = await megabytes_per_second(endpoints, workers, seconds)
                samples[label].append((cps, mbs))
        results = {
            label: (statistics.median(c for c, _ in runs), statistics.median(m for _, m in runs))
            for label, runs in samples.items()
        }

        print(
            f"mesh bench: {workers} connections, {seconds:.0f} s per measurement, median of {rounds} "
            f"rounds, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
            f"kernel path {'on' if use_kernel else 'off'}"
        )
        print(f"{'target':24} {'conn/s':>10} {'MB/s':>10} {'conn/s ratio':>13} {'MB/s ratio':>11}")
        base_cps, base_mbs = results["direct (client turns)"]
        for label, (cps, mbs) in results.items():
            print(f"{label:24} {cps:10.0f} {mbs:10.1f} {cps / base_cps:13.2f} {mbs / base_mbs:11.2f}")
    finally:
        if use_kernel:
            await remove_kernel_rules(INSTANCE)
        for proc in processes:
            proc.kill()
            proc.wait()
        if network is not None:
            network.destroy()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        asyncio.run(serve(sys.argv[2], int(sys.argv[3])))
    elif len(sys.argv) > 1 and sys.argv[1] == "--proxy":
        asyncio.run(run_proxy(int(sys.argv[2]), sys.argv[3:]))
    else:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--connections", type=int, default=8)
        parser.add_argument("--seconds", type=float, default=2.0)
        parser.add_argument("--rounds", type=int, default=3)
        args = parser.parse_args()
        asyncio.run(main(args.connections, args.seconds, args.rounds))
