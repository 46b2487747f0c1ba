"""The converter on its own (these run without a docker CLI): the reference transcript's stack body for body,
and one expectation per rule the CLI-oracle fixtures exercise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shoal.api.errors import InvalidArgument
from shoal.compose.convert import convert_service
from shoal.compose.loader import Compose, load
from shoal.compose.objects import convert_networks, convert_secrets

PRIVILEGES = {"CredentialSpec": None, "SELinuxContext": None, "NoNewPrivileges": False}


def _load(tmp_path: Path, text: str) -> Compose:
    (tmp_path / "compose.yml").write_text(text)
    return load([str(tmp_path / "compose.yml")], environ={"HOME": "/root"})


def _service(tmp_path: Path, body: str, name: str = "web", **ids: dict[str, str]) -> dict[str, Any]:
    compose = _load(tmp_path, f"services:\n  {name}:\n    image: img\n" + body)
    return convert_service(name, compose.services[name], compose, "st", ids.get("secrets"), ids.get("configs"))


def test_the_reference_transcripts_stack(tmp_path: Path) -> None:
    """shared/reference/docker-api/stack.yml and the bodies docker CLI 28.2.2 sent for it (step 27)."""
    compose = _load(tmp_path, REFERENCE_STACK)
    worker = convert_service("worker", compose.services["worker"], compose, "st")
    assert worker == {
        "Name": "st_worker",
        "Labels": {"com.docker.stack.image": "bbhttpd:latest", "com.docker.stack.namespace": "st"},
        "TaskTemplate": {
            "ContainerSpec": {"Image": "bbhttpd:latest", "Labels": {"com.docker.stack.namespace": "st"},
                              "Args": ["/bin/busybox", "sleep", "3600"], "Env": ["ROLE=worker"],
                              "Privileges": PRIVILEGES},
            "Resources": {}, "Placement": {}, "Networks": [{"Target": "st_default", "Aliases": ["worker"]}],
            "ForceUpdate": 0},
        "Mode": {"Replicated": {"Replicas": 1}},
        "EndpointSpec": {},
    }
    web = convert_service("web", compose.services["web"], compose, "st")
    assert web["EndpointSpec"] == {"Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8088,
                                              "PublishMode": "ingress"}]}
    assert convert_networks(compose, "st").to_create == {"st_default": {
        "Driver": "overlay", "Scope": "", "IPAM": None, "Internal": False, "Attachable": False, "Ingress": False,
        "ConfigOnly": False, "ConfigFrom": None, "Options": None, "Labels": {"com.docker.stack.namespace": "st"},
        "Name": "st_default", "CheckDuplicate": True}}


REFERENCE_STACK = """
version: "3.8"
services:
  web:
    image: bbhttpd:latest
    ports:
      - "8088:80"
    deploy:
      replicas: 2
  worker:
    image: bbhttpd:latest
    command: ["/bin/busybox", "sleep", "3600"]
    environment:
      ROLE: worker
    deploy:
      replicas: 1
