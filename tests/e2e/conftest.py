"""End-to-end fixtures: a real shoald per test module (fresh data root), driven by the real docker CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.testing.daemon import DOCKER_CLI, SKIPPED_CHECKS, ShoalDaemon


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShoalDaemon]:
    shoald = ShoalDaemon(Path(tmp_path_factory.mktemp("shoald")))
    shoald.start()
    try:
        yield shoald
    finally:
        shoald.leave_and_stop()


@pytest.fixture(scope="module")
def swarm(daemon: ShoalDaemon) -> ShoalDaemon:
    daemon.docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    return daemon


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Name the checks an older docker CLI could not make (their tests ran the rest of their checks)."""
    if SKIPPED_CHECKS:
        terminalreporter.section(f"checks skipped for the docker CLI in use ({DOCKER_CLI})")
        for line in sorted(set(SKIPPED_CHECKS)):
            terminalreporter.line(line)
