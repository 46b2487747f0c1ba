"""Known raft bugs, each re-introduced into the core for the duration of a ``with`` block.

The simulation (``shoal.testing.raftsim``) and the unit tests must catch every one of
them; ``python -m shoal.testing.raftsim --mutations`` shows which seeds do. A mutation
patches a class attribute and restores it on exit, so production code carries no hooks.
Patches are process-wide: never run simulations in threads while one is active.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from shoal.raft.core import Raft
from shoal.raft.log import RaftLog
from shoal.raft.rawnode import RawNode
from shoal.raft.types import Entry, Message, Ready


@contextlib.contextmanager
def _patched(owner: type, name: str, replacement: Callable[..., Any]) -> Iterator[None]:
    original = owner.__dict__[name]
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, original)


def vote_not_synced() -> contextlib.AbstractContextManager[None]:
    """A Ready whose only durable change is the vote does not ask for an fsync."""
    original = RawNode.ready

    def ready(self: RawNode) -> Ready:
        prev = self._prev_hard
        rd = original(self)
        term_moved = rd.hard_state is not None and rd.hard_state.term != prev.term
        if rd.must_sync and not rd.entries and rd.snapshot is None and not term_moved:
            rd = dataclasses.replace(rd, must_sync=False)
            self._outstanding = rd
        return rd

    return _patched(RawNode, "ready", ready)


def commit_by_counting() -> contextlib.AbstractContextManager[None]:
    """The leader commits whatever a quorum holds, even an entry of an earlier term
    (the raft paper's figure 8)."""

    def maybe_commit(self: Raft) -> bool:
        index = self.trk.committed()
        if index > self.log.committed:
            self.log.commit_to(index)
            return True
        return False

    return _patched(Raft, "maybe_commit", maybe_commit)


def concurrent_conf_changes() -> contextlib.AbstractContextManager[None]:
    """The leader accepts a configuration change while an earlier one is not yet applied,
    so members can sit two changes apart and form disjoint majorities."""
    original = Raft._leader_propose

    def leader_propose(self: Raft, m: Message) -> None:
        self.pending_conf_index = 0
        original(self, m)

    return _patched(Raft, "_leader_propose", leader_propose)


def commit_past_new_entries() -> contextlib.AbstractContextManager[None]:
    """A follower takes the leader's commit index bounded only by its own last index,
    not by the last entry this append confirmed: a stale suffix gets committed."""

    def maybe_append(self: RaftLog, index: int, log_term: int, committed: int, entries: Sequence[Entry]) -> int | None:
        if not self.match_term(index, log_term):
            return None
        conflict = self.find_conflict(entries)
        if conflict:
            if conflict <= self.committed:
                raise RuntimeError(f"entry {conflict} conflicts with committed entry (committed {self.committed})")
            self.append(entries[conflict - (index + 1) :])
        self.commit_to(min(committed, self.last_index()))
        return index + len(entries)

    return _patched(RaftLog, "maybe_append", maybe_append)


MUTATIONS: dict[str, Callable[[], contextlib.AbstractContextManager[None]]] = {
    "vote-not-synced": vote_not_synced,
    "commit-by-counting": commit_by_counting,
    "concurrent-conf-changes": concurrent_conf_changes,
    "commit-past-new-entries": commit_past_new_entries,
}
"""Every mutation by name; each must be caught within the default seeds."""