"""


@pytest.mark.parametrize(("body", "path", "expected"), [
    ("    entrypoint: /bin/sh -c\n    command: echo 'a b'\n", ("Command", "Args"),
     (["/bin/sh", "-c"], ["echo", "a b"])),
    ("    stop_grace_period: 1m30s\n", ("StopGracePeriod",), (90_000_000_000,)),
    ("    extra_hosts: ['db:10.0.0.1', 'v6=[::1]']\n", ("Hosts",), (["10.0.0.1 db", "::1 v6"],)),
    ("    cap_add: [net_admin]\n    cap_drop: [NET_ADMIN, mknod]\n", ("CapabilityAdd", "CapabilityDrop"),
     (["CAP_NET_ADMIN"], ["CAP_MKNOD"])),
    ("    ulimits: {nproc: 10, nofile: {soft: 1, hard: 2}}\n", ("Ulimits",),
     ([{"Name": "nofile", "Soft": 1, "Hard": 2}, {"Name": "nproc", "Soft": 10, "Hard": 10}],)),
    ("    healthcheck: {test: curl -f x, interval: 2s, retries: 3}\n", ("Healthcheck",),
     ({"Test": ["CMD-SHELL", "curl -f x"], "Interval": 2_000_000_000, "Retries": 3},)),
    ("    dns: 1.1.1.1\n", ("DNSConfig",), ({"Nameservers": ["1.1.1.1"]},)),
    ("    init: false\n    tty: false\n", ("Init", "TTY"), (False, None)),
])
def test_container_fields(tmp_path: Path, body: str, path: tuple[str, ...], expected: tuple[Any, ...]) -> None:
    container = _service(tmp_path, body)["TaskTemplate"]["ContainerSpec"]
    assert tuple(container.get(key) for key in path) == expected


@pytest.mark.parametrize(("deploy", "mode"), [
    ("{}", {"Replicated": {}}), ("{replicas: 3}", {"Replicated": {"Replicas": 3}}), ("{mode: global}", {"Global": {}}),
    ("{mode: replicated-job, replicas: 4}", {"ReplicatedJob": {"MaxConcurrent": 4, "TotalCompletions": 4}}),
    ("{mode: global-job}", {"GlobalJob": {}}),
])
def test_modes(tmp_path: Path, deploy: str, mode: dict[str, Any]) -> None:
    assert _service(tmp_path, f"    deploy: {deploy}\n")["Mode"] == mode


def test_deploy_section(tmp_path: Path) -> None:
    spec = _service(tmp_path, "    deploy:\n      resources: {limits: {cpus: '0.5', memory: 1g, pids: 20}}\n"
                              "      restart_policy: {condition: on-failure, delay: 1s}\n"
                              "      update_config: {monitor: 2s}\n      endpoint_mode: dnsrr\n"
                              "      placement: {constraints: [node.role==worker], max_replicas_per_node: 1}\n")
    task = spec["TaskTemplate"]
    assert task["Resources"] == {"Limits": {"NanoCPUs": 500_000_000, "MemoryBytes": 1 << 30, "Pids": 20}}
    assert task["RestartPolicy"] == {"Condition": "on-failure", "Delay": 1_000_000_000}
    assert task["Placement"] == {"Constraints": ["node.role==worker"], "MaxReplicas": 1}
    assert spec["UpdateConfig"] == {"Parallelism": 1, "MaxFailureRatio": 0.0, "Order": "", "Monitor": 2_000_000_000}
    assert spec["EndpointSpec"] == {"Mode": "dnsrr"}


def test_secrets_refer_by_id_and_default_to_root_0444(tmp_path: Path) -> None:
    (tmp_path / "s.txt").write_text("x")
    compose = _load(tmp_path, "services:\n  web:\n    image: img\n"
                              "    secrets: [s, {source: s, target: t, mode: 0400}]\n"
                              "secrets:\n  s: {file: ./s.txt, labels: {k: v}}\n")
    refs = convert_service("web", compose.services["web"], compose, "st", {"st_s": "ID1"})["TaskTemplate"][
        "ContainerSpec"]["Secrets"]
    assert refs == [
        {"File": {"Name": "s", "UID": "0", "GID": "0", "Mode": 0o444}, "SecretName": "st_s", "SecretID": "ID1"},
        {"File": {"Name": "t", "UID": "0", "GID": "0", "Mode": 0o400}, "SecretName": "st_s", "SecretID": "ID1"}]
    assert convert_secrets(compose, "st") == [
        {"Name": "st_s", "Labels": {"k": "v", "com.docker.stack.namespace": "st"}, "Data": "eA=="}]
    with pytest.raises(InvalidArgument, match="service web: secret not found: st_s"):
        convert_service("web", compose.services["web"], compose, "st", {})


def test_volumes(tmp_path: Path) -> None:
    compose = _load(tmp_path, "services:\n  web:\n    image: img\n    volumes: [data:/d, ./here:/h:ro, /t]\n"
                              "volumes:\n  data: {driver: local}\n")
    mounts = convert_service("web", compose.services["web"], compose, "st")["TaskTemplate"]["ContainerSpec"]["Mounts"]
    assert mounts == [
        {"Type": "volume", "Target": "/d", "Source": "st_data", "VolumeOptions": {
            "Labels": {"com.docker.stack.namespace": "st"}, "DriverConfig": {"Name": "local"}}},
        {"Type": "bind", "Target": "/h", "Source": str(tmp_path / "here"), "ReadOnly": True},
        {"Type": "volume", "Target": "/t"},
    ]
