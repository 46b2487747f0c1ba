"""The engine's stats JSON read into the executor's ResourceSample (what `docker stats` on shoal shows
for a docker-executor task)."""

from __future__ import annotations

from shoal.executor.base import BlockIo
from shoal.executor.docker.stats import sample_from_stats

ENGINE_STATS = {
    "read": "2026-01-01T00:00:01.5Z",
    "pids_stats": {"current": 3, "limit": 100},
    "blkio_stats": {"io_service_bytes_recursive": [{"major": 8, "minor": 0, "op": "read", "value": 4096}]},
    "cpu_stats": {"cpu_usage": {"total_usage": 900, "percpu_usage": [400, 500], "usage_in_kernelmode": 100,
                                "usage_in_usermode": 800},
                  "system_cpu_usage": 123456, "online_cpus": 2,
                  "throttling_data": {"periods": 5, "throttled_periods": 1, "throttled_time": 77}},
    "memory_stats": {"usage": 2048, "max_usage": 4096, "limit": 1 << 30, "stats": {"inactive_file": 512}},
    "networks": {"eth0": {"rx_bytes": 10, "tx_bytes": 20}},
}


def test_the_engine_s_figures_come_through() -> None:
    sample = sample_from_stats(ENGINE_STATS)
    assert (sample.cpu_total_ns, sample.cpu_percpu_ns, sample.cpu_user_ns, sample.cpu_kernel_ns) == (
        900, (400, 500), 800, 100)
    assert (sample.system_cpu_ns, sample.online_cpus, sample.throttled_periods, sample.throttled_ns) == (
        123456, 2, 1, 77)
    assert (sample.memory_usage, sample.memory_max_usage, sample.memory_limit) == (2048, 4096, 1 << 30)
    assert sample.memory_stats == {"inactive_file": 512}
    assert (sample.pids_current, sample.pids_limit) == (3, 100)
    assert sample.block_io == (BlockIo(8, 0, "read", 4096),)
    assert sample.networks == {"eth0": {"rx_bytes": 10, "tx_bytes": 20}}
    assert sample.read_at.isoformat().startswith("2026-01-01T00:00:01.5")


def test_an_empty_answer_reads_as_zeros() -> None:
    sample = sample_from_stats({})
    assert sample.cpu_total_ns == 0 and sample.memory_usage == 0 and sample.networks == {}
