"""Stacks on a real shoald: `shoal stack deploy|ls|services|ps|rm` (compose converted by shoal.compose) and the
real `docker stack deploy` (which converts on its side) of the same three-service stack with a secret, a
config and an overlay network: deploy, converge, update on redeploy, --prune, rm."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shoal.testing import registry as registry_support
from shoal.testing.daemon import ShoalDaemon, cli_requirement, wait_until
from shoal.testing.oci_images import Pusher, make_image, make_layer
from shoal.testing.registry import Registry

pytestmark = pytest.mark.skipif(**cli_requirement())

STACK = """
version: "3.8"
services:
  web:
    image: my-apache2:latest
    command: ["python3", "-m", "shoal.demo.web", "--port", "80"]
    environment:
      GREETING: ${GREETING:-hello}
    secrets: [db_password]
    configs:
      - source: app_config
        target: /run/secrets/app.conf
    networks:
      back:
        aliases: [www]
    deploy:
      replicas: 2
      labels: {tier: front}
      update_config: {monitor: 1s}
    stop_grace_period: 1s  # the workloads run as pid 1 and ignore SIGTERM
  api:
    image: my-apache2:latest
    command: ["python3", "-m", "shoal.demo.web", "--port", "8080"]
    networks: [back]
    stop_grace_period: 1s
  worker:
    image: ${WORKER_IMAGE:-my-apache2:latest}
    command: sleep 3600
    stop_grace_period: 1s
    build: .
secrets:
  db_password:
    file: ./db_password.txt
configs:
  app_config:
    file: ./app.conf
networks:
  back:
    driver: overlay
    attachable: true
