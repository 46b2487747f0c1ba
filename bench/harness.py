"""What every shoal-against-reference benchmark shares, so both sides are timed the same way.

- One client for both sides: docker-py's low-level APIClient at API 1.41, in this process.
- One way to wait: `poll_until` checks a condition every POLL_S seconds on both sides; a measurement is
  the time from just before the request to the first poll that sees the condition.
- Interleaved rounds: the caller alternates the two sides inside each round, so load from the rest of
  the machine falls on both alike and the i-th runs of each side form a pair.
- `ratio_table` prints reference / shoal from the script itself: the median of each side with its
  spread (min-max), the ratio of the medians and the spread of the per-pair ratios.
- The two systems under test: `Shoald` (a shoald on a private socket and data root, swarm initialised)
  and `DockerdSwarm` (a Docker Engine put in swarm mode for the run and taken out after). `dockerd()`
  starts an engine of its own (own roots and socket) inside a network namespace, for benchmarks that
  need one engine per host (shoal.testing.dockerd_hosts, which also builds whole swarms of them).
- `LoadSampler` records the machine's load average during the run, to print beside the figures.

Scripts in bench/ import this as `harness` (python puts the script's directory on sys.path)."""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import docker

from shoal.testing.daemon import ShoalDaemon
from shoal.testing.dockerd_hosts import Dockerd

API_VERSION = "1.41"  # what dockerd 20.10 (Debian 12's docker.io) speaks; shoal speaks it too
POLL_S = 0.02
TIMEOUT_S = 300.0
SYSTEM_DOCKERD = "unix:///var/run/docker.sock"


def api_client(base_url: str, timeout: float = 120.0) -> docker.APIClient:
    return docker.APIClient(base_url=base_url, version=API_VERSION, timeout=timeout)


