"""`shoal service create|ls|ps|inspect|scale|update|rollback|rm|logs`."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import click
import docker

from shoal.api.names import task_name
from shoal.cli.format import short_id, state_since, strip_digest, table
from shoal.cli.main import api_of
from shoal.cli.progress import wait_converged
from shoal.cli.service_jobs import job_replicas, mode_name, wait_job_complete

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}


def parse_duration(text: str) -> int:
    """Go's time.ParseDuration, to integer nanoseconds ("1m30s", "500ms", "-1s")."""
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    if body == "0":
        return 0
    matches = list(_DURATION.finditer(body))
    if not matches or "".join(m.group(0) for m in matches) != body:
        raise click.BadParameter(f'time: invalid duration "{text}"')
    return sign * int(sum(float(m.group(1)) * _UNIT_NS[m.group(2)] for m in matches))


def parse_port(text: str) -> dict[str, Any]:
    """`8080:80/tcp`, `80`, or `published=8080,target=80,mode=host`."""
    if "=" in text:
        fields = dict(part.split("=", 1) for part in text.split(","))
        return {"Protocol": fields.get("protocol", "tcp"), "TargetPort": int(fields["target"]),
                "PublishedPort": int(fields.get("published", 0)), "PublishMode": fields.get("mode", "ingress")}
    ports, _, protocol = text.partition("/")
    published, _, target = ports.rpartition(":")
    return {"Protocol": protocol or "tcp", "TargetPort": int(target), "PublishedPort": int(published or 0),
            "PublishMode": "ingress"}


@click.group()
def service() -> None:
    """Manage swarm services."""


def _converge(ctx: click.Context, ref: str, detach: bool) -> None:
    if detach:
        return
    api = api_of(ctx)
    mode = api.inspect_service(ref)["Spec"].get("Mode") or {}
    if mode.get("ReplicatedJob") is not None or mode.get("GlobalJob") is not None:
        done = wait_job_complete(api, ref, click.echo)
    else:
        done = wait_converged(api, ref, click.echo)
    if not done:
        sys.exit(1)


