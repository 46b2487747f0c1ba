"""Named volumes of the local driver: made on first use or by `docker volume create`, refused while
in use with dockerd's text, pruned when nothing uses them."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal.api import errors
from shoal.executor.oci.volumes import LocalVolumes


def test_create_is_idempotent_and_keeps_labels(tmp_path: Path) -> None:
    volumes = LocalVolumes(tmp_path)
    made = volumes.create("data", {"team": "a"})
    assert made.mountpoint == tmp_path / "data" / "_data" and made.mountpoint.is_dir()
    again = volumes.create("data", {"team": "b"})
    assert again.labels == {"team": "a"} and again.created_at == made.created_at
    shown = again.to_docker()
    assert shown["Driver"] == "local" and shown["Scope"] == "local" and shown["Name"] == "data"
    assert volumes.data_dir("other") == tmp_path / "other" / "_data"
    assert [v.name for v in volumes.list()] == ["data", "other"]


def test_bad_names_and_missing_volumes_say_why(tmp_path: Path) -> None:
    volumes = LocalVolumes(tmp_path)
    with pytest.raises(errors.InvalidArgument, match='"a b" includes invalid characters for a local volume name'):
        volumes.create("a b")
    with pytest.raises(errors.NotFound, match="get nope: no such volume"):
        volumes.get("nope")
    with pytest.raises(errors.NotFound, match="get nope: no such volume"):
        volumes.remove("nope", [])
    volumes.remove("nope", [], force=True)
    assert not (tmp_path / "nope").exists()


def test_remove_is_refused_while_in_use_and_prune_keeps_used_ones(tmp_path: Path) -> None:
    volumes = LocalVolumes(tmp_path)
    volumes.create("used")
    (volumes.create("free").mountpoint / "file").write_bytes(b"12345")
    with pytest.raises(errors.Conflict, match=r"remove used: volume is in use - \[c1\]"):
        volumes.remove("used", ["c1"])
    users = {"used": ["c1"]}
    removed, freed = volumes.prune(lambda name: users.get(name, []), lambda volume: False)
    assert (removed, freed) == (["free"], 5)
    assert [v.name for v in volumes.list()] == ["used"]
    volumes.remove("used", [])
    assert volumes.list() == []
