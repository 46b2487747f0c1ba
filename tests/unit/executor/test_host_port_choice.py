"""Host-mode ports published as 0 get a free port of this node each, of their protocol, never one another
task of the node was given."""

from __future__ import annotations

import socket

import pytest

from shoal.executor.base import PortSpec, host_mode_unpublished
from shoal.executor.host_port_choice import choose_host_ports


def test_only_host_mode_ports_without_a_number_are_chosen_for() -> None:
    task = {"Endpoint": {"Ports": [
        {"Protocol": "tcp", "TargetPort": 80, "PublishMode": "host"},
        {"Protocol": "udp", "TargetPort": 53, "PublishedPort": 0, "PublishMode": "host"},
        {"Protocol": "tcp", "TargetPort": 81, "PublishedPort": 8081, "PublishMode": "host"},
        {"Protocol": "tcp", "TargetPort": 82, "PublishMode": "ingress"},
    ]}}
    assert host_mode_unpublished(task) == (PortSpec(80, "tcp"), PortSpec(53, "udp"))
    assert host_mode_unpublished({}) == ()


def test_each_port_gets_a_distinct_free_one_of_its_protocol() -> None:
    chosen = choose_host_ports([PortSpec(80), PortSpec(81), PortSpec(53, "udp")], taken=set())
    assert [(b.target, b.protocol) for b in chosen] == [(80, "tcp"), (81, "tcp"), (53, "udp")]
    assert chosen[0].host_port != chosen[1].host_port
    for binding in chosen:
        kind = socket.SOCK_DGRAM if binding.protocol == "udp" else socket.SOCK_STREAM
        with socket.socket(socket.AF_INET, kind) as probe:
            probe.bind(("0.0.0.0", binding.host_port))  # it was free: nothing holds it


def test_a_port_another_task_holds_or_just_given_is_skipped() -> None:
    offers = iter([40001, 40001, 40002, 40001, 40003])  # what the kernel would hand out, in turn
    chosen = choose_host_ports([PortSpec(80), PortSpec(81)], taken={("tcp", 40001)}, pick=lambda _: next(offers))
    assert [b.host_port for b in chosen] == [40002, 40003]
    assert choose_host_ports([PortSpec(53, "udp")], taken={("tcp", 40001)}, pick=lambda _: 40001)[0].host_port == 40001


def test_no_free_port_is_an_error() -> None:
    with pytest.raises(OSError, match="no free tcp host port"):
        choose_host_ports([PortSpec(80)], taken={("tcp", 40001)}, pick=lambda _: 40001)
