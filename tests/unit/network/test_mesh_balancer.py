from __future__ import annotations

from shoal.network.mesh.balancer import RoundRobin
from shoal.network.mesh.state import Backend

A, B, C, D = (Backend(f"10.0.0.{i}", 80) for i in range(2, 6))


def test_each_new_connection_starts_one_further_and_falls_back_through_the_rest() -> None:
    rr = RoundRobin([A, B, C])
    assert [rr.attempt_order() for _ in range(4)] == [[A, B, C], [B, C, A], [C, A, B], [A, B, C]]


def test_no_backends_means_nothing_to_try() -> None:
    assert RoundRobin().attempt_order() == []


def test_the_turn_survives_a_change_that_keeps_the_next_backend() -> None:
    rr = RoundRobin([A, B, C])
    rr.attempt_order()  # A served; B is next
    rr.set_backends([B, C, D])
    assert rr.attempt_order()[0] == B


def test_the_turn_restarts_when_the_next_backend_goes() -> None:
    rr = RoundRobin([A, B, C])
    rr.attempt_order()
    rr.set_backends([C, D])
    assert [rr.attempt_order()[0] for _ in range(3)] == [C, D, C]
