"""A tiny command language for driving RawNodes step by step, for golden-file tests.

Each command prints what happened (raft's own log lines, Ready batches, messages) so
that a test file reads as a transcript. Commands:

    add-nodes N [prevote] [checkquorum]   create N nodes (the first call bootstraps them)
    campaign ID                           start an election on ID
    propose ID DATA                       propose a normal entry
    propose-conf-change ID add|remove|update NODE [CONTEXT]
    read-index ID CTX                     ask for a linearizable read
    transfer-leader FROM TO               ask leader FROM to hand over to TO
    tick-heartbeat ID / tick-election ID  tick heartbeat_tick / election_tick times
    process-ready ID...                   handle one Ready on each node
    deliver-msgs ID...                    step every queued message into each node
    stabilize                             process-ready + deliver-msgs until quiet
    partition A B / C D                   messages only flow within a side
    heal                                  remove the partition
    compact ID                            snapshot at the applied index and compact the log
    raft-state                            role, term and leader of every node
    raft-log ID                           the log of one node
    status ID                             progress as the leader sees it
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from shoal.raft.config import Config
from shoal.raft.errors import RaftError
from shoal.raft.rawnode import RawNode
from shoal.raft.storage import MemoryStorage
from shoal.raft.types import (
    ConfChange,
    ConfChangeType,
    Entry,
    EntryType,
    Message,
    MessageType,
    Ready,
)


class NoJitter(random.Random):
    """Election timeouts of exactly election_tick, so scripts are easy to follow."""

    def randrange(self, *args: object, **kwargs: object) -> int:  # type: ignore[override]
        return 0


class TranscriptLogger:
    def __init__(self, out: list[str]) -> None:
        self.out = out

    def info(self, msg: str) -> None:
        self.out.append(f"INFO {msg}")

    def warning(self, msg: str) -> None:
        self.out.append(f"WARN {msg}")


def fmt_entry(e: Entry) -> str:
    if e.type is EntryType.CONF_CHANGE:
        cc = ConfChange.decode(e.data)
        body = f"{cc.type.name} {cc.node_id}"
        if cc.context:
            body += f" {cc.context.decode()}"
        return f"{e.term}/{e.index} ConfChange {body}"
    return f"{e.term}/{e.index} {e.data.decode()!r}"


def fmt_msg(m: Message) -> str:
    parts = [f"{m.frm}->{m.to} {m.type.name} Term:{m.term}"]
    if m.type in (MessageType.APP, MessageType.VOTE, MessageType.PRE_VOTE):
        parts.append(f"Log:{m.log_term}/{m.index}")
    elif m.index:
        parts.append(f"Index:{m.index}")
    if m.commit:
        parts.append(f"Commit:{m.commit}")
    if m.reject and m.type is MessageType.APP_RESP:
        parts.append(f"Rejected (Hint: {m.reject_hint}/{m.log_term})")
    elif m.reject:
        parts.append("Rejected")
    if m.context:
        parts.append(f"Context:{m.context.decode(errors='replace')}")
    if m.entries:
        parts.append("Entries:[" + ", ".join(fmt_entry(e) for e in m.entries) + "]")
    if m.snapshot is not None:
        meta = m.snapshot.metadata
        parts.append(f"Snapshot: Index:{meta.index} Term:{meta.term} Voters:{list(meta.conf_state.voters)}")
    return " ".join(parts)


@dataclass
class EnvNode:
    raw: RawNode
    storage: MemoryStorage
    applied: list[str] = field(default_factory=list)


class InteractionEnv:
    def __init__(self) -> None:
        self.out: list[str] = []
        self.nodes: dict[int, EnvNode] = {}
        self.inbox: dict[int, list[Message]] = {}
        self.side: dict[int, int] = {}
        self.election_tick = 10
        self.heartbeat_tick = 1

    # --- plumbing --------------------------------------------------------------------

    def run(self, command: str) -> str:
        self.out = []
        words = command.split()
        name, args = words[0], words[1:]
        handler = getattr(self, "cmd_" + name.replace("-", "_"), None)
        if handler is None:
            raise ValueError(f"unknown command {name!r}")
        for node in self.nodes.values():
            node.raw.raft.logger = TranscriptLogger(self.out)
        handler(args)
        return "\n".join(self.out) if self.out else "ok"

    def node(self, word: str) -> EnvNode:
        return self.nodes[int(word)]

    def connected(self, a: int, b: int) -> bool:
        return not self.side or self.side.get(a, -1) == self.side.get(b, -1)

    # --- commands ----------------------------------------------------------------------

    def cmd_add_nodes(self, args: list[str]) -> None:
        count = int(args[0])
        first = len(self.nodes) + 1
        ids = list(range(first, first + count))
        bootstrap = not self.nodes
        for node_id in ids:
            storage = MemoryStorage()
            config = Config(
                id=node_id,
                storage=storage,
                election_tick=self.election_tick,
                heartbeat_tick=self.heartbeat_tick,
                pre_vote="prevote" in args,
                check_quorum="checkquorum" in args,
                rand=NoJitter(),
                logger=TranscriptLogger(self.out),
            )
            raw = RawNode(config)
            if bootstrap:
                raw.bootstrap(ids)
            self.nodes[node_id] = EnvNode(raw, storage)
            self.inbox[node_id] = []
            # Apply the bootstrap entries quietly: every script starts from a running group.
            if raw.has_ready():
                self._handle_ready(node_id, raw.ready(), quiet=True)
        self.out.clear()  # construction chatter ("became follower at term 0") says nothing
        flags = [flag for flag in ("prevote", "checkquorum") if flag in args]
        role = f"founding voters {ids}" if bootstrap else f"empty, not yet members: {ids}"
        self.out.append(f"added {count} node(s), {role}" + (f" ({', '.join(flags)})" if flags else ""))

    def cmd_campaign(self, args: list[str]) -> None:
        self.node(args[0]).raw.campaign()

    def cmd_propose(self, args: list[str]) -> None:
        try:
            self.node(args[0]).raw.propose(" ".join(args[1:]).encode())
        except RaftError as exc:
            self.out.append(f"error: {type(exc).__name__}: {exc}")

    def cmd_propose_conf_change(self, args: list[str]) -> None:
        kind = {"add": ConfChangeType.ADD_NODE, "remove": ConfChangeType.REMOVE_NODE}.get(
            args[1], ConfChangeType.UPDATE_NODE
        )
        context = args[3].encode() if len(args) > 3 else b""
        try:
            self.node(args[0]).raw.propose_conf_change(ConfChange(kind, int(args[2]), context))
        except RaftError as exc:
            self.out.append(f"error: {type(exc).__name__}: {exc}")

    def cmd_read_index(self, args: list[str]) -> None:
        try:
            self.node(args[0]).raw.read_index(args[1].encode())
        except RaftError as exc:
            self.out.append(f"error: {type(exc).__name__}: {exc}")

    def cmd_transfer_leader(self, args: list[str]) -> None:
        self.node(args[0]).raw.transfer_leader(int(args[1]))

    def cmd_tick_heartbeat(self, args: list[str]) -> None:
        for _ in range(self.heartbeat_tick):
            self.node(args[0]).raw.tick()

    def cmd_tick_election(self, args: list[str]) -> None:
        for _ in range(self.election_tick):
            self.node(args[0]).raw.tick()

    def cmd_process_ready(self, args: list[str]) -> None:
        for word in args:
            node_id = int(word)
            raw = self.nodes[node_id].raw
            if raw.has_ready():
                self._handle_ready(node_id, raw.ready(), quiet=False)

    def cmd_deliver_msgs(self, args: list[str]) -> None:
        for word in args:
            self._deliver(int(word))

    def cmd_stabilize(self, args: list[str]) -> None:
        ids = [int(a) for a in args] or sorted(self.nodes)
        while True:
            busy = False
            for node_id in ids:
                raw = self.nodes[node_id].raw
                if raw.has_ready():
                    busy = True
                    self._handle_ready(node_id, raw.ready(), quiet=False)
            for node_id in ids:
                if self.inbox[node_id]:
                    busy = True
                    self._deliver(node_id)
            if not busy:
                return

    def cmd_partition(self, args: list[str]) -> None:
        self.side = {}
        side = 0
        for word in args:
            if word == "/":
                side += 1
            else:
                self.side[int(word)] = side

    def cmd_heal(self, args: list[str]) -> None:
        self.side = {}

    def cmd_compact(self, args: list[str]) -> None:
        node = self.node(args[0])
        applied = node.raw.raft.log.applied
        node.storage.create_snapshot(applied, node.raw.conf_state(), "|".join(node.applied).encode())
        node.storage.compact(applied)
        self.out.append(f"snapshot at {applied}; log now starts at {node.storage.first_index()}")

    def cmd_raft_state(self, args: list[str]) -> None:
        for node_id, node in sorted(self.nodes.items()):
            st = node.raw.status()
            hs = st.hard_state
            self.out.append(
                f"{node_id}: {st.soft_state.role.name} term={hs.term} vote={hs.vote} commit={hs.commit} "
                f"lead={st.soft_state.lead} applied={st.applied} voters={list(st.conf_state.voters)}"
            )

    def cmd_raft_log(self, args: list[str]) -> None:
        log = self.node(args[0]).raw.raft.log
        entries = log.all_entries()
        if not entries:
            self.out.append(f"log is empty: first index={log.first_index()}, last index={log.last_index()}")
        self.out.extend(fmt_entry(e) for e in entries)

    def cmd_status(self, args: list[str]) -> None:
        st = self.node(args[0]).raw.status()
        if not st.progress:
            self.out.append(f"{st.id} is not the leader")
        for node_id, text in sorted(st.progress.items()):
            self.out.append(f"{node_id}: {text}")

    # --- Ready handling ------------------------------------------------------------------

    def _handle_ready(self, node_id: int, rd: Ready, quiet: bool) -> None:
        node = self.nodes[node_id]
        if not quiet:
            self._print_ready(node_id, rd)
        if rd.snapshot is not None:
            node.storage.apply_snapshot(rd.snapshot)
            node.applied = [a for a in rd.snapshot.data.decode().split("|") if a]
        if rd.entries:
            node.storage.append(list(rd.entries))
        if rd.hard_state is not None:
            node.storage.set_hard_state(rd.hard_state)
        for m in rd.messages:
            if self.connected(m.frm, m.to) and m.to in self.inbox:
                self.inbox[m.to].append(m)
        for e in rd.committed_entries:
            if e.type is EntryType.NORMAL and e.data:
                node.applied.append(e.data.decode())
        node.raw.advance(rd)

    def _print_ready(self, node_id: int, rd: Ready) -> None:
        out = self.out
        out.append(f"> {node_id} handling Ready")
        out.append(f"  Ready MustSync={str(rd.must_sync).lower()}:")
        if rd.soft_state is not None:
            out.append(f"  Lead:{rd.soft_state.lead} State:{rd.soft_state.role.name}")
        if rd.hard_state is not None:
            hs = rd.hard_state
            out.append(f"  HardState Term:{hs.term} Vote:{hs.vote} Commit:{hs.commit}")
        if rd.snapshot is not None:
            meta = rd.snapshot.metadata
            out.append(f"  Snapshot Index:{meta.index} Term:{meta.term} Voters:{list(meta.conf_state.voters)}")
        if rd.entries:
            out.append("  Entries:")
            out.extend(f"  {fmt_entry(e)}" for e in rd.entries)
        if rd.committed_entries:
            out.append("  CommittedEntries:")
            out.extend(f"  {fmt_entry(e)}" for e in rd.committed_entries)
        if rd.read_states:
            out.append("  ReadStates:")
            out.extend(f"  Index:{rs.index} Context:{rs.request_ctx.decode()}" for rs in rd.read_states)
        if rd.messages:
            out.append("  Messages:")
            for m in rd.messages:
                lost = "" if self.connected(m.frm, m.to) and m.to in self.inbox else " (dropped)"
                out.append(f"  {fmt_msg(m)}{lost}")

    def _deliver(self, node_id: int) -> None:
        msgs, self.inbox[node_id] = self.inbox[node_id], []
        raw = self.nodes[node_id].raw
        for m in msgs:
            self.out.append(f"{fmt_msg(m)}")
            try:
                raw.step(m)
            except RaftError as exc:
                self.out.append(f"  error: {type(exc).__name__}: {exc}")
            if m.type is MessageType.SNAP and m.frm in self.nodes:
                # The transport reports a delivered snapshot back to its sender.
                self.nodes[m.frm].raw.report_snapshot(node_id, True)
