"""Three kvserver processes (RaftNode + DiskStorage + TLS transport) under concurrent clients while
members, the leader included, are killed with SIGKILL and restarted from disk. The recorded history
must be linearizable (shoal.testing.lincheck), and no acknowledged write may be lost or reordered.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from shoal.testing.kvmodel import APPEND, GET, KV_MODEL, PUT, KVOp
from shoal.testing.kvserver import KVClient, KVProcessCluster, Outcome
from shoal.testing.lincheck import Operation, check

CLIENTS = 5
KEY_EPOCH_SECONDS = 3.0  # fresh keys every few seconds keep each key's history small to check


@dataclass
class Recorder:
    history: list[Operation[KVOp, str]] = field(default_factory=list)
    acked_appends: dict[str, list[tuple[str, int, int]]] = field(default_factory=dict)  # key -> (token, call, ret)
    failed_tokens: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=lambda: {"ok": 0, "fail": 0, "unknown": 0})

    def record(self, client: int, op: KVOp, call: int, ret: int, outcome: Outcome) -> None:
        if outcome.ok is False:
            self.counts["fail"] += 1
            if op.kind == APPEND:
                self.failed_tokens.add(op.value)
            return  # certainly took no effect: not part of the history
        if outcome.ok is None:
            self.counts["unknown"] += 1
            self.history.append(Operation(client, op, call, None, None))
            return
        self.counts["ok"] += 1
        output = "ok" if op.kind != GET else (outcome.value or "")
        self.history.append(Operation(client, op, call, ret, output))
        if op.kind == APPEND:
            self.acked_appends.setdefault(op.key, []).append((op.value, call, ret))


def _keys(epoch: int) -> tuple[list[str], list[str]]:
    return [f"log{epoch}-{i}" for i in range(2)], [f"reg{epoch}-{i}" for i in range(2)]


async def _client_loop(
    client: KVClient,
    member_ids: list[int],
    rng: random.Random,
    recorder: Recorder,
    start: float,
    stop: asyncio.Event,
) -> None:
    loop = asyncio.get_running_loop()
    n = 0
    while not stop.is_set():
        epoch = int((loop.time() - start) / KEY_EPOCH_SECONDS)
        log_keys, reg_keys = _keys(epoch)
        roll = rng.random()
        if roll < 0.4:
            op = KVOp(APPEND, rng.choice(log_keys), f"c{client.client_id}.{n};")
        elif roll < 0.55:
            op = KVOp(PUT, rng.choice(reg_keys), f"c{client.client_id}.{n}")
        else:
            op = KVOp(GET, rng.choice(log_keys + reg_keys))
        call = time.monotonic_ns()
        if op.kind == GET:  # reads go to any member, followers included
            outcome = await client.get(op.key, member=rng.choice(member_ids))
        else:
            outcome = await client.write(op.kind, op.key, op.value)
        recorder.record(client.client_id, op, call, time.monotonic_ns(), outcome)
        n += 1
        await asyncio.sleep(rng.uniform(0.0, 0.02))


async def _current_leader(cluster: KVProcessCluster, session: aiohttp.ClientSession) -> int | None:
    for node_id in cluster.running():
        status = await cluster.status(session, node_id)
        if status is not None and status.get("is_leader"):
            return node_id
    return None


async def _nemesis(
    cluster: KVProcessCluster,
    session: aiohttp.ClientSession,
    rng: random.Random,
    until: float,
    kills: list[tuple[int, bool]],
) -> None:
    """Kill -9 one member at a time (the leader every other round), restart it from disk."""
    loop = asyncio.get_running_loop()
    round_no = 0
    while loop.time() + 4.0 < until:
        await asyncio.sleep(rng.uniform(1.5, 3.0))
        leader = await _current_leader(cluster, session)
        victim = leader if round_no % 2 == 0 and leader is not None else rng.choice(cluster.ids)
        cluster.kill(victim)
        kills.append((victim, victim == leader))
        await asyncio.sleep(rng.uniform(0.2, 1.5))
        cluster.start(victim)
        round_no += 1


def _check_appends(recorder: Recorder, finals: dict[str, str]) -> None:
    for key, acked in recorder.acked_appends.items():
        tokens = [t + ";" for t in finals[key].split(";") if t]
        assert len(tokens) == len(set(tokens)), f"{key}: a write applied twice: {tokens}"
        position = {token: i for i, token in enumerate(tokens)}
        for token, _, _ in acked:
            assert token in position, f"{key}: acknowledged append {token} lost"
        for token in recorder.failed_tokens:
            assert token not in position, f"{key}: refused append {token} took effect"
        ordered = sorted(acked, key=lambda a: a[2])  # by acknowledgement
        for i, (earlier, _, earlier_ret) in enumerate(ordered):
            for later, later_call, _ in ordered[i + 1 :]:
                if later_call > earlier_ret:
                    assert position[earlier] < position[later], f"{key}: {earlier} acked before {later} began"


async def _run(tmp_path: Path, duration: float, seed: int) -> None:
    rng = random.Random(seed)
    cluster = KVProcessCluster(tmp_path, 3, tls=True, snapshot_interval=300)
    recorder = Recorder()
    kills: list[tuple[int, bool]] = []
    cluster.start_all()
    try:
        async with aiohttp.ClientSession() as session:
            await cluster.wait_for_leader(session)
            loop = asyncio.get_running_loop()
            start = loop.time()
            stop = asyncio.Event()
            clients = [
                KVClient(session, cluster.http_addrs, client_id=c, op_timeout=4.0, attempt_timeout=1.5)
                for c in range(1, CLIENTS + 1)
            ]
            workers = [
                asyncio.create_task(
                    _client_loop(c, cluster.ids, random.Random(seed * 100 + c.client_id), recorder, start, stop)
                )
                for c in clients
            ]
            await _nemesis(cluster, session, rng, start + duration, kills)
            await asyncio.sleep(max(0.0, start + duration - loop.time()))
            stop.set()
            await asyncio.gather(*workers)
            # Every member back, then one linearizable read of each log key, recorded too.
            for node_id in cluster.ids:
                if node_id not in cluster.running():
                    cluster.start(node_id)
            await cluster.wait_for_leader(session)
            reader = KVClient(session, cluster.http_addrs, client_id=CLIENTS + 1, op_timeout=10.0)
            finals: dict[str, str] = {}
            for key in sorted(recorder.acked_appends):
                call = time.monotonic_ns()
                outcome = await reader.get(key)
                assert outcome.ok, f"final read of {key} failed"
                recorder.record(reader.client_id, KVOp(GET, key), call, time.monotonic_ns(), outcome)
                finals[key] = outcome.value or ""
    finally:
        cluster.stop_all()

    print(f"history: {recorder.counts}, kills (node, was leader): {kills}")
    assert sum(1 for _, was_leader in kills if was_leader) >= 1, "the leader was never killed"
    assert recorder.counts["ok"] > 50, "too little progress to judge anything"
    _check_appends(recorder, finals)
    result = check(KV_MODEL, recorder.history)
    assert result.ok, f"not linearizable; failing part: {result.failing_part[:50]}"


async def test_history_under_kill_9_is_linearizable(tmp_path: Path) -> None:
    await _run(tmp_path, duration=25.0, seed=1)


@pytest.mark.soak
@pytest.mark.timeout(900)
async def test_soak_history_under_kill_9_is_linearizable(tmp_path: Path) -> None:
    await _run(tmp_path, duration=240.0, seed=2)
