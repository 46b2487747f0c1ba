"""Three RaftNodes on DiskStorage over in-memory disks that lose power, under concurrent clients.

Each member's WAL lives on its own MemoryFS behind a PowerCutFS. A nemesis cuts the power of one
member (the leader more often than not), or of all three at once, either at once or at one of the
member's next few file-system calls: in the middle of a Ready's write, between the write and its
fsync, in the middle of a snapshot. A member that lost power is stopped and, after a while,
restarted from what its disk kept (a fresh RaftNode over a fresh DiskStorage on the same MemoryFS).

Time is a FakeClock moved one tick at a time by ``run``; messages go through the in-memory network
of raftnode_harness. With ``threads=False`` (the default) the driver writes on the event loop, so a
seed replays the same run; ``threads=True`` writes in worker threads as production does.

What is recorded, and checked by the test:
- every client operation with logical call/return stamps (one event loop, so the order of the
  stamps is real-time order), for the linearizability checker;
- appends acknowledged to a client, refused ones, and each key's final value;
- every entry any member ever applied at each index, to catch two members (or two incarnations of
  one) applying different entries at the same index.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from raftnode_harness import LocalNetwork

from shoal.api.errors import Unavailable
from shoal.manager.proposer import NotLeader, RaftProposer
from shoal.manager.raftnode import RaftNode, RaftNodeConfig
from shoal.manager.raftnode_storage import DiskLog
from shoal.manager.wal.crypto import DataKey, KeyRing
from shoal.manager.wal.storage import DiskStorage
from shoal.raft.errors import RaftError
from shoal.testing.clock import FakeClock
from shoal.testing.kvmodel import APPEND, GET, PUT, Command, KVOp, KVStore
from shoal.testing.lincheck import Operation
from shoal.testing.memfs import CrashKind, MemoryFS
from shoal.testing.powercut import PowerCutFS
from shoal.testing.stallfs import StallingFS

T = TypeVar("T")

TICK = 0.1
MEMBERS = (1, 2, 3)
KEY = KeyRing(DataKey(bytes(range(32))))
OP_TIMEOUT_TICKS = 40
KEY_EPOCH_TICKS = 60  # fresh keys every few seconds keep each key's history small to check
SETTLE_TURNS = 30  # event-loop turns per tick: enough for a few message round trips


class SafetyViolation(AssertionError):
    pass


class CountingExecutor(concurrent.futures.ThreadPoolExecutor):
    """The loop's default executor (what ``asyncio.to_thread`` uses), counting jobs in flight, so
    a tick can let the disk work it started finish before the clock moves on: otherwise fake time
    would race ahead of real worker threads and every write would look like a stalled disk."""

    def __init__(self) -> None:
        super().__init__(max_workers=4, thread_name_prefix="powerloss-disk")
        self._lock = threading.Lock()
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        with self._lock:
            self._in_flight += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def _done(self, _: concurrent.futures.Future[object]) -> None:
        with self._lock:
            self._in_flight -= 1


class _Refused(Exception):
    """The operation certainly took no effect."""


class _InDoubt(Exception):
    """The operation may or may not have taken effect."""


class MemberState:
    """One incarnation's state machine: the kvmodel store, reporting every applied entry."""

    def __init__(self, node_id: int, on_apply: Callable[[int, int, bytes], None]) -> None:
        self.node_id = node_id
        self.kv = KVStore()
        self._on_apply = on_apply

    def apply(self, index: int, payload: bytes) -> None:
        self._on_apply(self.node_id, index, payload)
        self.kv.apply(Command.decode(payload))

    def snapshot(self) -> bytes:
        return self.kv.encode()

    def restore(self, blob: bytes) -> None:
        self.kv = KVStore.decode(blob)


@dataclass
class Incarnation:
    node: RaftNode
    proposer: RaftProposer
    state: MemberState
    fs: PowerCutFS
    storage: DiskLog
    disk: StallingFS
    """What the WAL writes through: fsyncs that may hang, over the power switch."""


@dataclass
class Record:
    history: list[Operation[KVOp, str]] = field(default_factory=list)
    acked_appends: dict[str, list[tuple[str, int, int]]] = field(default_factory=dict)  # token, call, ret
    refused_appends: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=lambda: {"ok": 0, "refused": 0, "in_doubt": 0})
    power_cuts: list[str] = field(default_factory=list)
    leader_lost_unsynced: int = 0
    stall_stepdowns: int = 0
    """Times a leader gave up leadership because its disk hung past an election timeout."""
    """Times a leader came back without entries it had already sent (the path under test)."""


