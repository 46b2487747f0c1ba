"""shoal's conversion held against the docker CLI's own: the real `docker stack deploy` sends its requests to
a recording Engine API, and every network, secret, config and service body it sent must equal what
shoal.compose builds from the same files. Each fixture exercises a different part of the compose format."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from compose_cli_recorder import Recorder

from shoal.compose.convert import convert_service
from shoal.compose.images import image_with_tag
from shoal.compose.loader import load
from shoal.compose.objects import convert_configs, convert_networks, convert_secrets
from shoal.testing.daemon import DOCKER_CLI

FIXTURES: dict[str, str] = {
    "minimal": """
version: "3.8"
services:
  web:
    image: bbhttpd:latest
    ports: ["8088:80"]
    deploy: {replicas: 2, update_config: {monitor: 1s}, rollback_config: {failure_action: continue}}
  worker:
    image: bbhttpd
    command: ["/bin/busybox", "sleep", "3600"]
    environment: {ROLE: worker, ENABLED: yes, QUIET: off, COUNT: 3, RATIO: 0.5}
""",
    "container_options": """
services:
  app:
    image: registry.local:5000/team/app:1.2
    entrypoint: /bin/sh -c
    command: echo "hello world" && sleep 10
    environment:
      - EMPTY=
      - FROM_ENV
      - LITERAL=$$HOME
      - WITH_DEFAULT=${MISSING:-fallback}
      - FLAG=yes
    env_file: [app.env]
    hostname: app-{{.Task.Slot}}
    user: "1000:1000"
    working_dir: /srv
    labels: {tier: backend, flag: "true"}
    stop_grace_period: 1m30s
    stop_signal: SIGUSR1
    tty: true
    stdin_open: true
    init: true
    read_only: true
    cap_add: [net_admin, CAP_SYS_TIME]
    cap_drop: [mknod]
    sysctls: {net.core.somaxconn: 1024, net.ipv4.tcp_syncookies: 0}
    ulimits:
      nofile: {soft: 20000, hard: 40000}
      nproc: 65535
    dns: [8.8.8.8, 9.9.9.9]
    dns_search: example.com
    extra_hosts: ["somehost:162.242.195.82", "otherhost=50.31.209.229", "v6host:[::1]", "lonely"]
    logging:
      driver: json-file
      options: {max-size: 10m, max-file: 3}
    healthcheck:
      test: curl -f http://localhost/
      interval: 30s
      timeout: 10s
      retries: 3
      start_period: 40s
      start_interval: 5s
""",
    "deploy_options": """
version: "3.9"
services:
  api:
    image: api:2
    deploy:
      mode: replicated
      replicas: 3
      endpoint_mode: dnsrr
      labels: [com.example.description=api, team=core]
      placement:
        constraints: [node.role == manager, "node.labels.zone==a"]
        preferences: [{spread: node.labels.zone}]
        max_replicas_per_node: 2
      resources:
        limits: {cpus: "0.5", memory: 512M, pids: 100}
        reservations: {cpus: "0.25", memory: 128m}
      restart_policy: {condition: on-failure, delay: 5s, max_attempts: 3, window: 2m}
      update_config:
        {parallelism: 2, delay: 10s, failure_action: rollback, monitor: 30s, max_failure_ratio: 0.3, order: start-first}
      rollback_config: {parallelism: 0, order: stop-first}
    healthcheck: {disable: true}
  agent:
    image: agent
    deploy: {mode: global, restart_policy: {condition: any}}
  once:
    image: job
    deploy: {mode: replicated-job, replicas: 4}
  everywhere:
    image: job
    deploy: {mode: global-job}
    restart: on-failure:5
  legacy:
    image: legacy
    restart: always
    healthcheck:
      test: [CMD, /bin/check, --fast]
      retries: 5
""",
    "ports_and_volumes": """
