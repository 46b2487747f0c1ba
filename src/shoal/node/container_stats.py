"""`docker stats` and `docker top`: an executor's readings in the JSON dockerd sends (API 1.41's
types.StatsJSON, container.ContainerTopOKBody), and the sampling loop behind the stream."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from shoal.api import errors
from shoal.executor.base import ResourceSample

Json = dict[str, Any]
INTERVAL = 1.0  # dockerd's collector reads every container once a second
ZERO_TIME = "0001-01-01T00:00:00Z"


def _time(moment: datetime | None) -> str:
    if moment is None:
        return ZERO_TIME
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _cpu(sample: ResourceSample | None) -> Json:
    if sample is None:  # the first reading of a stream has nothing before it
        return {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}
    usage: Json = {"total_usage": sample.cpu_total_ns, "usage_in_kernelmode": sample.cpu_kernel_ns,
                   "usage_in_usermode": sample.cpu_user_ns}
    if sample.cpu_percpu_ns:
        usage["percpu_usage"] = list(sample.cpu_percpu_ns)
    return {"cpu_usage": usage, "system_cpu_usage": sample.system_cpu_ns, "online_cpus": sample.online_cpus,
            "throttling_data": {"periods": sample.periods, "throttled_periods": sample.throttled_periods,
                                "throttled_time": sample.throttled_ns}}


def stats_json(name: str, container_id: str, sample: ResourceSample, previous: ResourceSample | None,
               host_memory: int) -> Json:
    """One message of GET /containers/{id}/stats. The CLI's CPU % is the change in the container's
    CPU time over the change in the host's since `previous`; with no limit (or one above the
    host's memory) the limit shown is the host's memory, as dockerd shows it."""
    limit = sample.memory_limit
    if not limit or (host_memory and limit > host_memory):
        limit = host_memory
    io = [{"major": b.major, "minor": b.minor, "op": b.op, "value": b.value} for b in sample.block_io]
    body: Json = {
        "read": _time(sample.read_at),
        "preread": _time(previous.read_at if previous else None),
        "pids_stats": {"current": sample.pids_current, **({"limit": sample.pids_limit} if sample.pids_limit else {})},
        "blkio_stats": {"io_service_bytes_recursive": io or None, "io_serviced_recursive": None,
                        "io_queue_recursive": None, "io_service_time_recursive": None,
                        "io_wait_time_recursive": None, "io_merged_recursive": None, "io_time_recursive": None,
                        "sectors_recursive": None},
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": _cpu(sample),
        "precpu_stats": _cpu(previous),
        "memory_stats": {"usage": sample.memory_usage, "max_usage": sample.memory_max_usage,
                         "stats": dict(sample.memory_stats), "limit": limit},
        "name": name,
        "id": container_id,
    }
    if sample.networks:
        body["networks"] = {interface: dict(counters) for interface, counters in sample.networks.items()}
    return body


async def stats_stream(read: Callable[[], Awaitable[ResourceSample]], shape: Callable[[ResourceSample,
                       ResourceSample | None], Json], *, stream: bool, one_shot: bool,
                       still_there: Callable[[], Awaitable[bool]]) -> AsyncIterator[Json]:
    """Readings a second apart: forever while the container runs (`stream`), else one message whose
    precpu is a second older (so the CLI's CPU % means something), or at once with `one_shot`."""
    previous: ResourceSample | None = None
    if not stream and not one_shot:
        previous = await read()
        await asyncio.sleep(INTERVAL)
    while True:
        sample = await read()
        yield shape(sample, previous)
        if not stream:
            return
        previous = sample
        await asyncio.sleep(INTERVAL)
        if not await still_there():
            return


_PID_TITLE = "PID"


def top_json(ps_output: str, pids: list[int], ps_args: str) -> Json:
    """`docker top`: the host's `ps` output cut down to the container's processes, as dockerd does
    (it runs ps on the host and keeps the rows whose PID column is one of the container's)."""
    lines = [line for line in ps_output.splitlines() if line.strip()]
    if not lines:
        raise errors.Unknown(f"Error running ps: no output for ps {ps_args}")
    titles = lines[0].split()
    if _PID_TITLE not in titles:
        raise errors.Unknown("Couldn't find PID field in ps output")
    column = titles.index(_PID_TITLE)
    wanted = set(pids)
    processes = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        if len(fields) > column and fields[column].isdigit() and int(fields[column]) in wanted:
            processes.append(fields)
    return {"Titles": titles, "Processes": processes}


_PS_ARGS = re.compile(r"[A-Za-z0-9 ,=_-]*")


async def run_ps(ps_args: str) -> str:
    """The host's `ps` with the client's arguments (dockerd's default `-ef`)."""
    if not _PS_ARGS.fullmatch(ps_args):
        raise errors.InvalidArgument(f"Error running ps: invalid arguments {ps_args!r}")
    process = await asyncio.create_subprocess_exec(
        "ps", *ps_args.split(), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    if process.returncode != 0:
        detail = err.decode(errors="replace").strip()
        raise errors.Unknown(f"Error running ps: exit status {process.returncode}: {detail}")
    return out.decode(errors="replace")
