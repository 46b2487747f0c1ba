"""DESIGN.md's layering rules, checked on the import statements of every module under src/shoal."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "shoal"
MANAGER_SIDE = {"store", "raft", "manager", "orchestrator", "scheduler", "allocator", "dispatcher", "controlapi",
                "ca", "node"}
STDLIB = set(sys.stdlib_module_names)

# package -> (allowed shoal packages, allowed third-party top-level modules); None means unrestricted.
RULES: dict[str, tuple[set[str], set[str] | None]] = {
    "base": (set(), set()),
    "api": ({"base"}, set()),
    "raft": (set(), set()),
    "store": ({"api", "base"}, set()),
    "engineapi": ({"api", "base"}, {"aiohttp", "multidict", "yarl"}),
    "agent": ({"api", "base", "executor", "network"}, None),
    "executor": ({"api", "base", "network"}, None),
    "network": ({"api", "base"}, None),
    "demo": (set(), set()),
    "orchestrator": ({"api", "base", "store", "scheduler", "allocator"}, None),
    "scheduler": ({"api", "base", "store", "allocator"}, None),
    "allocator": ({"api", "base", "store"}, None),
    "dispatcher": ({"api", "base", "store", "rpc"}, None),
    "ca": ({"api", "base", "rpc"}, None),
    # controlapi may call the components' pure helpers (constraint syntax, port conflicts, task dirtiness),
    # never their loops.
    "controlapi": ({"api", "base", "store", "ca", "orchestrator", "scheduler", "allocator"}, None),
    "manager": ({"api", "base", "raft", "store", "rpc", "ca"}, None),
    "cli": ({"api", "base"}, None),
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py"))


@pytest.mark.parametrize("package", sorted(RULES))
def test_package_imports_follow_the_rules(package: str) -> None:
    allowed_shoal, allowed_third_party = RULES[package]
    problems = []
    for path in sorted((SRC / package).rglob("*.py")):
        for name in imports_of(path):
            top = name.split(".")[0]
            if top == "shoal":
                parts = name.split(".")
                if len(parts) < 2 or parts[1] == package:
                    continue
                if parts[1] not in allowed_shoal:
                    problems.append(f"{path.relative_to(SRC)} imports {name}")
            elif top not in STDLIB and allowed_third_party is not None and top not in allowed_third_party:
                problems.append(f"{path.relative_to(SRC)} imports third-party {name}")
    assert not problems, "\n".join(problems)


def test_no_production_module_imports_testing() -> None:
    offenders = [
        str(path.relative_to(SRC))
        for path in modules()
        if "testing" not in path.relative_to(SRC).parts
        and any(name.startswith("shoal.testing") for name in imports_of(path))
    ]
    assert not offenders


def test_agent_and_executor_stay_off_the_manager_side() -> None:
    for package in ("agent", "executor"):
        for path in (SRC / package).rglob("*.py"):
            for name in imports_of(path):
                parts = name.split(".")
                if parts[0] == "shoal" and len(parts) > 1:
                    assert parts[1] not in MANAGER_SIDE, f"{path.relative_to(SRC)} imports {name}"
