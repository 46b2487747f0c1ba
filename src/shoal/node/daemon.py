"""`shoald`: the daemon's entry point. Flags read like dockerd's."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import ssl
import sys
from pathlib import Path

from shoal.api import errors
from shoal.base.clock import SystemClock
from shoal.engineapi.server import Runner, serve, tls_server_context
from shoal.executor.base import Executor
from shoal.executor.oci.source import ImageSource
from shoal.executor.selection import default_executor
from shoal.images.service import ImageService
from shoal.network.mesh import Mesh, MeshError
from shoal.network.mesh.factory import open_mesh
from shoal.node.backend import NodeBackend
from shoal.node.config import (
    DEFAULT_DATA_ROOT,
    DEFAULT_LISTEN_ADDR,
    DEFAULT_SOCKET,
    DaemonConfig,
    default_cert_dir,
    normalize_host,
    unauthenticated_tcp_hosts,
)
from shoal.node.engine_images import EngineImages
from shoal.node.node import Node

log = logging.getLogger("shoald")


class StartupError(Exception):
    """shoald could not start; the message says why, in one line."""


def _bool_flag(value: str) -> bool:
    """A Go-style boolean flag value: `--tls`, `--tls=true`, `--tls=false`."""
    lowered = value.strip().lower()
    if lowered in ("1", "t", "true"):
        return True
    if lowered in ("0", "f", "false"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {value!r}")


def parse_args(argv: list[str] | None = None) -> DaemonConfig:
    parser = argparse.ArgumentParser(prog="shoald", description="shoal: Docker Swarm mode, in Python")
    parser.add_argument("-H", "--host", action="append", dest="hosts",
                        help=f"daemon socket(s) to listen on (default {DEFAULT_SOCKET}; also tcp://HOST:PORT)")
    parser.add_argument("--data-root", default=DEFAULT_DATA_ROOT, help="root of persisted state")
    parser.add_argument("--executor", choices=("oci", "process", "docker"), default=None,
                        help="how tasks run: images in containers by crun/runc (oci: the default where it can "
                             "run), host processes (process: the default elsewhere) or a local dockerd (docker)")
    parser.add_argument("--docker-host", default="unix:///var/run/docker.sock",
                        help="the Docker Engine the docker executor uses")
    parser.add_argument("--log-level", "-l", default="info", choices=("debug", "info", "warn", "error", "fatal"))
    parser.add_argument("--listen-addr", default=DEFAULT_LISTEN_ADDR, help="cluster port for other nodes")
    parser.add_argument("--node-name", default="", help="hostname this node reports (default: the host's)")
    certs = default_cert_dir()
    parser.add_argument("--tls", nargs="?", const=True, type=_bool_flag, metavar="BOOL",
                        help="use TLS on TCP listeners; implied by --tlsverify. As dockerd, clients are verified "
                             "unless --tlsverify=false")
    parser.add_argument("--tlsverify", nargs="?", const=True, type=_bool_flag, metavar="BOOL",
                        help="use TLS and require client certificates signed by --tlscacert "
                             "(--tlsverify=false: TLS without client verification)")
    parser.add_argument("--tlscacert", default=str(certs / "ca.pem"), help="trust client certs signed only by this CA")
    parser.add_argument("--tlscert", default=str(certs / "cert.pem"), help="path to the TLS certificate file")
    parser.add_argument("--tlskey", default=str(certs / "key.pem"), help="path to the TLS key file")
    parser.add_argument("--repair-raft-log", action="store_true",
                        help="cut a damaged raft log at the damage and start; entries after it are lost")
    args = parser.parse_args(argv)
    tls_on = args.tlsverify is not None or bool(args.tls)
    try:
        hosts = [normalize_host(host, tls=tls_on) for host in args.hosts or [DEFAULT_SOCKET]]
    except errors.InvalidArgument as exc:
        parser.error(str(exc))
    executor, executor_reason = (args.executor, "as configured") if args.executor else default_executor()
    return DaemonConfig(
        hosts=hosts, data_root=Path(args.data_root), executor=executor, executor_reason=executor_reason,
        docker_host=args.docker_host, log_level=args.log_level, listen_addr=args.listen_addr,
        node_name=args.node_name, tls=args.tls, tls_verify=args.tlsverify, tls_ca_cert=Path(args.tlscacert),
        tls_cert=Path(args.tlscert), tls_key=Path(args.tlskey), repair_raft_log=args.repair_raft_log,
    )


def make_executor(config: DaemonConfig, images: ImageSource | None = None) -> Executor:
    """The configured executor; `images`: the node's image service, shared with the Engine API's image
    routes (default: one on <data root>/images, for the oci executor)."""
    config.executor_dir.mkdir(parents=True, exist_ok=True)
    if config.executor == "docker":
        from shoal.executor.docker import DockerExecutor

        socket_path = config.docker_host.removeprefix("unix://")
        return DockerExecutor(state_dir=config.executor_dir, socket_path=socket_path)
    if config.executor == "oci":
        from shoal.executor.oci import OciExecutor

        return OciExecutor(config.executor_dir, images or image_source(config), scope=config.instance)
    from shoal.executor.process import ProcessExecutor

    return ProcessExecutor(config.executor_dir, scope=config.instance)


def image_source(config: DaemonConfig) -> ImageService:
    """The node's image store (pulls what a task needs)."""
    return ImageService(config.data_root / "images")


