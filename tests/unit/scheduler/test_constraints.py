"""Constraint parsing (Swarm's error texts) and matching against nodes."""

from __future__ import annotations

import pytest

from shoal.api import errors
from shoal.api.constraints import node_matches, parse_constraints, validate_constraints
from shoal.testing.store_harness import node_object

NODE = node_object(
    "Worker-1",
    role="manager",
    labels={"zone": "East", "Case": "x"},
    engine_labels={"disk": "ssd"},
    arch="x86_64",
    addr="192.168.5.10",
)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("node.role", "constraint expected one operator from ==, !="),
        ("node.role=manager", "constraint expected one operator from ==, !="),
        ("no de==x", "key 'no de' is invalid"),
        ("==x", "key '' is invalid"),
        ("node.labels.a==x>y", "value 'x>y' is invalid"),
        ("node.labels.a==", "value '' is invalid"),
    ],
)
def test_invalid_constraints_use_swarm_wording(expression: str, message: str) -> None:
    with pytest.raises(errors.Unknown) as caught:
        validate_constraints([expression])
    assert str(caught.value) == f"rpc error: code = Unknown desc = {message}"


@pytest.mark.parametrize(
    ("expression", "matches"),
    [
        ("node.hostname==worker-1", True),
        ("node.hostname!=worker-1", False),
        ("NODE.ROLE==manager", True),
        ("node.role==worker", False),
        ("node.labels.zone==east", True),
        ("node.labels.ZONE==east", False),  # label keys keep their case; a missing label is ""
        ("node.labels.missing!=x", True),
        ("engine.labels.disk==SSD", True),
        ("node.platform.os==linux", True),
        ("node.platform.arch==x86_64", True),
        ("node.ip==192.168.5.10", True),
        ("node.ip==192.168.5.0/24", True),
        ("node.ip==10.0.0.0/8", False),
        ("node.ip==not-an-ip", False),
        ("something.else==x", False),
        ("something.else!=x", False),
        ("node.labels.zone==e*", False),  # no globbing
    ],
)
def test_matching(expression: str, matches: bool) -> None:
    assert node_matches(parse_constraints([expression]), NODE) is matches


def test_node_id_and_all_must_match() -> None:
    both = parse_constraints([f"node.id=={NODE['ID']}", "node.labels.zone == east"])
    assert node_matches(both, NODE)
    assert not node_matches(parse_constraints([f"node.id=={NODE['ID']}", "node.role==worker"]), NODE)
