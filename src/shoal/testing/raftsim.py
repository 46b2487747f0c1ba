"""A deterministic, fault-injecting simulation of a raft group running a key-value store.

One seed fixes everything: cluster size, fault schedule, message fates, client workload
and every node's election timeouts, so a failing seed replays exactly::

    python -m shoal.testing.raftsim --seed 42          # one seed, verbose on failure
    python -m shoal.testing.raftsim --seeds 25000      # soak: seeds 0..24999, per-seed averages
    python -m shoal.testing.raftsim --mutations        # is every known raft bug caught?

The driver around each node follows the contract of ``RawNode``: persist the Ready,
fsync when ``must_sync``, only then send its messages, apply, advance. Storage is a
``FaultyStorage``: writes reach its durable copy only at a sync, and a crash throws the
rest away. Faults: message drop, delay (thus reordering), duplication, partitions,
process pauses and slow clocks, crashes and restarts, forced leader loss, leader
transfers and membership changes (in bursts, followed by partitions). Power losses also
strike at the moments raft's safety hinges on: right after a vote leaves, as a leader is
elected, right after a new leader's first commit; messages still in the host's buffers
die with it. After the fault phase the network heals and every node restarts; the group
must then make progress within a bounded time.

Checked while running: election safety (one leader per term), one granted vote per
voter and term (across crashes), state-machine safety (no two nodes apply different
entries at one index), leader completeness, monotonic commit/apply per incarnation,
log matching, liveness after healing, and finally linearizability of the clients'
history with ``lincheck`` (a client retries a write that timed out as the same command).
"""

from __future__ import annotations

import argparse
import contextlib
import enum
import heapq
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from shoal.raft.config import Config
from shoal.raft.errors import ConfChangeRefused, ProposalDropped, RaftError
from shoal.raft.rawnode import RawNode
from shoal.raft.storage import MemoryStorage
from shoal.raft.types import (
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    Ready,
    Role,
    Snapshot,
)
from shoal.testing.kvmodel import (
    APPEND,
    GET,
    KV_MODEL,
    PUT,
    Command,
    KVOp,
    KVStore,
    drop_unobserved_writes,
)
from shoal.testing.lincheck import Operation, check

TICK_STEPS = 4
"""Simulated steps per raft tick; typical message latency is a fraction of a tick."""

LINCHECK_BUDGET = 2_000_000
"""Search steps after which the linearizability check gives up (and the seed fails)."""

PROBE_CLIENT = 0
"""Client id of the liveness probe writes proposed after healing."""


class SimulationFailure(AssertionError):
    def __init__(self, seed: int, step: int, message: str) -> None:
        self.seed = seed
        self.step = step
        super().__init__(f"seed={seed} step={step}: {message}\n  replay: python -m shoal.testing.raftsim --seed {seed}")


class NullLogger:
    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        pass