services:
  web:
    image: web
    ports:
      - "80"
      - 443:8443
      - "9000-9001:90-91/udp"
      - target: 5000
        published: 5001
        protocol: tcp
        mode: host
      - target: 6000
    volumes:
      - data:/var/lib/data
      - ./conf:/etc/conf:ro
      - ./sub/../cleaned:/cleaned
      - /var/log:/host/log:rw,rshared
      - /anonymous
      - shared:/shared:nocopy
      - type: tmpfs
        target: /tmp/cache
        tmpfs: {size: 67108864}
      - type: bind
        source: ./static
        target: /static
        read_only: true
        bind: {propagation: rprivate}
      - type: volume
        source: outside
        target: /outside
volumes:
  data:
    driver: local
    driver_opts: {type: tmpfs, device: tmpfs}
    labels: {backup: daily}
  shared: {}
  outside:
    external: true
    name: pre-existing
""",
    "networks_secrets_configs": """
version: "3.8"
services:
  front:
    image: front
    networks:
      public:
        aliases: [www, portal]
      back: {}
    secrets:
      - db_password
      - source: api_key
        target: keys/api
        uid: "1000"
        gid: "1000"
        mode: 0400
      - external_thing
    configs:
      - app_config
      - source: nginx
        target: /etc/nginx/nginx.conf
        mode: 0440
  back:
    image: back
    networks: [back, outside, host]
networks:
  public:
    driver: overlay
    attachable: true
    driver_opts: {com.docker.network.driver.mtu: 1400}
    labels: {role: public}
    ipam:
      config: [{subnet: 10.20.0.0/24}]
  back:
    internal: true
  outside:
    external: true
    name: shared-net
  host:
    external: true
secrets:
  db_password: {file: ./db_password.txt, labels: {kind: db}}
  api_key: {file: ./api_key.txt, name: custom-api-key}
  external_thing: {external: true}
configs:
  app_config: {file: ./app.conf, template_driver: golang}
  nginx: {file: ./nginx.conf}
""",
    "other_shapes": """
version: "3.9"
x-common: &common
  image: shared:1.0
  labels: [a=1, "b=x=y"]
  logging: {driver: syslog}
services:
  first:
    <<: *common
    entrypoint: ["/bin/sh", "-c"]
    command: 'echo "quoted arg" done'
    user: "1000"
    environment: [DUP=1, DUP=2, PLAIN]
    extra_hosts: {db: 10.0.0.5, cache: "10.0.0.6"}
    dns: 8.8.8.8
    init: false
    tty: false
    read_only: false
    cap_add: [ALL]
    cap_drop: [NET_ADMIN]
    sysctls: [net.core.somaxconn=512]
    ulimits: {nofile: 1024}
    healthcheck: {test: [NONE]}
    ports: ["127.0.0.1:8081:81", "8082:82/udp", {target: 83, published: 8083}]
    deploy:
      endpoint_mode: VIP
      resources: {limits: {cpus: "1.5", memory: 1g}}
      restart_policy: {condition: none}
  second:
    <<: *common
    hostname: "{{.Service.Name}}-{{.Task.Slot}}"
    working_dir: /work
    stop_signal: SIGTERM
    env_file: [one.env, two.env]
    secrets: [{source: old_style, mode: 256}]
    configs: [outside_config]
    volumes: [old_volume:/old]
    deploy:
      mode: global
      placement: {preferences: [{spread: node.id}, {spread: engine.labels.az}]}
secrets:
  old_style: {file: ./db_password.txt}
configs:
  outside_config: {external: true, name: precreated}
volumes:
  old_volume: {external: true}
