"""What a new user trying shoald beside Docker 20.10 found different, held against Docker's behaviour
through the real docker CLI: template checks at create, dockerd's limit checks at task creation,
swarmkit's texts for resources and ports, service event attributes, `docker logs --details`, the
COMMAND column and the engine version."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from shoal.executor.limits_check import usable_cpus
from shoal.testing.daemon import ShoalDaemon, cli_requirement, wait_until

pytestmark = pytest.mark.skipif(**cli_requirement())

IMAGE = "my-apache2:latest"
RPC_INVALID = "Error response from daemon: rpc error: code = InvalidArgument desc = "


def services(swarm: ShoalDaemon) -> list[str]:
    return sorted(swarm.docker("service", "ls", "--format", "{{.Name}}").stdout.split())


def refused_create(swarm: ShoalDaemon, *args: str) -> str:
    before = services(swarm)
    result = swarm.docker("service", "create", "--detach", *args, check=False)
    assert result.returncode == 1, result.stdout
    assert services(swarm) == before  # nothing was created
    return result.stderr.strip().splitlines()[-1]


def test_a_valid_hostname_template_is_created(swarm: ShoalDaemon) -> None:
    swarm.docker("service", "create", "--detach", "--name", "named", "--hostname", "w-{{.Task.Slot}}-{{.Node.ID}}",
                 IMAGE, "sleep", "600")
    assert "named" in services(swarm)


@pytest.mark.parametrize(("template", "error"), [
    ("{{foo}}", 'template: expansion:1: function "foo" not defined'),
    ("{{.Task.Slot", "template: expansion:1: unclosed action"),
    ("web-{{.Task.Foo}}", 'template: expansion:1:11: executing "expansion" at <.Task.Foo>: can\'t evaluate field '
                          "Foo in type struct { ID string; Name string; Slot string }"),
])
def test_hostname_templates_docker_refuses_at_create(swarm: ShoalDaemon, template: str, error: str) -> None:
    assert refused_create(swarm, "--name", "tmpl", "--hostname", template, IMAGE, "true") == (
        f"{RPC_INVALID}expanding hostname failed: {error}")


def test_a_hostname_template_refused_at_update_changes_nothing(swarm: ShoalDaemon) -> None:
    swarm.docker("service", "create", "--detach", "--name", "keeps", IMAGE, "sleep", "600")
    before = swarm.docker_json("service", "inspect", "keeps")[0]
    result = swarm.docker("service", "update", "--detach", "--hostname", "{{.Nope}}", "keeps", check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f'{RPC_INVALID}expanding hostname failed: template: expansion:1:2: executing "expansion" at <.Nope>: '
        "can't evaluate field Nope in type *template.Context")
    assert swarm.docker_json("service", "inspect", "keeps")[0]["Version"] == before["Version"]


def test_env_and_hostname_templates_are_expanded_per_task(swarm: ShoalDaemon) -> None:
    """Docker's templates work in --env and --hostname at any depth: `1 h-linux-1` from the first slot."""
    swarm.docker("service", "create", "--detach", "--name", "templated", "--env", "SLOT={{.Task.Slot}}",
                 "--hostname", "h-{{.Node.Platform.OS}}-{{.Task.Slot}}", IMAGE, "sh", "-c",
                 "echo $SLOT $(hostname); sleep 600")
    wait_until(lambda: "|" in swarm.docker("service", "logs", "templated").stdout, 60, "no log line")
    assert swarm.docker("service", "logs", "templated").stdout.split("|", 1)[1].strip() == "1 h-linux-1"


def rejected_errors(swarm: ShoalDaemon, service: str) -> list[str]:
    rows = swarm.docker("service", "ps", "--no-trunc", "--format", "{{.CurrentState}}|{{.Error}}", service).stdout
    return [row.split("|", 1)[1].strip('"') for row in rows.splitlines() if row.startswith("Rejected")]


def test_limits_dockerd_refuses_reject_the_tasks(swarm: ShoalDaemon) -> None:
    cpus = usable_cpus()
    swarm.docker("service", "create", "--detach", "--name", "greedy", "--limit-cpu", str(cpus + 1), IMAGE,
                 "sleep", "600")
    swarm.docker("service", "create", "--detach", "--name", "tiny", "--limit-memory", "5m", IMAGE, "sleep", "600")
    swarm.docker("service", "create", "--detach", "--name", "soft", "--reserve-memory", "5m", IMAGE, "sleep", "600")
    wait_until(lambda: all(rejected_errors(swarm, name) for name in ("greedy", "tiny", "soft")), 60,
               "the tasks were not rejected")
    assert set(rejected_errors(swarm, "greedy")) == {
        f"Range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available"}
    assert set(rejected_errors(swarm, "tiny")) == {"Minimum memory limit allowed is 6MB"}
    assert set(rejected_errors(swarm, "soft")) == {"Minimum memory reservation allowed is 6MB"}


def test_a_bad_stop_signal_is_created_and_its_tasks_rejected(swarm: ShoalDaemon) -> None:
    """Docker does not check --stop-signal at create: the container create refuses it, task by task."""
    swarm.docker("service", "create", "--detach", "--name", "badsig", "--stop-signal", "BOGUS", IMAGE, "sleep", "600")
    assert "badsig" in services(swarm)
    wait_until(lambda: bool(rejected_errors(swarm, "badsig")), 60, "the task was not rejected")
    assert set(rejected_errors(swarm, "badsig")) == {"Invalid signal: BOGUS"}