class TraceLogger:
    """Raft's own log lines, interleaved with the simulation's trace (verbose replays)."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim

    def info(self, msg: str) -> None:
        self.sim.log(f"raft {msg}")

    def warning(self, msg: str) -> None:
        self.sim.log(f"raft WARN {msg}")


# --- storage that loses what was not synced ----------------------------------------------


class FaultyStorage:
    """Storage whose writes become durable only at ``sync``; ``crash`` loses the rest.

    Reads see every write (as a process sees its own page cache); the durable copy is
    what a restarted process would find on disk.
    """

    def __init__(self) -> None:
        self.live = MemoryStorage()
        self.durable = MemoryStorage()
        self._pending: list[Callable[[MemoryStorage], None]] = []

    # Storage protocol (reads)
    def initial_state(self) -> tuple[HardState, ConfState]:
        return self.live.initial_state()

    def entries(self, lo: int, hi: int, max_size: int | None = None) -> list[Entry]:
        return self.live.entries(lo, hi, max_size)

    def term(self, index: int) -> int:
        return self.live.term(index)

    def first_index(self) -> int:
        return self.live.first_index()

    def last_index(self) -> int:
        return self.live.last_index()

    def snapshot(self) -> Snapshot:
        return self.live.snapshot()

    # writes
    def _write(self, op: Callable[[MemoryStorage], None]) -> None:
        op(self.live)
        self._pending.append(op)

    def set_hard_state(self, hs: HardState) -> None:
        self._write(lambda s: s.set_hard_state(hs))

    def append(self, entries: list[Entry]) -> None:
        self._write(lambda s: s.append(entries))

    def apply_snapshot(self, snap: Snapshot) -> None:
        self._write(lambda s: s.apply_snapshot(snap))

    def snapshot_and_compact(self, index: int, conf: ConfState, data: bytes, compact_to: int) -> None:
        def op(s: MemoryStorage) -> None:
            s.create_snapshot(index, conf, data)
            if compact_to > s.first_index() - 1:
                s.compact(compact_to)

        self._write(op)

    def sync(self) -> None:
        for op in self._pending:
            op(self.durable)
        self._pending = []

    def crash(self) -> None:
        self._pending = []
        self.live = self.durable.clone()


# --- clients and history -----------------------------------------------------------------


@dataclass
class PendingRequest:
    client: int
    seq: int
    op: KVOp
    node: int
    call: int
    deadline: int


@dataclass
class SimClient:
    id: int
    seq: int = 0
    pending: PendingRequest | None = None
    believed_leader: int = 0
    # A write that timed out: retried (same command, so applied at most once) until answered.
    unresolved: PendingRequest | None = None


# --- one member -------------------------------------------------------------------------


@dataclass
class SimNode:
    id: int
    storage: FaultyStorage
    raw: RawNode
    kv: KVStore
    applied: int
    up: bool = True
    restart_at: int = 0  # step at which a crashed node comes back
    incarnation: int = 0
    tick_phase: int = 0
    # A paused process (GC, stopped VM, overloaded host) neither ticks nor reads its socket.
    paused_until: int = 0
    # A slow clock: only every ``clock_divisor``-th tick reaches raft (until ``slow_until``).
    clock_divisor: int = 1
    slow_until: int = 0
    ticks_seen: int = 0
    # (client, seq) of requests this node must answer once applied / read
    waiting_writes: dict[tuple[int, int], PendingRequest] = field(default_factory=dict)
    waiting_reads: dict[bytes, PendingRequest] = field(default_factory=dict)
    ready_reads: list[tuple[int, PendingRequest]] = field(default_factory=list)
    last_commit: int = 0
    last_term: int = 0
    committed_as_leader_in: int = 0  # last term in which this node committed as leader
    probes_applied: set[int] = field(default_factory=set)


@dataclass
class Scenario:
    """Everything a seed decides up front."""

    nodes: int
    fault_ticks: int
    heal_ticks: int
    clients: int
    keys: tuple[str, ...]
    drop_rate: float
    dup_rate: float
    long_delay_rate: float
    crash_rate: float
    leader_fault_rate: float  # the leader crashes or is cut off, forcing an election
    down_ticks: int  # a crashed node restarts within this many ticks
    vote_crash_rate: float  # power loss right after a node sent a granted vote
    elected_crash_rate: float  # power loss as a node becomes leader
    leader_crash_rate: float  # power loss right after a leader commits
    first_commit_crash_rate: float  # power loss right after a new leader's first commit
    partition_rate: float
    partition_heal_rate: float
    transfer_rate: float
    conf_change_rate: float
    conf_burst_rate: float  # a second change proposed right after the first
    pause_rate: float  # process pauses and clock slow-downs, each at this rate
    background_sync_rate: float  # unforced flushes (an OS writing back dirty pages)
    snapshot_every: int
    op_rate: float  # chance per step that an idle client starts an operation
    election_tick: int
    pre_vote: bool
    check_quorum: bool

    @classmethod
    def from_seed(cls, seed: int, rng: random.Random) -> Scenario:
        pre_vote = rng.random() < 0.9
        return cls(
            nodes=3 if seed % 2 == 0 else 5,
            fault_ticks=rng.randint(150, 300),
            # Without pre-vote, nodes with stale logs keep bumping the term and can delay an
            # election for several rounds (a known raft weakness), so allow more time.
            heal_ticks=60 if pre_vote else 200,
            clients=rng.randint(3, 6),
            keys=("a", "b", "c")[: rng.randint(1, 3)],
            drop_rate=rng.choice([0.0, 0.02, 0.1]),
            dup_rate=rng.choice([0.0, 0.02, 0.05]),
            long_delay_rate=rng.choice([0.0, 0.02, 0.05]),
            crash_rate=rng.choice([0.0, 0.01, 0.02, 0.04]),
            leader_fault_rate=rng.choice([0.0, 0.005, 0.01, 0.02]),
            down_ticks=rng.choice([2, 10, 40]),
            vote_crash_rate=rng.choice([0.0, 0.2, 0.5]),
            elected_crash_rate=rng.choice([0.1, 0.3, 0.5]),
            leader_crash_rate=rng.choice([0.0, 0.01, 0.05]),
            first_commit_crash_rate=rng.choice([0.3, 0.6]),
            partition_rate=rng.choice([0.0, 0.01, 0.02, 0.04]),
            partition_heal_rate=rng.choice([0.005, 0.01, 0.03]),
            transfer_rate=rng.choice([0.0, 0.005, 0.02]),
            conf_change_rate=rng.choice([0.0, 0.01, 0.03]),
            conf_burst_rate=rng.choice([0.3, 1.0]),
            pause_rate=rng.choice([0.0, 0.005, 0.02]),
            background_sync_rate=rng.choice([0.0, 0.0, 0.05, 0.2]),
            snapshot_every=rng.choice([4, 8, 1000]),
            op_rate=rng.choice([0.15, 0.3, 0.5]),
            # Short election timeouts pack more elections into a run; 10 is the default.
            election_tick=rng.choice([3, 3, 5, 10]),
            pre_vote=pre_vote,
            check_quorum=rng.random() < 0.8,
        )


class PowerLoss(enum.Enum):
    BEFORE_SEND = "before-send"
    AFTER_VOTE = "after-vote"
    AFTER_APPLY = "after-apply"


@dataclass(order=True)
class InFlight:
    due: int
    order: float
    msg: Message = field(compare=False)
    sent: int = field(default=-1, compare=False)


class Simulation:
    def __init__(self, seed: int, verbose: bool = False) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.verbose = verbose
        self.sc = Scenario.from_seed(seed, self.rng)
        self.step = 0
        self.event_clock = 0
        self.nodes: dict[int, SimNode] = {}
        self.next_node_id = 1
        self.in_flight: list[InFlight] = []
        # (sender, target, snapshot ok / None for "unreachable") to report to the sender
        self.feedback: list[tuple[int, int, bool | None]] = []
        self.partition: dict[int, int] = {}  # node -> side; empty means healed
        self.faults_on = True
        self.clients = [SimClient(i + 1) for i in range(self.sc.clients)]
        self.history: list[Operation[KVOp, str]] = []
        # invariant bookkeeping
        self.leader_of_term: dict[int, int] = {}
        self.vote_of: dict[tuple[int, int], int] = {}
        self.committed: dict[int, tuple[int, int, bytes]] = {}  # index -> (term, type, data)
        self.commit_term_bound: dict[int, int] = {}
        self.durable_term: dict[int, int] = {}
        self.removed: set[int] = set()
        self.probe_seq = 0
        self.trace: list[str] = []
        self.stats_crashes = 0
        self.stats_snapshots = 0
        self.log(f"scenario {self.sc}")
        founders = list(range(1, self.sc.nodes + 1))
        self.next_node_id = self.sc.nodes + 1
        for node_id in founders:
            self._create_node(node_id, bootstrap=founders)
        # As after `swarm init`: the first member does not wait for a timeout.
        self.nodes[1].raw.campaign()
        self.process_ready(self.nodes[1])

    # --- helpers ---------------------------------------------------------------------

    def fail(self, message: str) -> SimulationFailure:
        return SimulationFailure(self.seed, self.step, message)

    def log(self, text: str) -> None:
        if self.verbose:
            self.trace.append(f"[{self.step:5d}] {text}")

    def tick_event(self) -> int:
        self.event_clock += 1
        return self.event_clock

    def up_nodes(self) -> list[SimNode]:
        return [n for n in self.nodes.values() if n.up]

    def leaders(self) -> list[SimNode]:
        return [n for n in self.up_nodes() if n.raw.is_leader()]

    # --- node lifecycle --------------------------------------------------------------

    def _raft_config(self, node_id: int, storage: FaultyStorage, applied: int, incarnation: int) -> Config:
        return Config(
            id=node_id,
            storage=storage,
            election_tick=self.sc.election_tick,
            heartbeat_tick=1,
            applied=applied,
            max_size_per_msg=self.rng.choice([None, 200, 1000]),
            max_entries_per_msg=self.rng.choice([None, 1, 1, 1, 3]),
            max_inflight_msgs=self.rng.choice([1, 4, 256]),
            pre_vote=self.sc.pre_vote,
            check_quorum=self.sc.check_quorum,
            rand=random.Random(self.seed * 1_000_003 + node_id * 1009 + incarnation),
            logger=TraceLogger(self) if self.verbose else NullLogger(),
        )

    def _create_node(self, node_id: int, bootstrap: list[int] | None) -> SimNode:
        storage = FaultyStorage()
        raw = RawNode(self._raft_config(node_id, storage, 0, 0))
        if bootstrap is not None:
            raw.bootstrap(bootstrap)
        node = SimNode(node_id, storage, raw, KVStore(), 0, tick_phase=self.rng.randrange(TICK_STEPS))
        self.nodes[node_id] = node
        self.process_ready(node)
        return node

    def crash(self, node: SimNode) -> None:
        self.log(f"crash {node.id}")
        node.up = False
        node.restart_at = self.step + self.rng.randint(1, self.sc.down_ticks) * TICK_STEPS
        self.stats_crashes += 1
        node.storage.crash()
        node.waiting_writes.clear()
        node.waiting_reads.clear()
        node.ready_reads.clear()

    def restart(self, node: SimNode) -> None:
        node.incarnation += 1
        hs, _ = node.storage.initial_state()
        if hs.term < self.durable_term.get(node.id, 0):
            raise self.fail(f"node {node.id} restarted with term {hs.term} below a durable term")
        snap = node.storage.snapshot()
        applied = snap.metadata.index
        node.raw = RawNode(self._raft_config(node.id, node.storage, applied, node.incarnation))
        node.kv = KVStore.decode(snap.data)
        node.applied = applied
        node.last_commit = hs.commit
        node.last_term = hs.term
        node.up = True
        self.log(f"restart {node.id} (term {hs.term}, commit {hs.commit}, snapshot {applied})")
        self.process_ready(node)

    # --- the driver loop of one node --------------------------------------------------

    def process_ready(self, node: SimNode) -> None:
        while node.up and node.raw.has_ready():
            rd = node.raw.ready()
            self._persist(node, rd)
            self._check_ready(node, rd)
            loss = self._power_loss_point(node, rd)
            if loss is PowerLoss.BEFORE_SEND:
                self.crash(node)
                self._lose_unsent(node)
                return
            for m in rd.messages:
                self.send(m)
            if loss is PowerLoss.AFTER_VOTE:
                self.crash(node)
                node.restart_at = self.step + 1  # back at once, while the election is still on
                return
            for entry in rd.committed_entries:
                self._apply(node, entry)
            node.raw.advance(rd)
            if loss is PowerLoss.AFTER_APPLY:
                self.crash(node)
                self._lose_unsent(node)
                return
            for rs in rd.read_states:
                request = node.waiting_reads.pop(rs.request_ctx, None)
                if request is not None:
                    node.ready_reads.append((rs.index, request))
            self._serve_reads(node)
            self._maybe_snapshot(node)

    def _persist(self, node: SimNode, rd: Ready) -> None:
        storage = node.storage
        if rd.snapshot is not None:
            self.stats_snapshots += 1
            storage.apply_snapshot(rd.snapshot)
            node.kv = KVStore.decode(rd.snapshot.data)
            node.applied = rd.snapshot.metadata.index
        if rd.entries:
            storage.append(list(rd.entries))
        if rd.hard_state is not None:
            storage.set_hard_state(rd.hard_state)
        # The fsync a driver must do before sending; sometimes the OS flushes anyway.
        if rd.must_sync or self.rng.random() < self.sc.background_sync_rate:
            storage.sync()
            self.durable_term[node.id] = storage.durable.initial_state()[0].term

    def _lose_unsent(self, node: SimNode) -> None:
        """Messages sent in this very step were still in the dying host's buffers."""
        kept = [f for f in self.in_flight if f.msg.frm != node.id or f.sent != self.step]
        if len(kept) != len(self.in_flight):
            self.in_flight = kept
            heapq.heapify(self.in_flight)

    def _power_loss_point(self, node: SimNode, rd: Ready) -> PowerLoss | None:
        """Power loss at the moments raft's safety hinges on; what was not synced is lost.

        Right after a vote leaves (a lost vote lets the node vote twice in a term); as a
        new leader starts (its first entry reaches few or no followers); right after a
        leader commits and applies (it dies before the others learn the new commit).
        """
        if not self.faults_on:
            return None
        rng = self.rng
        sc = self.sc
        voted = sc.vote_crash_rate and any(m.type is MessageType.VOTE_RESP and not m.reject for m in rd.messages)
        if voted and rng.random() < sc.vote_crash_rate:
            self.log(f"power loss on {node.id} right after it voted")
            return PowerLoss.AFTER_VOTE
        if rd.soft_state is not None and rd.soft_state.role is Role.LEADER:
            if rng.random() < sc.elected_crash_rate:
                self.log(f"power loss on {node.id} as it becomes leader")
                return PowerLoss.BEFORE_SEND if rng.random() < 0.5 else PowerLoss.AFTER_APPLY
            return None
        if not rd.committed_entries or not node.raw.is_leader():
            return None
        term = node.raw.raft.term
        # A new leader's first commit is where entries of earlier terms become committed.
        rate = sc.first_commit_crash_rate if node.committed_as_leader_in != term else sc.leader_crash_rate
        node.committed_as_leader_in = term
        if rng.random() < rate:
            self.log(f"power loss on leader {node.id} right after it committed {rd.committed_entries[-1].index}")
            return PowerLoss.AFTER_APPLY
        return None

    def _check_ready(self, node: SimNode, rd: Ready) -> None:
        raft = node.raw.raft
        if rd.hard_state is not None:
            if rd.hard_state.commit < node.last_commit:
                raise self.fail(f"node {node.id} commit went back {node.last_commit} -> {rd.hard_state.commit}")
            if rd.hard_state.term < node.last_term:
                raise self.fail(f"node {node.id} term went back {node.last_term} -> {rd.hard_state.term}")
            node.last_commit = rd.hard_state.commit
            node.last_term = rd.hard_state.term
        if rd.soft_state is not None and rd.soft_state.role is Role.LEADER:
            term = raft.term
            other = self.leader_of_term.setdefault(term, node.id)
            if other != node.id:
                raise self.fail(f"two leaders in term {term}: {other} and {node.id}")
            self.log(f"{node.id} is leader of term {term}")
            self._check_leader_completeness(node)
        for m in rd.messages:
            if m.type is MessageType.VOTE_RESP and not m.reject:
                granted = self.vote_of.setdefault((m.frm, m.term), m.to)
                if granted != m.to:
                    raise self.fail(f"node {m.frm} voted for {granted} and {m.to} in term {m.term}")

    def _check_leader_completeness(self, node: SimNode) -> None:
        log = node.raw.raft.log
        term = node.raw.raft.term
        first = log.first_index()
        for index, (entry_term, _, _) in self.committed.items():
            if self.commit_term_bound[index] >= term or index < first:
                continue
            if index > log.last_index() or log.term(index) != entry_term:
                raise self.fail(f"leader {node.id} of term {term} lacks committed entry {index}")

    def _apply(self, node: SimNode, entry: Entry) -> None:
        if entry.index != node.applied + 1:
            raise self.fail(f"node {node.id} applied {entry.index} after {node.applied}")
        node.applied = entry.index
        record = (entry.term, int(entry.type), entry.data)
        known = self.committed.setdefault(entry.index, record)
        if known != record:
            raise self.fail(f"node {node.id} applied {record} at {entry.index}, another applied {known}")
        self.commit_term_bound.setdefault(entry.index, node.raw.raft.term)
        if entry.type is EntryType.CONF_CHANGE:
            cc = ConfChange.decode(entry.data)
            self.log(f"{node.id} applies {cc.type.name} {cc.node_id} at {entry.index}")
            if cc.type is ConfChangeType.REMOVE_NODE:
                self.removed.add(cc.node_id)
            return
        if not entry.data:
            return
        cmd = Command.decode(entry.data)
        result = node.kv.apply(cmd)
        if cmd.client == PROBE_CLIENT:
            node.probes_applied.add(cmd.seq)
            return
        request = node.waiting_writes.pop((cmd.client, cmd.seq), None)
        if request is not None:
            self.complete(request, result)

    def _serve_reads(self, node: SimNode) -> None:
        still_waiting = []
        for index, request in node.ready_reads:
            if node.applied >= index:
                self.complete(request, node.kv.read(request.op.key))
            else:
                still_waiting.append((index, request))
        node.ready_reads = still_waiting

    def _maybe_snapshot(self, node: SimNode) -> None:
        storage = node.storage
        snap_index = storage.snapshot().metadata.index
        if node.applied - snap_index < self.sc.snapshot_every:
            return
        keep = self.rng.randint(0, 3)
        storage.snapshot_and_compact(node.applied, node.raw.conf_state(), node.kv.encode(), node.applied - keep)

    # --- network ---------------------------------------------------------------------

    def connected(self, a: int, b: int) -> bool:
        if not self.partition:
            return True
        return self.partition.get(a, 0) == self.partition.get(b, 0)

    def send(self, m: Message) -> None:
        copies = 1
        if self.faults_on:
            if self.rng.random() < self.sc.drop_rate:
                self._dropped(m)
                return
            if self.rng.random() < self.sc.dup_rate:
                copies = 2
        for _ in range(copies):
            delay = 1 + self.rng.randint(0, TICK_STEPS)
            if self.faults_on and self.rng.random() < self.sc.long_delay_rate:
                delay += self.rng.randint(TICK_STEPS, 8 * TICK_STEPS)
            heapq.heappush(self.in_flight, InFlight(self.step + delay, self.rng.random(), m, self.step))

    def _dropped(self, m: Message) -> None:
        # The transport notices some failed deliveries, as a real one does; it tells the
        # sender later, never from inside the sender's own Ready handling.
        if m.type is MessageType.SNAP:
            self.feedback.append((m.frm, m.to, False))
        elif self.rng.random() < 0.5:
            self.feedback.append((m.frm, m.to, None))

    def flush_feedback(self) -> None:
        while self.feedback:
            frm, to, snapshot_ok = self.feedback.pop(0)
            sender = self.nodes.get(frm)
            if sender is None or not sender.up:
                continue
            if snapshot_ok is None:
                sender.raw.report_unreachable(to)
            else:
                sender.raw.report_snapshot(to, snapshot_ok)
            self.process_ready(sender)

    def deliver_due(self) -> None:
        while self.in_flight and self.in_flight[0].due <= self.step:
            m = heapq.heappop(self.in_flight).msg
            target = self.nodes.get(m.to)
            if target is None or not target.up or not self.connected(m.frm, m.to):
                self._dropped(m)
                continue
            if target.paused_until > self.step:
                # Held in the socket buffer until the process runs again.
                due = target.paused_until + self.rng.randint(0, TICK_STEPS)
                heapq.heappush(self.in_flight, InFlight(due, self.rng.random(), m))
                continue
            try:
                target.raw.step(m)
            except RaftError as exc:
                # Responses from peers we no longer track are expected after conf changes.
                self.log(f"{m.to} refused {m.type.name} from {m.frm}: {exc}")
            self.process_ready(target)
            if m.type is MessageType.SNAP:
                self.feedback.append((m.frm, m.to, True))
            self.flush_feedback()

    # --- faults ----------------------------------------------------------------------

    def inject_faults(self) -> None:
        rng = self.rng
        sc = self.sc
        for node in self.nodes.values():
            if not node.up and node.restart_at <= self.step:
                self.restart(node)
        if rng.random() < sc.crash_rate:
            leaders = self.leaders()
            # Leaders are the interesting victims: favour them.
            pool = leaders if leaders and rng.random() < 0.5 else list(self.nodes.values())
            node = rng.choice(pool)
            if node.up:
                self.crash(node)
        if rng.random() < sc.leader_fault_rate:
            self.depose_leader()
        if self.partition:
            if rng.random() < sc.partition_heal_rate:
                self.log("heal partition")
                self.partition = {}
        elif rng.random() < sc.partition_rate:
            self.split_network()
        if rng.random() < sc.pause_rate:
            leaders = self.leaders()
            pool = leaders if leaders and rng.random() < 0.7 else list(self.nodes.values())
            node = rng.choice(pool)
            node.paused_until = self.step + rng.randint(2, 30) * TICK_STEPS
            self.log(f"pause {node.id} until {node.paused_until}")
        if rng.random() < sc.pause_rate:
            # Clock skew: a leader whose clock runs slow notices too late that it lost quorum.
            leaders = self.leaders()
            pool = leaders if leaders and rng.random() < 0.7 else list(self.nodes.values())
            node = rng.choice(pool)
            node.clock_divisor = rng.randint(2, 5)
            node.slow_until = self.step + rng.randint(10, 60) * TICK_STEPS
            self.log(f"slow clock on {node.id} (1/{node.clock_divisor}) until {node.slow_until}")
        if rng.random() < sc.transfer_rate:
            for leader in self.leaders():
                target = rng.choice(sorted(self.nodes))
                self.log(f"transfer leadership {leader.id} -> {target}")
                leader.raw.transfer_leader(target)
                self.process_ready(leader)
        if rng.random() < sc.conf_change_rate:
            self.change_membership()
            if rng.random() < sc.conf_burst_rate:
                self.change_membership()  # refused while the first is pending, unless raft is wrong
            if not self.partition and rng.random() < 0.5:
                self.split_network()  # members may now disagree about the configuration

    def split_network(self) -> None:
        ids = sorted(self.nodes)
        leaders = self.leaders()
        if leaders and self.rng.random() < 0.5:
            isolated = self.rng.choice(leaders).id
            self.partition = {i: int(i == isolated) for i in ids}
        else:
            self.partition = {i: self.rng.randint(0, 1) for i in ids}
        self.log(f"partition {self.partition}")

    def depose_leader(self) -> None:
        """End the current term by force: the leader crashes or is cut off from everyone."""
        leaders = self.leaders()
        if not leaders:
            return
        leader = self.rng.choice(leaders)
        if self.rng.random() < 0.5 or self.partition:
            self.crash(leader)
        else:
            self.partition = {i: int(i == leader.id) for i in self.nodes}
            self.log(f"partition {self.partition} (leader cut off)")

    def change_membership(self) -> None:
        leaders = self.leaders()
        if not leaders:
            return
        leader = leaders[0]
        voters = leader.raw.conf_state().voters
        rng = self.rng
        if (len(voters) > 3 and rng.random() < 0.5) or len(voters) >= 7:
            target = rng.choice(voters)
            cc = ConfChange(ConfChangeType.REMOVE_NODE, target)
        elif rng.random() < 0.2 and self.removed:
            cc = ConfChange(ConfChangeType.ADD_NODE, rng.choice(sorted(self.removed)))  # must be refused
        else:
            new_id = self.next_node_id
            self.next_node_id += 1
            self._create_node(new_id, bootstrap=None)
            cc = ConfChange(ConfChangeType.ADD_NODE, new_id, f"10.0.0.{new_id}:2377".encode())
        try:
            leader.raw.propose_conf_change(cc)
            self.log(f"leader {leader.id} proposes {cc.type.name} {cc.node_id}")
        except ConfChangeRefused as exc:
            if cc.type is ConfChangeType.ADD_NODE and cc.node_id in leader.raw.conf_state().removed:
                self.log(f"refused re-adding {cc.node_id}: {exc}")
            else:
                self.log(f"conf change refused: {exc}")
        except ProposalDropped:
            pass
        else:
            if cc.type is ConfChangeType.ADD_NODE and cc.node_id in leader.raw.conf_state().removed:
                raise self.fail(f"re-adding removed node {cc.node_id} was accepted")
        self.process_ready(leader)

    def heal(self) -> None:
        self.log("heal: faults stop, partitions heal, everyone restarts")
        self.faults_on = False
        self.partition = {}
        for node in self.nodes.values():
            node.paused_until = 0
            node.slow_until = 0
            if not node.up:
                self.restart(node)

    # --- clients ---------------------------------------------------------------------

    def run_clients(self) -> None:
        for client in self.clients:
            request = client.pending
            if request is not None:
                if self.step >= request.deadline:
                    self.give_up(client, request)
                continue
            if self.rng.random() < self.sc.op_rate:
                self.invoke(client)

    def invoke(self, client: SimClient) -> None:
        rng = self.rng
        retry = client.unresolved
        if retry is not None:
            seq, op, call = retry.seq, retry.op, retry.call
        else:
            client.seq += 1
            seq = client.seq
            kind = rng.choice([PUT, APPEND, APPEND, GET, GET, GET])
            # Unique tokens, none a substring of another (see kvmodel.drop_unobserved_writes).
            value = f"[{client.id}.{seq}]" if kind != GET else ""
            op = KVOp(kind, rng.choice(self.sc.keys), value)
            call = 0
        candidates = [n for n in self.nodes.values() if n.id not in self.removed]
        node = self.nodes.get(client.believed_leader)
        if node is None or not node.up or rng.random() < 0.3:
            node = rng.choice(candidates)
        if not node.up or node.paused_until > self.step:
            return  # connection refused / timed out before sending: this attempt never started
        timeout = rng.randint(4, 15) * TICK_STEPS
        request = PendingRequest(client.id, seq, op, node.id, call or self.tick_event(), self.step + timeout)
        try:
            if op.kind == GET and rng.random() < 0.8:
                ctx = f"{client.id}:{seq}".encode()
                node.raw.read_index(ctx)
                node.waiting_reads[ctx] = request
            else:
                node.raw.propose(Command(client.id, seq, op).encode())
                node.waiting_writes[(client.id, seq)] = request
        except ProposalDropped:
            return  # refused at once: this attempt did nothing
        client.pending = request
        client.unresolved = None
        lead = node.raw.raft.lead
        client.believed_leader = lead if lead else client.believed_leader
        self.process_ready(node)

    def complete(self, request: PendingRequest, result: str) -> None:
        client = self.clients[request.client - 1]
        if client.pending is not request:
            return  # the client already gave up on it
        self.history.append(Operation(request.client, request.op, request.call, self.tick_event(), result))
        client.pending = None

    def give_up(self, client: SimClient, request: PendingRequest) -> None:
        client.pending = None
        client.believed_leader = 0  # try someone else next time
        if request.op.kind != GET:
            client.unresolved = request  # it may or may not have happened: send it again

    def abandon_unresolved(self) -> None:
        """The run is over: writes never answered may or may not have happened."""
        for client in self.clients:
            if client.pending is not None:
                self.give_up(client, client.pending)
            request = client.unresolved
            if request is not None:
                self.history.append(Operation(request.client, request.op, request.call, None, None))
                client.unresolved = None

    # --- liveness probe --------------------------------------------------------------

    def probe(self) -> bool:
        """After healing: keep a probe write going; True once every member applied one.

        Only the leader of the highest term counts: a member removed while it was cut off
        may still believe it leads an older term (nobody answers a removed member), and
        nodes created for an add that never committed are not members.
        """
        leaders = self.leaders()
        if not leaders:
            return False
        leader = max(leaders, key=lambda n: n.raw.raft.term)
        voters = set(leader.raw.conf_state().voters)
        members = [n for n in self.nodes.values() if n.id in voters]
        if self.step % TICK_STEPS == 0:
            self.probe_seq += 1
            with contextlib.suppress(ProposalDropped):
                leader.raw.propose(Command(PROBE_CLIENT, self.probe_seq, KVOp(PUT, "probe", "x")).encode())
            self.process_ready(leader)
        common = set.intersection(*(n.probes_applied for n in members))
        return bool(common)

    def backlog(self) -> int:
        """Entries the slowest member must still receive or apply.

        Nodes created for an addition count even before any member applied it: one that
        commits during the healing phase starts from an empty log.
        """
        last = max(n.raw.raft.log.last_index() for n in self.nodes.values())
        members = [n for n in self.nodes.values() if n.id not in self.removed]
        return max(0, last - min((n.applied for n in members), default=last))

    # --- checks over whole logs -------------------------------------------------------

    def check_log_matching(self) -> None:
        nodes = self.up_nodes()
        for i, a in enumerate(nodes):
            for b in nodes[i + 1 :]:
                la, lb = a.raw.raft.log, b.raw.raft.log
                lo = max(la.first_index(), lb.first_index())
                hi = min(la.last_index(), lb.last_index())
                match = 0
                for index in range(hi, lo - 1, -1):
                    if la.term(index) == lb.term(index):
                        match = index
                        break
                if match == 0:
                    continue
                if la.slice(lo, match + 1) != lb.slice(lo, match + 1):
                    raise self.fail(f"log matching violated between {a.id} and {b.id} below {match}")

    def check_linearizable(self) -> None:
        try:
            result = check(KV_MODEL, drop_unobserved_writes(self.history), max_explored=LINCHECK_BUDGET)
        except RuntimeError as exc:
            raise self.fail(f"linearizability check inconclusive: {exc}") from exc
        if not result.ok:
            ops = "\n".join(f"    {op}" for op in sorted(result.failing_part, key=lambda o: o.call))
            raise self.fail(f"history is not linearizable; operations on that key:\n{ops}")

    # --- main loop -------------------------------------------------------------------

    def run(self) -> SimResult:
        try:
            return self._run()
        except SimulationFailure:
            raise
        except Exception as exc:
            # A broken invariant inside the core (or the simulator): still name the seed.
            raise self.fail(f"unexpected {type(exc).__name__}: {exc}") from exc

    def _run(self) -> SimResult:
        fault_end = self.sc.fault_ticks * TICK_STEPS
        deadline = 0
        budget_ticks = 0
        healed_at = 0
        while True:
            self.step += 1
            if self.step < fault_end:
                self.inject_faults()
            elif self.step == fault_end:
                self.heal()
                healed_at = self.step
                # Bounded progress: an election plus catching up the backlog, which with the
                # tightest flow control (one entry per append, one append in flight) moves
                # about one entry per round trip.
                budget_ticks = self.sc.heal_ticks + 3 * self.backlog()
                deadline = fault_end + budget_ticks * TICK_STEPS
            self.deliver_due()
            for node in list(self.nodes.values()):
                if node.up and node.paused_until <= self.step and (self.step + node.tick_phase) % TICK_STEPS == 0:
                    node.ticks_seen += 1
                    if node.slow_until > self.step and node.ticks_seen % node.clock_divisor:
                        continue
                    node.raw.tick()
                    self.process_ready(node)
            self.flush_feedback()
            self.run_clients()
            if self.step % 50 == 0:
                self.check_log_matching()
            if healed_at and self.probe():
                break
            if healed_at and self.step >= deadline:
                leaders = [n.id for n in self.leaders()]
                raise self.fail(
                    f"no progress {budget_ticks} ticks after healing (leaders now: {leaders}, "
                    f"applied: { {n.id: n.applied for n in self.nodes.values()} })"
                )
        self.check_log_matching()
        self.abandon_unresolved()
        self.check_linearizable()
        return SimResult(
            self.seed,
            self.step,
            len(self.history),
            len(self.leader_of_term),
            self.stats_crashes,
            self.stats_snapshots,
            sum(1 for _, kind, _ in self.committed.values() if kind == EntryType.CONF_CHANGE) - self.sc.nodes,
        )