""",
}

FILES = {"app.env": "# comment\nFROM_FILE=1\nEMPTY=from-file\n", "one.env": "A=1\nB=1\n", "two.env": "B=2\n",
         "db_password.txt": "s3cret\n", "api_key.txt": "key",
         "app.conf": "name={{ .Service.Name }}\n", "nginx.conf": "events {}\n"}
ENVIRONMENT = {"FROM_ENV": "environment", "EMPTY": "from-environment"}


def _write(tmp_path: Path, name: str) -> Path:
    compose = tmp_path / "compose.yml"
    compose.write_text(FIXTURES[name])
    for file, content in FILES.items():
        (tmp_path / file).write_text(content)
    return compose


def _shoal_bodies(compose_file: Path, namespace: str, recorder: Recorder) -> dict[str, Any]:
    compose = load([str(compose_file)], environ={**ENVIRONMENT, "HOME": str(compose_file.parent)})
    secret_ids = {**recorder.created["secrets"], "external_thing": "id-external_thing"}
    services = {}
    for name, service in compose.services.items():
        config_ids = {**recorder.created["configs"], "precreated": "id-pre"}
        spec = convert_service(name, service, compose, namespace, secret_ids, config_ids)
        spec["TaskTemplate"]["ContainerSpec"]["Image"] = image_with_tag(spec["TaskTemplate"]["ContainerSpec"]["Image"])
        services[spec["Name"]] = spec
    return {"services": services, "networks": convert_networks(compose, namespace).to_create,
            "secrets": {s["Name"]: s for s in convert_secrets(compose, namespace)},
            "configs": {c["Name"]: c for c in convert_configs(compose, namespace)}}


@pytest.mark.parametrize("fixture", sorted(FIXTURES))
def test_conversion_equals_the_docker_clis(fixture: str, tmp_path: Path, cli_recorder: Recorder) -> None:
    compose_file = _write(tmp_path, fixture)
    result = cli_recorder.deploy(compose_file, "st", env=ENVIRONMENT)
    assert result.returncode == 0, result.stderr
    ours = _shoal_bodies(compose_file, "st", cli_recorder)
    theirs = {
        "services": {b["Name"]: b for b in cli_recorder.bodies("POST", "/services/create")},
        "networks": {b["Name"]: b for b in cli_recorder.bodies("POST", "/networks/create")},
        "secrets": {b["Name"]: b for b in cli_recorder.bodies("POST", "/secrets/create")},
        "configs": {b["Name"]: b for b in cli_recorder.bodies("POST", "/configs/create")},
    }
    assert ours["services"]  # every fixture has services; the comparison below is then not vacuous
    for kind in ("networks", "secrets", "configs"):
        assert ours[kind] == theirs[kind], kind
    assert sorted(ours["services"]) == sorted(theirs["services"])
    for name, spec in theirs["services"].items():
        assert ours["services"][name] == spec, name


BAD_FILES: dict[str, str] = {
    "unknown_key": "services:\n  web:\n    image: busybox\n    foo: 1\n",
    "unknown_top_level_key": "services:\n  web:\n    image: busybox\nfoo: 1\n",
    "bad_duration": "services:\n  web:\n    image: busybox\n    stop_grace_period: 5q\n",
    "bad_healthcheck_duration": "services:\n  web:\n    image: busybox\n    healthcheck:\n      interval: 10x\n",
    "replicas_not_a_number": "services:\n  web:\n    image: busybox\n    deploy:\n      replicas: two\n",
    "bad_port": "services:\n  web:\n    image: busybox\n    ports: ['80:80:80:80']\n",
    "bad_update_order": "services:\n  web:\n    image: busybox\n    deploy:\n      update_config:\n"
                        "        order: sideways\n",
    "forbidden_keys": "services:\n  web:\n    image: busybox\n    extends: other\n    mem_limit: 1g\n",
    "no_image": "services:\n  web:\n    command: x\n",
    "uppercase_image": "services:\n  web:\n    image: UPPER:latest\n",
    "uppercase_image_path": "services:\n  web:\n    image: host:5000/Team/x\n",
    "image_with_a_space": "services:\n  web:\n    image: bad image\n",
    "image_with_an_empty_tag": "services:\n  web:\n    image: 'web:'\n",
    "required_variable": "services:\n  web:\n    image: ${IMAGE:?image is required}\n",
    "invalid_template": "services:\n  web:\n    image: busybox\n    hostname: ${\n",
    "unsupported_version": "version: '2.4'\nservices:\n  web:\n    image: busybox\n",
    "numeric_version": "version: 3.8\nservices:\n  web:\n    image: busybox\n    foo: 1\n",
    "service_not_a_mapping": "services:\n  web: busybox\n",
    "wrong_list_type": "services:\n  web:\n    image: busybox\n    cap_add: NET_ADMIN\n",
    "not_a_mapping": "- just\n- a list\n",
    "undefined_network": "services:\n  web:\n    image: busybox\n    networks: [nope]\n",
    "undefined_secret": "services:\n  web:\n    image: busybox\n    secrets: [nope]\n",
    "unknown_mode": "services:\n  web:\n    image: busybox\n    deploy:\n      mode: bogus\n",
    "global_with_replicas": "services:\n  web:\n    image: busybox\n    deploy:\n      mode: global\n"
                            "      replicas: 2\n",
    "test_and_disable": "services:\n  web:\n    image: busybox\n    healthcheck:\n      test: [CMD, x]\n"
                        "      disable: true\n",
}


def _shoal_error(compose_file: Path) -> str:
    from shoal.api.errors import ShoalError
    from shoal.compose.deploy import check_stack
    try:
        check_stack(load([str(compose_file)], environ={}), "st")
    except ShoalError as exc:
        return str(exc)
    return "(no error)"


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_errors_read_as_the_docker_clis(name: str, tmp_path: Path, cli_recorder: Recorder) -> None:
    compose_file = tmp_path / "compose.yml"
    compose_file.write_text(BAD_FILES[name])
    result = cli_recorder.deploy(compose_file, "st")
    assert result.returncode == 1
    ours = _shoal_error(compose_file)
    assert result.stderr.rstrip("\n").endswith(ours.rstrip("\n")), (result.stderr, ours)


BASE = """
version: "3.8"
services:
  web:
    image: web:1
    command: ["serve"]
    environment: {A: "1", B: "2"}
    labels: [x=1]
    ports: ["8080:80"]
    volumes: ["data:/data", "/etc:/host-etc:ro"]
    secrets: [one]
    networks: [front]
    deploy:
      replicas: 2
      labels: {kept: "yes"}
      resources: {limits: {memory: 64m}}
  gone:
    image: other
