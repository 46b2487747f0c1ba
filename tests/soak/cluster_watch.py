"""What the cluster soaks read from the daemons: elections and Down verdicts, counted from each shoald's
log (exact, where polling `docker node ls` could miss a node that went Down and came back between two
polls), and the soak's length.

- A Raft term change is logged by every member as `raft <id>: term <N>` (manager/raftnode.py); a term
  that grows during a soak means an election was held (pre-vote keeps a lone disrupted member from
  raising it without one).
- A Down verdict is logged by the leader's dispatcher as `nodes down after missed heartbeats: <ids>`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

TERM_LINE = re.compile(r"raft [0-9a-f]+: term (\d+)")
DOWN_LINE = "nodes down after missed heartbeats"
MINUTES_VARIABLE = "SHOAL_SOAK_MINUTES"
DEFAULT_MINUTES = 10.0


def soak_seconds(environ: dict[str, str] | None = None) -> float:
    """How long each soak lasts: SHOAL_SOAK_MINUTES (a positive number), 10 minutes by default."""
    raw = (os.environ if environ is None else environ).get(MINUTES_VARIABLE, "")
    if not raw:
        return DEFAULT_MINUTES * 60
    minutes = float(raw)
    if minutes <= 0:
        raise ValueError(f"{MINUTES_VARIABLE} must be a positive number of minutes, not {raw!r}")
    return minutes * 60


def highest_term(log_text: str) -> int:
    """The newest term this member logged (0 when it logged none)."""
    return max((int(found.group(1)) for found in TERM_LINE.finditer(log_text)), default=0)


def down_verdicts(log_text: str) -> list[str]:
    """Every line in which this daemon's dispatcher marked nodes Down."""
    return [line for line in log_text.splitlines() if DOWN_LINE in line]


def read_log(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""
