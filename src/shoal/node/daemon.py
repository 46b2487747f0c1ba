"""`shoald`: the daemon's entry point. Flags read like dockerd's."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from shoal.base.clock import SystemClock
from shoal.engineapi.server import serve
from shoal.executor.base import Executor
from shoal.network.mesh import Mesh, MeshError
from shoal.network.mesh.factory import open_mesh
from shoal.node.backend import NodeBackend
from shoal.node.config import DEFAULT_DATA_ROOT, DEFAULT_LISTEN_ADDR, DEFAULT_SOCKET, DaemonConfig
from shoal.node.node import Node

log = logging.getLogger("shoald")


def parse_args(argv: list[str] | None = None) -> DaemonConfig:
    parser = argparse.ArgumentParser(prog="shoald", description="shoal: Docker Swarm mode, in Python")
    parser.add_argument("-H", "--host", action="append", dest="hosts",
                        help=f"daemon socket(s) to listen on (default {DEFAULT_SOCKET}; also tcp://HOST:PORT)")
    parser.add_argument("--data-root", default=DEFAULT_DATA_ROOT, help="root of persisted state")
    parser.add_argument("--executor", choices=("process", "docker"), default="process",
                        help="how tasks run: host processes (default) or containers on a local dockerd")
    parser.add_argument("--docker-host", default="unix:///var/run/docker.sock",
                        help="the Docker Engine the docker executor uses")
    parser.add_argument("--log-level", "-l", default="info", choices=("debug", "info", "warn", "error", "fatal"))
    parser.add_argument("--listen-addr", default=DEFAULT_LISTEN_ADDR, help="cluster port for other nodes")
    parser.add_argument("--node-name", default="", help="hostname this node reports (default: the host's)")
    args = parser.parse_args(argv)
    return DaemonConfig(
        hosts=args.hosts or [DEFAULT_SOCKET], data_root=Path(args.data_root), executor=args.executor,
        docker_host=args.docker_host, log_level=args.log_level, listen_addr=args.listen_addr,
        node_name=args.node_name,
    )


def make_executor(config: DaemonConfig) -> Executor:
    config.executor_dir.mkdir(parents=True, exist_ok=True)
    if config.executor == "docker":
        from shoal.executor.docker import DockerExecutor

        socket_path = config.docker_host.removeprefix("unix://")
        return DockerExecutor(state_dir=config.executor_dir, socket_path=socket_path)
    from shoal.executor.process import ProcessExecutor

    return ProcessExecutor(config.executor_dir, scope=config.instance)


async def make_mesh(config: DaemonConfig) -> Mesh | None:
    try:
        return await open_mesh(config.instance)
    except (MeshError, OSError) as exc:
        log.warning("routing mesh unavailable, published ports will not be served: %s", exc)
        return None


async def run(config: DaemonConfig) -> None:
    config.data_root.mkdir(parents=True, exist_ok=True)
    node = Node(config, SystemClock(), make_executor(config), await make_mesh(config))
    await node.start()
    runner = await serve(NodeBackend(node), config.hosts)
    log.info("shoald listening on %s (data root %s, %s executor)", ", ".join(config.hosts), config.data_root,
             config.executor)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("shutting down; tasks keep running")
        await runner.close()
        await node.close()


def main(argv: list[str] | None = None) -> None:
    config = parse_args(argv)
    level = {"warn": "WARNING", "fatal": "CRITICAL"}.get(config.log_level, config.log_level.upper())
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(config))


if __name__ == "__main__":
    main()
