"""engineapi sees only the Backend protocol: it imports the standard library, aiohttp, shoal.base,
shoal.api and itself, nothing else of shoal."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import shoal.engineapi

ALLOWED_SHOAL = ("shoal.base", "shoal.api", "shoal.engineapi")
ALLOWED_THIRD_PARTY = {"aiohttp", "multidict", "yarl"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_engineapi_imports_only_what_it_may() -> None:
    package_dir = Path(shoal.engineapi.__file__).parent
    offenders = []
    for path in sorted(package_dir.rglob("*.py")):
        for name in _imports(path):
            top = name.split(".")[0]
            if top == "shoal":
                allowed = any(name == p or name.startswith(p + ".") for p in ALLOWED_SHOAL)
            else:
                allowed = top in sys.stdlib_module_names or top in ALLOWED_THIRD_PARTY or top == "__future__"
            if not allowed:
                offenders.append(f"{path.relative_to(package_dir)}: {name}")
    assert offenders == []
