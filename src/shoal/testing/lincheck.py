"""A linearizability checker in the style of Wing & Gong, with Lowe's memoization.

A history is a list of operations, each with an invocation time and (unless its outcome
is unknown) a response time and output. The history is linearizable if the operations can
be put in one sequential order that respects real time (an operation that returned before
another was invoked comes first) and in which every output is what the sequential model
gives. Operations whose outcome is unknown (the client gave up) may take effect at any
point after their invocation, or not at all.

The search walks the history's events in time order, tentatively linearizing a pending
call whenever the model accepts it, and backtracks when it reaches a return whose
operation is not yet linearized. ``(linearized set, model state)`` pairs already explored
are remembered, which keeps the search practical. Histories are split per partition
(P-compositionality: e.g. per key of a key-value store) and each part checked alone.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

S = TypeVar("S", bound=Hashable)  # model state
In = TypeVar("In")  # input of an operation
Out = TypeVar("Out")  # output of an operation


@dataclass(frozen=True)
class Operation(Generic[In, Out]):
    """One client operation. ``ret`` is None when the outcome is unknown."""

    client: int
    input: In
    call: int
    ret: int | None
    output: Out | None = None


@dataclass(frozen=True)
class Model(Generic[S, In, Out]):
    """A sequential specification.

    ``step(state, input)`` returns the new state and the output the operation must have.
    ``partition`` splits a history into independently checkable parts (optional).
    """

    init: S
    step: Callable[[S, In], tuple[S, Out]]
    partition: Callable[[Sequence[Operation[In, Out]]], Iterable[Sequence[Operation[In, Out]]]] | None = None


@dataclass
class CheckResult(Generic[In, Out]):
    ok: bool
    failing_part: list[Operation[In, Out]] = field(default_factory=list)
    explored: int = 0


class _Event:
    """A node of the doubly linked list of call/return events."""

    __slots__ = ("is_call", "match", "next", "op_index", "prev")

    def __init__(self, op_index: int, is_call: bool) -> None:
        self.op_index = op_index
        self.is_call = is_call
        self.match: _Event | None = None  # a call's return event
        self.prev: _Event | None = None
        self.next: _Event | None = None


def _build_events(ops: Sequence[Operation[In, Out]]) -> _Event:
    """Events sorted by time; at equal times calls come first (the ops overlap).

    Returns of unknown outcome sort after everything else.
    """
    keyed: list[tuple[float, int, int, _Event]] = []
    calls: dict[int, _Event] = {}
    for i, op in enumerate(ops):
        call = _Event(i, True)
        ret = _Event(i, False)
        call.match = ret
        calls[i] = call
        keyed.append((op.call, 0, i, call))
        keyed.append((float("inf") if op.ret is None else op.ret, 1, i, ret))
    keyed.sort(key=lambda k: (k[0], k[1], k[2]))
    head = _Event(-1, False)
    prev = head
    for *_, event in keyed:
        prev.next = event
        event.prev = prev
        prev = event
    return head


def _lift(call: _Event) -> None:
    """Take a call and its return out of the list."""
    assert call.prev is not None and call.match is not None and call.match.prev is not None
    call.prev.next = call.next
    if call.next is not None:
        call.next.prev = call.prev
    ret = call.match
    ret.prev.next = ret.next  # type: ignore[union-attr]
    if ret.next is not None:
        ret.next.prev = ret.prev


def _unlift(call: _Event) -> None:
    """Put a lifted call and its return back, exactly where they were."""
    ret = call.match
    assert ret is not None and ret.prev is not None and call.prev is not None
    ret.prev.next = ret
    if ret.next is not None:
        ret.next.prev = ret
    call.prev.next = call
    if call.next is not None:
        call.next.prev = call


def check_part(model: Model[S, In, Out], ops: Sequence[Operation[In, Out]], max_explored: int | None = None) -> bool:
    """Whether this one part of a history is linearizable."""
    ok, _ = _search(model, ops, max_explored)
    return ok


def _search(model: Model[S, In, Out], ops: Sequence[Operation[In, Out]], max_explored: int | None) -> tuple[bool, int]:
    head = _build_events(ops)
    state: S = model.init
    linearized = 0
    cache: set[tuple[int, S]] = set()
    stack: list[tuple[_Event, S]] = []
    entry = head.next
    explored = 0
    while head.next is not None:
        assert entry is not None
        op = ops[entry.op_index]
        if entry.is_call:
            explored += 1
            if max_explored is not None and explored > max_explored:
                raise RuntimeError(f"linearizability search gave up after {max_explored} steps")
            new_state, output = model.step(state, op.input)
            if op.ret is None or output == op.output:
                key = (linearized | (1 << entry.op_index), new_state)
                if key not in cache:
                    cache.add(key)
                    stack.append((entry, state))
                    state = new_state
                    linearized = key[0]
                    _lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            if op.ret is None:
                # Only returns of unknown outcome remain: those ops may be dropped.
                return True, explored
            if not stack:
                return False, explored
            call, state = stack.pop()
            linearized &= ~(1 << call.op_index)
            _unlift(call)
            entry = call.next
    return True, explored


def check(
    model: Model[S, In, Out], history: Sequence[Operation[In, Out]], max_explored: int | None = None
) -> CheckResult[In, Out]:
    """Check a whole history; raises RuntimeError if a part needs more than
    ``max_explored`` search steps (an inconclusive answer is not a pass)."""
    parts = list(model.partition(history)) if model.partition is not None else [history]
    explored = 0
    for part in parts:
        ok, n = _search(model, part, max_explored)
        explored += n
        if not ok:
            return CheckResult(False, list(part), explored)
    return CheckResult(True, [], explored)
