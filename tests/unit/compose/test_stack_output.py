"""What `shoal stack ls|ps` print, cell by cell, as the docker CLI prints them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shoal.cli.format import state_since, table

NOW = datetime(2026, 12, 3, 8, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("seconds", "expected"), [
    (0.2, "Running less than a second ago"), (1, "Running 1 second ago"), (7, "Running 7 seconds ago"),
    (70, "Running about a minute ago"), (600, "Running 10 minutes ago"), (5400, "Running about an hour ago"),
])
def test_current_state_lowercases_the_duration(seconds: float, expected: str) -> None:
    stamp = (NOW - timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
    assert state_since("running", stamp, NOW) == expected


def test_tables_pad_columns_to_ten_as_the_cli() -> None:
    """`docker stack ls` in the reference transcript: NAME padded to 10 although "st" is 2 wide."""
    assert table(["NAME", "SERVICES"], [["st", "2"]], min_width=10).splitlines() == ["NAME      SERVICES",
                                                                                   "st        2"]
    assert table(["NAME", "SERVICES"], [["st", "2"]]).splitlines() == ["NAME   SERVICES", "st     2"]