"""


def shoal(daemon: ShoalDaemon, cwd: Path, *args: str, env: dict[str, str] | None = None,
          check: bool = True) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "DOCKER_HOST": daemon.docker_host, **(env or {})}
    result = subprocess.run([sys.executable, "-m", "shoal.cli", *args], env=environ, capture_output=True,
                            text=True, timeout=120, cwd=cwd)
    if check and result.returncode != 0:
        raise AssertionError(f"shoal {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result


@pytest.fixture
def stack_dir(tmp_path: Path) -> Path:
    (tmp_path / "db_password.txt").write_text("s3cret\n")
    (tmp_path / "app.conf").write_text("key=value\n")
    (tmp_path / "compose.yml").write_text(STACK)
    return tmp_path


def _services(daemon: ShoalDaemon, namespace: str) -> dict[str, Any]:
    found = daemon.docker_json("service", "ls", "--filter", f"label=com.docker.stack.namespace={namespace}",
                               "--format", "{{json .Name}}") if False else None
    del found
    ids = daemon.docker("service", "ls", "-q", "--filter",
                        f"label=com.docker.stack.namespace={namespace}").stdout.split()
    if not ids:
        return {}
    return {s["Spec"]["Name"]: s for s in daemon.docker_json("service", "inspect", *ids)}


def _converged(run: Callable[..., subprocess.CompletedProcess[str]], namespace: str, expected: dict[str, str]) -> bool:
    rows = run("stack", "services", namespace).stdout.splitlines()[1:]
    replicas = {line.split()[1]: line.split()[3] for line in rows if line.strip()}
    return replicas == expected


def _updates_done(daemon: ShoalDaemon, namespace: str) -> bool:
    """No rolling update of the stack still writing its UpdateStatus (a deploy started meanwhile would send
    a version that is no longer current, and be refused as out of sequence, as on Docker)."""
    return all((s.get("UpdateStatus") or {}).get("State", "completed") == "completed"
               for s in _services(daemon, namespace).values())


def _objects(daemon: ShoalDaemon, kind: str, namespace: str) -> list[str]:
    return daemon.docker(kind, "ls", "--filter", f"label=com.docker.stack.namespace={namespace}",
                         "--format", "{{.Name}}").stdout.split()


def test_shoal_stack_deploy_update_prune_rm(swarm: ShoalDaemon, stack_dir: Path) -> None:
    def run(*args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        return shoal(swarm, stack_dir, *args, env=env, check=check)

    result = run("stack", "deploy", "-c", "compose.yml", "st")
    assert result.stdout.splitlines() == ["Creating network st_back", "Creating network st_default",
                                          "Creating secret st_db_password",
                                          "Creating config st_app_config", "Creating service st_api",
                                          "Creating service st_web", "Creating service st_worker"]
    assert result.stderr.startswith("Ignoring unsupported options: build\n\n")
    assert "Since --detach=false was not specified" in result.stderr
    expected = {"st_api": "1/1", "st_web": "2/2", "st_worker": "1/1"}
    wait_until(lambda: _converged(run, "st", expected), 60, "the stack did not converge")

    assert run("stack", "ls").stdout.splitlines() == ["NAME      SERVICES", "st        3"]
    ps = run("stack", "ps", "st").stdout.splitlines()
    assert re.match(r"ID\s+NAME\s+IMAGE\s+NODE\s+DESIRED STATE\s+CURRENT STATE\s+ERROR\s+PORTS", ps[0])
    assert sorted(line.split()[1] for line in ps[1:]) == ["st_api.1", "st_web.1", "st_web.2", "st_worker.1"]
    services = _services(swarm, "st")
    web = services["st_web"]
    network = swarm.docker_json("network", "inspect", "st_back")[0]
    assert network["Labels"] == {"com.docker.stack.namespace": "st"} and network["Driver"] == "overlay"
    assert web["Spec"]["Labels"] == {"com.docker.stack.namespace": "st", "com.docker.stack.image": "my-apache2:latest",
                                     "tier": "front"}
    assert web["Spec"]["TaskTemplate"]["Networks"] == [{"Target": network["Id"], "Aliases": ["www", "web"]}]
    container = web["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert container["Env"] == ["GREETING=hello"]
    assert [s["SecretName"] for s in container["Secrets"]] == ["st_db_password"]
    configs = [(c["ConfigName"], c["File"]["Name"]) for c in container["Configs"]]
    assert configs == [("st_app_config", "/run/secrets/app.conf")]

    # Redeploy with a changed environment and image: both services are updated, each from the version read.
    result = run("stack", "deploy", "-c", "compose.yml", "st",
                 env={"GREETING": "bonjour", "WORKER_IMAGE": "my-apache2:v2"})
    assert f"Updating service st_web (id: {web['ID']})" in result.stdout
    assert not any(line.startswith("Creating") for line in result.stdout.splitlines())
    updated = _services(swarm, "st")
    assert updated["st_web"]["Version"]["Index"] > web["Version"]["Index"]
    assert updated["st_web"]["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"] == ["GREETING=bonjour"]
    assert updated["st_worker"]["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == "my-apache2:v2"
    assert updated["st_worker"]["Spec"]["Labels"]["com.docker.stack.image"] == "my-apache2:v2"
    wait_until(lambda: _converged(run, "st", expected), 60, "the stack did not converge after the update")
    wait_until(lambda: _updates_done(swarm, "st"), 60, "the rolling updates did not complete")

    # --prune: the api service left the file, so it leaves the stack.
    smaller = STACK.replace('  api:\n    image: my-apache2:latest\n    command: ["python3", "-m", "shoal.demo.web", '
                            '"--port", "8080"]\n    networks: [back]\n    stop_grace_period: 1s\n', "")
    (stack_dir / "compose.yml").write_text(smaller)
    result = run("stack", "deploy", "--prune", "-c", "compose.yml", "st")
    assert result.stdout.splitlines()[0] == "Removing service st_api"
    assert sorted(_services(swarm, "st")) == ["st_web", "st_worker"]

    result = run("stack", "rm", "st")
    assert result.stdout.splitlines() == ["Removing service st_web", "Removing service st_worker",
                                          "Removing secret st_db_password", "Removing config st_app_config",
                                          "Removing network st_back", "Removing network st_default"]
    assert _services(swarm, "st") == {}
    for kind in ("network", "secret", "config"):
        assert _objects(swarm, kind, "st") == []
    assert run("stack", "ls").stdout.splitlines() == ["NAME      SERVICES"]


def test_a_bad_compose_file_changes_nothing(swarm: ShoalDaemon, stack_dir: Path) -> None:
    before = swarm.docker("service", "ls", "-q").stdout
    (stack_dir / "bad.yml").write_text(STACK.replace("replicas: 2", "replicas: 2\n      colour: blue"))
    result = shoal(swarm, stack_dir, "stack", "deploy", "-c", "bad.yml", "bad", check=False)
    assert (result.returncode, result.stderr) == (1, "services.web.deploy Additional property colour is not allowed\n")
    (stack_dir / "bad.yml").write_text(STACK.replace("networks: [back]", "networks: [elsewhere]"))
    result = shoal(swarm, stack_dir, "stack", "deploy", "-c", "bad.yml", "bad", check=False)
    assert result.returncode == 1 and result.stderr.endswith('service api: undefined network "elsewhere"\n')
    assert swarm.docker("service", "ls", "-q").stdout == before
    for kind in ("network", "secret", "config"):
        assert _objects(swarm, kind, "bad") == []


def _comparable(spec: dict[str, Any], namespace: str) -> str:
    """A service spec with the stack's own names and the object IDs taken out."""
    text = json.dumps(spec, sort_keys=True).replace(f"{namespace}_", "NS_").replace(f'"{namespace}"', '"NS"')
    return re.sub(r'"(SecretID|ConfigID|Target)": "[^"]+"', r'"\1": "ID"', text)