class PowerLossSim:
    def __init__(
        self,
        seed: int,
        *,
        threads: bool = False,
        snapshot_interval: int = 25,
        crash: CrashKind = "power",
        hung_disks: bool = False,
    ) -> None:
        """``hung_disks`` (needs ``threads``): the nemesis also makes a member's fsyncs hang for a
        while, the leader's more often than not."""
        assert threads or not hung_disks, "a hung fsync on the event loop would hang the simulation"
        self.seed = seed
        self.crash = crash
        self.hung_disks = hung_disks
        self.rng = random.Random(seed)
        self.threads = threads
        self.snapshot_interval = snapshot_interval
        self.clock = FakeClock()
        self.network = LocalNetwork(record=False)
        self.disks = {i: MemoryFS() for i in MEMBERS}
        self.live: dict[int, Incarnation] = {}
        self.restart_at: dict[int, int] = {}  # member -> tick at which it comes back
        self._last_before_cut: dict[int, tuple[bool, int]] = {}  # member -> (was leader, last index)
        self.applied_at: dict[int, bytes] = {}  # index -> the one entry applied there, by anyone
        self.violations: list[SafetyViolation] = []
        self.record = Record()
        self.finals: dict[str, str] = {}  # each key's value read back at the end
        self.ticks = 0
        self._stamp = 0
        self._stop = asyncio.Event()
        self.executor: CountingExecutor | None = None

    # --- members --------------------------------------------------------------------------

    async def start(self, node_id: int) -> None:
        fs = PowerCutFS(self.disks[node_id], kind=self.crash, rng=random.Random(self.rng.random()))
        disk = StallingFS(fs)  # a hung fsync waits outside the power switch, so the power can go meanwhile
        storage = DiskLog(DiskStorage.open("/data", keys=KEY, file_ops=disk))
        node = RaftNode(
            RaftNodeConfig(
                node_id=node_id,
                address=f"node{node_id}:2377",
                tick_interval=TICK,
                snapshot_interval=self.snapshot_interval,
                log_entries_for_slow_followers=5,
                fsync_in_thread=self.threads,
            ),
            storage,
            self.network.endpoint(node_id),
            clock=self.clock,
            rand=random.Random(self.rng.random()),
        )
        state = MemberState(node_id, self._check_applied)
        proposer = RaftProposer(node, snapshot=state.snapshot, restore=state.restore)
        proposer.set_apply(state.apply)
        self.live[node_id] = Incarnation(node, proposer, state, fs, storage, disk)
        was_leader, last_before = self._last_before_cut.pop(node_id, (False, 0))
        if was_leader and storage.last_index() < last_before:
            self.record.leader_lost_unsynced += 1
        await node.start(bootstrap={i: f"node{i}:2377" for i in MEMBERS})

    async def _power_off(self, node_id: int) -> None:
        """The machine is gone: its node stops at once, its disk keeps only what was fsynced."""
        member = self.live.pop(node_id, None)
        if member is None:
            return  # already out (the nemesis and a failed write can both notice)
        member.fs.cut_now()
        member.disk.release()  # a write hung in a worker thread now finds the power gone
        self.record.stall_stepdowns += member.node.stats["stall_stepdowns"]
        was_leader = member.node.status()["role"] == "LEADER"
        last_index = member.node.status()["last_index"]
        assert isinstance(last_index, int)
        self._last_before_cut[node_id] = (was_leader, last_index)
        await member.node.stop()
        self.restart_at[node_id] = self.ticks + self.rng.randint(0, 30)

    def _check_applied(self, node_id: int, index: int, payload: bytes) -> None:
        seen = self.applied_at.setdefault(index, payload)
        if seen != payload:
            violation = SafetyViolation(
                f"seed {self.seed}: member {node_id} applied {payload!r} at {index}, not {seen!r}"
            )
            self.violations.append(violation)  # kept: the driver stops the node on it, it may look like a crash
            raise violation

    def leader(self) -> Incarnation | None:
        leaders = [m for m in self.live.values() if m.proposer.is_leader()]
        return leaders[0] if len(leaders) == 1 else None

    # --- time -----------------------------------------------------------------------------

    async def tick(self) -> None:
        self.ticks += 1
        self.clock.advance(TICK)
        for node_id, member in list(self.live.items()):
            if member.node.failure is not None and not member.fs.dead:
                # The node stopped on an error of its own (its driver catches everything, a
                # safety check in the state machine included): a failed run, not a power cut.
                raise AssertionError(f"seed {self.seed}: member {node_id} failed") from member.node.failure
            if member.fs.dead:
                await self._power_off(node_id)  # its disk died under a write: the power is out
        for node_id, at in list(self.restart_at.items()):
            if at <= self.ticks:
                del self.restart_at[node_id]
                await self.start(node_id)
        for _ in range(SETTLE_TURNS):
            await asyncio.sleep(0)
        if self.executor is not None:
            deadline = time.monotonic() + 10
            # Disk work started this tick finishes within it, unless the disk is hung.
            while self.executor.in_flight > sum(m.disk.blocked for m in self.live.values()):
                assert time.monotonic() < deadline, f"seed {self.seed}: disk work never finished"
                await asyncio.sleep(0)
            for _ in range(SETTLE_TURNS):
                await asyncio.sleep(0)

    async def until(self, condition: Callable[[], bool], max_ticks: int) -> None:
        for _ in range(max_ticks):
            if condition():
                return
            await self.tick()
        raise AssertionError(f"seed {self.seed}: condition not reached within {max_ticks} ticks")

    async def _deadline(self, awaitable: Awaitable[T], ticks: int) -> T:
        task = asyncio.ensure_future(awaitable)
        timer = asyncio.ensure_future(self.clock.sleep(ticks * TICK))
        await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
        timer.cancel()
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise TimeoutError

    # --- the run --------------------------------------------------------------------------

    async def run(self, *, ticks: int, clients: int = 3) -> None:
        if self.threads:
            self.executor = CountingExecutor()
            asyncio.get_running_loop().set_default_executor(self.executor)
        for node_id in MEMBERS:
            await self.start(node_id)
        await self.until(lambda: self.leader() is not None, max_ticks=100)
        workers = [asyncio.ensure_future(self._client(c)) for c in range(1, clients + 1)]
        nemesis = asyncio.ensure_future(self._nemesis())
        try:
            for _ in range(ticks):
                await self.tick()
            self._stop.set()
            while not all(w.done() for w in workers):
                await self.tick()
            nemesis.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await nemesis
            for w in workers:
                w.result()  # a client that crashed is a failed run
            await self._heal_and_read_back(clients + 1)
            if self.violations:
                raise self.violations[0]
        finally:
            nemesis.cancel()
            for w in workers:
                w.cancel()
            for node_id in list(self.live):
                member = self.live.pop(node_id)
                self.record.stall_stepdowns += member.node.stats["stall_stepdowns"]
                member.disk.release()
                await member.node.stop()

    async def _nemesis(self) -> None:
        while True:
            await self.clock.sleep(self.rng.uniform(0.5, 3.0))
            if not self.live:
                continue
            leader = self.leader()
            roll = self.rng.random()
            if roll < 0.1:
                self.record.power_cuts.append(f"t{self.ticks}: all")
                for node_id in list(self.live):
                    await self._power_off(node_id)
                continue
            victim = leader.node.node_id if leader and self.rng.random() < 0.6 else self.rng.choice(list(self.live))
            was_leader = leader is not None and victim == leader.node.node_id
            tag = f"t{self.ticks}: {victim}{'(leader)' if was_leader else ''}"
            if self.hung_disks and roll > 0.7:
                await self._hang_disk(victim, tag)
            elif roll < 0.6:
                calls = self.rng.randint(0, 4)
                self.live[victim].fs.cut_after(calls)  # dies inside one of its next writes
                self.record.power_cuts.append(f"{tag} at its write call +{calls}")
            else:
                self.record.power_cuts.append(f"{tag} now")
                await self._power_off(victim)

    async def _hang_disk(self, victim: int, tag: str) -> None:
        member = self.live[victim]
        seconds = self.rng.uniform(0.3, 4.0)  # below and well past the 1 s election timeout
        self.record.power_cuts.append(f"{tag} disk hangs {seconds:.1f}s")
        member.disk.stall()
        try:
            await self.clock.sleep(seconds)
        finally:  # the run may end meanwhile: the healed cluster has working disks
            member.disk.release()

    # --- clients --------------------------------------------------------------------------

    def _stamp_now(self) -> int:
        self._stamp += 1
        return self._stamp

    def _keys(self) -> tuple[list[str], list[str]]:
        epoch = self.ticks // KEY_EPOCH_TICKS
        return [f"log{epoch}-{i}" for i in range(2)], [f"reg{epoch}-{i}" for i in range(2)]

    async def _client(self, client: int) -> None:
        rng = random.Random(self.seed * 1000 + client)
        seq = 0
        while not self._stop.is_set():
            seq += 1
            logs, regs = self._keys()
            roll = rng.random()
            if roll < 0.45:
                op = KVOp(APPEND, rng.choice(logs), f"c{client}.{seq};")
            elif roll < 0.6:
                op = KVOp(PUT, rng.choice(regs), f"c{client}.{seq}")
            else:
                op = KVOp(GET, rng.choice(logs + regs))
            await self.perform(client, seq, op, rng)
            await self.clock.sleep(rng.choice([0.0, TICK, TICK, 2 * TICK]))

    async def perform(self, client: int, seq: int, op: KVOp, rng: random.Random) -> str | None:
        call = self._stamp_now()
        try:
            output = await (self._read(op, rng) if op.kind == GET else self._write(Command(client, seq, op)))
        except _Refused:
            self.record.counts["refused"] += 1
            if op.kind == APPEND:
                self.record.refused_appends.add(op.value)
            await self.clock.sleep(TICK)  # no leader or a dead member: try again later
            return None
        except _InDoubt:
            self.record.counts["in_doubt"] += 1
            self.record.history.append(Operation(client, op, call, None, None))
            return None
        ret = self._stamp_now()
        self.record.counts["ok"] += 1
        self.record.history.append(Operation(client, op, call, ret, output))
        if op.kind == APPEND:
            self.record.acked_appends.setdefault(op.key, []).append((op.value, call, ret))
        return output

    async def _write(self, command: Command) -> str:
        leader = self.leader()
        if leader is None:
            raise _Refused
        try:
            await self._deadline(leader.proposer.propose(command.encode()), OP_TIMEOUT_TICKS)
        except NotLeader as exc:  # never appended
            raise _Refused from exc
        except (Unavailable, RaftError, TimeoutError) as exc:  # appended, then the leader was lost
            raise _InDoubt from exc
        return "ok"

    async def _read(self, op: KVOp, rng: random.Random, member: Incarnation | None = None) -> str:
        """A linearizable read on any live member, followers included: read-index, then local."""
        member = member or (rng.choice(list(self.live.values())) if self.live else None)
        if member is None:
            raise _Refused
        try:
            await self._deadline(member.node.read_index(), OP_TIMEOUT_TICKS)
        except (Unavailable, RaftError, TimeoutError) as exc:
            raise _Refused from exc  # a read that failed had no effect
        return member.state.kv.read(op.key)

    # --- the end --------------------------------------------------------------------------

    async def _heal_and_read_back(self, reader: int) -> None:
        """Every member back up; one final linearizable read of each key (recorded too); then all
        members must reach the same applied index with the same state."""
        for node_id in list(self.restart_at):
            del self.restart_at[node_id]
            await self.start(node_id)
        rng = random.Random(self.seed)
        for key in sorted({op.input.key for op in self.record.history}):
            self.finals[key] = await self._final_read(reader, key, rng)

        def converged() -> bool:
            leader = self.leader()
            return leader is not None and len({m.node.applied_index for m in self.live.values()}) == 1

        await self.until(converged, max_ticks=300)
        states = {node_id: m.state.kv.encode() for node_id, m in self.live.items()}
        if len(set(states.values())) != 1:
            raise SafetyViolation(f"seed {self.seed}: members applied the same index but hold different states")

    async def _final_read(self, reader: int, key: str, rng: random.Random) -> str:
        op = KVOp(GET, key)
        for _ in range(300):
            leader = self.leader()
            if leader is not None:
                call = self._stamp_now()
                try:
                    value = await self._read(op, rng, leader)
                except _Refused:
                    pass
                else:
                    self.record.history.append(Operation(reader, op, call, self._stamp_now(), value))
                    return value
            await self.tick()
        raise AssertionError(f"seed {self.seed}: no final read of {key}")
