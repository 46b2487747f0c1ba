"""Per-follower progress and the inflight window."""

from __future__ import annotations

import pytest

from shoal.raft.progress import Inflights, Progress, ProgressState


def test_inflights_bounded_and_freed_in_order() -> None:
    inf = Inflights(3)
    for i in (5, 7, 9):
        inf.add(i)
    assert inf.full()
    with pytest.raises(RuntimeError):
        inf.add(10)
    inf.free_le(7)
    assert inf.count() == 1 and not inf.full()
    inf.free_first_one()
    assert inf.count() == 0


def test_probe_pauses_after_one_send_and_resumes_on_update() -> None:
    pr = Progress(next_index=5, max_inflight=4)
    assert not pr.is_paused()
    pr.probe_sent = True
    assert pr.is_paused()
    assert pr.maybe_update(4)
    assert not pr.is_paused()
    assert pr.next == 5 and pr.match == 4


def test_maybe_update_ignores_stale_acks() -> None:
    pr = Progress(next_index=6, max_inflight=4, match=5)
    assert not pr.maybe_update(3)
    assert pr.match == 5 and pr.next == 6


def test_replicate_paused_only_when_window_full() -> None:
    pr = Progress(next_index=1, max_inflight=2)
    pr.become_replicate()
    pr.inflights.add(1)
    assert not pr.is_paused()
    pr.inflights.add(2)
    assert pr.is_paused()


def test_snapshot_state_is_always_paused_and_probe_resumes_after_it() -> None:
    pr = Progress(next_index=3, max_inflight=2, match=1)
    pr.become_snapshot(10)
    assert pr.is_paused() and pr.state is ProgressState.SNAPSHOT
    pr.become_probe()
    assert pr.state is ProgressState.PROBE and pr.next == 11


@pytest.mark.parametrize(
    ("state", "match", "next_", "rejected", "hint", "ok", "want_next"),
    [
        (ProgressState.REPLICATE, 5, 10, 5, 5, False, 10),  # stale: rejected <= match
        (ProgressState.REPLICATE, 5, 10, 9, 9, True, 6),  # back to match + 1
        (ProgressState.PROBE, 0, 10, 5, 5, False, 10),  # stale: not our last probe
        (ProgressState.PROBE, 0, 10, 9, 9, True, 9),
        (ProgressState.PROBE, 0, 10, 9, 2, True, 3),  # the hint skips further back
        (ProgressState.PROBE, 0, 2, 1, 0, True, 1),  # never below 1
    ],
)
def test_maybe_decr_to(
    state: ProgressState, match: int, next_: int, rejected: int, hint: int, ok: bool, want_next: int
) -> None:
    pr = Progress(next_index=next_, max_inflight=4, match=match)
    pr.state = state
    assert pr.maybe_decr_to(rejected, hint) is ok
    assert pr.next == want_next