def test_swarmkit_texts_for_tiny_limits_and_duplicate_ports(swarm: ShoalDaemon) -> None:
    assert refused_create(swarm, "--name", "small", "--limit-memory", "1k", IMAGE, "true") == (
        f"{RPC_INVALID}invalid memory value 1024: Must be at least 4MiB")
    assert refused_create(swarm, "--name", "twice", "-p", "18080:80", "-p", "18080:80", IMAGE, "true") == (
        f"{RPC_INVALID}EndpointSpec: duplicate published ports provided")
    # swarmkit keys published ports by number and protocol only: a host-mode twin is a duplicate too
    assert refused_create(swarm, "--name", "twice", "-p", "18081:80", "-p", "mode=host,published=18081,target=81",
                          IMAGE, "true") == f"{RPC_INVALID}EndpointSpec: duplicate published ports provided"


def test_a_port_another_service_publishes(swarm: ShoalDaemon) -> None:
    created = swarm.docker("service", "create", "--detach", "--name", "first", "-p", "18090:80", IMAGE, "sleep",
                           "600").stdout.split()[-1]
    assert refused_create(swarm, "--name", "second", "-p", "18090:80", IMAGE, "true") == (
        f"{RPC_INVALID}port '18090' is already in use by service 'first' ({created}) as an ingress port")


def events_between(swarm: ShoalDaemon, since: float, until: float, kind: str) -> list[dict[str, Any]]:
    out = swarm.docker("events", "--since", f"{since:.9f}", "--until", f"{until:.9f}", "--filter", f"type={kind}",
                       "--format", "{{json .}}").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_service_events_carry_dockerds_attributes(swarm: ShoalDaemon) -> None:
    since = time.time()
    swarm.docker("service", "create", "--detach", "--name", "evented", "--update-delay", "0s",
                 "--stop-grace-period", "1s", IMAGE, "sleep", "600")  # sleep as pid 1 ignores SIGTERM
    swarm.docker("service", "scale", "--detach", "evented=2")
    swarm.docker("service", "update", "--detach", "--image", "my-apache2:v2", "evented")

    def update_done() -> bool:
        status = swarm.docker_json("service", "inspect", "evented")[0].get("UpdateStatus") or {}
        return status.get("State") == "completed"

    wait_until(update_done, 60, "the rolling update did not complete")
    attributes = [e["Actor"]["Attributes"] for e in events_between(swarm, since, time.time(), "service")
                  if e["Actor"]["Attributes"].get("name") == "evented" and e["Action"] == "update"]
    assert {"name": "evented", "replicas.old": "1", "replicas.new": "2"} in attributes
    assert {"name": "evented", "image.old": IMAGE, "image.new": "my-apache2:v2",
            "updatestate.new": "updating"} in attributes or (
        {"name": "evented", "image.old": IMAGE, "image.new": "my-apache2:v2"} in attributes
        and {"name": "evented", "updatestate.new": "updating"} in attributes)
    assert {"name": "evented", "updatestate.old": "updating", "updatestate.new": "completed"} in attributes
    assert all(set(a) <= {"name", "replicas.old", "replicas.new", "image.old", "image.new", "updatestate.old",
                          "updatestate.new"} for a in attributes)


def task_container(swarm: ShoalDaemon, service: str) -> str:
    found: list[str] = []

    def running() -> bool:
        found[:] = swarm.docker("ps", "-q", "--no-trunc", "-f", f"name={service}.").stdout.split()
        return bool(found)

    wait_until(running, 60, f"no container for {service}")
    return found[0]


def test_logs_details_of_a_task_container_show_no_labels(swarm: ShoalDaemon) -> None:
    swarm.docker("service", "create", "--detach", "--name", "talker", IMAGE, "sh", "-c", "echo hello; sleep 600")
    container = task_container(swarm, "talker")
    wait_until(lambda: "hello" in swarm.docker("logs", container).stdout, 60, "no log line")
    # dockerd's json-file keeps no attributes for a task's container: --details adds only the separator
    assert swarm.docker("logs", "--details", container).stdout == " hello\n"


def test_ps_command_quotes_arguments_with_spaces(swarm: ShoalDaemon) -> None:
    swarm.docker("service", "create", "--detach", "--name", "quoted", IMAGE, "sh", "-c", "echo hi; sleep 600")
    task_container(swarm, "quoted")
    shown = swarm.docker("ps", "--no-trunc", "-f", "name=quoted.", "--format", "{{.Command}}").stdout.strip()
    assert shown == "\"sh -c 'echo hi; sleep 600'\""
    assert swarm.docker("ps", "-f", "name=quoted.", "--format", "{{.Command}}").stdout.strip() == (
        "\"sh -c 'echo hi; sle…\"")


def test_info_version_and_node_agree_on_the_engine_version(swarm: ShoalDaemon) -> None:
    version = swarm.docker("version", "--format", "{{.Server.Version}}").stdout.strip()
    assert swarm.docker("info", "--format", "{{.ServerVersion}}").stdout.strip() == version
    assert swarm.docker("node", "inspect", "self", "--format",
                        "{{.Description.Engine.EngineVersion}}").stdout.strip() == version


def test_ps_all_lists_newest_first(swarm: ShoalDaemon) -> None:
    swarm.docker("service", "create", "--detach", "--name", "older", IMAGE, "sleep", "600")
    task_container(swarm, "older")
    swarm.docker("service", "create", "--detach", "--name", "newer", IMAGE, "sleep", "600")
    task_container(swarm, "newer")
    created = [datetime.strptime(line[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
               for line in swarm.docker("ps", "-a", "--format", "{{.CreatedAt}}").stdout.splitlines()]
    assert created == sorted(created, reverse=True)
    names = swarm.docker("ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert [n.split(".")[0] for n in names].index("newer") < [n.split(".")[0] for n in names].index("older")