def healthcheck(cmd: str | None, interval: str | None, timeout: str | None, retries: int | None,
                start_period: str | None, disabled: bool) -> dict[str, Any] | None:
    """ContainerSpec.Healthcheck from the --health-* flags, as the docker CLI builds it."""
    given = cmd is not None or interval or timeout or retries is not None or start_period
    if disabled:
        if given:
            raise click.UsageError("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    if not given:
        return None
    check: dict[str, Any] = {}
    if cmd is not None:
        check["Test"] = ["CMD-SHELL", cmd]
    for key, text in (("Interval", interval), ("Timeout", timeout), ("StartPeriod", start_period)):
        if text:
            check[key] = parse_duration(text)
    if retries is not None:
        check["Retries"] = retries
    return check


def service_mode(mode: str, replicas: int | None, max_concurrent: int | None) -> dict[str, Any]:
    """Spec.Mode from --mode/--replicas/--max-concurrent, with the docker CLI's defaults and checks."""
    if max_concurrent is not None and mode != "replicated-job":
        raise click.UsageError("max-concurrent can only be used with replicated-job mode")
    if mode == "global":
        return {"Global": {}}
    if mode == "global-job":
        return {"GlobalJob": {}}
    if mode == "replicated-job":
        concurrent = 1 if max_concurrent is None else max_concurrent
        return {"ReplicatedJob": {"MaxConcurrent": concurrent,
                                  "TotalCompletions": concurrent if replicas is None else replicas}}
    return {"Replicated": {"Replicas": 1 if replicas is None else replicas}}


@service.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--name", default="", help="Service name")
@click.option("--replicas", type=int, help="Number of tasks")
@click.option("--mode", type=click.Choice(["replicated", "global", "replicated-job", "global-job"]),
              default="replicated")
@click.option("--max-concurrent", type=int, default=None, help="Number of job tasks to run concurrently")
@click.option("--health-cmd", default=None, help="Command to run to check health")
@click.option("--health-interval", default=None, help="Time between running the check (ms|s|m|h)")
@click.option("--health-timeout", default=None, help="Maximum time to allow one check to run (ms|s|m|h)")
@click.option("--health-retries", type=int, default=None, help="Consecutive failures needed to report unhealthy")
@click.option("--health-start-period", default=None,
              help="Start period for the container to initialize before counting retries (ms|s|m|h)")
@click.option("--no-healthcheck", is_flag=True, help="Disable any container-specified HEALTHCHECK")
@click.option("-p", "--publish", multiple=True, help="Publish a port as a node port")
@click.option("-e", "--env", multiple=True, help="Set environment variables")
@click.option("-l", "--label", multiple=True, help="Service labels")
@click.option("--constraint", multiple=True, help="Placement constraints")
@click.option("--hostname", default=None, help="Container hostname")
@click.option("-w", "--workdir", default=None, help="Working directory inside the container")
@click.option("--restart-condition", type=click.Choice(["none", "on-failure", "any"]))
@click.option("--restart-delay", default=None, help="Delay between restart attempts (ns|us|ms|s|m|h)")
@click.option("--restart-max-attempts", type=int, default=None)
@click.option("--update-parallelism", type=int, default=None)
@click.option("--update-delay", default=None)
@click.option("--update-monitor", default=None)
@click.option("--update-order", type=click.Choice(["start-first", "stop-first"]), default=None)
@click.option("--update-failure-action", type=click.Choice(["pause", "continue", "rollback"]), default=None)
@click.option("-d", "--detach", is_flag=True, help="Exit immediately instead of waiting for the service to converge")
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def create(ctx: click.Context, name: str, replicas: int | None, mode: str, max_concurrent: int | None,
           health_cmd: str | None, health_interval: str | None, health_timeout: str | None,
           health_retries: int | None, health_start_period: str | None, no_healthcheck: bool,
           publish: tuple[str, ...],
           env: tuple[str, ...], label: tuple[str, ...], constraint: tuple[str, ...], hostname: str | None,
           workdir: str | None, restart_condition: str | None, restart_delay: str | None,
           restart_max_attempts: int | None, update_parallelism: int | None, update_delay: str | None,
           update_monitor: str | None, update_order: str | None, update_failure_action: str | None,
           detach: bool, image: str, command: tuple[str, ...]) -> None:
    """Create a new service."""
    container: dict[str, Any] = {"Image": image}
    if command:
        container["Args"] = list(command)
    if env:
        container["Env"] = list(env)
    if hostname:
        container["Hostname"] = hostname
    if workdir:
        container["Dir"] = workdir
    check = healthcheck(health_cmd, health_interval, health_timeout, health_retries, health_start_period,
                        no_healthcheck)
    if check is not None:
        container["Healthcheck"] = check
    spec_mode = service_mode(mode, replicas, max_concurrent)
    task: dict[str, Any] = {"ContainerSpec": container, "Placement": {"Constraints": list(constraint)}}
    restart: dict[str, Any] = {}
    if restart_condition:
        restart["Condition"] = restart_condition
    if restart_delay:
        restart["Delay"] = parse_duration(restart_delay)
    if restart_max_attempts is not None:
        restart["MaxAttempts"] = restart_max_attempts
    if restart:
        task["RestartPolicy"] = restart
    spec: dict[str, Any] = {
        "Name": name, "Labels": dict(item.partition("=")[::2] for item in label), "TaskTemplate": task,
        "Mode": spec_mode,
        "EndpointSpec": {"Mode": "vip", "Ports": [parse_port(p) for p in publish]},
    }
    update = _update_config(update_parallelism, update_delay, update_monitor, update_order, update_failure_action)
    if update and ("Replicated" in spec_mode or "Global" in spec_mode):  # jobs have no rolling updates
        spec["UpdateConfig"] = update
    api = api_of(ctx)
    created = api._result(api._post_json(api._url("/services/create"), data=spec), True)
    click.echo(created["ID"])
    _converge(ctx, created["ID"], detach)


def _update_config(parallelism: int | None, delay: str | None, monitor: str | None, order: str | None,
                   failure_action: str | None) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if parallelism is not None:
        config["Parallelism"] = parallelism
    if delay:
        config["Delay"] = parse_duration(delay)
    if monitor:
        config["Monitor"] = parse_duration(monitor)
    if order:
        config["Order"] = order
    if failure_action:
        config["FailureAction"] = failure_action
    return config


@service.command("ls")
@click.option("-q", "--quiet", is_flag=True)
@click.pass_context
def ls(ctx: click.Context, quiet: bool) -> None:
    """List services."""
    api = api_of(ctx)
    services = api._result(api._get(api._url("/services"), params={"status": True}), True)
    if quiet:
        click.echo("\n".join(s["ID"] for s in services))
        return
    rows = []
    for item in services:
        spec = item["Spec"]
        status = item.get("ServiceStatus") or {}
        replicas = job_replicas(spec, status)
        ports = ", ".join(
            f"*:{p['PublishedPort']}->{p['TargetPort']}/{p['Protocol']}"
            for p in (item.get("Endpoint") or {}).get("Ports") or [] if p.get("PublishMode") == "ingress"
        )
        rows.append([short_id(item["ID"]), spec["Name"], mode_name(spec), replicas,
                     strip_digest(spec["TaskTemplate"]["ContainerSpec"]["Image"]), ports])
    click.echo(table(["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"], rows))


@service.command()
@click.argument("ref")
@click.option("--no-trunc", is_flag=True)
@click.pass_context
def ps(ctx: click.Context, ref: str, no_trunc: bool) -> None:
    """List the tasks of a service."""
    api = api_of(ctx)
    svc = api.inspect_service(ref)
    tasks = api.tasks(filters={"service": svc["ID"]})
    names: dict[str, str] = {}
    rows = []
    ordered = sorted(tasks, key=lambda t: (t.get("Slot") or 0, t.get("NodeID", ""), t["CreatedAt"]), reverse=False)
    groups: dict[Any, list[dict[str, Any]]] = {}
    for task in ordered:
        groups.setdefault(task.get("Slot") or task.get("NodeID"), []).append(task)
    for key in sorted(groups, key=str):
        history = sorted(groups[key], key=lambda t: t["CreatedAt"], reverse=True)
        for position, task in enumerate(history):
            node_id = task.get("NodeID", "")
            if node_id and node_id not in names:
                names[node_id] = api.inspect_node(node_id)["Description"]["Hostname"]
            name = f"{svc['Spec']['Name']}.{key}"
            status = task["Status"]
            rows.append([
                task["ID"] if no_trunc else short_id(task["ID"]),
                name if position == 0 else f" \\_ {name}",
                strip_digest(task["Spec"]["ContainerSpec"]["Image"]),
                names.get(node_id, ""),
                task["DesiredState"].capitalize(),
                state_since(status["State"], status.get("Timestamp", "")),
                (status.get("Err") or "") if no_trunc else f"\"{status['Err']}\"" if status.get("Err") else "",
                "",
            ])
    click.echo(table(["ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR", "PORTS"], rows))


@service.command()
@click.argument("refs", nargs=-1, required=True)
@click.pass_context
def inspect(ctx: click.Context, refs: tuple[str, ...]) -> None:
    """Display detailed information on one or more services."""
    api = api_of(ctx)
    click.echo(json.dumps([api.inspect_service(ref, insert_defaults=True) for ref in refs], indent=4))


def _update_spec(api: docker.APIClient, ref: str, change: Any) -> dict[str, Any]:
    current = api.inspect_service(ref)
    spec = json.loads(json.dumps(current["Spec"]))
    change(spec)
    api._raise_for_status(api._post_json(api._url("/services/{0}/update", current["ID"]), data=spec,
                                         params={"version": current["Version"]["Index"]}))
    return dict(current)


@service.command()
@click.argument("pairs", nargs=-1, required=True)
@click.option("-d", "--detach", is_flag=True)
@click.pass_context
def scale(ctx: click.Context, pairs: tuple[str, ...], detach: bool) -> None:
    """Scale one or multiple replicated services (SERVICE=REPLICAS)."""
    api = api_of(ctx)
    for pair in pairs:
        name, _, count = pair.partition("=")
        if not count.isdigit():
            raise click.BadParameter(f"invalid replicas value {count}: must be a non-negative integer")
        mode = api.inspect_service(name)["Spec"].get("Mode") or {}
        if mode.get("Replicated") is not None:
            _update_spec(api, name, lambda spec, n=int(count): spec["Mode"].__setitem__("Replicated", {"Replicas": n}))
        elif mode.get("ReplicatedJob") is not None:  # a job's scale is its total completions
            _update_spec(api, name, lambda spec, n=int(count): spec["Mode"]["ReplicatedJob"].update(TotalCompletions=n))
        else:
            click.echo(f"{name}: scale can only be used with replicated or replicated-job mode", err=True)
            sys.exit(1)
        click.echo(f"{name} scaled to {count}")
        _converge(ctx, name, detach)


@service.command()
@click.argument("ref")
@click.option("--image", default=None)
@click.option("--replicas", type=int, default=None)
@click.option("--env-add", multiple=True)
@click.option("--env-rm", multiple=True)
@click.option("--force", is_flag=True, help="Force update even if no changes require it")
@click.option("--update-parallelism", type=int, default=None)
@click.option("--update-delay", default=None)
@click.option("--update-monitor", default=None)
@click.option("--update-order", type=click.Choice(["start-first", "stop-first"]), default=None)
@click.option("--update-failure-action", type=click.Choice(["pause", "continue", "rollback"]), default=None)
@click.option("-d", "--detach", is_flag=True)
@click.pass_context
def update(ctx: click.Context, ref: str, image: str | None, replicas: int | None, env_add: tuple[str, ...],
           env_rm: tuple[str, ...], force: bool, update_parallelism: int | None, update_delay: str | None,
           update_monitor: str | None, update_order: str | None, update_failure_action: str | None,
           detach: bool) -> None:
    """Update a service."""
    def change(spec: dict[str, Any]) -> None:
        container = spec["TaskTemplate"]["ContainerSpec"]
        if image:
            container["Image"] = image
        if replicas is not None:
            spec["Mode"]["Replicated"] = {"Replicas": replicas}
        env = [e for e in container.get("Env") or [] if e.partition("=")[0] not in env_rm]
        for item in env_add:
            env = [e for e in env if e.partition("=")[0] != item.partition("=")[0]] + [item]
        if env or "Env" in container:
            container["Env"] = env
        if force:
            spec["TaskTemplate"]["ForceUpdate"] = int(spec["TaskTemplate"].get("ForceUpdate") or 0) + 1
        changes = _update_config(update_parallelism, update_delay, update_monitor, update_order,
                                 update_failure_action)
        if changes:
            spec["UpdateConfig"] = {**(spec.get("UpdateConfig") or {}), **changes}

    _update_spec(api_of(ctx), ref, change)
    click.echo(ref)
    _converge(ctx, ref, detach)


@service.command()
@click.argument("ref")
@click.option("-d", "--detach", is_flag=True)
@click.pass_context
def rollback(ctx: click.Context, ref: str, detach: bool) -> None:
    """Revert changes to a service's configuration."""
    api = api_of(ctx)
    current = api.inspect_service(ref)
    api._raise_for_status(api._post_json(api._url("/services/{0}/update", current["ID"]), data=current["Spec"],
                                         params={"version": current["Version"]["Index"], "rollback": "previous"}))
    click.echo(ref)
    _converge(ctx, ref, detach)


@service.command()
@click.argument("refs", nargs=-1, required=True)
@click.pass_context
def rm(ctx: click.Context, refs: tuple[str, ...]) -> None:
    """Remove one or more services."""
    api = api_of(ctx)
    for ref in refs:
        api.remove_service(ref)
        click.echo(ref)


@service.command()
@click.argument("ref")
@click.option("-f", "--follow", is_flag=True)
@click.option("-t", "--timestamps", is_flag=True)
@click.option("-n", "--tail", default="all")
@click.option("--no-task-ids", is_flag=True, help="Do not include task IDs in output")
@click.option("--raw", is_flag=True, help="Do not neatly format logs")
@click.pass_context
def logs(ctx: click.Context, ref: str, follow: bool, timestamps: bool, tail: str, no_task_ids: bool,
         raw: bool) -> None:
    """Fetch the logs of a service, each line prefixed with its task as the docker CLI does."""
    api = api_of(ctx)
    prefixes: dict[str, str] = {}

    def prefix(attrs: dict[str, str]) -> str:
        task_id = attrs.get("com.docker.swarm.task.id", "")
        if task_id not in prefixes:
            task = api.inspect_task(task_id)
            service = api.inspect_service(task["ServiceID"])["Spec"]["Name"]
            host = api.inspect_node(task["NodeID"])["Description"]["Hostname"]
            name = task_name(service, int(task.get("Slot") or 0), str(task.get("NodeID") or ""))
            prefixes[task_id] = f"{name}@{host}" if no_task_ids else f"{name}.{task_id[:12]}@{host}"
        return prefixes[task_id]

    for chunk in api.service_logs(ref, details=True, follow=follow, stdout=True, stderr=True,
                                  timestamps=timestamps, tail=tail):
        for line in chunk.decode(errors="replace").splitlines():
            stamp = ""
            if timestamps:
                stamp, _, line = line.partition(" ")
                stamp += " "
            details, _, text = line.partition(" ")
            attrs = dict(item.partition("=")[::2] for item in details.split(",") if "=" in item)
            click.echo(f"{stamp}{text}" if raw else f"{stamp}{prefix(attrs)}    | {text}")