networks:
  front: {}
volumes:
  data: {}
secrets:
  one: {file: ./one.txt}
"""
OVERRIDE = """
version: "3.8"
services:
  web:
    image: web:2
    environment: [B=3, C=4]
    labels: {y: "2"}
    ports: ["9090:90"]
    volumes: ["/var:/data"]
    networks: {back: {aliases: [api]}}
    deploy:
      replicas: 5
      labels: {added: "yes"}
networks:
  back: {driver: overlay}
"""


def test_several_files_merge_as_the_docker_clis(tmp_path: Path, cli_recorder: Recorder) -> None:
    (tmp_path / "one.txt").write_text("1")
    base, override = tmp_path / "base.yml", tmp_path / "override.yml"
    base.write_text(BASE)
    override.write_text(OVERRIDE)
    result = cli_recorder.deploy(base, "st", more=(override,))
    assert result.returncode == 0, result.stderr
    compose = load([str(base), str(override)], environ={})
    ours = {}
    for name, service in compose.services.items():
        spec = convert_service(name, service, compose, "st", cli_recorder.created["secrets"])
        spec["TaskTemplate"]["ContainerSpec"]["Image"] = image_with_tag(spec["TaskTemplate"]["ContainerSpec"]["Image"])
        ours[spec["Name"]] = spec
    theirs = {b["Name"]: b for b in cli_recorder.bodies("POST", "/services/create")}
    assert ours["st_web"]["TaskTemplate"]["ContainerSpec"]["Image"] == "web:2"  # the merge did happen
    assert ours == theirs


def test_warnings_read_as_the_docker_clis(tmp_path: Path, cli_recorder: Recorder) -> None:
    compose_file = tmp_path / "compose.yml"
    compose_file.write_text("services:\n  web:\n    image: busybox\n    build: .\n    links: [db]\n"
                            "    restart: always\n    privileged: true\n    container_name: web\n    expose: [80]\n"
                            "    cgroupns_mode: host\n")
    result = cli_recorder.deploy(compose_file, "st")
    assert result.returncode == 0, result.stderr
    warnings = "".join(f"{warning}\n" for warning in load([str(compose_file)], environ={}).warnings)
    assert warnings.startswith("Ignoring unsupported options: build, cgroupns_mode, links, privileged, restart\n\n")
    assert result.stderr.startswith(warnings)


def _existing_stack() -> dict[str, list[dict[str, Any]]]:
    """A stack "st" deployed earlier: its front service pinned to a digest and force-updated twice, a
    service the file no longer names, its networks, and a secret with the same data."""
    labels = {"com.docker.stack.namespace": "st"}
    front = {"ID": "svc-front", "Version": {"Index": 41},
             "Spec": {"Name": "st_front", "Labels": {**labels, "com.docker.stack.image": "front"},
                      "TaskTemplate": {"ContainerSpec": {"Image": "front:latest@sha256:" + "0" * 64},
                                       "ForceUpdate": 2}}}
    stale = {"ID": "svc-stale", "Version": {"Index": 12},
             "Spec": {"Name": "st_stale", "Labels": labels, "TaskTemplate": {"ContainerSpec": {"Image": "old"}}}}
    return {"services": [front, stale],
            "networks": [{"Name": "st_public", "Id": "net-public", "Labels": labels}],
            "secrets": [{"ID": "sec-db", "Version": {"Index": 7},
                         "Spec": {"Name": "st_db_password", "Labels": labels}}],
            "configs": []}


@pytest.mark.parametrize(("fixture", "existing"), [*((name, False) for name in sorted(FIXTURES)),
                                                   ("networks_secrets_configs", True)])
def test_shoal_stack_deploy_sends_what_docker_stack_deploy_sends(fixture: str, existing: bool, tmp_path: Path,
                                                                  cli_recorder: Recorder) -> None:
    """The whole command, CLI against CLI: a first deploy of each fixture, and a redeploy over an existing
    stack with --prune and --resolve-image changed."""
    compose_file = _write(tmp_path, fixture)
    if existing:
        cli_recorder.existing = _existing_stack()
    args = ("--prune", "--resolve-image", "changed") if existing else ("--resolve-image", "never")
    assert DOCKER_CLI is not None
    environ = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path),
               "DOCKER_HOST": f"unix://{cli_recorder.socket}"}
    theirs = subprocess.run([DOCKER_CLI, "stack", "deploy", *args, "-c", str(compose_file), "st"],
                            capture_output=True, text=True, env=environ, timeout=60)
    assert theirs.returncode == 0, theirs.stderr
    their_writes = cli_recorder.writes()
    cli_recorder.requests.clear()
    cli_recorder.queries.clear()
    cli_recorder.created = {"secrets": {}, "configs": {}}
    ours = cli_recorder.shoal_deploy(compose_file, "st", *args)
    assert ours.returncode == 0, ours.stderr
    assert their_writes  # creates, or updates and a removal: never an empty comparison
    assert cli_recorder.writes() == their_writes
    assert sorted(ours.stdout.splitlines()) == sorted(theirs.stdout.splitlines())


def test_shoal_stack_rm_sends_what_docker_stack_rm_sends(tmp_path: Path, cli_recorder: Recorder) -> None:
    cli_recorder.existing = _existing_stack()
    cli_recorder.existing["configs"] = [{"ID": "cfg-app", "Version": {"Index": 3},
                                         "Spec": {"Name": "st_app", "Labels": {"com.docker.stack.namespace": "st"}}}]
    outputs = []
    for command in ([DOCKER_CLI], [sys.executable, "-m", "shoal.cli"]):
        cli_recorder.requests.clear()
        cli_recorder.queries.clear()
        environ = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path),
                   "DOCKER_HOST": f"unix://{cli_recorder.socket}"}
        result = subprocess.run([*command, "stack", "rm", "st", "nothing"], capture_output=True, text=True,
                                env=environ, timeout=60)
        assert result.returncode == 0, result.stderr
        outputs.append((cli_recorder.writes(), result.stdout, result.stderr))
    theirs, ours = outputs
    assert theirs[0] and ours == theirs
