"""The orchestrators act on Swarm's defaults from shoal.api.defaults: a spec that leaves a setting out
behaves as one that spells the default out."""

from __future__ import annotations

from shoal.api.defaults import RESTART_DEFAULTS, UPDATE_DEFAULTS
from shoal.orchestrator.restart import RestartPolicy, restart_policy
from shoal.orchestrator.update import UpdateConfig, update_config


def test_update_and_rollback_defaults_are_swarms() -> None:
    for rollback in (False, True):
        spelled_out = {"UpdateConfig": dict(UPDATE_DEFAULTS), "RollbackConfig": dict(UPDATE_DEFAULTS)}
        assert update_config({}, rollback) == update_config(spelled_out, rollback) == UpdateConfig()
    assert (UpdateConfig().parallelism, UpdateConfig().monitor, UpdateConfig().order) == (1, 5.0, "stop-first")


def test_restart_defaults_are_swarms() -> None:
    assert restart_policy({}) == restart_policy({"RestartPolicy": dict(RESTART_DEFAULTS)}) == RestartPolicy()
    assert (RestartPolicy().condition, RestartPolicy().delay, RestartPolicy().max_attempts) == ("any", 5.0, 0)
