"""The log reading the cluster soaks rely on (runs in the default suite: no cluster needed)."""

from __future__ import annotations

import pytest

from .cluster_watch import down_verdicts, highest_term, soak_seconds

LOG = """\
2026-12-03 08:05:42,387 INFO shoal.raft: 5136843107182783019 became follower at term 0
2026-12-03 08:05:42,388 INFO shoal.manager.raftnode: raft 4749bb96fe8b2a2b: term 1
2026-12-03 08:05:42,392 INFO shoal.manager.raftnode: raft 4749bb96fe8b2a2b: term 12
2026-12-03 08:05:43,001 INFO shoal.raft: 5136843107182783019 became leader at term 13
2026-12-03 08:06:01,000 WARNING shoal.dispatcher.dispatcher: nodes down after missed heartbeats: abc, def
"""


def test_the_highest_logged_term_is_read_from_the_raftnode_lines_only() -> None:
    assert highest_term(LOG) == 12
    assert highest_term("") == 0


def test_down_verdicts_are_the_dispatchers_lines() -> None:
    assert down_verdicts(LOG) == [LOG.splitlines()[-1]]
    assert down_verdicts(LOG.replace("nodes down", "nodes up")) == []


def test_soak_length_comes_from_the_environment() -> None:
    assert soak_seconds({}) == 600
    assert soak_seconds({"SHOAL_SOAK_MINUTES": "2"}) == 120
    with pytest.raises(ValueError, match="positive"):
        soak_seconds({"SHOAL_SOAK_MINUTES": "0"})
