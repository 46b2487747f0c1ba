"""Loading what the CLI-oracle tests cannot compare: the working directory's .env (the docker CLI reads
none), env_file, stdin, paths relative to the first file, and where the schema comes from."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from shoal.api.errors import FailedPrecondition, InvalidArgument
from shoal.compose import schema
from shoal.compose.convert import convert_service, environment
from shoal.compose.loader import load


def _write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def test_dot_env_feeds_interpolation_and_the_environment_wins(tmp_path: Path) -> None:
    _write(tmp_path, ".env", "# defaults\nTAG=from-dotenv\nREPLICAS='3'\nNAME=\"quoted value\"\n")
    compose_file = _write(tmp_path, "compose.yml", "services:\n  web:\n    image: web:${TAG}\n    hostname: ${NAME}\n"
                                                   "    deploy:\n      replicas: ${REPLICAS}\n")
    web = load([str(compose_file)], environ={}).services["web"]
    assert (web["image"], web["hostname"], web["deploy"]["replicas"]) == ("web:from-dotenv", "quoted value", 3)
    web = load([str(compose_file)], environ={"TAG": "from-environment"}).services["web"]
    assert web["image"] == "web:from-environment"


def test_env_file_then_environment_and_values_left_open_take_the_environments(tmp_path: Path) -> None:
    _write(tmp_path, "one.env", "A=from-file\nB=from-file\n# comment\n  C\nD=\n")
    compose_file = _write(tmp_path, "compose.yml", "services:\n  web:\n    image: web\n    env_file: one.env\n"
                                                   "    environment:\n      B: from-compose\n      E:\n")
    compose = load([str(compose_file)], environ={"C": "from-env", "D": "filled", "E": "also-filled"})
    assert environment(compose.services["web"], compose) == ["A=from-file", "B=from-compose", "C=from-env",
                                                             "D=filled", "E=also-filled"]
    compose = load([str(compose_file)], environ={})
    assert environment(compose.services["web"], compose) == ["A=from-file", "B=from-compose", "C", "D=", "E"]


def test_a_missing_env_file_is_an_error(tmp_path: Path) -> None:
    compose_file = _write(tmp_path, "compose.yml", "services:\n  web:\n    image: web\n    env_file: nope.env\n")
    compose = load([str(compose_file)], environ={})
    with pytest.raises(InvalidArgument, match=r"service web: open .*/nope\.env: no such file or directory"):
        convert_service("web", compose.services["web"], compose, "st")


def test_paths_are_relative_to_the_first_files_directory(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    compose_file = _write(tmp_path / "sub", "compose.yml", "services:\n  web:\n    image: web\n"
                                                           "    volumes: [./data:/data, ~/cache:/cache]\n")
    compose = load([str(compose_file)], environ={"HOME": "/home/me"})
    mounts = convert_service("web", compose.services["web"], compose, "st")["TaskTemplate"]["ContainerSpec"]["Mounts"]
    assert [m["Source"] for m in mounts] == [str(tmp_path / "sub" / "data"), "/home/me/cache"]


def test_compose_from_stdin() -> None:
    compose = load(["-"], environ={}, stdin=io.StringIO("services:\n  web:\n    image: web\n"))
    assert list(compose.services) == ["web"]


@pytest.mark.parametrize(("files", "message"), [
    ([], "specify a Compose file (with --compose-file)"),
    (["missing.yml"], "open missing.yml: no such file or directory"),
])
def test_file_errors(files: list[str], message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        load(files, environ={})
    assert str(caught.value) == message


def test_two_files_of_different_versions(tmp_path: Path) -> None:
    first = _write(tmp_path, "a.yml", "version: '3.7'\nservices:\n  web:\n    image: web\n")
    second = _write(tmp_path, "b.yml", "version: '3.8'\nservices:\n  web:\n    image: web\n")
    with pytest.raises(InvalidArgument) as caught:
        load([str(first), str(second)], environ={})
    assert str(caught.value) == "version mismatched between two composefiles : 3.7 and 3.8"


def test_the_schema_comes_from_an_installed_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    found = schema.schema_path()
    assert found.name == "compose_spec.json" and found.parts[-3:-1] == ("compose", "config")
    monkeypatch.setenv(schema.SCHEMA_ENV, str(tmp_path / "nowhere.json"))
    with pytest.raises(FailedPrecondition, match=r"nowhere\.json, which is not a file"):
        schema.schema_path()


def test_yaml_that_does_not_parse(tmp_path: Path) -> None:
    """The parser's own words (the Go and Python YAML libraries word them differently), with the line."""
    compose_file = _write(tmp_path, "compose.yml", "services:\n  web:\n    image: busybox\n   bad_indent: 1\n")
    with pytest.raises(InvalidArgument, match=r"^yaml: line 4: "):
        load([str(compose_file)], environ={})
