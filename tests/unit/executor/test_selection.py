"""shoald's executor: oci by default where containers can run, process elsewhere, with the reason."""

from __future__ import annotations

from pathlib import Path

from shoal.executor.oci.runtime import RuntimeChoice, choose_runtime, unavailable_reason
from shoal.executor.selection import default_executor
from shoal.node.daemon import parse_args


def test_default_is_oci_exactly_where_it_can_run() -> None:
    name, why = default_executor()
    reason = unavailable_reason(choose_runtime())
    if reason is None:
        assert name == "oci" and "overlayfs" in why
    else:
        assert name == "process" and reason in why


def test_shoald_takes_the_default_and_says_why(tmp_path: Path) -> None:
    config = parse_args(["--data-root", str(tmp_path)])
    assert (config.executor, config.executor_reason) == default_executor()


def test_an_explicit_executor_wins(tmp_path: Path) -> None:
    for name in ("process", "oci", "docker"):
        config = parse_args(["--data-root", str(tmp_path), "--executor", name])
        assert (config.executor, config.executor_reason) == (name, "as configured")


def test_no_runtime_is_a_reason() -> None:
    assert unavailable_reason(RuntimeChoice(None, "no OCI runtime found")) is not None


def test_crun_is_skipped_on_a_hybrid_cgroup_host(tmp_path: Path) -> None:
    from shoal.executor.oci.runtime import cgroup_hybrid_with_controllers

    (tmp_path / "unified").mkdir()
    (tmp_path / "unified" / "cgroup.controllers").write_text("hugetlb\n")
    assert cgroup_hybrid_with_controllers(tmp_path)
    (tmp_path / "unified" / "cgroup.controllers").write_text("\n")
    assert not cgroup_hybrid_with_controllers(tmp_path)
