"""The cli_recorder fixture: a recording Engine API (compose_cli_recorder) on a socket in the test's
directory, for the tests that hold shoal's stack conversion against the real docker CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from compose_cli_recorder import CLI_STACK_REFERENCE, Recorder, start

from shoal.testing.daemon import cli_requirement


@pytest.fixture
def cli_recorder(tmp_path: Path) -> Iterator[Recorder]:
    requirement = cli_requirement(CLI_STACK_REFERENCE, needs="holding the conversion against docker stack deploy")
    if requirement["condition"]:
        pytest.skip(requirement["reason"])
    recorder = Recorder(tmp_path / "engine.sock")
    server = start(recorder)
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
