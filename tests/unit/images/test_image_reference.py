from __future__ import annotations

import pytest

from shoal.images.reference import InvalidReference, is_image_id, parse

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("text", "full", "familiar"), [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("me/app", "docker.io/me/app:latest", "me/app:latest"),
    ("docker.io/library/busybox:1", "docker.io/library/busybox:1", "busybox:1"),
    ("index.docker.io/me/app", "docker.io/me/app:latest", "me/app:latest"),
    ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
    ("127.0.0.1:5000/a/b:v2", "127.0.0.1:5000/a/b:v2", "127.0.0.1:5000/a/b:v2"),
    (f"busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}", f"busybox@{DIGEST}"),
    (f"r.example.com/x:t@{DIGEST}", f"r.example.com/x:t@{DIGEST}", f"r.example.com/x:t@{DIGEST}"),
])
def test_references_normalise_as_docker_does(text: str, full: str, familiar: str) -> None:
    ref = parse(text)
    assert str(ref) == full
    assert ref.familiar == familiar


def test_the_registry_host_for_docker_hub_names() -> None:
    assert parse("busybox").registry_host == "registry-1.docker.io"
    assert parse("127.0.0.1:5000/a").registry_host == "127.0.0.1:5000"
    assert parse(f"a@{DIGEST}").pull_target == DIGEST
    assert parse("a:v1").pull_target == "v1"


@pytest.mark.parametrize("text", ["", "Not A Ref", "a b", "busybox:", ":tag", "a//b", "-a", "a/b:c:d",
                                  "x@sha256:1234", "a@sha256:" + "Z" * 64, "a:" + "t" * 129, "x" * 256])
def test_bad_references_are_refused_with_dockers_message(text: str) -> None:
    with pytest.raises(InvalidReference) as caught:
        parse(text)
    assert str(caught.value).startswith("invalid reference format")


def test_uppercase_gets_dockers_lowercase_hint() -> None:
    with pytest.raises(InvalidReference, match=r"^invalid reference format: repository name must be lowercase$"):
        parse("BusyBox")


def test_image_ids() -> None:
    assert is_image_id("sha256:" + "a" * 64)
    assert is_image_id("3f57d9401f8d")
    assert not is_image_id("busybox")
