"""RaftNode: drives the pure Raft core (``shoal.raft.RawNode``) with a clock, storage and a transport.

One asyncio task owns the RawNode. Everything else (ticks, messages from peers, proposals, reads,
transport reports) is put in an inbox and stepped by that task, so the core is never touched while a
Ready is being carried out. Each Ready is handled in the order the core demands:

1. persist the snapshot, entries and hard state, fsync'ing when ``must_sync`` (off the event loop);
2. only then send the messages: a vote or an append acknowledgement must never leave before what it
   promises is on disk.
   The leader is the exception (Raft thesis §10.2.1, as etcd does): it sends its appends and
   heartbeats *before* writing the same entries itself, so its fsync and the followers' overlap and
   a write waits for one fsync instead of two in a row. This is safe although our core counts the
   leader's own entries toward the commit quorum as soon as they are appended: every effect of a
   commit (applying, answering the client, a commit index sent to followers) only leaves through a
   later Ready, and this loop takes the next Ready only once the current one, which holds the
   leader's write of those entries, is on disk. (Incoming messages also wait in the inbox until
   then, so the core does not even count an acknowledgement before the write.) A Ready that
   changes the term or the vote (an election) is always persisted first;
3. apply committed entries to the state machine and release linearizable reads;
4. advance the core, and snapshot + compact the log every ``snapshot_interval`` applied entries.

A hung disk: a leader waiting on its disk cannot tick, so on its own it would neither heartbeat nor
run check-quorum. For up to an election timeout the driver sends bare heartbeats for it (a slow
fsync is not a failure); past that it gives up: it stops heartbeating, announces that it no longer
leads (pending proposals fail with an unknown outcome, reads and new requests are refused) and,
once the disk answers, steps the core down to follower. The followers meanwhile time out and elect
a leader among themselves. A follower with a hung disk simply lags: it acknowledges nothing until
its write is durable.

Tick interval: 100 ms by default, with Swarm's ElectionTick 10 / HeartbeatTick 1 (as reported by
``docker info``). Heartbeats every 100 ms and an election timeout drawn from [1 s, 2 s) fail over in
about 1-2 s, while a follower needs ten silent heartbeat periods in a row before it even pre-votes
(pre-vote and check-quorum keep a lagging follower from deposing a healthy leader). Ticks come from
a sleeping loop, so a stalled event loop loses ticks rather than replaying them in a burst, and the
inbox keeps ticks and heartbeats in arrival order: a busy follower processes the leader's queued
heartbeats before the ticks that came after them, so load delays elections instead of causing them.
Swarm's 1 s tick would make failover take 10-20 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from shoal.base.clock import Clock, SystemClock
from shoal.manager.raftnode_api import (
    DEFAULT_TICK_INTERVAL,
    LeadershipChange,
    PeerTransport,
    RaftMessageSink,
    RaftNodeConfig,
    StateMachine,
)
from shoal.manager.raftnode_members import MemberDirectory
from shoal.manager.raftnode_reads import ReadIndexTracker
from shoal.manager.raftnode_snapshot import decode_snapshot_data, encode_snapshot_data
from shoal.manager.raftnode_storage import RaftLogStorage
from shoal.raft.config import Config
from shoal.raft.errors import ProposalDropped, RaftError
from shoal.raft.rawnode import RawNode
from shoal.raft.types import (
    NONE,
    ConfChange,
    ConfChangeType,
    Entry,
    EntryType,
    Message,
    MessageType,
    Ready,
    Role,
    Snapshot,
    SoftState,
)

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_TICK_INTERVAL",
    "LeadershipChange",
    "PeerTransport",
    "RaftMessageSink",
    "RaftNode",
    "RaftNodeConfig",
    "RaftNodeStopped",
    "StateMachine",
]

T = TypeVar("T")


class _Tick:
    pass


_TICK = _Tick()


@dataclass
class _Call:
    fn: Callable[[RawNode], object]
    future: asyncio.Future[object]


@dataclass
class _Proposal:
    data: bytes
    future: asyncio.Future[None]
    leader_only: bool


@dataclass(frozen=True)
class _Report:
    node_id: int
    snapshot_ok: bool | None  # None: unreachable


_InboxItem = _Tick | Message | _Call | _Proposal | _Report


class RaftNodeStopped(ProposalDropped):
    """The node is stopped (or failed): nothing is accepted any more."""


class RaftNode:
    def __init__(
        self,
        config: RaftNodeConfig,
        storage: RaftLogStorage,
        transport: PeerTransport,
        *,
        clock: Clock | None = None,
        rand: random.Random | None = None,
    ) -> None:
        self.config = config
        self.node_id = config.node_id
        self._storage = storage
        self._transport = transport
        self._clock = clock or SystemClock()
        self._rand = rand or random.Random()
        self._state_machine: StateMachine | None = None
        self._raw: RawNode | None = None
        self._inbox: deque[_InboxItem] = deque()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = False
        self.failure: BaseException | None = None

        self._members = MemberDirectory(config.node_id, transport)
        self._term = 0
        self._vote = NONE
        self._leader_id = NONE
        self._role = Role.FOLLOWER
        self._announced_leader = False
        self._gave_up_leadership = False  # a stalled disk made us give up; the core steps down next
        self._applied = 0
        self._snapshot_index = 0
        self.elections_won = 0
        self.leader_changes = 0
        self.stats = {
            "readies": 0,
            "entries_saved": 0,
            "syncs": 0,
            "persist_seconds": 0.0,
            "applied_entries": 0,
            "stall_heartbeats": 0,
            "stall_stepdowns": 0,
        }

        self._reads = ReadIndexTracker()
        self._apply_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._conf_waiters: dict[bytes, list[asyncio.Future[int]]] = {}
        self._listeners: list[Callable[[LeadershipChange], None]] = []
        self._subscribers: list[asyncio.Queue[LeadershipChange]] = []
        self._leader_known = asyncio.Event()
        transport.set_sink(self)

    # --- setup ----------------------------------------------------------------------------------

    def set_state_machine(self, state_machine: StateMachine) -> None:
        if self._raw is not None:
            raise RuntimeError("set the state machine before start()")
        self._state_machine = state_machine

    async def start(
        self, *, bootstrap: Mapping[int, str] | None = None, peers: Mapping[int, str] | None = None
    ) -> None:
        """Start the member.

        * storage holds state: restart from it (``bootstrap``/``peers`` are ignored);
        * ``bootstrap``: found a new group of these members {raft id: address} (every founding
          member passes the same map; a single-manager swarm passes only itself);
        * otherwise join: wait for the leader to replicate to us; ``peers`` are the current
          members' addresses as the leader's join answer gave them.
        """
        if self._state_machine is None:
            raise RuntimeError("no state machine set")
        await self._transport.start()
        snapshot = self._storage.snapshot()
        fresh = self._storage.is_empty()
        if not snapshot.is_empty():
            self._install_snapshot(snapshot)
        self._raw = RawNode(
            Config(
                id=self.node_id,
                storage=self._storage,
                election_tick=self.config.election_tick,
                heartbeat_tick=self.config.heartbeat_tick,
                applied=self._applied,
                max_size_per_msg=self.config.max_size_per_msg,
                max_inflight_msgs=self.config.max_inflight_msgs,
                check_quorum=True,
                pre_vote=True,
                rand=self._rand,
            )
        )
        if fresh and bootstrap:
            contexts = {node_id: addr.encode() for node_id, addr in bootstrap.items()}
            self._raw.bootstrap(sorted(bootstrap), contexts)
            self._members.replace(dict(bootstrap))
        elif fresh and peers:
            self._members.replace(dict(peers))
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._run(), name=f"raft-{self.node_id:x}-ready"),
            loop.create_task(self._tick_loop(), name=f"raft-{self.node_id:x}-ticker"),
        ]
        self._wake.set()

    async def stop(self) -> None:
        self._stopped = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._fail_everything(RaftNodeStopped("raft: node stopped"))
        await self._transport.stop()

    # --- inspection -----------------------------------------------------------------------------

    @property
    def leader_id(self) -> int:
        return self._leader_id

    @property
    def term(self) -> int:
        return self._term

    @property
    def applied_index(self) -> int:
        return self._applied

    @property
    def snapshot_index(self) -> int:
        return self._snapshot_index

    def is_leader(self) -> bool:
        """Leader, and caught up: an entry of its own term has been applied (as Swarm announces)."""
        return self._announced_leader

    def members(self) -> dict[int, str]:
        return dict(self._members.addresses)

    def status(self) -> dict[str, object]:
        return {
            "id": self.node_id,
            "term": self._term,
            "leader": self._leader_id,
            "role": self._role.name,
            "applied": self._applied,
            # The core's log, written or not: a leader sends entries before its disk has them.
            "last_index": self._raw.status().last_index if self._raw is not None else 0,
            "snapshot_index": self._snapshot_index,
            "members": {str(k): v for k, v in self._members.addresses.items()},
            "elections_won": self.elections_won,
            "leader_changes": self.leader_changes,
            "stats": dict(self.stats),
        }

    async def wait_applied(self, index: int) -> None:
        """Return once this member has applied ``index`` (no timeout: wrap it)."""
        if self._applied >= index:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._apply_waiters.append((index, future))
        await future

    async def wait_for_leader(self) -> int:
        """The leader's id once one is known (no timeout: wrap it)."""
        while self._leader_id == NONE:
            await self._leader_known.wait()
        return self._leader_id

    # --- leadership notifications ---------------------------------------------------------------

    def add_leadership_listener(self, listener: Callable[[LeadershipChange], None]) -> None:
        """Called synchronously, from the Ready loop, when this member gains or loses leadership."""
        self._listeners.append(listener)

    def subscribe(self) -> asyncio.Queue[LeadershipChange]:
        """A queue of leadership changes of this member, starting with the current state."""
        queue: asyncio.Queue[LeadershipChange] = asyncio.Queue()
        queue.put_nowait(LeadershipChange(self._announced_leader, self._leader_id, self._term))
        self._subscribers.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[LeadershipChange]) -> None:
        with contextlib.suppress(ValueError):
            self._subscribers.remove(queue)

    # --- requests -------------------------------------------------------------------------------

    async def propose(self, data: bytes, *, leader_only: bool = True) -> None:
        """Hand ``data`` to the core; returns once it is appended to the leader's log.
        Raises ProposalDropped if it was not. Commitment shows up as an applied entry.
        ``leader_only`` refuses rather than forwards when this member is not the leader, so that
        a refusal is a definite "not written"."""
        if self._stopped or self.failure is not None:
            raise RaftNodeStopped("raft: node stopped")
        self._refuse_while_disk_stalled()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._push(_Proposal(data, future, leader_only))
        await future

    async def read_index(self) -> int:
        """A linearizable read barrier: returns an index once this member has applied at least
        everything committed when the call was made. Raises ProposalDropped without a leader;
        fails with Unavailable-like errors if leadership changes meanwhile; no timeout of its own."""
        ctx, future = self._reads.register()
        try:
            await self._call(lambda raw: raw.read_index(ctx))
            return await future
        finally:
            self._reads.forget(ctx)

    async def propose_conf_change(self, change: ConfChange) -> int:
        """Propose a membership change and wait until it is applied here; returns its index."""
        key = change.encode()
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._conf_waiters.setdefault(key, []).append(future)
        try:
            await self._call(lambda raw: raw.propose_conf_change(change))
            return await future
        finally:
            self._discard_conf_waiter(key, future)

    async def add_member(self, node_id: int, address: str) -> int:
        return await self.propose_conf_change(ConfChange(ConfChangeType.ADD_NODE, node_id, address.encode()))

    async def update_member(self, node_id: int, address: str) -> int:
        return await self.propose_conf_change(ConfChange(ConfChangeType.UPDATE_NODE, node_id, address.encode()))

    async def remove_member(self, node_id: int) -> int:
        return await self.propose_conf_change(ConfChange(ConfChangeType.REMOVE_NODE, node_id))

    async def transfer_leadership(self, to: int) -> None:
        await self._call(lambda raw: raw.transfer_leader(to))

    async def campaign(self) -> None:
        await self._call(lambda raw: raw.campaign())

    # --- RaftMessageSink (called by the transport; must not block) -------------------------------

    def receive(self, message: Message) -> None:
        self._push(message)

    def report_unreachable(self, node_id: int) -> None:
        self._push(_Report(node_id, None))

    def report_snapshot(self, node_id: int, ok: bool) -> None:
        self._push(_Report(node_id, ok))

    # --- the loop -------------------------------------------------------------------------------

    def _push(self, item: _InboxItem) -> None:
        if self._stopped:
            return
        self._inbox.append(item)
        self._wake.set()

    async def _call(self, fn: Callable[[RawNode], T]) -> T:
        if self._stopped or self.failure is not None:
            raise RaftNodeStopped("raft: node stopped")
        self._refuse_while_disk_stalled()
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._push(_Call(fn, future))
        result = await future
        return result  # type: ignore[return-value]

    async def _tick_loop(self) -> None:
        while True:
            await self._clock.sleep(self.config.tick_interval)
            self._push(_TICK)

    async def _run(self) -> None:
        raw = self._raw
        assert raw is not None
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                self._drain_inbox(raw)
                while raw.has_ready():
                    rd = raw.ready()
                    await self._handle_ready(rd)
                    raw.advance(rd)
                    await self._maybe_snapshot(raw)
                    self._step_down_if_gave_up(raw)
                    await asyncio.sleep(0)  # let the transport and clients run between batches
                    self._drain_inbox(raw)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            # A storage failure leaves the durable state unknown: stop taking part rather than
            # risk acknowledging what is not on disk.
            log.exception("raft node %x failed", self.node_id)
            self.failure = exc
            self._stopped = True
            self._fail_everything(RaftNodeStopped(f"raft: node failed: {exc}"))

    def _drain_inbox(self, raw: RawNode) -> None:
        proposals: list[_Proposal] = []
        while self._inbox:
            item = self._inbox.popleft()
            if isinstance(item, _Proposal):
                proposals.append(item)
                continue
            if proposals:
                self._propose_batch(raw, proposals)
                proposals = []
            if isinstance(item, _Tick):
                raw.tick()
            elif isinstance(item, Message):
                try:
                    raw.step(item)
                except RaftError as exc:
                    log.debug("raft %x dropped %s from %x: %s", self.node_id, item.type.name, item.frm, exc)
            elif isinstance(item, _Call):
                if item.future.done():
                    continue
                try:
                    item.future.set_result(item.fn(raw))
                except Exception as exc:  # a refused request fails its caller, not the node
                    item.future.set_exception(exc)
            elif item.snapshot_ok is None:
                raw.report_unreachable(item.node_id)
            else:
                raw.report_snapshot(item.node_id, item.snapshot_ok)
        if proposals:
            self._propose_batch(raw, proposals)

    def _propose_batch(self, raw: RawNode, proposals: list[_Proposal]) -> None:
        """Step consecutive proposals as one multi-entry proposal: one append message per follower
        and one acknowledgement back, instead of one per entry."""
        live = [p for p in proposals if not p.future.done()]
        accepted: list[_Proposal] = []
        for proposal in live:
            if proposal.leader_only and not raw.is_leader():
                proposal.future.set_exception(ProposalDropped("raft: not the leader"))
            else:
                accepted.append(proposal)
        if not accepted:
            return
        try:
            raw.propose_batch([p.data for p in accepted])
        except RaftError as exc:
            for proposal in accepted:
                proposal.future.set_exception(exc)
            return
        for proposal in accepted:
            proposal.future.set_result(None)

    async def _handle_ready(self, rd: Ready) -> None:
        self.stats["readies"] += 1
        self.stats["applied_entries"] += len(rd.committed_entries)
        term_or_vote_changed = rd.hard_state is not None and (
            rd.hard_state.term != self._term or rd.hard_state.vote != self._vote
        )
        if rd.hard_state is not None:
            if rd.hard_state.term != self._term:
                # One line per term, as etcd's raft logs it: operators and the soaks count elections here.
                log.info("raft %x: term %d", self.node_id, rd.hard_state.term)
            self._term = rd.hard_state.term
            self._vote = rd.hard_state.vote
        if rd.soft_state is not None:
            self._on_soft_state(rd.soft_state)
        # A leader's appends and heartbeats may leave before its own write (see the module doc);
        # anything a follower or candidate says (acks, votes) only after.
        send_first = (
            self.config.leader_sends_before_persist
            and self._role is Role.LEADER
            and not term_or_vote_changed
            and rd.snapshot is None
        )
        if send_first:
            self._transport.send(rd.messages)
        if rd.snapshot is not None or rd.entries or rd.hard_state is not None:
            started = time.perf_counter()
            if self._storage.durable and rd.must_sync and self.config.fsync_in_thread:
                await self._disk_work(lambda: self._persist(rd))
            else:
                self._persist_blocking(rd)
            self.stats["persist_seconds"] += time.perf_counter() - started
            self.stats["entries_saved"] += len(rd.entries)
            self.stats["syncs"] += rd.must_sync
        if not send_first:
            self._transport.send(rd.messages)
        if rd.snapshot is not None and not rd.snapshot.is_empty():
            self._install_snapshot(rd.snapshot)
        self._apply(rd.committed_entries)
        self._reads.confirm(rd.read_states, self._applied)

    async def _disk_work(self, work: Callable[[], None]) -> None:
        """Run ``work`` (a write, an fsync) in a worker thread, so the event loop keeps serving.
        A leader also keeps a watch on the disk meanwhile (see ``_watch_stalled_disk``)."""
        if self._role is not Role.LEADER:
            await asyncio.to_thread(work)
            return
        watch = asyncio.ensure_future(self._watch_stalled_disk())
        try:
            await asyncio.to_thread(work)
        finally:
            watch.cancel()

    async def _watch_stalled_disk(self) -> None:
        """While the leader waits on its disk, the core cannot tick. For up to an election timeout
        the driver sends a bare heartbeat (current term, commit 0, which only says "still leading";
        true while nothing else is stepped, and commit 0 moves nothing) every heartbeat interval,
        so a slow fsync does not cost an election. Past the election timeout the leader gives up:
        no more heartbeats, so the followers time out and elect one of themselves."""
        interval = self.config.tick_interval * self.config.heartbeat_tick
        beats = max(1, self.config.election_tick // self.config.heartbeat_tick)
        raw = self._raw
        assert raw is not None
        for _ in range(beats - 1):
            await self._clock.sleep(interval)
            voters = [v for v in raw.conf_state().voters if v != self.node_id]
            self._transport.send(
                Message(MessageType.HEARTBEAT, to=v, frm=self.node_id, term=self._term, commit=0) for v in voters
            )
            self.stats["stall_heartbeats"] += len(voters)
        await self._clock.sleep(interval)
        self._give_up_leadership("its disk has not answered for an election timeout")

    def _persist_blocking(self, rd: Ready) -> None:
        """Write on the event loop. Nothing runs meanwhile, heartbeats included: a leader that was
        blocked for an election timeout has probably been replaced, and gives up."""
        started = self._clock.monotonic()
        self._persist(rd)
        if self._role is Role.LEADER and self._clock.monotonic() - started >= self._election_timeout():
            self._give_up_leadership("a write blocked it for an election timeout")

    def _election_timeout(self) -> float:
        return self.config.tick_interval * self.config.election_tick

    def _give_up_leadership(self, why: str) -> None:
        """Stop acting as leader while the core is still busy with a Ready: announce it (pending
        proposals fail with an unknown outcome), fail reads and queued requests, refuse new ones.
        The core itself steps down once the Ready is done (``_step_down_if_gave_up``)."""
        if self._gave_up_leadership:
            return
        log.warning("raft %x gives up leadership of term %d: %s", self.node_id, self._term, why)
        self._gave_up_leadership = True
        self.stats["stall_stepdowns"] += 1
        error = ProposalDropped(f"raft: leader gave up: {why}")
        self._reads.fail(error)
        self._fail_queued_requests(error)
        if self._leader_id == self.node_id:
            self._leader_id = NONE
            self._leader_known.clear()
            self.leader_changes += 1
        if self._announced_leader:
            self._announce(False)

    def _step_down_if_gave_up(self, raw: RawNode) -> None:
        if not self._gave_up_leadership:
            return
        self._gave_up_leadership = False
        if raw.is_leader():
            # Same term, no vote change: what check-quorum does to a leader that lost its quorum.
            raw.raft.become_follower(raw.raft.term, NONE)

    def _refuse_while_disk_stalled(self) -> None:
        if self._gave_up_leadership:
            raise ProposalDropped("raft: this member gave up leadership: its disk is stalled")

    def _persist(self, rd: Ready) -> None:
        self._storage.save(rd.hard_state, rd.entries, rd.snapshot)
        if rd.must_sync:
            self._storage.sync()

    # --- applying -------------------------------------------------------------------------------

    def _apply(self, entries: Iterable[Entry]) -> None:
        state_machine = self._state_machine
        assert state_machine is not None
        for entry in entries:
            if entry.index <= self._applied:
                continue  # covered by a snapshot installed in the same Ready
            if entry.type is EntryType.CONF_CHANGE:
                self._apply_conf_change(entry)
            elif entry.data:
                state_machine.apply(entry.index, entry.data)
            self._applied = entry.index
            if (
                self._role is Role.LEADER
                and not self._announced_leader
                and not self._gave_up_leadership
                and entry.term == self._term
            ):
                self._announce(True)
        self._reads.release(self._applied)
        self._release_apply_waiters()

    def _release_apply_waiters(self) -> None:
        if not self._apply_waiters:
            return
        waiting = []
        for index, future in self._apply_waiters:
            if future.done():
                continue
            if index <= self._applied:
                future.set_result(None)
            else:
                waiting.append((index, future))
        self._apply_waiters = waiting

    def _apply_conf_change(self, entry: Entry) -> None:
        # The core itself applies the change in advance(); here only addresses and waiters.
        change = ConfChange.decode(entry.data)
        # A member that applies its own removal stops campaigning by itself (the core's promotable()); a
        # member removed while cut off never gets this entry at all. Either way the node learns its new
        # role outside Raft: its node object in its dispatcher session, or the managers refusing it as
        # removed (node/roles.py), so nothing here signals the removal.
        self._members.apply(change)
        for future in self._conf_waiters.pop(entry.data, []):
            if not future.done():
                future.set_result(entry.index)

    def _install_snapshot(self, snapshot: Snapshot) -> None:
        members, app = decode_snapshot_data(snapshot.data)
        assert self._state_machine is not None
        self._state_machine.restore(app)
        conf = snapshot.metadata.conf_state
        self._members.replace({k: v for k, v in members.items() if k in conf.voters}, conf.removed)
        self._applied = snapshot.metadata.index
        self._release_apply_waiters()
        self._snapshot_index = snapshot.metadata.index

    async def _maybe_snapshot(self, raw: RawNode) -> None:
        if self._applied - self._snapshot_index < self.config.snapshot_interval:
            return
        assert self._state_machine is not None
        index = self._applied
        conf_state = raw.conf_state()
        data = encode_snapshot_data(self._members.addresses, self._state_machine.snapshot())
        keep = self.config.log_entries_for_slow_followers

        def write() -> None:
            self._storage.create_snapshot(index, conf_state, data)
            compact_to = index - keep
            if compact_to >= self._storage.first_index():
                self._storage.compact(compact_to)

        if self._storage.durable and self.config.fsync_in_thread:
            await self._disk_work(write)
        else:
            write()
        self._snapshot_index = index
        log.info("raft %x: snapshot at index %d", self.node_id, index)

    # --- leadership and reads -------------------------------------------------------------------

    def _on_soft_state(self, soft: SoftState) -> None:
        if soft.lead != self._leader_id:
            self.leader_changes += 1
            self._leader_id = soft.lead
            # A read request in flight to the old leader may never be answered. Reads whose index
            # a leader already confirmed stay valid and keep waiting for it to be applied.
            self._reads.fail(ProposalDropped("raft: leader changed"), confirmed_too=False)
        if soft.lead == NONE:
            self._leader_known.clear()
        else:
            self._leader_known.set()
        if soft.role is Role.LEADER and self._role is not Role.LEADER:
            self.elections_won += 1
        self._role = soft.role
        if self._role is not Role.LEADER and self._announced_leader:
            self._announce(False)

    def _announce(self, is_leader: bool) -> None:
        self._announced_leader = is_leader
        change = LeadershipChange(is_leader, self._leader_id, self._term)
        for listener in list(self._listeners):
            listener(change)
        for queue in self._subscribers:
            queue.put_nowait(change)

    def _discard_conf_waiter(self, key: bytes, future: asyncio.Future[int]) -> None:
        waiters = self._conf_waiters.get(key, [])
        if future in waiters:
            waiters.remove(future)
        if not waiters:
            self._conf_waiters.pop(key, None)

    def _fail_everything(self, error: BaseException) -> None:
        self._reads.fail(error)
        for _, apply_waiter in self._apply_waiters:
            if not apply_waiter.done():
                apply_waiter.set_exception(error)
        self._apply_waiters = []
        for waiters in self._conf_waiters.values():
            for future in waiters:
                if not future.done():
                    future.set_exception(error)
        self._conf_waiters.clear()
        self._fail_queued_requests(error)
        self._inbox.clear()
        if self._announced_leader:
            self._announce(False)

    def _fail_queued_requests(self, error: BaseException) -> None:
        """Fail the proposals and calls still in the inbox (never stepped, so never written);
        ticks and messages stay."""
        kept: deque[_InboxItem] = deque()
        for item in self._inbox:
            if isinstance(item, _Call | _Proposal):
                if not item.future.done():
                    item.future.set_exception(error)
            else:
                kept.append(item)
        self._inbox = kept
