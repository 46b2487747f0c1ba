"""Golden interaction scripts: tests/unit/raft/testdata/*.txt.

Each file is a sequence of blocks::

    command args
    ----
    expected output

separated by blank lines; lines starting with '#' between blocks are comments. Set
SHOAL_REWRITE_GOLDEN=1 to rewrite the expected outputs from the current behaviour, then
read the diff: the files are the specification.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .interaction import InteractionEnv

TESTDATA = Path(__file__).parent / "testdata"
SEPARATOR = "----"


def parse(text: str) -> list[tuple[list[str], str, str]]:
    """Blocks of (comment lines before, command, expected output)."""
    blocks: list[tuple[list[str], str, str]] = []
    lines = text.splitlines()
    i = 0
    comments: list[str] = []
    while i < len(lines):
        line = lines[i]
        if not line.strip() or line.startswith("#"):
            comments.append(line)
            i += 1
            continue
        command = line
        i += 1
        if i >= len(lines) or lines[i] != SEPARATOR:
            raise ValueError(f"expected {SEPARATOR!r} after command {command!r}")
        i += 1
        output: list[str] = []
        while i < len(lines) and lines[i].strip():
            output.append(lines[i])
            i += 1
        blocks.append((comments, command, "\n".join(output)))
        comments = []
    return blocks


def render(blocks: list[tuple[list[str], str, str]]) -> str:
    parts: list[str] = []
    for comments, command, output in blocks:
        parts.extend(comments)
        parts.extend([command, SEPARATOR, output])
    return "\n".join(parts).rstrip("\n") + "\n"


SCRIPTS = sorted(TESTDATA.glob("*.txt"))


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_interaction_script(path: Path) -> None:
    blocks = parse(path.read_text())
    env = InteractionEnv()
    actual = []
    for comments, command, expected in blocks:
        got = env.run(command)
        actual.append((comments, command, got))
        if not os.environ.get("SHOAL_REWRITE_GOLDEN"):
            assert got == expected, f"{path.name}: output of {command!r} differs"
    if os.environ.get("SHOAL_REWRITE_GOLDEN"):
        path.write_text(render(actual))


def test_scripts_exist() -> None:
    names = {p.stem for p in SCRIPTS}
    assert {"campaign", "prevote", "checkquorum", "transfer", "snapshot", "confchange"} <= names
