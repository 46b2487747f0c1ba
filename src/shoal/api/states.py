"""Task states, ordered as in swarmkit. Observed state only moves forward; desired state is written
by managers and never goes backwards either."""

from __future__ import annotations

NEW = "new"
PENDING = "pending"
ASSIGNED = "assigned"
ACCEPTED = "accepted"
PREPARING = "preparing"
READY = "ready"
STARTING = "starting"
RUNNING = "running"
COMPLETE = "complete"
SHUTDOWN = "shutdown"
FAILED = "failed"
REJECTED = "rejected"
REMOVE = "remove"
ORPHANED = "orphaned"

# "allocated" sits between new and pending in swarmkit; Docker's API shows it, shoal skips it.
ORDER: tuple[str, ...] = (
    NEW,
    "allocated",
    PENDING,
    ASSIGNED,
    ACCEPTED,
    PREPARING,
    READY,
    STARTING,
    RUNNING,
    COMPLETE,
    SHUTDOWN,
    FAILED,
    REJECTED,
    REMOVE,
    ORPHANED,
)
_RANK = {state: rank for rank, state in enumerate(ORDER)}

TERMINAL: frozenset[str] = frozenset({COMPLETE, SHUTDOWN, FAILED, REJECTED, REMOVE, ORPHANED})


def rank(state: str) -> int:
    return _RANK[state]


def is_terminal(state: str) -> bool:
    """True once a task can never run again (complete or later)."""
    return _RANK[state] >= _RANK[COMPLETE]


def moves_forward(current: str, new: str) -> bool:
    return _RANK[new] > _RANK[current]


def is_valid(state: str) -> bool:
    return state in _RANK
