from __future__ import annotations

import pytest

from shoal.network.mesh.chains import ChainNames, instance_tag
from shoal.network.mesh.state import (
    Backend,
    InvalidMeshState,
    PublishedPort,
    ingress_ports,
    mesh_state,
    normalize,
)

A, B = Backend("10.0.0.2", 80), Backend("10.0.0.3", 80)


def test_normalize_sorts_and_deduplicates_backends() -> None:
    assert normalize({PublishedPort(80): [B, A, B]}) == {PublishedPort(80): (A, B)}


def test_ingress_ports_leave_host_mode_ports_to_the_workload() -> None:
    state = {PublishedPort(80): [A], PublishedPort(81, mode="host"): [B]}
    assert ingress_ports(state) == {PublishedPort(80): (A,)}


def test_tcp_and_udp_may_share_a_number_but_modes_may_not() -> None:
    normalize({PublishedPort(53): [A], PublishedPort(53, "udp"): [A]})
    with pytest.raises(InvalidMeshState, match="both as host and ingress"):
        normalize({PublishedPort(53): [A], PublishedPort(53, mode="host"): [A]})


@pytest.mark.parametrize(
    "build",
    [
        lambda: PublishedPort(0),
        lambda: PublishedPort(70000),
        lambda: PublishedPort(80, "sctp"),  # type: ignore[arg-type]
        lambda: PublishedPort(80, mode="global"),  # type: ignore[arg-type]
        lambda: Backend("not-an-ip", 80),
        lambda: Backend("fd00::1", 80),
        lambda: Backend("10.0.0.1", 0),
    ],
)
def test_invalid_values_are_refused(build: object) -> None:
    with pytest.raises(InvalidMeshState):
        build()  # type: ignore[operator]


def test_mesh_state_merges_repeated_ports() -> None:
    merged = mesh_state([(PublishedPort(80), [A]), (PublishedPort(80), [B])])
    assert merged == {PublishedPort(80): [A, B]}


def test_instance_tags_are_short_chain_safe_and_distinct() -> None:
    assert instance_tag("node1") == "NODE1"
    long_a, long_b = instance_tag("manager-0.example.org"), instance_tag("manager-1.example.org")
    assert long_a != long_b
    assert all(len(t) <= 10 and t.isalnum() for t in (long_a, long_b))
    assert instance_tag("a-b") != instance_tag("ab")


def test_longest_chain_name_fits_iptables_limit() -> None:
    names = ChainNames.for_instance("some-very-long-instance-name")
    longest = names.port_chain(PublishedPort(65535, "udp"))
    assert len(longest) <= 28
    assert names.owns(longest) and names.owns(names.mesh)
    assert not ChainNames.for_instance("other").owns(longest)
