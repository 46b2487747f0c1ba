"""The raft core imports only the standard library and itself."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import shoal.raft

RAFT_DIR = Path(shoal.raft.__file__).parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_raft_imports_only_stdlib_and_itself() -> None:
    offenders = []
    files = sorted(RAFT_DIR.rglob("*.py"))
    assert files
    for path in files:
        for name in imported_modules(path):
            top = name.split(".")[0]
            if name == "shoal.raft" or name.startswith("shoal.raft."):
                continue
            if top == "__future__" or top in sys.stdlib_module_names:
                continue
            offenders.append(f"{path.name}: {name}")
    assert offenders == []
