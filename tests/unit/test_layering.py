"""DESIGN.md's layering rules, checked on the import statements of every module under src/shoal."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "shoal"
MANAGER_SIDE = {"store", "planner", "raft", "manager", "orchestrator", "scheduler", "allocator", "dispatcher",
                "controlapi", "ca", "node"}
STDLIB = set(sys.stdlib_module_names)

# DESIGN.md's package table: package -> (shoal packages or modules it may import, allowed third-party
# top-level modules; None means unrestricted). The manager components (orchestrator, scheduler,
# allocator) may import the planner runtime they all run in, which the table lists above them.
RULES: dict[str, tuple[set[str], set[str] | None]] = {
    "base": (set(), set()),
    "api": ({"base"}, set()),
    "raft": (set(), set()),
    "store": ({"api", "base"}, set()),
    "planner": ({"api", "base", "store"}, set()),
    "rpc": ({"api", "base"}, None),
    "ca": ({"api", "base", "rpc"}, None),
    "manager": ({"api", "base", "raft", "store", "rpc", "ca"}, None),
    "orchestrator": ({"api", "base", "store", "planner"}, None),
    "scheduler": ({"api", "base", "store", "planner"}, None),
    "allocator": ({"api", "base", "store", "planner"}, None),
    "dispatcher": ({"api", "base", "store", "rpc"}, None),
    # The table gives controlapi no list: it may call the components' pure helpers (constraint syntax,
    # port conflicts, task dirtiness), never their loops.
    "controlapi": ({"api", "base", "store", "ca", "orchestrator", "scheduler", "allocator"}, None),
    # The agent reaches its dispatcher through the cluster port's client (rpc is no manager-side package).
    "agent": ({"api", "base", "executor", "network", "rpc"}, None),
    "network": ({"api", "base"}, None),
    "images": ({"api", "base"}, None),
    "executor": ({"api", "base", "images", "network.tasknet"}, None),
    "demo": (set(), set()),
    "engineapi": ({"api", "base"}, {"aiohttp", "multidict", "yarl"}),
    # compose turns compose files into Docker API specs for `shoal stack deploy` (client side, like cli).
    "compose": ({"api", "base"}, {"yaml", "jsonschema"}),
    "cli": ({"api", "base", "compose"}, None),
}
# The composition root and the test fakes may import anything (testing is kept out of production by
# its own test below).
UNRESTRICTED = {"node", "testing"}

# Imports the table forbids that the code still makes, each with the reason it has not moved yet, e.g.
# {"orchestrator": {"shoal.scheduler.constraints"}}. A test fails when one disappears, so the list only
# shrinks. Empty: the code follows the table.
KNOWN_BREAKS: dict[str, set[str]] = {}


def _allowed(name: str, allowed: set[str]) -> bool:
    """Whether `shoal.<rest>` is one of the allowed packages or modules (or inside one)."""
    rest = name.split(".", 1)[1]
    return any(rest == entry or rest.startswith(entry + ".") for entry in allowed)


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


def forbidden_imports(package: str) -> tuple[set[str], list[str]]:
    """(shoal modules the package imports against the rules, readable problems incl. third-party)."""
    allowed_shoal, allowed_third_party = RULES[package]
    names: set[str] = set()
    problems = []
    for path in sorted((SRC / package).rglob("*.py")):
        for name in imports_of(path):
            top = name.split(".")[0]
            if top == "shoal":
                parts = name.split(".")
                if len(parts) < 2 or parts[1] == package or _allowed(name, allowed_shoal):
                    continue
                names.add(name)
                if name not in KNOWN_BREAKS.get(package, set()):
                    problems.append(f"{path.relative_to(SRC)} imports {name}")
            elif top not in STDLIB and allowed_third_party is not None and top not in allowed_third_party:
                problems.append(f"{path.relative_to(SRC)} imports third-party {name}")
    return names, problems


@pytest.mark.parametrize("package", sorted(RULES))
def test_package_imports_follow_the_rules(package: str) -> None:
    _, problems = forbidden_imports(package)
    assert not problems, "\n".join(problems)


def test_known_breaks_are_still_real() -> None:
    """A break that was fixed must leave KNOWN_BREAKS, so the rule is enforced from then on."""
    for package, known in KNOWN_BREAKS.items():
        names, _ = forbidden_imports(package)
        assert known <= names, f"fixed, drop from KNOWN_BREAKS[{package!r}]: {known - names}"


def test_every_package_has_a_rule() -> None:
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= set(RULES) | UNRESTRICTED, f"no layering rule for {packages - set(RULES) - UNRESTRICTED}"


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
