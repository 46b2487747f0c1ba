"""Real Docker Engines as the reference swarm: one dockerd per test host (testing.netns), each with its own
data root, exec root, pid file, socket, hostname and docker0 subnet, so that several can share one machine
and form a swarm over the test bridge, next to shoalds on hosts of the same kind.

Each dockerd runs inside its host's network namespace through ``nsenter --net`` (not ``ip netns exec``,
which mounts a fresh /sys without the cgroup hierarchy, and dockerd then refuses to start) and in a UTS
namespace of its own, so `docker node ls` tells the hosts apart. Never on the machine's own network: a
second engine there would share docker0 and the iptables chains with the machine's dockerd. Its iptables
rules stay inside its namespace, so the default `--iptables=true` is kept (the engine as shipped).

Faults as testing.cluster has them for shoald: kill -9, pause (SIGSTOP), resume, and the network's own
isolate/drop_share. ``destroy`` leaves nothing behind: each engine leaves its swarm (its tasks go), the
swarm's docker_gwbridge is removed, the engines stop (their managed containerd with them), then the
namespaces and the bridge go. Root only (``netns_unavailable`` gives the reason)."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

from shoal.testing.netns import Host, TestNetwork

API_VERSION = "1.41"  # what dockerd 20.10 (Debian 12's docker.io) speaks
CLUSTER_PORT = 2377
# A swarm task's image is pulled before each start unless this is set (dockerd's cluster executor); the
# test hosts reach no registry, so every start would first wait out a pull timeout (~20 s here). With it,
# the engines run the local image at once, as shoald does for an image it holds.
PREFER_LOCAL_IMAGES = {"DOCKER_SERVICE_PREFER_OFFLINE_IMAGE": "1"}
# docker0 of the i-th engine: outside 10.0.0.0/8 (the overlay pool), 172.17/16 (the machine's docker0)
# and 172.30/16 (testing.netns' bridges).
BRIDGE_RANGE = ipaddress.IPv4Network("172.29.0.0/16")


def dockerd_unavailable() -> str | None:
    """None when a private dockerd can be started here, else why not."""
    if shutil.which("dockerd") is None:
        return "dockerd not installed (apt-get install docker.io)"
    if shutil.which("nsenter") is None or shutil.which("unshare") is None:
        return "nsenter/unshare missing (apt-get install util-linux)"
    return None


def api_client(base_url: str, timeout: float = 120.0) -> docker.APIClient:
    return docker.APIClient(base_url=base_url, version=API_VERSION, timeout=timeout)


def _poll(condition: Callable[[], bool], what: str, timeout: float, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not reached within {timeout:.0f} s")
        time.sleep(interval)


@dataclass
class Dockerd:
    """A dockerd of its own under ``root`` (data, exec root, pid file, socket, log), started through
    ``prefix`` (the namespaces it runs in)."""

    root: Path
    prefix: list[str]
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"unix://{self.root / 'docker.sock'}"

    @property
    def log_path(self) -> Path:
        return self.root / "dockerd.log"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 60.0) -> None:
        if not self.prefix:
            raise ValueError("a private dockerd must run in a network namespace (prefix, e.g. "
                             "nsenter --net=/run/netns/NAME): on the host it would disturb the machine's dockerd")
        self.root.mkdir(parents=True, exist_ok=True)
        argv = [*self.prefix, "dockerd", "-H", self.base_url, "--data-root", str(self.root / "data"),
                "--exec-root", str(self.root / "exec"), "--pidfile", str(self.root / "docker.pid"), *self.extra_args]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                            start_new_session=True, env={**os.environ, **self.env})
        client = api_client(self.base_url, timeout=5)
        try:
            _poll(lambda: self._answers(client), f"dockerd on {self.base_url}", timeout)
        finally:
            client.close()

    def _answers(self, client: docker.APIClient) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"dockerd exited with {self.process.returncode}; see {self.log_path}")
        try:
            return bool(client.ping())
        except Exception:  # not up yet, whatever the client says
            return False

    def kill9(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
            self.process = None

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def leave_swarm(self) -> None:
        """Out of any swarm, its tasks gone, and without the docker_gwbridge swarm mode leaves behind."""
        client = api_client(self.base_url, timeout=60)
        try:
            with contextlib.suppress(docker.errors.APIError):
                client.leave_swarm(force=True)
            with contextlib.suppress(docker.errors.APIError):
                client.remove_network("docker_gwbridge")
        finally:
            client.close()

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.process = None
        _unmount_under(self.root)


def _unmount_under(root: Path) -> None:
    """dockerd leaves its data root mounted on itself (and anything a killed engine held): unmount what
    is under ``root``, deepest first, so the directory can be removed."""
    prefix = str(root.resolve()) + "/"
    with open("/proc/self/mountinfo") as mounts:
        points = [line.split()[4] for line in mounts]
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


@dataclass
class DockerdNode:
    host: Host
    engine: Dockerd
    client: docker.APIClient

    @property
    def name(self) -> str:
        return self.host.label

    @property
    def ip(self) -> str:
        return self.host.ip

    @property
    def alive(self) -> bool:
        return self.engine.alive


def _namespaces(host: Host) -> list[str]:
    """Run in the host's network namespace, with a hostname of its own (the node's name in the swarm)."""
    return ["nsenter", f"--net=/run/netns/{host.netns}", "unshare", "--uts", "sh", "-c",
            'hostname "$0" && exec "$@"', host.label]


def engine_for(host: Host, root: Path, index: int, extra_args: list[str] | None = None,
               env: dict[str, str] | None = None) -> Dockerd:
    """A (not yet started) dockerd for ``host`` under ``root``; ``index`` (1, 2, ...) picks its docker0
    subnet, distinct from the other engines' on this machine. Used for the reference swarm here and as
    each cluster host's local engine for shoald's docker executor."""
    bridge = list(BRIDGE_RANGE.subnets(new_prefix=24))[index]
    args = ["--bip", f"{bridge.network_address + 1}/{bridge.prefixlen}", *(extra_args or [])]
    return Dockerd(root, _namespaces(host), args, env=dict(PREFER_LOCAL_IMAGES if env is None else env))


@dataclass
class DockerdHosts:
    """Hosts d1…dN, one dockerd each; ``init`` makes the first a one-manager swarm, ``join`` adds others."""

    seed: str
    workdir: Path
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=lambda: dict(PREFER_LOCAL_IMAGES))
    network: TestNetwork = field(init=False)
    nodes: list[DockerdNode] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.network = TestNetwork(self.seed)

    def start(self, count: int) -> None:
        self.network.create()
        for index in range(1, count + 1):
            host = self.network.add_host(f"d{index}")
            engine = engine_for(host, self.workdir / host.label, index, self.extra_args, self.env)
            self.nodes.append(DockerdNode(host, engine, api_client(engine.base_url)))
        for node in self.nodes:
            node.engine.start()

    def node(self, name: str) -> DockerdNode:
        return next(node for node in self.nodes if node.name == name)

    def restart(self, node: DockerdNode) -> None:
        """Start a killed engine again (it rejoins its swarm by itself, as after a crash)."""
        node.engine.start()

    def init(self, first: DockerdNode, **spec: Any) -> None:
        first.client.init_swarm(advertise_addr=first.ip, listen_addr=f"0.0.0.0:{CLUSTER_PORT}", **spec)

    def join(self, node: DockerdNode, role: str, via: DockerdNode) -> None:
        tokens = via.client.inspect_swarm()["JoinTokens"]
        node.client.join_swarm([f"{via.ip}:{CLUSTER_PORT}"], tokens[role.capitalize()], advertise_addr=node.ip,
                               listen_addr=f"0.0.0.0:{CLUSTER_PORT}")

    def import_image(self, archive: Path, reference: str) -> None:
        """`docker import` of a root filesystem tar into every engine (no registry is reachable)."""
        repository, tag = reference.rsplit(":", 1)
        for node in self.nodes:
            node.client.import_image_from_file(str(archive), repository=repository, tag=tag)

    def destroy(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(Exception):
                self.network.reconnect(node.host)
                self.network.heal(node.host)
                if node.engine.process is not None:
                    node.engine.resume()
                if not node.alive:
                    node.engine.start()
            with contextlib.suppress(Exception):
                node.engine.leave_swarm()
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.engine.stop()
            node.client.close()
        self.network.destroy()
