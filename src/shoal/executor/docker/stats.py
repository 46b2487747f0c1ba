"""The engine's stats JSON (types.StatsJSON) as the executor protocol's ResourceSample, so `docker
stats` on shoal shows the engine's own figures. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from shoal.executor.base import BlockIo, ResourceSample
from shoal.executor.docker.status import engine_time


def sample_from_stats(stats: Mapping[str, Any]) -> ResourceSample:
    cpu = stats.get("cpu_stats") or {}
    usage = cpu.get("cpu_usage") or {}
    throttling = cpu.get("throttling_data") or {}
    memory = stats.get("memory_stats") or {}
    pids = stats.get("pids_stats") or {}
    io = (stats.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []
    return ResourceSample(
        read_at=engine_time(stats.get("read")) or datetime.now(UTC),
        cpu_total_ns=int(usage.get("total_usage") or 0),
        cpu_percpu_ns=tuple(int(v) for v in usage.get("percpu_usage") or ()),
        cpu_user_ns=int(usage.get("usage_in_usermode") or 0),
        cpu_kernel_ns=int(usage.get("usage_in_kernelmode") or 0),
        system_cpu_ns=int(cpu.get("system_cpu_usage") or 0),
        online_cpus=int(cpu.get("online_cpus") or 0),
        periods=int(throttling.get("periods") or 0),
        throttled_periods=int(throttling.get("throttled_periods") or 0),
        throttled_ns=int(throttling.get("throttled_time") or 0),
        memory_usage=int(memory.get("usage") or 0),
        memory_max_usage=int(memory.get("max_usage") or 0),
        memory_limit=int(memory.get("limit") or 0),
        memory_stats={str(k): int(v) for k, v in (memory.get("stats") or {}).items() if isinstance(v, int)},
        pids_current=int(pids.get("current") or 0),
        pids_limit=int(pids.get("limit") or 0),
        block_io=tuple(BlockIo(int(e.get("major", 0)), int(e.get("minor", 0)), str(e.get("op", "")),
                               int(e.get("value", 0))) for e in io),
        networks={str(name): {str(k): int(v) for k, v in counters.items() if isinstance(v, int)}
                  for name, counters in (stats.get("networks") or {}).items()},
    )
