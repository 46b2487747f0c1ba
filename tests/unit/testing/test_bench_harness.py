"""The benchmark harness's arithmetic (bench/harness.py): the ratios it prints are reference / shoal, the
medians and spreads are of the right side, and the per-round ratios pair the i-th runs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

from harness import Comparison, Spread, poll_until, ratio_table  # after the path insert: bench/ is not a package


def test_spread_is_median_and_range() -> None:
    assert Spread.of([3.0, 1.0, 2.0]) == Spread(2.0, 1.0, 3.0)
    assert Spread.of([1.0, 2.0, 4.0, 10.0]).median == 3.0
    assert Spread(1.234, 1.0, 2.0).show() == "1.23 (1.00-2.00)"
    with pytest.raises(ValueError, match="no samples"):
        Spread.of([])


def test_ratio_is_reference_over_shoal_and_pairs_rounds() -> None:
    row = Comparison("5 replicas", reference=[2.0, 4.0, 3.0], shoal=[1.0, 4.0, 1.0])
    assert row.ratio_of_medians == 3.0  # median 3.0 / median 1.0: above 1, shoal is faster
    assert row.paired_ratios == Spread(2.0, 1.0, 3.0)  # 2/1, 4/4, 3/1


def test_table_shows_each_side_in_its_column() -> None:
    table = ratio_table([Comparison("50 replicas", reference=[8.0, 9.0, 10.0], shoal=[4.0, 4.5, 5.0])], "dockerd")
    header, rule, row = table.splitlines()
    assert header == "| measure | shoal, s | dockerd, s | ratio of medians | per-round ratios |"
    assert rule == "|---|---|---|---|---|"
    assert row == "| 50 replicas | 4.50 (4.00-5.00) | 9.00 (8.00-10.00) | **2.00** | 2.00 (2.00-2.00) |"


def test_poll_until_names_what_it_waited_for() -> None:
    with pytest.raises(TimeoutError, match="never: not reached within 0 s"):
        poll_until(lambda: False, "never", interval=0.001, timeout=0.01)
    calls: list[int] = []
    poll_until(lambda: calls.append(1) is None and len(calls) >= 3, "three calls", interval=0.0)
    assert len(calls) == 3
