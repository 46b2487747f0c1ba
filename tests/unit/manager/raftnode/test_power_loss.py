"""The leader's path under power loss: RaftNode on DiskStorage over disks that lose what was not
fsynced, many seeds (powerloss_sim.py). The leader sends its appends before its own fsync, so a
leader that loses power mid-write leaves followers holding entries it lost itself; no write
acknowledged to a client may be lost, and the history must be linearizable."""

from __future__ import annotations

import asyncio
import random

import pytest
from powerloss_sim import MEMBERS, PowerLossSim, Record

from shoal.testing.kvmodel import APPEND, KV_MODEL, KVOp, drop_unobserved_writes
from shoal.testing.lincheck import check
from shoal.testing.memfs import CrashKind

# About 0.4 s a seed (1 s with hung disks): the default run spends ~35 s here; the soak 1000 more.
DEFAULT_SEEDS = range(1, 81)
THREAD_SEEDS = range(101, 116)
HUNG_DISK_SEEDS = range(201, 216)
SOAK_SEEDS = range(1000, 2000)
RUN_TICKS = 400  # 40 s of simulated time per seed


def check_appends(seed: int, record: Record, finals: dict[str, str]) -> None:
    for key, acked in record.acked_appends.items():
        tokens = [t + ";" for t in finals[key].split(";") if t]
        assert len(tokens) == len(set(tokens)), f"seed {seed}: {key}: a write applied twice: {tokens}"
        position = {token: i for i, token in enumerate(tokens)}
        for token, _, _ in acked:
            assert token in position, f"seed {seed}: {key}: acknowledged append {token} lost"
        for token in record.refused_appends:
            assert token not in position, f"seed {seed}: {key}: refused append {token} took effect"
        ordered = sorted(acked, key=lambda a: a[2])
        for i, (earlier, _, earlier_ret) in enumerate(ordered):
            for later, later_call, _ in ordered[i + 1 :]:
                if later_call > earlier_ret:
                    assert position[earlier] < position[later], f"seed {seed}: {key}: {earlier} acked before {later}"


async def run_seed(
    seed: int, *, threads: bool = False, hung_disks: bool = False, crash: CrashKind = "power"
) -> PowerLossSim:
    sim = PowerLossSim(seed, threads=threads, hung_disks=hung_disks, crash=crash)
    await sim.run(ticks=RUN_TICKS)
    record = sim.record
    assert record.counts["ok"] > 40, f"seed {seed}: too little progress to judge: {record.counts}"
    assert record.power_cuts, f"seed {seed}: the power never went out"
    check_appends(seed, record, sim.finals)
    result = check(KV_MODEL, drop_unobserved_writes(record.history), max_explored=2_000_000)
    assert result.ok, f"seed {seed}: not linearizable; cuts {record.power_cuts}; part {result.failing_part[:40]}"
    return sim


@pytest.mark.parametrize("seed", DEFAULT_SEEDS)
async def test_power_loss_keeps_acknowledged_writes_and_linearizability(seed: int) -> None:
    await run_seed(seed)


@pytest.mark.parametrize("seed", THREAD_SEEDS)
async def test_power_loss_with_writes_in_worker_threads(seed: int) -> None:
    await run_seed(seed, threads=True)


@pytest.mark.parametrize("seed", HUNG_DISK_SEEDS)
async def test_power_loss_and_hung_disks(seed: int) -> None:
    """Disks also hang for 0.3-4 s (the leader's more often): a leader whose fsync hangs past the
    election timeout gives up; its in-doubt writes and the refused reads keep the history valid."""
    await run_seed(seed, threads=True, hung_disks=True)


@pytest.mark.soak
@pytest.mark.parametrize("seed", SOAK_SEEDS)
async def test_soak_power_loss(seed: int) -> None:
    """Each fourth seed: writes on the loop, in threads, in threads with hung disks, and torn
    writes (a random part of what was not fsynced survives the power cut)."""
    mode = seed % 4
    await run_seed(seed, threads=mode in (1, 2), hung_disks=mode == 2, crash="torn" if mode == 3 else "power")


async def test_a_leader_losing_power_between_its_send_and_its_fsync_loses_nothing_acknowledged() -> None:
    """The path in one scene: the leader's appends leave, its own write dies with the power; the
    followers keep the entry, the leader comes back without it, and the entry (in doubt for its
    client) commits under the next leader. Pins down that the leader really sends first."""
    sim = PowerLossSim(seed=7)
    rng = random.Random(0)
    try:
        for node_id in MEMBERS:
            await sim.start(node_id)
        await sim.until(lambda: sim.leader() is not None, max_ticks=100)
        for seq in (1, 2, 3):
            write = asyncio.ensure_future(sim.perform(1, seq, KVOp(APPEND, "log", f"c1.{seq};"), rng))
            await sim.until(write.done, max_ticks=50)
            assert write.result() == "ok"
        leader = sim.leader()
        assert leader is not None
        old_id = leader.node.node_id
        followers = [m for node_id, m in sim.live.items() if node_id != old_id]
        entry = leader.storage.last_index() + 1
        leader.fs.cut_after(0)  # the leader's next write call finds the power gone
        in_doubt = asyncio.ensure_future(sim.perform(1, 4, KVOp(APPEND, "log", "c1.4;"), rng))
        await sim.until(lambda: old_id not in sim.live, max_ticks=5)
        assert all(f.storage.last_index() >= entry for f in followers), "the appends did not leave first"
        sim.restart_at[old_id] = sim.ticks + 40  # down for 4 s
        await sim.until(in_doubt.done, max_ticks=60)
        assert sim.record.counts["in_doubt"] == 1
        await sim.until(lambda: old_id in sim.live, max_ticks=60)
        assert sim.record.leader_lost_unsynced == 1  # it came back without the entry it had sent
        back = sim.live[old_id]
        await sim.until(lambda: back.node.applied_index >= entry, max_ticks=100)
        for member in sim.live.values():
            assert member.state.kv.read("log") == "c1.1;c1.2;c1.3;c1.4;"
    finally:
        for node_id in list(sim.live):
            await sim.live.pop(node_id).node.stop()