async def make_mesh(config: DaemonConfig) -> Mesh | None:
    try:
        return await open_mesh(config.instance)
    except (MeshError, OSError) as exc:
        log.warning("routing mesh unavailable, published ports will not be served: %s", exc)
        return None


def api_tls_context(config: DaemonConfig) -> ssl.SSLContext | None:
    """Check the TCP listeners' settings before anything is created, and build their TLS context."""
    for host in unauthenticated_tcp_hosts(config):
        log.warning("serving the API on %s without --tlsverify gives root access on this machine to everyone "
                    "who can reach it (scripts in a browser included, even on localhost)", host)
    if not config.api_tls:
        return None
    client_ca = str(config.tls_ca_cert) if config.api_verify_clients else None
    return tls_server_context(str(config.tls_cert), str(config.tls_key), client_ca)


async def start(config: DaemonConfig) -> tuple[Node, Runner]:
    """Everything up to serving the API; any failure is a StartupError, and what was started is closed."""
    try:
        tcp_ssl = api_tls_context(config)
        config.data_root.mkdir(parents=True, exist_ok=True)
        # One image store for the node: the oci executor runs from it, the Engine API's image calls
        # fill it. The docker executor's tasks run from dockerd's store: image calls go there.
        images = image_source(config) if config.executor != "docker" else None
        node = Node(config, SystemClock(), make_executor(config, images), await make_mesh(config))
        image_calls = images or EngineImages(config.docker_host)
    except Exception as exc:
        raise StartupError(describe(exc)) from exc
    try:
        await node.start()
        runner = await serve(NodeBackend(node, image_calls), config.hosts, tcp_ssl_context=tcp_ssl)
    except BaseException as exc:
        with contextlib.suppress(Exception):
            await node.close()
        if isinstance(exc, Exception):
            raise StartupError(describe(exc)) from exc
        raise
    return node, runner


async def run(config: DaemonConfig) -> None:
    node, runner = await start(config)
    log.info("shoald listening on %s (data root %s, %s executor)", ", ".join(config.hosts), config.data_root,
             config.executor)
    log.info("executor: %s (%s)", config.executor, config.executor_reason)
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


def describe(exc: BaseException) -> str:
    """One line for a person: the error's own message (which names the way out, e.g. the WAL's
    --repair-raft-log), on one line, or the error's kind when it has no message."""
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: list[str] | None = None) -> None:
    config = parse_args(argv)
    level = {"warn": "WARNING", "fatal": "CRITICAL"}.get(config.log_level, config.log_level.upper())
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        asyncio.run(run(config))
    except KeyboardInterrupt:
        pass
    except Exception as exc:
        # A traceback helps whoever debugs shoald, not whoever runs it: only at --log-level debug.
        log.debug("shoald stopped on an error", exc_info=exc)
        if isinstance(exc, StartupError):
            print(f"shoald: failed to start daemon: {exc}", file=sys.stderr)
        else:
            print(f"shoald: {describe(exc)}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