@dataclass(frozen=True)
class SimResult:
    seed: int
    steps: int
    operations: int
    terms: int
    crashes: int
    snapshots_installed: int
    conf_changes: int


def run_seed(seed: int, verbose: bool = False) -> SimResult:
    sim = Simulation(seed, verbose=verbose)
    try:
        return sim.run()
    except SimulationFailure:
        if verbose:
            print("\n".join(sim.trace[-200:]), file=sys.stderr)
        raise


STAT_FIELDS = ("steps", "terms", "operations", "crashes", "snapshots_installed", "conf_changes")


def run_seeds(first: int, count: int) -> int:
    """The soak: every seed in the range; prints failures and per-seed averages."""
    started = time.monotonic()
    failures = 0
    passed = 0
    totals = dict.fromkeys(STAT_FIELDS, 0)
    for seed in range(first, first + count):
        try:
            result = run_seed(seed)
        except SimulationFailure as exc:
            failures += 1
            print(exc, file=sys.stderr)
            continue
        passed += 1
        for name in STAT_FIELDS:
            totals[name] += getattr(result, name)
        if (seed - first + 1) % 1000 == 0:
            print(f"{seed - first + 1} seeds, {failures} failures, {time.monotonic() - started:.0f}s")
    elapsed = time.monotonic() - started
    means = ", ".join(f"{name} {totals[name] / max(passed, 1):.1f}" for name in STAT_FIELDS)
    print(f"done: {count} seeds, {failures} failures, {elapsed:.0f}s ({1000 * elapsed / max(count, 1):.0f} ms/seed)")
    print(f"per passing seed: {means}")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Deterministic raft simulation with fault injection")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--seed", type=int, help="run one seed (prints the trace tail on failure)")
    group.add_argument("--seeds", type=int, help="run seeds first..first+N-1")
    group.add_argument("--mutations", action="store_true", help="check that every known raft bug is caught")
    parser.add_argument("--first", type=int, default=0, help="first seed of --seeds / --mutations")
    parser.add_argument("--mutation", help="with --seed: replay with this known bug patched into raft")
    parser.add_argument("--mutation-seeds", type=int, default=300, help="seeds per mutation (default 300)")
    parser.add_argument("--failures", type=int, default=3, help="failing seeds to find per mutation (default 3)")
    args = parser.parse_args(argv)
    # Imported here: the mutation check itself runs this module's simulation.
    from shoal.testing import raft_mutation_check, raft_mutations

    if args.mutations:
        return raft_mutation_check.run_mutation_check(args.first, args.mutation_seeds, args.failures)
    if args.seed is None:
        return run_seeds(args.first, args.seeds)
    if args.mutation is not None and args.mutation not in raft_mutations.MUTATIONS:
        parser.error(f"unknown mutation {args.mutation!r}; known: {', '.join(raft_mutations.MUTATIONS)}")
    patch = raft_mutations.MUTATIONS[args.mutation]() if args.mutation else contextlib.nullcontext()
    with patch:
        try:
            result = run_seed(args.seed, verbose=True)
        except SimulationFailure as exc:
            print(exc, file=sys.stderr)
            return 1
    print(f"seed={result.seed} ok: {result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
