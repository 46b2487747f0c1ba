"""The small pure parts: progress text, X-Registry-Auth, challenges, platform selection, changes."""

from __future__ import annotations

import base64
import json

import pytest

from shoal.api.errors import InvalidArgument
from shoal.images import progress
from shoal.images.auth import Credentials, decode_registry_auth, encode_registry_auth, parse_challenge
from shoal.images.changes import apply_changes
from shoal.images.errors import NoMatchingManifest, UnsupportedMediaType
from shoal.images.manifests import Platform, media_type_of, parse_platform, select
from shoal.images.registry import is_insecure


@pytest.mark.parametrize(("size", "text"), [(0, "0B"), (512, "512B"), (772_800, "772.8kB"), (2_100_000, "2.1MB"),
                                            (1_234_567_890, "1.235GB")])
def test_human_size_as_docker_prints_it(size: int, text: str) -> None:
    assert progress.human_size(size) == text


def test_the_progress_bar_is_jsonmessages() -> None:
    assert progress.bar(0, 100) == "[>" + " " * 50 + "]       0B/100B"
    assert progress.bar(50, 100) == "[" + "=" * 25 + ">" + " " * 25 + "]      50B/100B"
    assert progress.bar(100, 100) == "[" + "=" * 50 + ">]     100B/100B"
    assert progress.advancing("Downloading", "abc", 5, 10)["progressDetail"] == {"current": 5, "total": 10}
    assert progress.error("boom") == {"errorDetail": {"message": "boom"}, "error": "boom"}


def test_throttle_lets_the_end_through() -> None:
    throttle = progress.Throttle(10 << 20)
    passed = [n for n in range(0, (10 << 20) + 1, 4096) if throttle.due(n)]
    assert passed[0] == 0 and passed[-1] == 10 << 20 and len(passed) < 120
    assert not throttle.due(10 << 20)  # the same position again (a reader at end of file) is no news


def test_x_registry_auth_round_trip_and_unpadded_base64() -> None:
    creds = Credentials("u", "p")
    assert decode_registry_auth(encode_registry_auth(creds, "r.example")) == creds
    unpadded = base64.urlsafe_b64encode(json.dumps({"username": "a", "password": "b"}).encode()).rstrip(b"=")
    assert decode_registry_auth(unpadded.decode()) == Credentials("a", "b")
    assert decode_registry_auth("") == decode_registry_auth(base64.b64encode(b"{}").decode())
    with pytest.raises(InvalidArgument):
        decode_registry_auth("!!!not base64")


def test_challenges() -> None:
    challenge = parse_challenge('Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull"')
    assert challenge.scheme == "bearer"
    assert challenge.params == {"realm": "https://auth.example/token", "service": "reg",
                                "scope": "repository:a/b:pull"}
    assert parse_challenge('Basic realm="x"').scheme == "basic"


INDEX = {"manifests": [
    {"digest": "sha256:" + "1" * 64, "platform": {"os": "linux", "architecture": "amd64"}},
    {"digest": "sha256:" + "2" * 64, "platform": {"os": "linux", "architecture": "arm64"}},
    {"digest": "sha256:" + "3" * 64, "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
]}


def test_platform_selection() -> None:
    assert select(INDEX, Platform("linux", "arm64", "v8"))["digest"].endswith("2")
    assert select(INDEX, parse_platform("linux/arm/v7"))["digest"].endswith("3")
    with pytest.raises(NoMatchingManifest, match=r"^no matching manifest for linux/s390x in the manifest list "):
        select(INDEX, parse_platform("linux/s390x"))
    with pytest.raises(InvalidArgument):
        parse_platform("linux//")


def test_schema1_is_refused_with_a_reason() -> None:
    with pytest.raises(UnsupportedMediaType, match="schema 1"):
        media_type_of({"schemaVersion": 1}, "application/vnd.docker.distribution.manifest.v1+prettyjws")


def test_insecure_registries() -> None:
    assert is_insecure("127.0.0.1:5000", [])
    assert is_insecure("localhost:5000", [])
    assert not is_insecure("127.0.0.1:5000", [], loopback=False)
    assert is_insecure("10.1.2.3:5000", ["10.0.0.0/8"])
    assert is_insecure("reg.lan:5000", ["reg.lan:5000"])
    assert not is_insecure("registry-1.docker.io", ["10.0.0.0/8"])


def test_changes() -> None:
    config = apply_changes({"Env": ["A=0"]}, ["ENV A=1", "CMD echo hi", "ENTRYPOINT [\"/e\"]", "LABEL a=b c=d",
                                              "VOLUME /data", "STOPSIGNAL SIGINT", "EXPOSE 53/udp 80"])
    assert config == {"Env": ["A=1"], "Cmd": ["/bin/sh", "-c", "echo hi"], "Entrypoint": ["/e"],
                      "Labels": {"a": "b", "c": "d"}, "Volumes": {"/data": {}}, "StopSignal": "SIGINT",
                      "ExposedPorts": {"53/udp": {}, "80/tcp": {}}}
    with pytest.raises(InvalidArgument, match=r"^RUN is not a valid change command$"):
        apply_changes({}, ["RUN rm -rf /"])
