"""Placement constraints (`node.labels.zone==east`): parsing with Swarm's error texts, and matching
against a node. Values compare case-insensitively and exactly (no globbing, as Swarm); label keys keep
their case. All constraints of a task must match."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from shoal.api import errors
from shoal.api.objects import Obj, dig

_OPERATORS = ("==", "!=")
_KEY = re.compile(r"^[a-z_][a-z0-9\-_.]+$", re.IGNORECASE)
# Letters, digits, space and a few punctuation marks; nothing that looks like another operator.
_VALUE = re.compile(r"^[a-z0-9:\-_\s.*()?+\[\]\\^$|/]+$", re.IGNORECASE)
NODE_LABEL_PREFIX = "node.labels."
ENGINE_LABEL_PREFIX = "engine.labels."


@dataclass(frozen=True, slots=True)
class Constraint:
    key: str
    equal: bool  # True for ==, False for !=
    value: str

    def matches(self, node: Obj) -> bool:
        found = _node_value(node, self.key)
        if found is None:
            return False  # an unknown key never matches, whatever the operator
        if self.key.lower() == "node.ip":
            hit = _ip_matches(found, self.value)
        else:
            hit = found.casefold() == self.value.casefold()
        return hit if self.equal else not hit


def parse_constraints(expressions: Iterable[str]) -> list[Constraint]:
    """Parse `key==value` / `key!=value` strings; ValueError carries Swarm's message."""
    parsed: list[Constraint] = []
    for expression in expressions:
        for operator in _OPERATORS:
            if operator not in expression:
                continue
            key, value = (part.strip() for part in expression.split(operator, 1))
            if not _KEY.match(key):
                raise ValueError(f"key '{key}' is invalid")
            if not _VALUE.match(value):
                raise ValueError(f"value '{value}' is invalid")
            parsed.append(Constraint(key, operator == "==", value))
            break
        else:
            raise ValueError("constraint expected one operator from ==, !=")
    return parsed


def validate_constraints(expressions: Iterable[str]) -> None:
    """For controlapi, on service create/update. swarmkit returns the parse error unwrapped, so the
    client sees gRPC code Unknown (HTTP 500): `rpc error: code = Unknown desc = key 'x y' is invalid`."""
    try:
        parse_constraints(expressions)
    except ValueError as exc:
        raise errors.Unknown(str(exc), grpc=True) from exc


def task_constraints(task_spec: Obj | None) -> list[Constraint]:
    """The constraints of a task spec; an unparseable list (validation missed it) matches no node."""
    expressions = dig(task_spec or {}, "Placement", "Constraints", default=[])
    try:
        return parse_constraints(expressions)
    except ValueError:
        return [Constraint("node.id", True, "\x00unmatchable")]


def node_matches(constraints: Iterable[Constraint], node: Obj) -> bool:
    return all(constraint.matches(node) for constraint in constraints)


def _node_value(node: Obj, key: str) -> str | None:
    lower = key.lower()
    if lower == "node.id":
        return str(node.get("ID", ""))
    if lower == "node.hostname":
        return str(dig(node, "Description", "Hostname", default=""))
    if lower == "node.ip":
        return str(dig(node, "Status", "Addr", default=""))
    if lower == "node.role":
        return str(dig(node, "Spec", "Role", default=""))
    if lower == "node.platform.os":
        return str(dig(node, "Description", "Platform", "OS", default=""))
    if lower == "node.platform.arch":
        return str(dig(node, "Description", "Platform", "Architecture", default=""))
    if lower.startswith(NODE_LABEL_PREFIX):
        labels = dig(node, "Spec", "Labels", default={})
        return str(labels.get(key[len(NODE_LABEL_PREFIX) :], ""))
    if lower.startswith(ENGINE_LABEL_PREFIX):
        labels = dig(node, "Description", "Engine", "Labels", default={})
        return str(labels.get(key[len(ENGINE_LABEL_PREFIX) :], ""))
    return None


def _ip_matches(address: str, wanted: str) -> bool:
    """node.ip takes an address or a CIDR; a malformed value never matches."""
    try:
        node_ip = ipaddress.ip_address(address)
        if "/" in wanted:
            return node_ip in ipaddress.ip_network(wanted, strict=False)
        return node_ip == ipaddress.ip_address(wanted)
    except ValueError:
        return False