def poll_until(condition: Callable[[], bool], what: str, interval: float = POLL_S,
               timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not reached within {timeout:.0f} s")
        time.sleep(interval)


def time_until(request: Callable[[], Any], condition: Callable[[], bool], what: str,
               interval: float = POLL_S, timeout: float = TIMEOUT_S) -> float:
    """Seconds from just before `request` to the first poll that finds `condition` true."""
    started = time.perf_counter()
    request()
    poll_until(condition, what, interval, timeout)
    return time.perf_counter() - started


# --- statistics and the ratio table -------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        if not values:
            raise ValueError("no samples")
        return cls(statistics.median(values), min(values), max(values))

    def show(self, digits: int = 2) -> str:
        return f"{self.median:.{digits}f} ({self.low:.{digits}f}-{self.high:.{digits}f})"


@dataclass(frozen=True)
class Comparison:
    """One row: the same measure on the reference and on shoal, runs paired by round."""

    label: str
    reference: list[float]
    shoal: list[float]

    @property
    def ratio_of_medians(self) -> float:
        return statistics.median(self.reference) / statistics.median(self.shoal)

    @property
    def paired_ratios(self) -> Spread:
        return Spread.of([ref / ours for ref, ours in zip(self.reference, self.shoal, strict=False)])


def ratio_table(rows: list[Comparison], reference_name: str, unit: str = "s") -> str:
    """Markdown: medians with min-max, ratio = reference / shoal (above 1: shoal is faster)."""
    lines = [f"| measure | shoal, {unit} | {reference_name}, {unit} | ratio of medians | per-round ratios |",
             "|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row.label} | {Spread.of(row.shoal).show()} | {Spread.of(row.reference).show()} | "
                     f"**{row.ratio_of_medians:.2f}** | {row.paired_ratios.show()} |")
    return "\n".join(lines)


class LoadSampler:
    """The 1-minute load average, sampled every few seconds in a thread while the run lasts."""

    def __init__(self, every_s: float = 5.0) -> None:
        self.every_s = every_s
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            if self._stop.wait(self.every_s):
                return

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        spread = Spread.of(self.samples or [os.getloadavg()[0]])
        return f"load average (1 min) during the run: median {spread.median:.1f}, {spread.low:.1f}-{spread.high:.1f}"


# --- services, the same request on both sides ---------------------------------------------------------


def create_service(client: docker.APIClient, name: str, image: str, command: list[str], replicas: int) -> str:
    """POST /services/create with a plain spec. Through the API at 1.41 neither daemon resolves the image
    to a digest (the CLI's default does it client-side; the API leaves it to the caller), so this is the
    CLI's `--no-resolve-image` on both sides; `check_unresolved` verifies it."""
    template = docker.types.TaskTemplate(docker.types.ContainerSpec(image, command, stop_grace_period=1))
    created = client.create_service(template, name=name, mode=docker.types.ServiceMode("replicated", replicas=replicas))
    return str(created["ID"])


def check_unresolved(client: docker.APIClient, service_id: str, image: str) -> None:
    found = client.inspect_service(service_id)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    if found != image:
        raise RuntimeError(f"the daemon changed the image to {found!r}: the sides would not be doing the same work")


def running_tasks(client: docker.APIClient, service_id: str) -> int:
    """ServiceStatus.RunningTasks (API 1.41): tasks desired running and running, counted by the daemon."""
    response = client._get(client._url("/services"),
                           params={"status": True, "filters": json.dumps({"id": [service_id]})})
    services = client._result(response, True)
    return int(services[0]["ServiceStatus"]["RunningTasks"]) if services else 0


def remove_service(client: docker.APIClient, engine: docker.APIClient, service_id: str) -> None:
    """Remove and wait until the engine holds no container of it, so the next run starts clean."""
    client.remove_service(service_id)
    label = f"com.docker.swarm.service.id={service_id}"
    poll_until(lambda: not engine.containers(all=True, filters={"label": label}),
               f"containers of service {service_id} removed", interval=0.2)


# --- the systems under test ---------------------------------------------------------------------------


class Shoald:
    """A shoald on a private socket and data root with a one-node swarm, for the length of a `with`."""

    def __init__(self, executor: str = "process", extra_args: list[str] | None = None,
                 listen_addr: str = "0.0.0.0:2377") -> None:
        self.listen_addr = listen_addr
        self._workdir = tempfile.TemporaryDirectory(prefix="shoal-bench-")
        self.daemon = ShoalDaemon(Path(self._workdir.name), executor=executor, extra_args=extra_args or [])
        self.client = api_client(self.daemon.docker_host)

    @property
    def base_url(self) -> str:
        return self.daemon.docker_host

    def __enter__(self) -> Shoald:
        self.daemon.start()
        self.client.init_swarm(advertise_addr="127.0.0.1", listen_addr=self.listen_addr)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        try:
            self.daemon.leave_and_stop()
        finally:
            self.client.close()
            self._workdir.cleanup()


class DockerdSwarm:
    """A running Docker Engine in swarm mode for the length of a `with`: refuses an engine already in a
    swarm (it is someone else's), inits one on `listen_addr`, and leaves it afterwards."""

    def __init__(self, base_url: str = SYSTEM_DOCKERD, advertise_addr: str = "127.0.0.1",
                 listen_addr: str = "0.0.0.0:2377") -> None:
        self.base_url = base_url
        self.advertise_addr = advertise_addr
        self.listen_addr = listen_addr
        self.client = api_client(base_url)

    def __enter__(self) -> DockerdSwarm:
        state = self.client.info()["Swarm"]["LocalNodeState"]
        if state != "inactive":
            raise SystemExit(f"the engine at {self.base_url} is already in a swarm ({state}); this benchmark "
                             "makes its own: leave it first")
        self.client.init_swarm(advertise_addr=self.advertise_addr, listen_addr=self.listen_addr)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.client.leave_swarm(force=True)
            # Swarm mode leaves docker_gwbridge behind on the default bridge's subnet; its route then
            # shadows docker0 and containers on the machine's engine become unreachable.
            with contextlib.suppress(Exception):
                self.client.remove_network("docker_gwbridge")
        finally:
            self.client.close()


@contextmanager
def dockerd(root: Path, prefix: list[str], extra_args: list[str] | None = None) -> Iterator[Dockerd]:
    engine = Dockerd(root, prefix, extra_args or [])
    engine.start()
    try:
        yield engine
    finally:
        engine.stop()