@pytest.mark.skipif(**cli_requirement((28, 0), needs="comparing with docker stack deploy's conversion"))
def test_docker_stack_deploy_gives_the_same_stack(swarm: ShoalDaemon, stack_dir: Path) -> None:
    def docker(*args: str) -> subprocess.CompletedProcess[str]:
        environ = {**os.environ, "DOCKER_HOST": swarm.docker_host}
        from shoal.testing.daemon import DOCKER_CLI
        assert DOCKER_CLI is not None
        return subprocess.run([DOCKER_CLI, *args], env=environ, capture_output=True, text=True, timeout=120,
                              cwd=stack_dir, check=True)

    docker("stack", "deploy", "-c", "compose.yml", "dk")
    shoal(swarm, stack_dir, "stack", "deploy", "-c", "compose.yml", "sh")
    expected = {"dk_api": "1/1", "dk_web": "2/2", "dk_worker": "1/1"}
    wait_until(lambda: _converged(docker, "dk", expected), 60, "the docker CLI's stack did not converge")
    theirs, ours = _services(swarm, "dk"), _services(swarm, "sh")
    assert len(theirs) == 3
    for name, service in theirs.items():
        assert _comparable(ours["sh_" + name.removeprefix("dk_")]["Spec"], "sh") == _comparable(service["Spec"], "dk")
    # The docker CLI's redeploy (it sends each update with the version it read) and its --prune.
    (stack_dir / "pruned.yml").write_text(STACK.replace("${GREETING:-hello}", "again").replace(
        '  api:\n    image: my-apache2:latest\n    command: ["python3", "-m", "shoal.demo.web", "--port", "8080"]\n'
        "    networks: [back]\n    stop_grace_period: 1s\n", ""))
    out = docker("stack", "deploy", "--prune", "-c", "pruned.yml", "dk").stdout
    assert "Removing service dk_api" in out and f"Updating service dk_web (id: {theirs['dk_web']['ID']})" in out
    # A deploy reads each service's version, then updates it: wait until the rolling update has written
    # its last UpdateStatus, or the next deploy's update is out of sequence (as it would be on Docker).
    wait_until(lambda: _updates_done(swarm, "dk"), 60, "the redeploy's rolling update did not complete")
    redeployed = _services(swarm, "dk")
    assert sorted(redeployed) == ["dk_web", "dk_worker"]
    assert redeployed["dk_web"]["Version"]["Index"] > theirs["dk_web"]["Version"]["Index"]
    assert redeployed["dk_web"]["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"] == ["GREETING=again"]
    docker("stack", "deploy", "-c", "compose.yml", "dk")
    wait_until(lambda: _converged(docker, "dk", expected), 60, "the docker CLI's redeploy did not converge")
    # Each can read and remove the other's stack: both go by the namespace label.
    assert docker("stack", "ls").stdout.splitlines()[1:] == ["dk        3", "sh        3"]
    def lines(out: str) -> list[str]:
        return [line.rstrip() for line in out.splitlines()]  # the CLI pads an empty last column

    assert lines(shoal(swarm, stack_dir, "stack", "services", "dk").stdout) == lines(
        docker("stack", "services", "dk").stdout)

    def tasks(out: str) -> list[list[str]]:
        # The two commands run a moment apart: compare the cells and states, not how long ago a state
        # began (which also moves the columns after it).
        return [re.split(r"\s{2,}", re.sub(r" (\d+ seconds?|less than a second|about a minute|\d+ minutes) ago",
                                           "", line)) for line in lines(out)]

    assert tasks(shoal(swarm, stack_dir, "stack", "ps", "dk").stdout) == tasks(docker("stack", "ps", "dk").stdout)
    shoal(swarm, stack_dir, "stack", "rm", "dk")
    out = docker("stack", "rm", "sh").stdout.splitlines()
    assert out[0] == "Removing service sh_api" and out[-1] == "Removing network sh_default"
    assert _services(swarm, "dk") == {} and _services(swarm, "sh") == {}


