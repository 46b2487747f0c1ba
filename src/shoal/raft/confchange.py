"""Single-member configuration changes as pure functions over a ConfState."""

from __future__ import annotations

from collections.abc import Collection

from shoal.raft.quorum import quorum_size
from shoal.raft.types import ConfChange, ConfChangeType, ConfState


def refusal_reason(cc: ConfChange, conf: ConfState, reachable: Collection[int]) -> str | None:
    """Why ``cc`` must not be proposed against ``conf``, or None if it may.

    ``reachable`` holds the voters the leader heard from recently (itself included).
    """
    voters = set(conf.voters)
    if cc.node_id <= 0:
        return f"invalid node id {cc.node_id}"
    if cc.type is ConfChangeType.ADD_NODE:
        if cc.node_id in conf.removed:
            return f"node {cc.node_id} was removed and its id cannot be reused"
        if cc.node_id in voters:
            return f"node {cc.node_id} is already a member"
        return None
    if cc.type is ConfChangeType.UPDATE_NODE:
        if cc.node_id not in voters:
            return f"node {cc.node_id} is not a member"
        return None
    # REMOVE_NODE
    if cc.node_id not in voters:
        return f"node {cc.node_id} is not a member"
    remaining = voters - {cc.node_id}
    if not remaining:
        return "cannot remove the last member"
    reachable_remaining = len(remaining & set(reachable))
    if reachable_remaining < quorum_size(len(remaining)):
        return (
            f"member {cc.node_id} cannot be removed: only {reachable_remaining} of the "
            f"{len(remaining)} remaining members are reachable, loss of quorum"
        )
    return None


def apply(conf: ConfState, cc: ConfChange) -> ConfState:
    """The configuration after ``cc``. Re-adding a removed id or a member changes nothing,
    so replaying committed entries (after a restart) is harmless."""
    voters = set(conf.voters)
    removed = set(conf.removed)
    if cc.type is ConfChangeType.ADD_NODE:
        if cc.node_id in removed:
            return conf
        voters.add(cc.node_id)
    elif cc.type is ConfChangeType.REMOVE_NODE:
        voters.discard(cc.node_id)
        removed.add(cc.node_id)
    return ConfState(tuple(sorted(voters)), conf.learners, tuple(sorted(removed)))