def test_deploy_waits_for_convergence_when_asked(swarm: ShoalDaemon, stack_dir: Path) -> None:
    (stack_dir / "small.yml").write_text("services:\n  one:\n    image: my-apache2:latest\n    command: sleep 3600\n"
                                         "    deploy:\n      replicas: 2\n      update_config: {monitor: 1s}\n")
    result = shoal(swarm, stack_dir, "stack", "deploy", "--detach=false", "-c", "small.yml", "wait")
    assert "Since --detach=false" not in result.stderr
    service_id = _services(swarm, "wait")["wait_one"]["ID"]
    assert "overall progress: 2 out of 2 tasks" in result.stdout
    assert f"verify: Service {service_id} converged" in result.stdout
    bad = shoal(swarm, stack_dir, "stack", "deploy", "--resolve-image", "sometimes", "-c", "small.yml", "wait",
                check=False)
    assert (bad.returncode, bad.stderr) == (1, "invalid option sometimes for flag --resolve-image\n")
    shoal(swarm, stack_dir, "stack", "rm", "wait")


JOBS = """
services:
  once:
    image: my-apache2:latest
    command: "true"
    deploy: {mode: replicated-job, replicas: 2}
  everywhere:
    image: my-apache2:latest
    command: "true"
    deploy: {mode: global-job}
  daemon:
    image: my-apache2:latest
    command: sleep 3600
    deploy: {mode: global}
  capped:
    image: my-apache2:latest
    command: sleep 3600
    deploy: {placement: {max_replicas_per_node: 1}}
"""


@pytest.mark.skipif(**cli_requirement((28, 0), needs="docker stack services' job columns"))
def test_stack_services_shows_modes_as_the_docker_cli(swarm: ShoalDaemon, stack_dir: Path) -> None:
    (stack_dir / "jobs.yml").write_text(JOBS)
    shoal(swarm, stack_dir, "stack", "deploy", "-c", "jobs.yml", "jobs")
    expected = {"jobs_capped": "1/1 (max 1 per node)", "jobs_daemon": "1/1", "jobs_everywhere": "0/0 (1/1 completed)",
                "jobs_once": "0/2 (2/2 completed)"}

    def replicas() -> dict[str, str]:
        rows = swarm.docker("stack", "services", "jobs").stdout.splitlines()[1:]
        return {re.split(r"\s{2,}", row)[1]: re.split(r"\s{2,}", row)[3] for row in rows}

    wait_until(lambda: replicas() == expected, 60, "the jobs did not complete")
    ours = shoal(swarm, stack_dir, "stack", "services", "jobs").stdout
    theirs = swarm.docker("stack", "services", "jobs").stdout
    assert [line.rstrip() for line in ours.splitlines()] == [line.rstrip() for line in theirs.splitlines()]
    shoal(swarm, stack_dir, "stack", "rm", "jobs")


def test_resolve_image_pins_the_registrys_digest(swarm: ShoalDaemon, stack_dir: Path,
                                                 tmp_path_factory: pytest.TempPathFactory) -> None:
    """--resolve-image against a loopback registry: the digest /distribution reports is pinned on create,
    kept by `changed` while the file names the same image, and the same as the docker CLI pins."""
    why_not = registry_support.available()
    if why_not:
        pytest.skip(why_not)
    work = tmp_path_factory.mktemp("stack-registry")
    registry = Registry(work, work / "storage")
    registry.start()
    try:
        first = make_image([make_layer({"app/version": "1\n"})])
        second = make_image([make_layer({"app/version": "2\n"})])
        pusher = Pusher(registry.base_url)
        pusher.image("team/app", "v1", first)
        ref = f"{registry.host}/team/app:v1"
        (stack_dir / "pinned.yml").write_text(f"services:\n  app:\n    image: {ref}\n    command: sleep 3600\n")

        def image_of(service: str) -> str:
            return str(swarm.docker("service", "inspect", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
                                    service).stdout.strip())

        shoal(swarm, stack_dir, "stack", "deploy", "-c", "pinned.yml", "pin")
        assert image_of("pin_app") == f"{ref}@{first.digest}"
        swarm.docker("stack", "deploy", "-c", str(stack_dir / "pinned.yml"), "dkpin")
        assert image_of("dkpin_app") == f"{ref}@{first.digest}"
        wait_until(lambda: _updates_done(swarm, "pin"), 60, "the first deploy did not settle")
        pusher.image("team/app", "v1", second)  # the tag moves on in the registry
        shoal(swarm, stack_dir, "stack", "deploy", "--resolve-image", "changed", "-c", "pinned.yml", "pin")
        assert image_of("pin_app") == f"{ref}@{first.digest}"  # same image in the file: the pin is kept
        wait_until(lambda: _updates_done(swarm, "pin"), 60, "the second deploy did not settle")
        shoal(swarm, stack_dir, "stack", "deploy", "-c", "pinned.yml", "pin")  # always: asked again
        assert image_of("pin_app") == f"{ref}@{second.digest}"
        shoal(swarm, stack_dir, "stack", "rm", "pin")
        shoal(swarm, stack_dir, "stack", "rm", "dkpin")
    finally:
        registry.stop()
